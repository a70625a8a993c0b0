"""Features-stage throughput (1 vs N workers) and peak memory as the clip count grows.

Usage: ``python -m bench.features [--clips 4500] [--workers 2] [--memory-clips 10000 100000]``

Generates 1.5 s clips (noise bursts and tones), room impulse responses and noise in a temporary
folder, then times the train-window part of the features stage (load, all eight augmentations,
frontend, Parquet write) with one worker and with ``--workers``, and samples the resident
memory of the parent plus its workers while building ``--memory-clips`` windows. CPU seconds of
the parent and of the workers show where the work ran: the one-worker baseline keeps one core
busy (one worker process, one math thread; the parent only plans and writes). The default clip
count is about the demo's train windows (4,336); each run pays ~1.4 s of worker start-up once,
so smaller runs show a smaller speed-up (1.6x at 1,500 clips on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mww_core.audio import write_wav
from mww_core.config import FullConfig
from mww_core.features import build_train_windows, worker_pool

CLIP_S = 1.5


def make_clips(root: Path, count: int, seed: int = 0) -> None:
    """``count`` 1.5 s clips (half positive, half negative) plus rirs/ and noise/ folders."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_S * 16000)) / 16000
    for i in range(count):
        kind = "positive" if i % 2 == 0 else "negative"
        envelope = np.exp(-(((t - rng.uniform(0.3, 1.2)) / 0.25) ** 2))
        tone = np.sin(2 * np.pi * rng.uniform(150, 900) * t) * envelope
        audio = 0.3 * tone + 0.02 * rng.standard_normal(len(t))
        write_wav(root / "train" / kind / f"clip_{i:06d}.wav", audio.astype(np.float32))
    for i in range(4):
        rir = np.exp(-np.arange(4000) / rng.uniform(300, 1500)) * rng.standard_normal(4000)
        write_wav(root / "rirs" / f"rir_{i}.wav", (rir / np.abs(rir).max()).astype(np.float32))
        noise = 0.2 * rng.standard_normal(16000 * 3)
        write_wav(root / "noise" / f"noise_{i}.wav", noise.astype(np.float32))


def bench_config(root: Path, workers: int, copies: int = 1, augment: bool = True) -> FullConfig:
    """Default features settings (160-frame windows) over the generated folder."""
    return FullConfig.model_validate(
        {
            "data": {"data_dir": str(root), "build_demo": False},
            "augmentation": {
                "enabled": augment,
                "positive_copies": copies,
                "negative_copies": copies,
            },
            "features": {"num_workers": workers},
        }
    )


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_children(kid)]
    return found


class PeakMemory:
    """Samples the RSS of this process plus all its descendants; keeps the peak of the sum."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = sum(_rss_bytes(p) for p in [me, *_children(me)])
            self.peak = max(self.peak, total)
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: the pool's workers
    return usage.ru_utime + usage.ru_stime


def timed_build(config: FullConfig, out: Path) -> tuple[float, int, int, float, float]:
    """Seconds, windows written, peak RSS, and CPU seconds of the parent and of the workers."""
    shutil.rmtree(out, ignore_errors=True)
    with PeakMemory() as memory:
        start, parent, workers = time.perf_counter(), time.process_time(), _children_cpu_s()
        shards, errors, _ = build_train_windows(config, out)
        seconds = time.perf_counter() - start
        parent, workers = time.process_time() - parent, _children_cpu_s() - workers
    if errors:
        raise RuntimeError(f"bench audio unreadable: {errors}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds, sum(n for _, n in shards.values()), memory.peak, parent, workers


def _report(label: str, rows: int, seconds: float, parent: float, workers: float) -> None:
    print(
        f"  {label}: {rows / seconds:7.1f} clips/s ({seconds:.1f} s; CPU s: parent {parent:.1f}, "
        f"workers {workers:.1f} = {(parent + workers) / seconds:.2f} cores busy)"
    )


def main(argv: list[str] | None = None) -> None:
    """Print clips/s for 1 and N workers, the speed-up, and peak memory per clip count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4500, help="distinct clips to time")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--memory-clips", type=int, nargs="*", default=[10000, 100000],
        help="window counts for the memory check (copies of the clips; augmentation off)",
    )  # fmt: skip
    parser.add_argument("--memory-augment", action="store_true", help="augment in memory runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mww-bench-") as tmp:
        root = Path(tmp) / "data"
        make_clips(root, args.clips)
        print(f"{args.clips} clips of {CLIP_S} s, every augmentation on, 160-frame windows")
        print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        one_s, rows, _, *one_cpu = timed_build(bench_config(root, 1), Path(tmp) / "one")
        many_s, rows_many, _, *many_cpu = timed_build(
            bench_config(root, args.workers), Path(tmp) / "many"
        )
        assert rows == rows_many == args.clips
        _report("1 worker ", rows, one_s, *one_cpu)
        _report(f"{args.workers} workers", rows, many_s, *many_cpu)
        print(f"  speed-up : {one_s / many_s:.2f}x (target >= 1.7x on 2 cores; >= 100 clips/s)")
        start = time.perf_counter()
        with worker_pool(bench_config(root, args.workers)) as pool:
            [f.result() for f in [pool.submit(os.getpid) for _ in range(args.workers)]]
        print(
            f"  of which worker start-up (spawn + imports, once per run): "
            f"{time.perf_counter() - start:.1f} s"
        )
        print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        peaks = []
        for target in args.memory_clips:
            copies = max(1, -(-target // args.clips))
            config = bench_config(root, args.workers, copies, args.memory_augment)
            seconds, rows, peak, *_ = timed_build(config, Path(tmp) / "memory")
            peaks.append(peak)
            print(
                f"  {rows:7d} windows: peak RSS {peak / 2**20:7.1f} MiB (parent + workers), "
                f"{rows / seconds:.0f} windows/s"
            )
        if len(peaks) > 1:
            print(f"  peak memory growth: {100 * (max(peaks) / min(peaks) - 1):+.1f}% (target 20%)")


if __name__ == "__main__":
    main()
