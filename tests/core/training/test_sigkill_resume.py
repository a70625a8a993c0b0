"""Acceptance 1: a training process killed with SIGKILL resumes from its last checkpoint and
ends with the weights of an uninterrupted run, training from shards on the streaming path."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mww_core.store import slice_windows, write_windows

STEPS = 60
ROOT = Path(__file__).resolve().parents[3]

# The child trains one tiny phase from the shards in argv[2] (its 48 negatives stream through
# a pool of 16) and prints every finished step; it sleeps a little per step so the parent can
# kill it mid-phase. At the end it saves the weights it ended with.
CHILD = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_trainer import _data
from mww_core.config import FullConfig
from mww_core.model import save_weights
from mww_core.training.trainer import StreamedTrainingData, Trainer

config = FullConfig.model_validate({{"training": {{
    "batch_size": 16, "eval_step_interval": 30, "checkpoint_interval": 5,
    "phases": [{{"steps": {STEPS}, "learning_rate": 0.003}},
               {{"steps": 5, "learning_rate": 0.001}}],
}}}})
_, validation = _data()
shards = sorted(Path(sys.argv[2]).glob("*.parquet"))
data = StreamedTrainingData(shards, 149, 7, pool_windows=16)
assert data.streamed == (1,), data.describe()

def report(what, step, total):
    print(step, flush=True)
    time.sleep(0.05 if len(sys.argv) < 4 else 0)  # the uninterrupted run need not wait

trainer = Trainer(config, Path(sys.argv[1]), report)
trainer.train_phase(0, data, validation)
save_weights(trainer.model, Path(sys.argv[1]) / "final.npz")
print("done", flush=True)
"""


def _shards(folder: Path) -> Path:
    """test_trainer's 64 windows as two shards of row groups of 8."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_trainer import _data

    windows = _data()[0].windows
    folder.mkdir()
    write_windows(folder / "a.parquet", slice_windows(windows, 0, 40), row_group_rows=8)
    write_windows(folder / "b.parquet", slice_windows(windows, 40, 64), row_group_rows=8)
    return folder


def _start(stage_dir: Path, shards: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(stage_dir), str(shards), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _steps(lines: list[str]) -> list[int]:
    return [int(line) for line in lines if line.strip().isdigit()]


@pytest.mark.slow
def test_sigkill_mid_phase_resumes_from_last_checkpoint(tmp_path):
    shards = _shards(tmp_path / "store")
    stage_dir = tmp_path / "phase"
    child = _start(stage_dir, shards)
    seen = []
    deadline = time.monotonic() + 300
    try:
        for line in child.stdout:
            seen.append(line)
            if _steps(seen) and _steps(seen)[-1] >= 22:  # checkpoints at 5..20 exist by now
                break
            assert time.monotonic() < deadline, "child never reached step 22"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL
    killed_at = _steps(seen)[-1]
    assert killed_at < STEPS, "the phase finished before the kill"
    latest = tf.train.latest_checkpoint(str(stage_dir / "checkpoints"))
    checkpoint_step = int(latest.rsplit("-", 1)[1])
    assert 5 <= checkpoint_step <= killed_at

    again = _start(stage_dir, shards)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    resumed = _steps(out.splitlines())
    assert resumed[0] == checkpoint_step + 1  # continued from the checkpoint, not step 0
    assert resumed == list(range(checkpoint_step + 1, STEPS + 1))
    assert out.strip().endswith("done")
    final = tf.train.latest_checkpoint(str(stage_dir / "checkpoints"))
    assert final.endswith(f"-{STEPS}")

    # The weights equal those of the same phase run without a kill.
    reference = _start(tmp_path / "uninterrupted", shards, "no-sleep")
    out, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, out
    with (
        np.load(stage_dir / "final.npz") as got,
        np.load(tmp_path / "uninterrupted" / "final.npz") as want,
    ):
        assert got.files == want.files
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name])
