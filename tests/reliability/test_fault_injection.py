"""SIGKILL the pipeline at random points across its stages; every re-run finishes the same model."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("MWW_FAULT_KILLS", "12"))
STAGES = ("features", "train_phase_1", "mine_hard_negatives", "train_phase_2", "evaluate", "export")

# The stages in order, without Prefect (the flow runs the same functions inside tasks).
RUNNER = """
import logging, sys
from mww_core import pipeline
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from mww_core.config import load_config
from mww_core.lock import run_lock
cfg = load_config(sys.argv[1])
with run_lock(cfg.run_dir):
    data = pipeline.prepare_data(cfg)
    feats = pipeline.run_features(cfg, data)
    phase = pipeline.run_train_phase(cfg, 0, feats)
    mined = pipeline.run_mining(cfg, feats, phase)
    phase = pipeline.run_train_phase(cfg, 1, feats, phase, mined)
    evaluated = pipeline.run_evaluation(cfg, feats, phase)
    pipeline.run_export(cfg, evaluated)
print("PIPELINE DONE", flush=True)
"""


class Run:
    """The pipeline in a child process; its output lines are collected as they come."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, text: str) -> str | None:
        """The first output line containing ``text``, or None when the run ends without it."""
        while True:
            found = next((line for line in self.lines if text in line), None)
            if found is not None or not self.running():
                return found
            time.sleep(0.01)

    def kill(self) -> str:
        os.killpg(self.proc.pid, signal.SIGKILL)
        return self.finish()

    def finish(self, timeout: float = 900) -> str:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return "".join(self.lines)


def _stage_in_progress(run_dir: Path) -> str:
    for stage in STAGES:
        if not (run_dir / stage / "stage.json").exists():
            return stage
    return "done"


def _checkpoint_steps(run_dir: Path) -> dict[str, int]:
    steps = {}
    for phase in ("train_phase_1", "train_phase_2"):
        index = run_dir / phase / "checkpoints" / "checkpoint"
        if index.exists():
            line = index.read_text().splitlines()[0]
            steps[phase] = int(line.rsplit("-", 1)[1].rstrip('"'))
    return steps


def _written_since(path: Path, when: float) -> bool:
    try:
        return path.stat().st_mtime >= when - 0.01
    except FileNotFoundError:
        return False


def _run_to_end(config: Path) -> None:
    run = Run(config)
    out = run.finish()
    assert run.proc.returncode == 0 and "PIPELINE DONE" in out, out[-2000:]


def test_sigkill_at_random_points_then_same_model(tmp_path):
    rng = random.Random(1234)
    shared_data = tmp_path / "data"
    reference = write_tiny_config(tmp_path / "ref", **{"data.data_dir": str(shared_data)})
    _run_to_end(reference)  # an uninterrupted run on the shared data set (a copy of the tiny one)
    expected = (tmp_path / "ref/runs/tiny/export/hey_jarvis.tflite").read_bytes()

    config = write_tiny_config(tmp_path / "crash", **{"data.data_dir": str(shared_data)})
    run_dir = tmp_path / "crash/runs/tiny"
    durations = {}
    for stage in STAGES:
        record = json.loads((tmp_path / "ref/runs/tiny" / stage / "stage.json").read_text())
        durations[stage] = max(record["finished"] - record["started"], 0.05)

    killed_in: list[str] = []
    resumed: list[tuple[str, int]] = []  # (phase, checkpoint step it resumed from)
    rounds = attempts = 0
    resume_next: str | None = None
    aimed_after_checkpoint: set[str] = set()
    while len(killed_in) < KILLS:
        attempts += 1
        assert attempts <= 4 * KILLS, f"could not place {KILLS} kills: {killed_in}"
        state = _stage_in_progress(run_dir)
        if state == "done":  # a finished pass must equal the uninterrupted run
            assert (run_dir / "export/hey_jarvis.tflite").read_bytes() == expected
            rounds += 1
        # Aim at the stage killed least so far; reopen the run from it when it already finished.
        # After a kill inside a training phase that had checkpointed, resume that phase first.
        target = min(STAGES, key=lambda st: (killed_in.count(st), rng.random()))
        forced = resume_next is not None
        if forced:
            target, resume_next = resume_next, None
        elif state == "done" or STAGES.index(target) < STAGES.index(state):
            for stage in STAGES[STAGES.index(target) :]:
                shutil.rmtree(run_dir / stage, ignore_errors=True)
            if target == "features":  # else the stage reuses every shard and ends at once
                shutil.rmtree(run_dir / "feature_shards", ignore_errors=True)
        checkpoint = _checkpoint_steps(run_dir).get(target)
        started = time.time()
        run = Run(config)
        marker = run_dir / target / "in_progress.json"  # rewritten when the stage starts
        while run.running() and not _written_since(marker, started):
            time.sleep(0.01)
        if checkpoint:  # the phase must continue from its checkpoint, never from step 0
            line = run.wait_for("resuming phase")
            assert line is not None, f"{target} had a checkpoint at step {checkpoint}: " + "".join(
                run.lines[-20:]
            )
            assert line.strip().endswith(f"at step {checkpoint}"), line
            resumed.append((target, checkpoint))
        after_checkpoint = target.startswith("train_phase") and not checkpoint
        if after_checkpoint and (target not in aimed_after_checkpoint or rng.random() < 0.5):
            # Right after the phase's first checkpoint (its steps take well under a second, so
            # a random point rarely lands between a checkpoint and the end of the phase).
            aimed_after_checkpoint.add(target)
            index = run_dir / target / "checkpoints" / "checkpoint"
            while run.running() and not _written_since(index, started):
                time.sleep(0.005)
        else:  # a random point inside the target stage (by the uninterrupted run's timing)
            time.sleep(rng.uniform(0.0, durations[target]))
        if not run.running():
            assert run.proc.returncode == 0, "a re-run after a kill failed"
            continue
        stage = _stage_in_progress(run_dir)
        run.kill()
        killed_in.append(stage)
        # Resume a killed phase once; a resumed run killed again is not forced back to it (its
        # last steps and validation may outlast every random kill point: no progress).
        if not forced and stage.startswith("train_phase") and _checkpoint_steps(run_dir).get(stage):
            resume_next = stage
    _run_to_end(config)

    assert set(killed_in) >= set(STAGES), killed_in  # every stage was killed at least once
    got = (run_dir / "export/hey_jarvis.tflite").read_bytes()
    assert got == expected, "the resumed run exported a different model"
    history = json.loads((run_dir / "train_phase_1/stage.json").read_text())
    assert history["name"].startswith("train_phase_")
    assert resumed, f"no kill landed in a phase after its first checkpoint: {killed_in}"
    print("rounds:", rounds, "killed in:", killed_in, "resumed:", resumed)
