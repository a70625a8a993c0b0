"""Tests for bench.generalization: the per-direction data folder of links (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.generalization import (
    best_within_fah,
    derive_data,
    direction_config,
    direction_name,
    format_curves,
    format_summary,
    keeps_file,
    seed_summary,
)
from mww_core.audio import write_wav
from mww_core.config import FullConfig
from mww_core.pipeline.evaluate_stage import _test_groups
from tests.conftest import write_tiny_config

ENGINES = {"piper": "piper", "espeak": "espeak-ng"}


def _entry(split: str, kind: str, generator: str | None, condition: str | None = None) -> dict:
    entry = {"split": split, "kind": kind}
    if generator:
        entry |= {"generator": generator, "voice": f"{generator}-voice+v1"}
    return entry | ({"condition": condition} if condition else {})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two clips of each engine per split and kind, ambient, mining, rirs, noise, dataset.json."""
    root = tmp_path / "data"
    tone = 0.1 * np.sin(np.linspace(0, 200 * np.pi, 1600))
    files = {}
    for split in ("train", "validation", "test"):
        for kind in ("positive", "negative"):
            for prefix, generator in ENGINES.items():
                for i, condition in enumerate(("clean", "noisy")):
                    name = f"{split}/{kind}/{prefix}_{i:04d}.wav"
                    write_wav(root / name, tone)
                    cond = condition if split == "test" and kind == "positive" else None
                    files[name] = _entry(split, kind, generator, cond)
        # ambient_000 is said by espeak-ng voices only, ambient_001 by both engines.
        for i, engines in enumerate((["espeak-ng"], ["espeak-ng", "piper"])):
            name = f"{split}/ambient/ambient_{i:03d}.wav"
            write_wav(root / name, tone)
            said = [f"{engine}|voice|{{}}|A sentence." for engine in engines]
            files[name] = _entry(split, "ambient", None) | {"utterances": said}
    for name in ("train/mining/mining_000.wav", "rirs/rir_000.wav", "noise/pink_000.wav"):
        write_wav(root / name, tone)
        files[name] = {"kind": name.split("/")[-2], "utterances": ["espeak-ng|v|{}|Words."]}
    manifest = {
        "version": 5,
        "counts": {s: {"positive": 4, "negative": 4} for s in ("train", "validation", "test")},
        "held_out": {"test": {"summary": "voices of its own"}},
        "files": files,
    }
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


def _names(folder: Path, split: str, kind: str) -> list[str]:
    return sorted(p.name for p in (folder / split / kind).iterdir())


def test_derived_folder_trains_on_one_engine_and_tests_on_the_other(data_dir, tmp_path):
    target = tmp_path / "runs" / "espeak_to_piper" / "data"
    counts = derive_data(data_dir, target, "espeak-ng", "piper")

    for split in ("train", "validation"):
        assert _names(target, split, "positive") == ["espeak_0000.wav", "espeak_0001.wav"]
    assert _names(target, "test", "positive") == ["piper_0000.wav", "piper_0001.wav"]
    # Training hears no Piper voice: not its negatives, not ambient audio that holds it.
    assert _names(target, "train", "negative") == ["espeak_0000.wav", "espeak_0001.wav"]
    assert _names(target, "train", "ambient") == ["ambient_000.wav"]
    for split in ("validation", "test"):  # they choose and measure: every negative and ambient
        assert _names(target, split, "negative") == _names(data_dir, split, "negative")
        assert _names(target, split, "ambient") == ["ambient_000.wav", "ambient_001.wav"]
    for folder in ("train/mining", "rirs", "noise"):
        assert len(list((target / folder).iterdir())) == 1
    assert counts["test/positive"] == 2 and counts["train/negative"] == 2

    link = target / "test" / "positive" / "piper_0000.wav"
    assert link.is_symlink()
    assert link.resolve() == (data_dir / "test" / "positive" / "piper_0000.wav").resolve()


def test_negatives_all_keeps_the_test_engine_in_training(data_dir, tmp_path):
    target = tmp_path / "all"
    counts = derive_data(data_dir, target, "espeak-ng", "piper", negatives="all")
    assert _names(target, "train", "negative") == _names(data_dir, "train", "negative")
    assert counts["train/ambient"] == 2
    assert _names(target, "test", "positive") == ["piper_0000.wav", "piper_0001.wav"]

    # The other way round, training hears no espeak-ng voice: mining (espeak-ng) goes too.
    counts = derive_data(data_dir, target, "piper", "espeak-ng")
    assert _names(target, "train", "negative") == ["piper_0000.wav", "piper_0001.wav"]
    assert "train/ambient" not in counts and "train/mining" not in counts
    assert (target / "train" / "ambient").is_dir()  # empty, as the data stage expects it


def test_derived_manifest_describes_only_the_linked_files(data_dir, tmp_path):
    target = tmp_path / "derived"
    derive_data(data_dir, target, "piper", "espeak-ng")
    described = json.loads((target / "dataset.json").read_text())

    linked = {p.relative_to(target).as_posix() for p in target.rglob("*.wav")}
    assert set(described["files"]) == linked
    positives = [v for k, v in described["files"].items() if "/positive/" in k]
    assert {(v["split"], v["generator"]) for v in positives} == {
        ("train", "piper"), ("validation", "piper"), ("test", "espeak-ng")
    }  # fmt: skip
    assert described["counts"]["test"]["positive"] == 2
    assert described["counts"]["train"]["negative"] == 2  # Piper's only
    assert described["generalization"] == {
        "train_engine": "piper", "test_engine": "espeak-ng", "negatives": "training-engine"
    }  # fmt: skip
    summary = described["held_out"]["test"]["summary"]
    assert "espeak-ng wake words only" in summary and "hears no voice of it" in summary
    # The source folder is untouched.
    assert len(json.loads((data_dir / "dataset.json").read_text())["files"]) == 33


def test_evaluate_stage_reads_conditions_of_the_derived_folder(data_dir, tmp_path):
    target = tmp_path / "derived"
    derive_data(data_dir, target, "espeak-ng", "piper")
    config = FullConfig().model_copy(
        update={"data": FullConfig().data.model_copy(update={"data_dir": target})}
    )
    groups = _test_groups(config, [True, False])  # piper_0000 (clean), piper_0001 (noisy)

    assert groups["conditions"]["clean"]["recall"] == 1.0
    assert groups["conditions"]["noisy"]["recall"] == 0.0
    assert list(groups["voice_groups"]) == ["piper piper-voice"]


def test_rebuilding_replaces_the_other_direction(data_dir, tmp_path):
    target = tmp_path / "derived"
    derive_data(data_dir, target, "piper", "espeak-ng")
    derive_data(data_dir, target, "espeak-ng", "piper")
    assert _names(target, "train", "positive") == ["espeak_0000.wav", "espeak_0001.wav"]
    assert (data_dir / "train" / "positive" / "piper_0000.wav").is_file()


def test_two_engines_trained_on_and_the_third_tested(data_dir, tmp_path):
    assert direction_name("espeak-ng+pico", "piper") == "espeak_and_pico_to_piper"
    direction_config(FullConfig(), tmp_path, direction_name("piper+pico", "espeak-ng"), None)
    # A third engine's clips beside the fixture's two: Pico's wake words and negatives.
    described = json.loads((data_dir / "dataset.json").read_text())
    for split in ("train", "validation", "test"):
        for kind in ("positive", "negative"):
            name = f"{split}/{kind}/pico_0000.wav"
            write_wav(data_dir / name, np.zeros(1600))
            described["files"][name] = _entry(split, kind, "pico")
    (data_dir / "dataset.json").write_text(json.dumps(described))

    target = tmp_path / "espeak_and_pico_to_piper"
    derive_data(data_dir, target, "espeak-ng+pico", "piper")
    for split in ("train", "validation"):
        assert _names(target, split, "positive") == [
            "espeak_0000.wav", "espeak_0001.wav", "pico_0000.wav"
        ]  # fmt: skip
    assert _names(target, "test", "positive") == ["piper_0000.wav", "piper_0001.wav"]
    assert _names(target, "train", "negative") == [
        "espeak_0000.wav", "espeak_0001.wav", "pico_0000.wav"
    ]  # fmt: skip
    manifest = json.loads((target / "dataset.json").read_text())
    assert manifest["generalization"]["train_engine"] == "espeak-ng+pico"

    # One engine trained on: the third engine's negatives go too, not only the test engine's.
    derive_data(data_dir, target, "espeak-ng", "piper")
    assert _names(target, "train", "negative") == ["espeak_0000.wav", "espeak_0001.wav"]
    assert "pico_0000.wav" in _names(target, "validation", "negative")  # validation keeps all

    derive_data(data_dir, target, "espeak-ng+piper", "pico")
    assert _names(target, "test", "positive") == ["pico_0000.wav"]
    assert "pico_0000.wav" not in _names(target, "train", "negative")
    assert len(_names(target, "train", "positive")) == 4


def test_a_direction_without_its_engine_in_the_data_is_refused(data_dir, tmp_path):
    from bench.generalization import check_direction

    counts = derive_data(data_dir, tmp_path / "d", "espeak-ng+piper", "pico")
    with pytest.raises(SystemExit, match="no pico wake words in test/.*pico_positives"):
        check_direction("espeak_and_piper_to_pico", counts, data_dir, "espeak-ng+piper", "pico")
    # An engine trained on but missing from the data is named, with the field that adds it.
    counts = derive_data(data_dir, tmp_path / "d", "espeak-ng+mbrola", "piper")
    with pytest.raises(SystemExit, match="no mbrola wake words in train/.*mbrola_positives"):
        check_direction("espeak_and_mbrola_to_piper", counts, data_dir, "espeak-ng+mbrola", "piper")
    counts = derive_data(data_dir, tmp_path / "d", "espeak-ng+piper+pico", "rhvoice")
    with pytest.raises(SystemExit, match="no rhvoice wake words in test/.*rhvoice_positives"):
        check_direction("espeak_and_piper_and_pico_to_rhvoice", counts, data_dir,
                        "espeak-ng+piper+pico", "rhvoice")  # fmt: skip
    counts = derive_data(data_dir, tmp_path / "d", "espeak-ng", "piper")
    check_direction("espeak_to_piper", counts, data_dir, "espeak-ng", "piper")  # both there


def test_engine_comes_from_the_file_name_without_a_manifest_entry():
    assert keeps_file("train/positive/piper_0001.wav", None, "piper", "espeak-ng")
    assert not keeps_file("test/positive/piper_0001.wav", None, "piper", "espeak-ng")
    assert not keeps_file("train/positive/my_clip.wav", None, "piper", "espeak-ng")
    assert not keeps_file("train/negative/piper_0001.wav", None, "espeak-ng", "piper")
    assert keeps_file("train/negative/piper_0001.wav", None, "espeak-ng", "piper", "all")
    assert keeps_file("validation/negative/piper_0001.wav", None, "espeak-ng", "piper")
    assert keeps_file("rirs/rir_000.wav", None, "espeak-ng", "piper")


def test_direction_config_and_best_cutoff(tmp_path):
    config = direction_config(FullConfig(), tmp_path, direction_name("piper", "espeak-ng"), [7, 3])
    assert config.run_name == "piper_to_espeak"
    assert config.data.data_dir == tmp_path and not config.data.build_demo
    assert [p.steps for p in config.training.phases] == [7, 3]

    rows = [
        {"cutoff": 0.5, "recall": 0.9, "fah": 3.0},
        {"cutoff": 0.7, "recall": 0.8, "fah": 1.0},
        {"cutoff": 0.9, "recall": 0.8, "fah": 0.0},
    ]
    assert best_within_fah(rows, 1.0)["cutoff"] == 0.9  # equal recall: fewer activations
    assert best_within_fah(rows, 0.5)["cutoff"] == 0.9
    assert best_within_fah(rows[:1], 1.0) is None


def test_seeds_set_the_training_seed_and_are_summarized_per_direction(tmp_path):
    config = direction_config(FullConfig(), tmp_path, "espeak_to_piper", None, seed=7)
    assert config.training.seed == 7
    assert direction_config(FullConfig(), tmp_path, "x", None).training.seed == 42

    def result(direction, seed, recall, best):
        return {
            "direction": direction, "seed": seed, "test_recall": recall, "best_recall": best,
            "test_fah": 1.0, "test_false_accept_rate": 0.0,
        }  # fmt: skip

    results = [
        result("espeak_to_piper", 42, 0.5, 0.6),
        result("espeak_to_piper", 1, 0.3, None),  # never within the FAH bound: recall 0
        result("piper_to_espeak", 42, 0.1, 0.2),
    ]
    summary = seed_summary(results)
    assert list(summary) == ["espeak_to_piper", "piper_to_espeak"]
    e2p = summary["espeak_to_piper"]
    assert e2p["seeds"] == [42, 1]
    assert e2p["test_recall"] == {"mean": pytest.approx(0.4), "min": 0.3, "max": 0.5}
    assert e2p["best_recall"] == {"mean": pytest.approx(0.3), "min": 0.0, "max": 0.6}
    assert summary["piper_to_espeak"]["test_recall"]["mean"] == pytest.approx(0.1)
    text = format_summary(summary, 1.0)
    assert (
        "espeak_to_piper, 2 seeds [42, 1]: test recall at the chosen cutoff 0.400 (0.300-0.500)"
        in text
    )


def test_curves_are_printed_per_step_with_the_mean_over_seeds():
    def point(step, recall, matched, best=False):
        return {
            "step": step, "validation_recall": 0.5, "validation_cutoff": 0.8, "is_best": best,
            "recall": recall, "matched_recall": matched,
        }  # fmt: skip

    def result(seed, phase_1, phase_2):
        curves = {"train_phase_1": phase_1, "train_phase_2": phase_2}
        return {"direction": "espeak_to_piper", "seed": seed, "curves": curves}

    results = [
        result(42, [point(250, 0.2, 0.3), point(500, 0.4, 0.5, True)], [point(250, 0.6, 0.7)]),
        result(1, [point(250, 0.0, 0.1), point(500, None, 0.3)], [point(250, 0.2, 0.3)]),
        {"direction": "piper_to_espeak", "seed": 42},  # run without --curves: no block
    ]
    lines = format_curves(results, 1.0).splitlines()
    assert lines[0].startswith("espeak_to_piper: learning curve") and "[42, 1]" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["1:250", "1:500", "2:250"]
    assert lines[2].rstrip().endswith("mean 0.200 | 0.400")  # no recall there counts as 0
    assert "0.50@0.80* | 0.40 | 0.50" in lines[2]
    assert lines[3].rstrip().endswith("mean 0.400 | 0.500")
    assert not any("piper_to_espeak" in line for line in lines)


def test_the_bench_trains_from_the_demo_settings_with_recordings_of_one_engine_each():
    from bench.generalization import bench_data_config

    config = FullConfig.model_validate({"data": {"data_dir": "data/x"}})
    data = bench_data_config(config)
    assert data.data_dir == Path("data/x_by_engine")
    assert data.demo.ambient_one_engine_each and not config.data.demo.ambient_one_engine_each
    others = {"ambient_one_engine_each"}
    assert data.demo.model_dump(exclude=others) == config.data.demo.model_dump(exclude=others)


def test_a_demo_data_set_of_other_settings_is_used_with_a_warning(tmp_path, caplog):
    from bench.generalization import _data_folder, bench_data_config
    from mww_core.demo_data import demo_fingerprint

    config = FullConfig.model_validate({"data": {"data_dir": str(tmp_path / "data")}})
    folder = tmp_path / "data_by_engine"  # the bench's own, next to the config's
    (folder / "train").mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"fingerprint": "0123456789abcdef"}))
    with caplog.at_level("WARNING", logger="bench.generalization"):
        assert _data_folder(config, None, "configs/demo.yaml") == folder
    said = " ".join(r.getMessage() for r in caplog.records)
    assert str(folder) in said and "0123456789abcdef" in said and "move it away" in said
    assert (folder / "train").is_dir() and not any((folder / "train").iterdir())  # left alone
    caplog.clear()
    wanted = bench_data_config(config)
    described = {"fingerprint": demo_fingerprint(wanted), "demo": wanted.demo.model_dump()}
    (folder / "dataset.json").write_text(json.dumps(described))
    with caplog.at_level("WARNING", logger="bench.generalization"):
        _data_folder(config, None, "configs/demo.yaml")
    assert not caplog.records
    # The demo's own data set, passed with --data: its training recordings mix the engines.
    mixed = tmp_path / "data"
    (mixed / "train").mkdir(parents=True)
    described = {"fingerprint": demo_fingerprint(config.data), "demo": {}}
    (mixed / "dataset.json").write_text(json.dumps(described))
    with caplog.at_level("WARNING", logger="bench.generalization"):
        assert _data_folder(config, str(mixed), "configs/demo.yaml") == mixed
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "mix every engine's talk" in said and "ambient_one_engine_each: true" in said
    assert f"leave out --data: the bench builds and uses {folder}" in said


@pytest.mark.slow
def test_a_missing_bench_data_set_is_built_with_each_recording_one_engines_talk(tmp_path):
    """A real tiny build: the bench's folder, its settings, and no warning once it is there."""
    from bench.generalization import _data_folder
    from mww_core.config import load_config

    demo = {
        "piper_positives": 6,
        "espeak_positives": 12,
        "near_miss_negatives": 6,
        "speech_negatives": 8,
        "ambient_minutes": {"train": 2.0, "validation": 0.2, "test": 0.2},
        "mining_minutes": 0.2,
        "rirs": 2,
        "noise_clips": 2,
    }
    config = load_config(write_tiny_config(tmp_path, **{"data.demo": demo}))
    folder = _data_folder(config, None)
    assert folder == Path(f"{config.data.data_dir}_by_engine") and not config.data.data_dir.exists()
    manifest = json.loads((folder / "dataset.json").read_text())
    assert manifest["demo"]["ambient_one_engine_each"] is True
    ambient = [m for name, m in manifest["files"].items() if name.startswith("train/ambient/")]
    engines = [{u.split("|")[0] for u in m["utterances"]} for m in ambient]
    assert sorted(e.pop() for e in engines if len(e) == 1) == ["espeak-ng", "piper"]
    assert len(engines) == 2  # every recording was one engine's
