"""Feature-shard throughput: one process vs a 2-worker Dask LocalCluster on this machine.

Usage: ``python -m bench.scale_features [--clips 400] [--workers 2] [--shard-rows 64]``

Generates seeded 1.5 s clips, RIRs and noise (``bench.features.make_clips``) in a temporary
folder, then times the train shards of the features stage (load, every augmentation, frontend,
Parquet write) twice: in this process alone (``features.num_workers: 1``), and fanned out as one
task per shard over a ``distributed.LocalCluster`` of ``--workers`` processes bound to
127.0.0.1, each shard made by ``fanout.compute_shard_isolated`` -- what the Prefect task of
``performance.task_runner: dask`` runs. Cluster start-up is reported, not timed (a real cluster
already exists). Both runs must give the same shard contents.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.features import CLIP_S, make_clips
from mww_core import fanout, fsstore
from mww_core.config import FullConfig


def bench_config(root: Path, shard_rows: int) -> FullConfig:
    """Default 160-frame windows and every augmentation, one copy per clip, one process."""
    return FullConfig.model_validate(
        {
            "data": {"data_dir": str(root), "build_demo": False},
            "augmentation": {"positive_copies": 1, "negative_copies": 1},
            "features": {"num_workers": 1, "shard_rows": shard_rows},
        }
    )


def dask_compute(client):
    """A ``fanout.ComputeShards`` that maps one task per shard over a Dask cluster."""

    def compute(config, plans, url, on_rows):
        futures = client.map(
            fanout.compute_shard_isolated, [config] * len(plans), plans, [url] * len(plans),
            pure=False,
        )  # fmt: skip
        errors: dict[str, str] = {}
        for plan, result in zip(plans, client.gather(futures), strict=True):
            errors.update(result.bad_files)
            on_rows(len(plan.jobs))
        return errors

    return compute


def timed(config: FullConfig, url: str, compute) -> tuple[float, dict[str, str], int]:
    """Seconds, ``{shard: content fingerprint}`` and windows of one build into ``url``."""
    start = time.perf_counter()
    shards, errors, _ = fanout.build_train_shards(config, url, compute=compute)
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"bench audio unreadable: {errors}")
    contents = {name: fanout.shard_result(u).content for name, (u, _) in shards.items()}
    return seconds, contents, sum(n for _, n in shards.values())


def main(argv: list[str] | None = None) -> None:
    """Print clips/s for one process and for the Dask workers, and their ratio."""
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400, help="distinct clips to time")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--shard-rows", type=int, default=64, help="windows per shard")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="mww-scale-") as tmp:
        root = Path(tmp) / "data"
        make_clips(root, args.clips)
        config = bench_config(root, args.shard_rows)
        shards = len(fanout.train_shard_plans(config))
        print(f"{args.clips} clips of {CLIP_S} s, every augmentation on, {shards} shards")
        one_s, one, rows = timed(
            config, fsstore.to_url(Path(tmp) / "one"), fanout.compute_in_process
        )
        print(f"  1 process      : {rows / one_s:7.1f} clips/s ({one_s:.1f} s)")
        started = time.perf_counter()
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            print(f"  (cluster start : {time.perf_counter() - started:.1f} s, not timed)")
            many_s, many, _ = timed(
                config, fsstore.to_url(Path(tmp) / "dask"), dask_compute(client)
            )
        if many != one:
            raise RuntimeError("Dask shards differ from the in-process ones")
        print(f"  {args.workers} Dask workers: {rows / many_s:7.1f} clips/s ({many_s:.1f} s)")
        print(f"  ratio          : {one_s / many_s:.2f}x (shard contents identical)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
