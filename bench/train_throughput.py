"""Training steps per second for MixedNet at batch 128 and the share of step time spent on data.

Usage: ``python -m bench.train_throughput [--steps 150] [--warmup 10] [--features DIR]``

Runs the Trainer's own pieces -- seeded ``TrainingData`` batches (prefetched in a thread, as in
training) and its compiled ``train_step`` -- on the demo run's training features, once with
prefetching and once without, and prints steps/s and the data-wait share (target: under 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mww_core.config import load_config  # noqa: E402
from mww_core.store import read_windows  # noqa: E402
from mww_core.training.batches import TrainingData  # noqa: E402
from mww_core.training.trainer import Trainer  # noqa: E402


def _shards(features_dir: Path) -> list[Path]:
    record = features_dir / "stage.json"
    if not record.exists():
        raise SystemExit(
            f"{record} not found: run `make demo` first (or pass --features <run>/features)"
        )
    outputs = json.loads(record.read_text())["outputs"]["train_windows"]
    # Stage records name shards relative to the project folder the run was made in
    # (<project>/runs/<run>/features), which need not be the current folder.
    project = features_dir.resolve().parents[2]
    return [p if p.exists() else project / p for p in (Path(s) for s, _ in outputs.values())]


def measure(trainer: Trainer, data: TrainingData, steps: int, warmup: int) -> dict:
    """Steps/s and seconds waiting for batches vs in the training step."""
    phase = trainer.config.training.phases[0]
    trainer._prepare_optimizer(phase.learning_rate)
    batches = trainer._batches(data, 0, phase, 0)
    waited = stepped = 0.0
    try:
        for step in range(warmup + steps):
            t0 = time.perf_counter()
            x, y, w = trainer._next_batch(batches, 0, step)
            t1 = time.perf_counter()
            trainer.train_step(x, y, w)
            t2 = time.perf_counter()
            if step >= warmup:
                waited += t1 - t0
                stepped += t2 - t1
    finally:
        if hasattr(batches, "close"):
            batches.close()
    return {
        "steps_per_s": steps / (waited + stepped),
        "ms_per_step": 1000 * (waited + stepped) / steps,
        "data_wait_share": waited / (waited + stepped),
    }


def main() -> None:
    """Print the figures for prefetching on (the default) and off."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--features", type=Path, default=Path("runs/demo/features"))
    args = parser.parse_args()
    windows = read_windows(_shards(args.features))
    print(f"{len(windows)} training windows from {args.features}; MixedNet (hey_jarvis shape)")
    for depth in (4, 0):
        config = load_config(
            "configs/demo.yaml",
            performance={"prefetch_batches": depth},
            training={"batch_size": 128, "phases": [{"steps": 10**6, "learning_rate": 1e-3}] * 2},
        )
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(config, Path(tmp))
            data = TrainingData(windows, trainer.input_frames, config.training.seed)
            figures = measure(trainer, data, args.steps, args.warmup)
        label = f"prefetch {depth}" if depth else "no prefetch"
        print(
            f"{label:>12}: {figures['steps_per_s']:.1f} steps/s "
            f"({figures['ms_per_step']:.1f} ms/step), batch 128, data wait "
            f"{100 * figures['data_wait_share']:.1f}% of step time (target < 10%)"
        )


if __name__ == "__main__":
    main()
