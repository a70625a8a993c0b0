"""Peak memory and speed of training from stores of 100k, 300k and 1M windows.

Usage: ``python -m bench.train_memory [--sizes 100000 300000 1000000] [--steps 300]
[--dir /tmp | --store DIR]``

Writes one synthetic store of the largest size with the store's own writer (shards of 2,048
windows of 160 frames in row groups of 512, one shard in 20 positive) from spectrogram-like
windows that compress as the demo's real ones do (about 4.2 KB a window on disk, zstd ratio
about 3, 59% zeros), and no audio. Each smaller size is the first shards of it. Then, each in a
fresh process (so peak RSS is that size's own), it trains the default MixedNet at batch 128 for
``--steps`` steps on the streaming path (``StreamedTrainingData``, as the train stage does) at
every size, and once with every window in memory (``TrainingData``, the old path) at the
smallest size. Printed per run: peak RSS, steps/s and the share of step time spent waiting for
a batch (after ``--warmup`` steps), and the acceptance ratios. The store is written in a new
folder under ``--dir`` and deleted at the end; ``--store DIR`` writes it there instead (only
the shards missing), and keeps it for the next run. Training and batch building use every core:
the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from mww_core.store import Windows, write_windows_parts  # noqa: E402

SHARD_ROWS, ROW_GROUP_ROWS, FRAMES = 2048, 512, 160
POSITIVE_EVERY = 20  # one shard in 20 holds positives (5% of the windows)
BYTES_PER_WINDOW = 4300  # on disk, measured on the synthetic windows (real ones: 4.0-4.5 KB)


def _smooth(rng: np.random.Generator, rows: int, rho: float, taps: int = 10) -> np.ndarray:
    """Gaussian noise ``[rows, frames, 40]`` smoothed along time (and a little across bands)."""
    z = rng.standard_normal((rows, FRAMES + taps, 40), dtype=np.float32)
    weights = rho ** np.arange(taps, dtype=np.float32)
    weights /= np.sqrt((weights**2).sum())
    out = weights[0] * z[:, taps:]
    for k in range(1, taps):
        out += weights[k] * z[:, taps - k : FRAMES + taps - k]
    out[:, :, 1:] += 0.6 * out[:, :, :-1]  # neighbouring bands move together
    return out


def synthetic_features(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Spectrogram-like raw frontend values ``[rows, 160, 40]`` (uint16, 0-665).

    Like the demo's features: about 59% zeros in blobs that follow loud frames and bands, the
    rest around 360 with smooth variation in time, a per-window spectral tilt.
    """
    loudness = (
        0.4 * _smooth(rng, rows, 0.85)
        + 1.5 * _smooth(rng, rows, 0.95)[:, :, :1]  # loud frames
        + 0.4 * rng.standard_normal((rows, 1, 40), dtype=np.float32)  # loud bands
    )
    level = _smooth(rng, rows, 0.9)
    tilt = rng.uniform(-80, 80, (rows, 1, 1)).astype(np.float32)
    tilt = tilt * np.linspace(-1, 1, 40, dtype=np.float32)
    values = np.where(loudness > 0.23 * loudness.std(), 360 + 70 * level + tilt, 0)
    return np.clip(np.rint(values), 0, 665).astype(np.uint16)


def _part(rng: np.random.Generator, rows: int, positive: bool, name: str) -> Windows:
    kind = "positive" if positive else "negative"
    return Windows(
        features=synthetic_features(rng, rows),
        label=np.full(rows, int(positive), np.int8),
        weight_class=np.full(rows, kind, dtype=object),
        source=np.full(rows, name, dtype=object),
        offset_s=np.zeros(rows, np.float32),
        seed=np.full(rows, -1, np.int64),
    )


def write_store(folder: Path, windows: int, seed: int = 0) -> None:
    """Shards of synthetic windows, written with the store's writer; prints progress.

    Shards already there are kept (each is written atomically, so one that exists is whole).
    """
    shards = -(-windows // SHARD_ROWS)
    started = time.time()
    for k in range(shards):
        path = folder / f"shard-{k:05d}.parquet"
        if path.exists():
            continue
        rng = np.random.default_rng([seed, k])
        rows = min(SHARD_ROWS, windows - k * SHARD_ROWS)
        positive = k % POSITIVE_EVERY == 0
        name = f"synthetic/{'positive' if positive else 'negative'}/{k}"
        parts = (
            _part(rng, min(ROW_GROUP_ROWS, rows - a), positive, name)
            for a in range(0, rows, ROW_GROUP_ROWS)
        )
        write_windows_parts(path, parts, FRAMES)
        if (k + 1) % max(1, shards // 10) == 0:
            print(f"  wrote {k + 1}/{shards} shards ({time.time() - started:.0f} s)", flush=True)


def shards_for(folder: Path, windows: int) -> list[Path]:
    """The first shards of the store, holding ``windows`` windows."""
    return [folder / f"shard-{k:05d}.parquet" for k in range(-(-windows // SHARD_ROWS))]


def child(mode: str, store: Path, windows: int, steps: int, warmup: int) -> None:
    """Train in this process and print one JSON line of figures."""
    from bench.train_throughput import measure
    from mww_core.config import FullConfig
    from mww_core.pipeline.train_stage import streamed_data
    from mww_core.store import read_windows
    from mww_core.training.batches import TrainingData
    from mww_core.training.trainer import Trainer

    config = FullConfig.model_validate(
        {"training": {"phases": [{"steps": 10**6, "learning_rate": 1e-3}] * 2}}
    )
    paths = shards_for(store, windows)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp))
        started = time.perf_counter()
        if mode == "memory":
            data = TrainingData(read_windows(paths), trainer.input_frames, config.training.seed)
        else:
            data = streamed_data(config, paths, trainer.input_frames)
        ready_s = time.perf_counter() - started
        figures = measure(trainer, data, steps, warmup)
        if mode != "memory":
            data.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**figures, "peak_rss_mib": peak_kib / 1024, "ready_s": ready_s}))


def _run_child(mode: str, store: Path, windows: int, args) -> dict:
    command = [
        *(sys.executable, "-m", "bench.train_memory", "--child", mode, "--store", str(store)),
        *("--windows", str(windows), "--steps", str(args.steps), "--warmup", str(args.warmup)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run at {windows:,} windows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(label: str, windows: int, f: dict) -> str:
    return (
        f"{label:>9} {windows:>9,}: peak RSS {f['peak_rss_mib']:7.0f} MiB, "
        f"{f['steps_per_s']:5.1f} steps/s ({f['ms_per_step']:.1f} ms/step), data wait "
        f"{100 * f['data_wait_share']:4.1f}% of step time, ready in {f['ready_s']:.1f} s"
    )


def main() -> None:
    """Build the store, run every size in its own process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--store", type=Path, help="write (or reuse) the store here; kept")
    parser.add_argument("--write-only", action="store_true", help="write the store, train nothing")
    parser.add_argument("--child", choices=["memory", "streamed"], help=argparse.SUPPRESS)
    parser.add_argument("--windows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.store, args.windows, args.steps, args.warmup)
        return
    sizes = sorted(args.sizes)
    need = sizes[-1] * BYTES_PER_WINDOW
    where = args.store or args.dir
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if free < 1.5 * need:
        raise SystemExit(
            f"{where}: {free / 1e9:.1f} GB free, the store needs about {need / 1e9:.1f} GB; "
            "pass --dir on a bigger disk or smaller --sizes"
        )
    store = args.store or Path(tempfile.mkdtemp(prefix="mww-train-memory-", dir=args.dir))
    try:
        print(f"writing {sizes[-1]:,} synthetic windows to {store} (about {need / 1e9:.1f} GB)")
        write_store(store, sizes[-1])
        on_disk = sum(p.stat().st_size for p in store.glob("*.parquet"))
        print(f"  {on_disk / 1e9:.2f} GB, {on_disk / sizes[-1]:,.0f} bytes a window")
        if args.write_only:
            return
        print(f"load average before training: {os.getloadavg()}")
        results = {("memory", sizes[0]): _run_child("memory", store, sizes[0], args)}
        print(_line("in memory", sizes[0], results[("memory", sizes[0])]), flush=True)
        for size in sizes:
            results[("streamed", size)] = _run_child("streamed", store, size, args)
            print(_line("streamed", size, results[("streamed", size)]), flush=True)
        print(f"load average after training: {os.getloadavg()}")
        small, large = results[("streamed", sizes[0])], results[("streamed", sizes[-1])]
        memory = results[("memory", sizes[0])]
        rss = large["peak_rss_mib"] / small["peak_rss_mib"]
        speed = large["steps_per_s"] / memory["steps_per_s"]
        wait = max(results[("streamed", s)]["data_wait_share"] for s in sizes)
        print(f"peak RSS streamed at {sizes[-1]:,} / at {sizes[0]:,}: {rss:.2f}x (target <= 1.2x)")
        print(f"steps/s streamed at {sizes[-1]:,} / in memory at {sizes[0]:,}: {speed:.2f}x "
              "(target >= 0.9x)")  # fmt: skip
        print(f"largest data wait (streamed): {100 * wait:.1f}% of step time (target < 5%)")
    finally:
        if args.store:
            print(f"kept {store}")
        else:
            shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
