"""Tests for bench.compare_models: the matched point, engines per clip, manifests, a tiny run."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.compare_models import (
    at_tempo,
    engine_label,
    format_point,
    hits_by_condition,
    hits_by_engine,
    hits_by_wording,
    in_noise,
    list_test_clips,
    load_test_split,
    lowest_swept,
    main,
    manifest_path,
    noise_label,
    operating_point,
    read_dataset,
    sweep_cutoffs,
    through_rate,
)
from mww_core.audio import write_wav
from mww_core.demo_data.conditions import HELD_OUT_NOISES, speech_rms
from mww_core.evaluation import clip_wording, unpaused
from mww_core.evaluation import paused_near_misses as evaluation_paused
from tests.reference_models import REFERENCE_DIR, needs_reference_models


def _row(cutoff: float, detected: int, fah: float | None, rate: float | None) -> dict:
    return {
        "cutoff": cutoff,
        "positives_detected": detected,
        "recall": detected / 48,
        "fah": fah,
        "false_accept_rate": rate,
    }


# --------------------------------------------------------------------------------------------
# operating_point


def test_operating_point_takes_most_detections_within_both_limits():
    rows = [
        _row(0.50, 40, 3.0, 0.01),  # most detections, too many activations
        _row(0.60, 38, 0.5, 0.10),  # more detections than the answer, too many near misses
        _row(0.70, 35, 1.0, 0.05),  # on both limits: within them
        _row(0.80, 30, 0.0, 0.00),
    ]
    assert operating_point(rows, max_fah=1.0, max_near_miss_rate=0.05)["cutoff"] == 0.70


def test_operating_point_follows_the_limits():
    rows = [_row(0.50, 40, 3.0, 0.01), _row(0.60, 38, 0.5, 0.10), _row(0.80, 30, 0.0, 0.0)]
    assert operating_point(rows, max_fah=3.0, max_near_miss_rate=0.05)["cutoff"] == 0.50
    assert operating_point(rows, max_fah=1.0, max_near_miss_rate=0.10)["cutoff"] == 0.60


def test_operating_point_breaks_ties_by_fewer_activations_then_the_higher_cutoff():
    rows = [_row(0.60, 30, 0.5, 0.0), _row(0.75, 30, 0.0, 0.0), _row(0.70, 30, 0.0, 0.02)]
    assert operating_point(rows, max_fah=1.0, max_near_miss_rate=0.05)["cutoff"] == 0.75
    rows = [_row(0.60, 30, 0.0, 0.0), _row(0.75, 30, 1.0, 0.0)]
    assert operating_point(rows, max_fah=1.0, max_near_miss_rate=0.05)["cutoff"] == 0.60


def test_operating_point_is_none_when_no_cutoff_qualifies():
    rows = [_row(0.50, 40, 3.0, 0.0), _row(0.90, 10, 0.0, 0.2), _row(0.95, 5, None, 0.0)]
    assert operating_point(rows, max_fah=1.0, max_near_miss_rate=0.05) is None


def test_operating_point_without_near_miss_clips_is_limited_by_fah_only():
    rows = [_row(0.50, 40, 2.0, None), _row(0.60, 35, 1.0, None)]
    assert operating_point(rows, max_fah=1.0, max_near_miss_rate=0.0)["cutoff"] == 0.60


def test_lowest_swept_reports_how_close_the_sweep_came_to_the_limits():
    rows = [_row(0.50, 40, 3.0, 0.09), _row(0.90, 10, 0.5, 0.07), _row(0.95, 5, None, None)]
    assert lowest_swept(rows) == {"fah": 0.5, "near_miss_rate": 0.07}
    assert lowest_swept([_row(0.5, 1, None, None)]) == {"fah": None, "near_miss_rate": None}


def test_format_point_says_when_no_cutoff_qualifies():
    lowest = {"fah": 0.0, "near_miss_rate": 0.0686}
    line = format_point("matched", None, "FAH <= 1 and near-miss rate <= 0.05", lowest)
    assert "no cutoff swept keeps FAH <= 1 and near-miss rate <= 0.05" in line
    assert "FAH 0.00, near-miss rate 0.069" in line


def test_sweep_cutoffs_span_030_to_099_and_hold_the_shipped_cutoff():
    cutoffs = sweep_cutoffs(0.975)
    assert cutoffs[0] == 0.30 and cutoffs[-1] == 0.99
    assert 0.975 in cutoffs and 0.86 in cutoffs
    assert len(cutoffs) == 71
    assert len(sweep_cutoffs(0.86)) == 70  # already one of the steps: not twice


# --------------------------------------------------------------------------------------------
# Engines


DESCRIBED = {
    "demo": {"mbrola_test_only": True, "rhvoice_test_only": True, "pico_test_only": False},
    "files": {
        "test/positive/espeak_0000.wav": {"generator": "espeak-ng"},
        "test/positive/espeak_0001.wav": {"generator": "espeak-ng"},
        "test/positive/pico_0000.wav": {"generator": "pico"},
        "test/positive/rhvoice_0000.wav": {"generator": "rhvoice"},
        "test/positive/rhvoice_0001.wav": {"generator": "rhvoice"},
        "test/positive/rhvoice_0002.wav": {"generator": "rhvoice"},
    },
}


def test_engine_label_marks_test_only_engines_never_heard():
    assert engine_label("test/positive/rhvoice_0000.wav", DESCRIBED) == "rhvoice (never heard)"
    assert engine_label("test/positive/pico_0000.wav", DESCRIBED) == "pico"
    # Not described: the file-name prefix names the engine.
    assert engine_label("test/positive/mbrola_0007.wav", DESCRIBED) == "mbrola (never heard)"
    assert engine_label("test/positive/mine_01.wav", DESCRIBED) == "unknown"


def test_hits_by_engine_counts_each_engine_and_lists_never_heard_last():
    names = [
        "test/positive/espeak_0000.wav",
        "test/positive/espeak_0001.wav",
        "test/positive/pico_0000.wav",
        "test/positive/rhvoice_0000.wav",
        "test/positive/rhvoice_0001.wav",
        "test/positive/rhvoice_0002.wav",
    ]
    hits = np.array([True, False, True, True, True, False])
    groups = hits_by_engine(hits, names, DESCRIBED)
    assert list(groups) == ["espeak-ng", "pico", "rhvoice (never heard)"]
    assert {k: (g["detected"], g["clips"]) for k, g in groups.items()} == {
        "espeak-ng": (1, 2),
        "pico": (1, 1),
        "rhvoice (never heard)": (2, 3),
    }


def test_hits_by_condition_counts_each_condition_clean_when_unsaid():
    described = {
        "files": {
            "test/positive/a.wav": {"condition": "noisy"},
            "test/positive/b.wav": {"condition": "noisy"},
            "test/positive/c.wav": {"condition": "far_field"},
            "test/positive/d.wav": {},
        }
    }
    names = [*described["files"], "test/positive/undescribed.wav"]
    groups = hits_by_condition([True, False, True, False, True], names, described)
    assert {k: (g["detected"], g["clips"]) for k, g in groups.items()} == {
        "clean": (1, 2),
        "far_field": (1, 1),
        "noisy": (1, 2),
    }


def test_clip_wording_tells_fluent_paused_exclaimed_and_requests_apart():
    wake = "hey jarvis"
    assert clip_wording({"text": "hey jarvis"}, wake) == "fluent"
    assert clip_wording({"text": "Hey, Jarvis"}, wake) == "paused"
    assert clip_wording({"text": "hey jarvis!"}, wake) == "exclaimed"
    assert clip_wording({"text": "hey jarvis, lock the front door"}, wake) == "request"
    assert clip_wording({"text": "okay computer"}, "okay computer") == "fluent"
    assert clip_wording({}, wake) == "unknown"


def test_hits_by_wording_counts_each_wording():
    described = {
        "wake_word": "hey jarvis",
        "files": {
            "test/positive/a.wav": {"text": "hey jarvis"},
            "test/positive/b.wav": {"text": "hey, jarvis"},
            "test/positive/c.wav": {"text": "hey, jarvis"},
            "test/positive/d.wav": {"text": "hey jarvis, what time is it"},
        },
    }
    groups = hits_by_wording([False, True, True, False], list(described["files"]), described)
    assert {k: (g["detected"], g["clips"]) for k, g in groups.items()} == {
        "fluent": (0, 1),
        "paused": (2, 2),
        "request": (0, 1),
    }


def test_paused_near_misses_counts_the_paused_ones_that_fire_slips_apart():
    entries = [
        {"near_miss": True, "text": "hey, travis"},  # fired
        {"near_miss": True, "text": "hey, marvin"},  # did not
        {"near_miss": True, "text": "kay, jarvis"},  # a slip: apart
        {"near_miss": True, "text": "hey travis"},  # in one breath
        {"text": "Close the window, please."},  # not a near miss
    ]
    fired = [True, False, True, True, True]
    slips = [False, False, True, False, False]
    assert evaluation_paused(fired, entries, slips) == {"false_accepts": 1, "clips": 2}
    assert evaluation_paused(fired, entries) == {"false_accepts": 2, "clips": 3}
    assert evaluation_paused(fired[3:], entries[3:]) is None
    with pytest.raises(ValueError, match="2 clip results for 5"):
        evaluation_paused(fired[:2], entries)


def test_unpaused_sums_every_wording_but_the_paused():
    groups = {
        "exclaimed": {"clips": 4, "detected": 3, "recall": 0.75},
        "fluent": {"clips": 6, "detected": 2, "recall": 1 / 3},
        "paused": {"clips": 5, "detected": 5, "recall": 1.0},
        "request": {"clips": 2, "detected": 1, "recall": 0.5},
        "unknown": {"clips": 3, "detected": 3, "recall": 1.0},
    }
    assert unpaused(groups) == {"clips": 12, "detected": 6, "recall": 0.5}
    assert unpaused({k: groups[k] for k in ("fluent", "request")}) is None
    assert unpaused({"paused": groups["paused"]}) is None


# --------------------------------------------------------------------------------------------
# Run folders, data sets


def test_manifest_path_finds_the_one_manifest_of_a_run_folder(tmp_path: Path):
    export = tmp_path / "runs" / "r1" / "export"
    export.mkdir(parents=True)
    (export / "stage.json").write_text("{}")  # the stage record is not a manifest
    (export / "hey_jarvis.json").write_text("{}")
    assert manifest_path(tmp_path / "runs" / "r1") == export / "hey_jarvis.json"


def test_manifest_path_errors_without_a_manifest(tmp_path: Path):
    export = tmp_path / "r1" / "export"
    export.mkdir(parents=True)
    (export / "stage.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"r1: .*export holds no manifest.*Run the export stage"):
        manifest_path(tmp_path / "r1")


def test_manifest_path_errors_with_several_manifests(tmp_path: Path):
    export = tmp_path / "r1" / "export"
    export.mkdir(parents=True)
    for name in ("a.json", "b.json"):
        (export / name).write_text("{}")
    with pytest.raises(SystemExit, match="2 manifests"):
        manifest_path(tmp_path / "r1")


def test_manifest_path_errors_on_a_missing_path(tmp_path: Path):
    with pytest.raises(SystemExit, match="manifest not found"):
        manifest_path(tmp_path / "nothing.json")
    with pytest.raises(SystemExit, match="neither a run folder"):
        manifest_path(tmp_path / "no_run")


def test_read_dataset_errors_without_dataset_json(tmp_path: Path):
    with pytest.raises(SystemExit, match=r"dataset\.json not found: --data must be a demo"):
        read_dataset(tmp_path)


def test_list_test_clips_needs_positives_and_ambient(tmp_path: Path):
    tone = np.zeros(1600, dtype=np.float32)
    write_wav(tmp_path / "test" / "ambient" / "ambient_000.wav", tone)
    with pytest.raises(SystemExit, match=r"test/positive: no audio files"):
        list_test_clips(tmp_path)
    write_wav(tmp_path / "test" / "positive" / "piper_0001.wav", tone)
    write_wav(tmp_path / "test" / "positive" / "piper_0000.wav", tone)
    names = list_test_clips(tmp_path)
    assert names["positive"] == ["test/positive/piper_0000.wav", "test/positive/piper_0001.wav"]
    assert names["negative"] == []


# --------------------------------------------------------------------------------------------
# End to end: the official model on a few synthetic clips


def _tiny_data(root: Path) -> Path:
    """Three positives (one of a test-only engine), three near misses (one a slip, one said with
    a pause), 20 s ambient."""
    rng = np.random.default_rng(0)

    def clip(seconds: float) -> np.ndarray:  # faint noise
        return (0.01 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)

    files = {}
    for name, entry in {
        "test/positive/espeak_0000.wav": {
            "generator": "espeak-ng",
            "condition": "noisy",
            "text": "hey jarvis",
        },
        "test/positive/piper_0000.wav": {
            "generator": "piper",
            "condition": "clean",
            "text": "hey, jarvis",
        },
        "test/positive/rhvoice_0000.wav": {
            "generator": "rhvoice",
            "condition": "noisy",
            "text": "hey jarvis",
        },
        "test/negative/espeak_0000.wav": {"near_miss": True, "text": "kay jarvis"},
        "test/negative/espeak_0001.wav": {"near_miss": True, "text": "hey marvin"},
        "test/negative/espeak_0002.wav": {"near_miss": True, "text": "hey, marvin"},
    }.items():
        write_wav(root / name, clip(1.0))
        files[name] = {"split": "test", **entry}
    write_wav(root / "test" / "ambient" / "ambient_000.wav", clip(20.0))
    files["test/ambient/ambient_000.wav"] = {"split": "test", "kind": "ambient"}
    phrases = [{"text": "kay jarvis", "spoken_distance": 1}, {"text": "hey marvin", "distance": 3}]
    described = {
        "wake_word": "hey jarvis",
        "demo": {"rhvoice_test_only": True},
        "files": files,
        "near_miss_phrases": phrases,
    }
    (root / "dataset.json").write_text(json.dumps(described))
    return root


@needs_reference_models
def test_main_compares_a_run_folder_and_a_manifest(tmp_path: Path, capsys):
    data = _tiny_data(tmp_path / "data")
    export = tmp_path / "runs" / "copy" / "export"
    export.mkdir(parents=True)
    for name in ("hey_jarvis.json", "hey_jarvis.tflite"):
        shutil.copy(REFERENCE_DIR / name, export / name)
    (export / "stage.json").write_text("{}")
    models = [str(tmp_path / "runs" / "copy"), str(REFERENCE_DIR / "hey_jarvis.json")]

    main(["--data", str(data), "--json", *models])
    result = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in result["models"]] == models
    for model in result["models"]:
        shipped, matched = model["shipped"], model["matched"]
        assert shipped["cutoff"] == 0.97  # the official manifest's
        assert list(shipped["engines"]) == ["espeak-ng", "piper", "rhvoice (never heard)"]
        assert {c: g["clips"] for c, g in shipped["conditions"].items()} == {"clean": 1, "noisy": 2}
        assert {w: g["clips"] for w, g in shipped["wordings"].items()} == {"fluent": 2, "paused": 1}
        assert (shipped["unpaused"]["detected"], shipped["unpaused"]["clips"]) == (0, 2)
        assert shipped["positive_clips"] == 3
        assert (shipped["near_miss_clips"], shipped["slip_clips"]) == (2, 1)
        assert shipped["paused_near_misses"] == {"false_accepts": 0, "clips": 1}
        # Noise is no wake word: nothing detected, nothing fires, so every cutoff ties and
        # the highest one is the matched point.
        assert shipped["positives_detected"] == 0 and shipped["ambient_activations"] == 0
        assert matched["cutoff"] == 0.99
    assert result["models"][0]["shipped"] == result["models"][1]["shipped"]  # the same model

    main(["--data", str(data), "--json", "--max-fah", "-1", models[1]])  # nothing can qualify
    unmatched = json.loads(capsys.readouterr().out)["models"][0]
    assert unmatched["matched"] is None and unmatched["lowest_swept"]["fah"] == 0.0

    main(["--data", str(data), models[1]])
    text = capsys.readouterr().out
    assert (
        "shipped  cutoff 0.97  all 0/3  near misses 0/2 (slips 0/1) (said with a pause 0/1)" in text
    )
    assert "espeak-ng 0/1  piper 0/1  rhvoice (never heard) 0/1" in text
    assert "clean 0/1  noisy 0/2" in text
    assert "said fluent 0/2  paused 0/1  (without a pause 0/2)" in text
    assert "matched  cutoff 0.99" in text
    assert "-10 dB" not in text and "-20 dB" not in text  # no noise line without --noise-lead

    main(["--data", str(data), "--noise-lead", "0", "--json", models[1]])
    shipped = json.loads(capsys.readouterr().out)["models"][0]["shipped"]
    noises = shipped["noises"]
    assert sum(g["clips"] for g in noises.values()) == 3
    assert [n.split()[0] for n in noises] == sorted(HELD_OUT_NOISES[:3])  # each noise in turn
    main(["--data", str(data), "--noise-lead", "0", models[1]])
    text = capsys.readouterr().out
    assert "in " + "  ".join(f"{n} {g['detected']}/{g['clips']}" for n, g in noises.items()) in text


def test_through_rate_band_limits_the_wake_words_only(tmp_path: Path):
    data = _tiny_data(tmp_path / "data")
    split = load_test_split(data, 2)
    narrow = through_rate(split, 8000.0)
    for before, after in zip(split.audio["positive"], narrow.audio["positive"], strict=True):
        spectrum = lambda x: np.abs(np.fft.rfft(x)) ** 2  # noqa: E731
        top = np.fft.rfftfreq(len(before), 1 / 16000) > 4200
        assert after.shape == before.shape
        assert spectrum(after)[top].sum() < 1e-4 * spectrum(before)[top].sum()
    assert narrow.audio["negative"] is split.audio["negative"]
    assert narrow.audio["ambient"] is split.audio["ambient"]
    with pytest.raises(SystemExit, match="through-rate 20000"):
        main(["--data", str(data), "--through-rate", "20000", str(data)])


def test_at_tempo_says_the_wake_words_faster_at_their_pitch(tmp_path: Path):
    data = _tiny_data(tmp_path / "data")
    split = load_test_split(data, 2)
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # a voiced second at 220 Hz
    split = dataclasses.replace(split, audio={**split.audio, "positive": [tone]})
    for factor in (1.3, 0.8):
        (said,) = at_tempo(split, factor).audio["positive"]
        assert len(said) == pytest.approx(16000 / factor, rel=0.01)
        spectrum = np.abs(np.fft.rfft(said))
        assert np.fft.rfftfreq(len(said), 1 / 16000)[spectrum.argmax()] == pytest.approx(220, abs=2)
    faster = at_tempo(split, 1.3)
    assert faster.audio["negative"] is split.audio["negative"]
    assert faster.audio["ambient"] is split.audio["ambient"]
    with pytest.raises(SystemExit, match="tempo 3"):
        main(["--data", str(data), "--tempo", "3", str(data)])


def test_in_noise_keeps_the_noise_under_each_wake_word_whatever_its_lead(tmp_path: Path):
    data = _tiny_data(tmp_path / "data")
    split = load_test_split(data, 2)
    with_clip, early = in_noise(split, 0.0), in_noise(split, 1.5)
    lead = int(1.5 * 16000)
    for clip, a, b in zip(
        split.audio["positive"], with_clip.audio["positive"], early.audio["positive"], strict=True
    ):
        assert a.shape == clip.shape and b.shape == (len(clip) + lead,)
        np.testing.assert_allclose(b[lead:], a, atol=1e-6)  # the same noise under the clip
        assert np.abs(b[:lead]).max() > 0  # and noise before it
        # At the clean clip's peak, as the test's noisy clips are.
        assert np.abs(a).max() == pytest.approx(np.abs(clip).max(), rel=1e-5)
        gain = float(np.dot(a, clip) / np.dot(clip, clip))  # the noise is not the clip
        snr_db = 20 * np.log10(speech_rms(clip) / np.sqrt(np.mean((a / gain - clip) ** 2)))
        assert -0.5 <= snr_db <= 20.5
    assert not np.allclose(
        in_noise(split, 0.0, seed=1).audio["positive"][0], with_clip.audio["positive"][0]
    )
    assert early.audio["negative"] is split.audio["negative"]
    with pytest.raises(SystemExit, match="noise-lead 11"):
        main(["--data", str(data), "--noise-lead", "11", str(data)])


def test_in_noise_labels_each_wake_word_with_its_noise_and_snr_band(tmp_path: Path):
    data = _tiny_data(tmp_path / "data")
    split = load_test_split(data, 2)
    assert split.noise_labels is None
    noisy = in_noise(split, 0.0)
    labels = noisy.noise_labels
    assert labels is not None and len(labels) == len(split.audio["positive"])
    for i, label in enumerate(labels):
        kind, band, unit = label.rsplit(" ", 2)
        assert kind == HELD_OUT_NOISES[i % len(HELD_OUT_NOISES)]  # each noise in turn
        assert band in ("0-10", "10-20") and unit == "dB"
    assert noise_label("rain", 9.9) == "rain 0-10 dB"
    assert noise_label("vacuum", 10.0) == "vacuum 10-20 dB"
