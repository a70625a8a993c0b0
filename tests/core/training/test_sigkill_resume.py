"""Acceptance 1: a training process killed with SIGKILL resumes from its last checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

STEPS = 60
ROOT = Path(__file__).resolve().parents[3]

# The child trains one tiny phase and prints every finished step; it sleeps a little per step
# so the parent can kill it mid-phase.
CHILD = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_trainer import _data
from mww_core.config import FullConfig
from mww_core.training.trainer import Trainer

config = FullConfig.model_validate({{"training": {{
    "batch_size": 16, "eval_step_interval": 30, "checkpoint_interval": 5,
    "phases": [{{"steps": {STEPS}, "learning_rate": 0.003}},
               {{"steps": 5, "learning_rate": 0.001}}],
}}}})
data, validation = _data()

def report(what, step, total):
    print(step, flush=True)
    time.sleep(0.05)

Trainer(config, Path(sys.argv[1]), report).train_phase(0, data, validation)
print("done", flush=True)
"""


def _start(stage_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(stage_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _steps(lines: list[str]) -> list[int]:
    return [int(line) for line in lines if line.strip().isdigit()]


@pytest.mark.slow
def test_sigkill_mid_phase_resumes_from_last_checkpoint(tmp_path):
    stage_dir = tmp_path / "phase"
    child = _start(stage_dir)
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

    again = _start(stage_dir)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    resumed = _steps(out.splitlines())
    assert resumed[0] == checkpoint_step + 1  # continued from the checkpoint, not step 0
    assert resumed == list(range(checkpoint_step + 1, STEPS + 1))
    assert out.strip().endswith("done")
    final = tf.train.latest_checkpoint(str(stage_dir / "checkpoints"))
    assert final.endswith(f"-{STEPS}")
