"""Reading the training set back into batches vs the rate training consumes them.

Usage: ``python -m bench.read_throughput [--rows 50000] [--steps 60] [--repeat 3]``

Writes a store of ``--rows`` windows (the demo run's real features, repeated; random ones if
there is no demo run) with the features stage's writer, streams it through ``iter_batches``
(batch 128, shuffled, float features cropped to the model's input, class weights: the numpy
batches a training step takes) and through its ``tf.data`` wrapper ``windows_dataset``, and
times the trainer's compiled training step of the default model on the same batches. The read
pass runs ``--repeat`` times (after one that warms the page cache); the ratio uses the median.
Both sides use every core, so run it on a quiet machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from mww_core.config import FullConfig  # noqa: E402
from mww_core.store import (  # noqa: E402
    Windows,
    iter_batches,
    read_windows,
    windows_dataset,
    write_windows,
)

DEMO_SHARDS = Path("runs/demo/feature_shards")


def source_windows() -> Windows:
    """Real demo features when available, else random uint16 windows."""
    shards = sorted(DEMO_SHARDS.glob("*.parquet"))
    if shards:
        return read_windows(shards)
    rng = np.random.default_rng(0)
    n = 2048
    label = (np.arange(n) % 4 == 0).astype(np.int8)
    return Windows(
        features=rng.integers(0, 600, (n, 160, 40)).astype(np.uint16),
        label=label,
        weight_class=np.where(label == 1, "positive", "negative").astype(object),
        source=np.full(n, "random", dtype=object),
        offset_s=np.zeros(n, np.float32),
        seed=np.arange(n, dtype=np.int64),
    )


def write_store(folder: Path, rows: int, shard_rows: int = 2048) -> list[Path]:
    """Shards of ``rows`` windows cycled from ``source_windows``."""
    base = source_windows()
    paths = []
    for k, start in enumerate(range(0, rows, shard_rows)):
        idx = np.arange(start, min(rows, start + shard_rows)) % len(base)
        part = Windows(
            base.features[idx],
            base.label[idx],
            base.weight_class[idx],
            base.source[idx],
            base.offset_s[idx],
            base.seed[idx],
        )
        paths.append(folder / f"shard-{k:05d}.parquet")
        write_windows(paths[-1], part, row_group_rows=FullConfig().features.row_group_rows)
    return paths


def read_rate(
    paths: list[Path], batch: int, input_frames: int, weights: dict, tf_data: bool
) -> float:
    """Batches per second of one full shuffled pass (``windows_dataset`` when ``tf_data``)."""
    if tf_data:
        batches = windows_dataset(paths, batch, weights, input_frames=input_frames, seed=0)
    else:
        batches = iter_batches(paths, batch, weights, input_frames=input_frames, seed=0)
    start = time.perf_counter()
    count = sum(1 for _ in batches)
    return count / (time.perf_counter() - start)


def train_rate(config: FullConfig, paths: list[Path], steps: int) -> float:
    """Training steps per second of the trainer's compiled step on streamed batches."""
    import keras

    from mww_core.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp))
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        optimizer.build(trainer.model.trainable_variables)
        step = trainer._compile_step(optimizer)  # the exact step train_phase runs
        weights = config.training.phases[0].class_weights.model_dump()
        reader = iter_batches(paths, config.training.batch_size, weights, trainer.input_frames)
        batches = [batch for _, batch in zip(range(steps + 5), reader, strict=False)]
        for x, y, w in batches[:5]:  # trace and warm up
            step(x, y, w)
        start = time.perf_counter()
        for x, y, w in batches[5:]:
            step(x, y, w)
        return len(batches[5:]) / (time.perf_counter() - start)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    """Print read and train rates and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50000, help="windows in the store")
    parser.add_argument("--steps", type=int, default=60, help="training steps to time")
    parser.add_argument("--repeat", type=int, default=3, help="timed read passes")
    args = parser.parse_args(argv)
    config = FullConfig()
    batch = config.training.batch_size
    with tempfile.TemporaryDirectory(prefix="mww-read-") as tmp:
        paths = write_store(Path(tmp), args.rows)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"store: {args.rows} windows in {len(paths)} shards, {size:.0f} MiB (zstd)")
        from mww_core.model.mixednet import receptive_field

        weights = config.training.phases[0].class_weights.model_dump()
        frames = receptive_field(config.model)
        print(f"  load average before: {_load()}")
        read_rate(paths, batch, frames, weights, tf_data=False)  # warm the page cache
        passes = [
            read_rate(paths, batch, frames, weights, tf_data=False)
            for _ in range(max(1, args.repeat))
        ]
        reads = float(np.median(passes))
        reads_tf = read_rate(paths, batch, frames, weights, tf_data=True)
        trains = train_rate(config, paths, args.steps)
        print(f"  load average after : {_load()}")
    print(
        f"  read : {reads:8.1f} batches/s of {batch} via iter_batches ({reads * batch:,.0f} rows/s;"
        f" median of {' '.join(f'{r:.0f}' for r in passes)})"
    )
    print(f"         {reads_tf:8.1f} batches/s through tf.data (windows_dataset)")
    print(f"  train: {trains:8.1f} steps/s of {batch} (default model, compiled step)")
    print(f"  read is {reads / trains:.1f}x faster than training consumes (target >= 20x)")


if __name__ == "__main__":
    main()
