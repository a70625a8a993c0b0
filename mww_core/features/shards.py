"""Train shards: compute their windows in workers, spool them in order, write, drop stale ones."""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mww_core import fsstore
from mww_core.config import FullConfig
from mww_core.features.plan import ShardPlan, WindowJob, plan_shards, plan_window_jobs
from mww_core.features.workers import TASK_ROWS, make_windows, worker_pool
from mww_core.frontend import NUM_CHANNELS
from mww_core.store import Windows, shard_metadata, write_windows_parts

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def build_train_windows(
    config: FullConfig,
    shard_dir: Path,
    progress: Progress | None = None,
    pool: cf.ProcessPoolExecutor | None = None,
) -> tuple[dict[str, tuple[str, int]], dict[str, str], dict[str, int]]:
    """Bring the train shards in ``shard_dir`` up to date, computing only changed shards.

    ``pool`` (from ``worker_pool``) runs the work; by default a pool is started for the call.

    Returns:
        ``{shard name: (path, rows)}``, ``{source: reason}`` of unusable files, and counts of
        shards computed and reused.
    """
    jobs = plan_window_jobs(config, "train")
    if not any(j.kind == "positive" for j in jobs):
        raise FileNotFoundError(
            f"{config.data.data_dir / 'train' / 'positive'}: no positive clips; put wav files of "
            "the wake word there (see README, 'Train your own wake word')"
        )
    plans = plan_shards(config, jobs)
    shard_dir.mkdir(parents=True, exist_ok=True)
    todo = [p for p in plans if not (shard_dir / p.file_name).exists()]
    on_rows = row_progress(progress, len(jobs), len(jobs) - sum(len(p.jobs) for p in todo))
    errors = compute_shards(config, todo, shard_dir, on_rows, pool) if todo else {}
    shards: dict[str, tuple[str, int]] = {}
    for plan in plans:
        path = shard_dir / plan.file_name
        rows, meta = shard_metadata(path)
        shards[path.stem] = (str(path), rows)
        errors.update(json.loads(meta.get("bad_files", "{}")))
    counts = {"shards_computed": len(todo), "shards_reused": len(plans) - len(todo)}
    log.info("train shards: %(shards_computed)d computed, %(shards_reused)d reused", counts)
    return shards, errors, counts


def row_progress(progress: Progress | None, total: int, done: int) -> Callable[[int], None]:
    """A callback ``on_rows(n)`` counting finished train windows for ``progress``.

    Each call adds ``n`` and reports ``("train windows", done, total)``; the starting point
    (shards already in the store) is reported at once.
    """

    def on_rows(rows: int) -> None:
        nonlocal done
        done += rows
        if progress:
            progress("train windows", done, total)

    on_rows(0)
    return on_rows


def compute_shards(
    config: FullConfig,
    plans: list[ShardPlan],
    shard_dir: Path,
    on_rows: Callable[[int], None],
    pool: cf.ProcessPoolExecutor | None = None,
) -> dict[str, str]:
    """Compute ``plans`` in worker processes and write each shard when its last task returns.

    At most two tasks per worker are in flight, so memory stays flat however many clips.

    Args:
        config: The pipeline config.
        plans: Shards to compute.
        shard_dir: Where they are written.
        on_rows: Called with the number of windows of each finished task.
        pool: Workers from ``worker_pool`` (default: a pool for this call only).

    Returns:
        ``{source: reason}`` of the unusable audio files met.
    """
    if pool is None:
        with worker_pool(config) as own:
            return compute_shards(config, plans, shard_dir, on_rows, own)
    frames = config.features.window_frames
    shard_dir.mkdir(parents=True, exist_ok=True)  # spool files are made there
    partial = {
        i: PartialShard(p, -(-len(p.jobs) // TASK_ROWS), {}, {}) for i, p in enumerate(plans)
    }
    errors: dict[str, str] = {}
    tasks = _tasks(plans)
    workers = config.features.num_workers
    running: dict[cf.Future, tuple[int, int]] = {}
    while True:
        for index, start, jobs in tasks:
            running[pool.submit(make_windows, jobs)] = (index, start)
            if len(running) >= 2 * workers:
                break
        if not running:
            break
        done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
        for future in done:
            index, start = running.pop(future)
            feats, kept, errs = future.result()
            shard = partial[index]
            shard.parts[start] = (feats, kept)
            shard.spool_ready(shard_dir)
            shard.errors.update(errs)
            shard.pending -= 1
            on_rows(len(shard.plan.jobs[start : start + TASK_ROWS]))
            if shard.pending == 0:
                write_shard(config, shard, shard_dir, frames)
                errors.update(shard.errors)
                del partial[index]
    return errors


def _tasks(plans: list[ShardPlan]) -> Iterator[tuple[int, int, tuple[WindowJob, ...]]]:
    for index, plan in enumerate(plans):
        for start in range(0, len(plan.jobs), TASK_ROWS):
            yield index, start, plan.jobs[start : start + TASK_ROWS]


@dataclass
class PartialShard:
    """A shard whose tasks are coming back.

    Windows of tasks done in order go to ``spool``, an unnamed temporary file beside the
    shards, so the parent holds a few tasks' windows at a time, however large the shard;
    ``parts`` keeps the tasks that came back ahead of their turn.
    """

    plan: ShardPlan
    pending: int
    parts: dict[int, tuple[np.ndarray, list[int]]]  # task start -> (features, kept indices)
    errors: dict[str, str]
    spool: BinaryIO | None = None
    kept: list[int] = field(default_factory=list)  # plan.jobs indices of the spooled rows
    next_start: int = 0  # start of the next task to spool

    def spool_ready(self, folder: Path) -> None:
        """Move the tasks that are next in order from ``parts`` to the spool file."""
        while self.next_start in self.parts:
            feats, kept = self.parts.pop(self.next_start)
            if self.spool is None:
                self.spool = tempfile.TemporaryFile(dir=folder, prefix=".spool-")
            self.spool.write(np.ascontiguousarray(feats, "<u2").data)
            self.kept += [self.next_start + i for i in kept]
            self.next_start += TASK_ROWS

    def row_groups(self, frames: int, rows: int) -> Iterator[Windows]:
        """The spooled windows, ``rows`` at a time (call when every task is spooled)."""
        if self.spool is None:
            return
        self.spool.seek(0)
        width = frames * NUM_CHANNELS * 2
        for start in range(0, len(self.kept), rows):
            kept = self.kept[start : start + rows]
            blob = self.spool.read(len(kept) * width)
            feats = np.frombuffer(blob, "<u2").reshape(len(kept), frames, NUM_CHANNELS)
            yield _windows_of(self.plan, kept, feats)


def _windows_of(plan: ShardPlan, kept: list[int], feats: np.ndarray) -> Windows:
    """Windows of ``feats``, the features of ``plan.jobs[i] for i in kept``, with provenance."""
    jobs = [plan.jobs[i] for i in kept]
    return Windows(
        features=feats,
        label=np.array([j.kind == "positive" for j in jobs], np.int8),
        weight_class=np.array(
            ["positive" if j.kind == "positive" else "negative" for j in jobs], dtype=object
        ),
        source=np.array([j.source for j in jobs], dtype=object),
        offset_s=np.array([j.offset_s for j in jobs], np.float32),
        seed=np.array([j.seed for j in jobs], np.int64),
    )


def write_shard(config: FullConfig, shard: PartialShard, shard_dir: Path, frames: int) -> None:
    """Write a finished shard (atomically) with its fingerprint and unusable files as metadata.

    The rows stream from the spool one row group at a time (tasks still in ``parts`` are
    spooled first), so writing holds one row group, whatever the shard's size.
    """
    metadata = {"fingerprint": shard.plan.fingerprint, "bad_files": json.dumps(shard.errors)}
    rows = config.features.row_group_rows
    shard_dir.mkdir(parents=True, exist_ok=True)
    try:
        shard.spool_ready(shard_dir)
        if shard.parts:
            raise ValueError(f"{shard.plan.file_name}: tasks {sorted(shard.parts)} are missing")
        parts = shard.row_groups(frames, rows)
        write_windows_parts(shard_dir / shard.plan.file_name, parts, frames, metadata, rows)
    finally:
        if shard.spool is not None:
            shard.spool.close()
            shard.spool = None


def remove_stale_shards(store: Path | str, shards: dict[str, tuple[str, int]]) -> list[str]:
    """Delete shard files of the store (a folder or fsspec URL) the current plan no longer uses."""
    keep = {Path(location).name for location, _ in shards.values()}
    stale = [u for u in fsstore.list_files(store, ".parquet") if Path(u).name not in keep]
    for location in stale:
        fsstore.remove(location)
    if stale:
        log.info("removed %d outdated shard(s) from %s", len(stale), store)
    return stale
