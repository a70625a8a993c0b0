"""Learning curves: every validated step's weights kept, and scored again on another split."""

import json
import shutil

import numpy as np
import pytest

from mww_core.config import load_config
from mww_core.pipeline.curves import matched_row, run_curves, validated_steps
from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained end to end (phase 1 validates at steps 20 and 40, phase 2 at 20):
    its config file and config."""
    from mww_core.pipeline import run_all

    folder = tmp_path_factory.mktemp("curves")
    path = write_tiny_config(folder)
    config = load_config(path)
    run_all(config)
    return path, config


def _weights(path):
    with np.load(path) as data:
        return [data[key] for key in data.files]


def test_every_validation_keeps_the_weights_it_scored(run):
    phase_1, phase_2 = (run.run_dir / f"train_phase_{n}" for n in (1, 2))
    assert [step for step, _ in validated_steps(phase_1)] == [20, 40]
    assert [step for step, _ in validated_steps(phase_2)] == [20]
    # The phase's best weights are the ones kept at its best step.
    best_step = json.loads((phase_1 / "best.json").read_text())["step"]
    kept = dict(validated_steps(phase_1))[best_step]
    best = _weights(phase_1 / "best.weights.npz")
    assert all(np.array_equal(a, b) for a, b in zip(_weights(kept), best, strict=True))


def test_the_curve_on_validation_repeats_what_validation_said(run):
    curves = run_curves(run, "validation")
    assert list(curves) == ["train_phase_1", "train_phase_2"]
    for phase, points in curves.items():
        history = json.loads((run.run_dir / phase / "history.json").read_text())
        assert [p["step"] for p in points] == [h["step"] for h in history]
        for point, validated in zip(points, history, strict=True):
            assert point["validation_recall"] == validated["recall"]
            assert point["recall"] == pytest.approx(validated["recall"])
            assert point["fah"] == pytest.approx(validated["fah"])


def test_the_curve_on_the_test_split_and_without_kept_weights(run, tmp_path):
    curves = run_curves(run, "test")
    points = [p for phase in curves.values() for p in phase]
    assert len(points) == 3
    assert all(0.0 <= p["recall"] <= 1.0 and p["validation_cutoff"] is not None for p in points)
    with pytest.raises(ValueError, match="no 'tset' streams: it has .*'test'"):
        run_curves(run, "tset")
    empty = run.model_copy(update={"runs_dir": tmp_path, "run_name": "empty"})
    with pytest.raises(FileNotFoundError, match="no features stage"):
        run_curves(empty, "test")
    # A run trained before the weights were kept: its phases hold none.
    (empty.run_dir / "features").mkdir(parents=True)
    shutil.copy(run.run_dir / "features" / "stage.json", empty.run_dir / "features")
    (empty.run_dir / "train_phase_1").mkdir()
    with pytest.raises(FileNotFoundError, match="no phase kept its validated weights"):
        run_curves(empty, "test")


def test_matched_row_keeps_both_limits():
    rows = [
        {"cutoff": 0.5, "recall": 0.9, "fah": 0.0, "false_accept_rate": 0.10},
        {"cutoff": 0.6, "recall": 0.8, "fah": 2.0, "false_accept_rate": 0.0},
        {"cutoff": 0.7, "recall": 0.7, "fah": 1.0, "false_accept_rate": 0.05},
        {"cutoff": 0.8, "recall": 0.7, "fah": 0.0, "false_accept_rate": 0.0},
    ]
    assert matched_row(rows, 1.0, 0.05)["cutoff"] == 0.8  # equal recall: fewer activations
    assert matched_row(rows, 2.0, 0.05)["cutoff"] == 0.6
    assert matched_row(rows, 1.0, 0.2)["cutoff"] == 0.5
    assert matched_row(rows[:2], 1.0, 0.05) is None


def test_the_bench_prints_a_row_per_validated_step(trained, capsys, tmp_path):
    from bench.learning_curves import main

    assert main(["--config", str(trained[0])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("tiny: learning curve") and "test's recall there" in out[0]
    assert [line.split()[0] for line in out[1:4]] == ["1:20", "1:40", "2:20"]
    assert json.loads(out[-1])["curves"].keys() == {"train_phase_1", "train_phase_2"}
    missing = write_tiny_config(tmp_path, run_name="never_trained")
    assert main(["--config", str(missing)]) == 1
    assert "no features stage" in capsys.readouterr().err


@pytest.fixture
def run(trained):
    return trained[1]
