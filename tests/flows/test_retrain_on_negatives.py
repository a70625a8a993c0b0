"""Retraining on new negatives: the flow end to end on a small run."""

import json
import subprocess
import time

import pytest
import yaml

from mww_core import retrain
from mww_core.config import load_config
from tests.conftest import write_tiny_config

NEAR_MISSES = ["hey jervis", "hey travis", "a jarvis", "hey harvest", "hey charvis", "hey darvis"]
VOICES = ["en-us", "en-gb", "en-029", "en-gb-x-rp", "en-us+f3", "en-gb+m4"]


def _firing_config(folder):
    """A small run trained long enough (and without hard negatives) for the model to fire."""
    config = write_tiny_config(
        folder,
        training={
            "batch_size": 32,
            "eval_step_interval": 100,
            "checkpoint_interval": 100,
            "phases": [
                {
                    "steps": 1000,
                    "learning_rate": 0.005,
                    "class_weights": {"negative": 2.0},
                    "positive_fraction": 0.5,
                },
                {
                    "steps": 50,
                    "learning_rate": 0.001,
                    "class_weights": {"negative": 2.0},
                    "positive_fraction": 0.5,
                },
            ],
        },
        mining={"enabled": False},
        evaluation={"target_fah": 60.0},  # 1 min of test ambient: one activation is 60/h
        retrain={
            "inbox_dir": str(folder / "inbox"),
            # A model trained for a minute is far from converged and any further training moves
            # its balance: over two training seeds (and the inbox phrases swapped), inbox loss
            # weight 10 lost 0.14-0.19 of test recall, weight 3 lost 0.03-0.14 while still
            # cutting the inbox false accepts from ~20 to 4-7.
            "fine_tune": {
                "steps": 300,
                "learning_rate": 0.00005,
                "augmented_copies": 4,
                "inbox_weight": 3.0,
            },
            # The candidate's cutoff is chosen anew on two minutes of validation audio, so on
            # this tiny model its test recall moves with it: on one 2026-12-04 machine the
            # round went from 0.833 at cutoff 0.92 to 0.472 at 0.97 (the same every run, since
            # mined copies are seeded by clip contents, not the inbox's path: before, runs gave
            # 0.47-0.61), where other machines lost 0.03-0.19. The gate's recall rule has its
            # own test (test_promotion.py); this one checks that the inbox false accepts halve
            # and the round is promoted.
            "recall_tolerance": 0.45,
            # A minute of test ambient audio cannot measure FAH (one activation is 60/h): the
            # gate allows three more; inbox false accepts and recall are what this test checks.
            "fah_tolerance": 180.0,
        },
    )
    raw = yaml.safe_load(config.read_text())
    # Enough clips that a different CPU's last float bits cannot flip the outcome: 36 test
    # positives, 18 validation positives and two minutes of validation ambient audio.
    raw["data"]["demo"].update(
        piper_positives=60,
        espeak_positives=120,
        near_miss_negatives=60,
        ambient_minutes={"train": 1.0, "validation": 2.0, "test": 1.0},
    )
    config.write_text(yaml.safe_dump(raw))
    return config


def _speak(folder, count):
    """Near-miss phrases said by espeak-ng voices (16-bit wav at espeak's own rate)."""
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        voice = VOICES[i % len(VOICES)]
        text = NEAR_MISSES[(i // len(VOICES) + i) % len(NEAR_MISSES)]
        path = folder / f"candidate_{i:02d}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(130 + 7 * i % 40), "-w", str(path), text],
            check=True,
        )
        paths.append(path)
    return paths


def _retrain(config_path) -> tuple[dict, float]:
    """``python flows/retrain_on_negatives.py --config ...``: its summary and wall time."""
    from flows.retrain_on_negatives import main

    started = time.monotonic()
    summary = main(["--config", str(config_path)])
    return summary, time.monotonic() - started


@pytest.mark.slow
def test_retraining_on_false_accepts_lowers_their_fah(tmp_path, prefect_harness):
    from mww_core import pipeline

    config_path = _firing_config(tmp_path)
    config = load_config(config_path)
    pipeline.run_all(config)
    fired = retrain.accepted_clips(config, _speak(tmp_path / "candidates", 24))
    assert len(fired) >= 3, f"the trained model accepts only {len(fired)} of 24 near misses"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in fired:
        path.rename(inbox / path.name)

    first, first_s = _retrain(config_path)
    comparison = first["comparison"]
    before, after = comparison["current"]["inbox"], comparison["candidate"]["inbox"]
    assert before["false_accepts"] >= 3, comparison
    assert after["fah"] < before["fah"], comparison
    assert after["false_accepts"] <= before["false_accepts"] / 2, comparison  # at least halved
    assert first["promoted"], first["reason"]
    assert (first["previous_version"], first["version"]) == ("v0001", "v0002")
    current = json.loads((config.run_dir / "retrain/current.json").read_text())
    assert current["version"] == "v0002" and (config.run_dir / "retrain/versions/v0001").is_dir()

    state_before = (config.run_dir / "retrain/state.json").read_bytes()
    second, second_s = _retrain(config_path)
    assert second["round"] is None and second["new_files"] == [] and second["version"] == "v0002"
    assert (config.run_dir / "retrain/state.json").read_bytes() == state_before
    assert json.loads((config.run_dir / "retrain/current.json").read_text()) == current
    assert second_s < 0.1 * first_s, (first_s, second_s)
    print(f"inbox: {before} -> {after}; runs took {first_s:.1f} s then {second_s:.2f} s")
