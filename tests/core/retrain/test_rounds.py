"""Which phase's sampling the fine-tune rehearses."""

import json

from mww_core.config import load_config
from mww_core.retrain.inbox import InboxScan
from mww_core.retrain.rounds import fine_tune_config, shipped_phase
from tests.conftest import write_tiny_config


def _record(run_dir, phase: int, carried: bool) -> None:
    folder = run_dir / f"train_phase_{phase}"
    folder.mkdir(parents=True)
    best = {"recall": 1.0, "carried_over": True} if carried else {"recall": 1.0}
    record = {"name": folder.name, "fingerprint": "x", "metrics": {"best": best}}
    (folder / "stage.json").write_text(json.dumps(record))


def test_shipped_phase_follows_carried_over_weights(tmp_path):
    config = load_config(write_tiny_config(tmp_path))
    _record(config.run_dir, 1, carried=False)
    _record(config.run_dir, 2, carried=True)
    assert shipped_phase(config) == 0  # phase 2 kept phase 1's weights
    (config.run_dir / "train_phase_2" / "stage.json").unlink()
    (config.run_dir / "train_phase_2").rmdir()
    _record(config.run_dir, 2, carried=False)
    assert shipped_phase(config) == 1


def test_the_fine_tune_trains_once_whatever_the_phase_restarts(tmp_path):
    config = load_config(write_tiny_config(tmp_path))
    phases = [p.model_copy(update={"restarts": 3}) for p in config.training.phases]
    config = config.model_copy(
        update={"training": config.training.model_copy(update={"phases": phases})}
    )
    _record(config.run_dir, 1, carried=False)
    _record(config.run_dir, 2, carried=False)
    scan = InboxScan("inbox", "f", {"a.wav": "0"}, 1, round=1, round_dir="r", seconds=1.0)
    tuned = fine_tune_config(config, scan)
    tune = tuned.training.phases[-1]
    assert len(tuned.training.phases) == len(phases) + 1
    assert (tune.restarts, tune.steps) == (1, config.retrain.fine_tune.steps)
    assert tune.total_steps == config.retrain.fine_tune.steps
    # What the fine-tune rehearses is the shipped phase's sampling, as before.
    assert tune.class_weights == phases[-1].class_weights
