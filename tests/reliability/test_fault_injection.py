"""SIGKILL the pipeline at random points across its stages; every re-run finishes the same model."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("MWW_FAULT_KILLS", "20"))
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


def _start(config: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


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
    proc = _start(config)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0 and b"PIPELINE DONE" in out


def test_sigkill_at_random_points_then_same_model(tmp_path):
    rng = random.Random(1234)
    shared_data = tmp_path / "data"
    reference = write_tiny_config(tmp_path / "ref", **{"data.data_dir": str(shared_data)})
    _run_to_end(reference)  # builds the data set once, then an uninterrupted run
    expected = (tmp_path / "ref/runs/tiny/export/hey_jarvis.tflite").read_bytes()

    config = write_tiny_config(tmp_path / "crash", **{"data.data_dir": str(shared_data)})
    run_dir = tmp_path / "crash/runs/tiny"
    durations = {}
    for stage in STAGES:
        record = json.loads((tmp_path / "ref/runs/tiny" / stage / "stage.json").read_text())
        durations[stage] = max(record["finished"] - record["started"], 0.05)

    killed_in: list[str] = []
    resumes: list[tuple[int, str]] = []  # (checkpoint step before the run, what the run said)
    rounds = attempts = 0
    resume_next: str | None = None
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
        if resume_next is not None:
            target, resume_next = resume_next, None
        elif state == "done" or STAGES.index(target) < STAGES.index(state):
            for stage in STAGES[STAGES.index(target) :]:
                shutil.rmtree(run_dir / stage, ignore_errors=True)
        before = _checkpoint_steps(run_dir)
        started = time.time()
        proc = _start(config)
        marker = run_dir / target / "in_progress.json"  # rewritten when the stage starts
        while proc.poll() is None and not _written_since(marker, started):
            time.sleep(0.01)
        # A random point inside the target stage (by the uninterrupted run's timing).
        time.sleep(rng.uniform(0.0, durations[target]))
        if proc.poll() is not None:
            assert proc.returncode == 0, "a re-run after a kill failed"
            continue
        stage = _stage_in_progress(run_dir)
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0].decode(errors="replace")
        killed_in.append(stage)
        if before.get(stage):
            resumes.append((before[stage], output))
        elif _checkpoint_steps(run_dir).get(stage):
            resume_next = stage
    _run_to_end(config)
    # A phase killed after a checkpoint continued from that checkpoint, never from step 0.
    for step, output in resumes:
        if "resuming phase" in output:
            assert f"at step {step}" in output, output[-500:]
        assert "at step 0" not in output

    assert set(killed_in) >= set(STAGES), killed_in  # every stage was killed at least once
    got = (run_dir / "export/hey_jarvis.tflite").read_bytes()
    assert got == expected, "the resumed run exported a different model"
    history = json.loads((run_dir / "train_phase_1/stage.json").read_text())
    assert history["name"] == "train"
    print("rounds:", rounds, "killed in:", killed_in, "resumed at:", [s for s, _ in resumes])
