"""Feature shards as independent units of work: compute one anywhere, write it to a store URL."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mww_core import fsstore
from mww_core.config import FullConfig
from mww_core.features.plan import ShardPlan, plan_shards, plan_window_jobs
from mww_core.features.shards import (
    PartialShard,
    compute_shards,
    remove_stale_shards,
    row_progress,
    write_shard,
)
from mww_core.features.stage import finish_features
from mww_core.features.workers import TASK_ROWS, init_worker, make_windows

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
# compute(config, plans, store_url, on_rows) -> {source: reason}: where missing shards are made.
ComputeShards = Callable[[FullConfig, list[ShardPlan], str, Callable[[int], None]], dict]


@dataclass(frozen=True)
class ShardResult:
    """A finished shard in the store: where, how many rows, and a hash of its content."""

    name: str
    url: str
    rows: int
    content: str  # sha256 of the decoded columns and schema metadata (see table_fingerprint)
    bad_files: dict[str, str]


def store_location(config: FullConfig) -> str | Path:
    """``performance.feature_store_url``, or else the run folder's ``feature_shards`` path."""
    return config.performance.feature_store_url or config.run_dir / "feature_shards"


def store_url(config: FullConfig) -> str:
    """Absolute URL of the train-shard store, as workers on other machines address it."""
    return fsstore.to_url(store_location(config))


def train_shard_plans(config: FullConfig) -> list[ShardPlan]:
    """Every train shard the config asks for, named by its inputs.

    Raises:
        FileNotFoundError: The train split has no positive clips.
    """
    jobs = plan_window_jobs(config, "train")
    if not any(j.kind == "positive" for j in jobs):
        raise FileNotFoundError(
            f"{config.data.data_dir / 'train' / 'positive'}: no positive clips; put wav files of "
            "the wake word there (see README, 'Train your own wake word')"
        )
    return plan_shards(config, jobs)


def missing_shards(plans: list[ShardPlan], url: str) -> list[ShardPlan]:
    """The plans whose shard file is not (completely) in the store yet."""
    present = {Path(u).name for u in fsstore.list_files(url, ".parquet")}
    return [p for p in plans if p.file_name not in present]


def table_fingerprint(table: pa.Table) -> str:
    """sha256 of a shard's columns (values, in order) and its schema metadata."""
    digest = hashlib.sha256()
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        digest.update(name.encode())
        if pa.types.is_fixed_size_binary(column.type):
            width = column.type.byte_width
            data = column.buffers()[1]
            digest.update(
                memoryview(data)[column.offset * width : (column.offset + len(column)) * width]
            )
        elif pa.types.is_string(column.type):
            digest.update(json.dumps(column.to_pylist()).encode())
        else:
            digest.update(np.ascontiguousarray(column.to_numpy(zero_copy_only=False)).tobytes())
    return digest.hexdigest()


def shard_result(url: str) -> ShardResult:
    """Read a finished shard back through fsspec and describe it (raises if it is torn)."""
    table = pq.read_table(fsstore.parquet_source(url))
    meta = table.schema.metadata or {}
    return ShardResult(
        name=Path(url).stem,
        url=url,
        rows=table.num_rows,
        content=table_fingerprint(table),
        bad_files=json.loads(meta.get(b"bad_files", b"{}")),
    )


def compute_shard(config: FullConfig, plan: ShardPlan, url: str) -> ShardResult:
    """Compute one shard in this process and write it atomically into the store at ``url``.

    The windows are made by the same functions, in the same chunks, as the in-process stage
    (``features.shards.compute_shards``), and each window depends only on its own job (seeded
    per job), so the shard is identical whichever machine or worker makes it. A worker killed
    midway leaves at most a hidden temporary file, never a visible partial shard.
    """
    if _WORKER_CONFIG.get("config") != config:
        init_worker(config)
        _WORKER_CONFIG["config"] = config
    parts: dict[int, tuple[np.ndarray, list[int]]] = {}
    errors: dict[str, str] = {}
    for start in range(0, len(plan.jobs), TASK_ROWS):
        feats, kept, errs = make_windows(plan.jobs[start : start + TASK_ROWS])
        parts[start] = (feats, kept)
        errors.update(errs)
    shard = PartialShard(plan, 0, parts, errors)
    target = fsstore.join(url, plan.file_name)
    local = fsstore.local_path(url)
    frames = config.features.window_frames
    if local is not None:
        write_shard(config, shard, local, frames)  # write_windows: temp name + rename
    else:
        with tempfile.TemporaryDirectory(prefix="mww-shard-") as tmp:
            write_shard(config, shard, Path(tmp), frames)
            fsstore.upload_atomic(Path(tmp) / plan.file_name, target)
    return shard_result(target)


_WORKER_CONFIG: dict = {}


def compute_shard_isolated(config: FullConfig, plan: ShardPlan, url: str) -> ShardResult:
    """``compute_shard`` in a child interpreter of this process that runs nothing else.

    audiomentations draws from the process-global ``random``/``np.random`` generators, which
    ``augment`` seeds per window; in a process with other threads (a Dask worker's event loop
    reconnecting after a peer died, Prefect's API client) a draw of theirs between seeding and
    augmenting changes the window, so a shard made there would not always equal the
    in-process one. The child is started once and kept (imports and numba compilation cost
    seconds); a process pool is not an option because Dask workers are daemonic.

    Raises:
        RuntimeError: The shard failed in the child; the child's traceback is in the message.
    """
    import pickle

    with _CHILD_LOCK:
        child = _CHILD.get("process")
        if child is None or child.poll() is not None:
            child = _CHILD["process"] = _start_child()
        try:
            _send(child.stdin, (config, plan, url))
            ok, value = pickle.loads(_receive(child.stdout))
        except (OSError, EOFError) as exc:
            _CHILD.pop("process", None)
            raise RuntimeError(f"shard {plan.file_name}: the shard process died ({exc})") from exc
    if not ok:
        raise RuntimeError(f"computing shard {plan.file_name} failed:\n{value}")
    return value


_CHILD: dict = {}
_CHILD_LOCK = threading.Lock()


def _start_child():
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    code = f"from mww_core.fanout import shard_child_main; shard_child_main({os.getpid()})"
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )


def _send(stream, obj) -> None:
    import pickle

    data = pickle.dumps(obj)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream) -> bytes:
    size = stream.read(8)
    if len(size) < 8:
        raise EOFError("no reply")
    return stream.read(int.from_bytes(size, "little"))


def shard_child_main(parent: int) -> None:
    """Loop of ``compute_shard_isolated``'s child: pickled arguments in, ShardResult out."""
    import pickle
    import sys
    import threading
    import time
    import traceback

    def exit_with_parent() -> None:  # a killed worker must not leave its child running
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints of libraries go to stderr, not into the replies
    requests = sys.stdin.buffer
    while True:
        try:
            config, plan, url = pickle.loads(_receive(requests))
        except EOFError:
            return
        try:
            reply = (True, compute_shard(config, plan, url))
        except Exception:
            reply = (False, traceback.format_exc())
        _send(out, reply)


def compute_in_process(
    config: FullConfig, plans: list[ShardPlan], url: str, on_rows: Callable[[int], None]
) -> dict[str, str]:
    """The default runner: this machine's worker processes (``features.shards.compute_shards``).

    Shards for a non-local store are made in a local temporary folder and uploaded one by one.
    """
    local = fsstore.local_path(url)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
        return compute_shards(config, plans, local, on_rows)
    with tempfile.TemporaryDirectory(prefix="mww-shards-") as tmp:
        errors = compute_shards(config, plans, Path(tmp), on_rows)
        for plan in plans:
            fsstore.upload_atomic(Path(tmp) / plan.file_name, fsstore.join(url, plan.file_name))
    return errors


def build_train_shards(
    config: FullConfig,
    url: str,
    progress: Progress | None = None,
    compute: ComputeShards = compute_in_process,
) -> tuple[dict[str, tuple[str, int]], dict[str, str], dict[str, int]]:
    """``features.shards.build_train_windows`` for a store at any URL.

    ``compute`` makes the missing shards.

    Returns:
        ``{shard name: (url, rows)}``, ``{source: reason}`` of unusable files, and counts of
        shards computed and reused.
    """
    plans = train_shard_plans(config)
    fsstore.makedirs(url)
    todo = missing_shards(plans, url)
    total = sum(len(p.jobs) for p in plans)
    on_rows = row_progress(progress, total, total - sum(len(p.jobs) for p in todo))
    errors = compute(config, todo, url, on_rows) if todo else {}
    shards: dict[str, tuple[str, int]] = {}
    for plan in plans:
        shard_url = fsstore.join(url, plan.file_name)
        with fsstore.open_read(shard_url) as handle:
            meta = pq.ParquetFile(handle).metadata
        shards[plan.file_name.removesuffix(".parquet")] = (shard_url, meta.num_rows)
        errors.update(json.loads((meta.metadata or {}).get(b"bad_files", b"{}")))
    counts = {"shards_computed": len(todo), "shards_reused": len(plans) - len(todo)}
    log.info("train shards at %s: %d computed, %d reused", url, len(todo), len(plans) - len(todo))
    return shards, errors, counts


def build_features_at(
    config: FullConfig, out_dir: Path, url: str, progress: Progress | None = None
) -> dict:
    """``features.stage.build_features`` with the train shards in a store at any fsspec URL.

    Streams stay in the stage folder ``out_dir`` (the run folder); imported feature sets are
    converted in a local temporary folder and uploaded.
    """
    from mww_core.importers import import_feature_sets

    out_dir.mkdir(parents=True, exist_ok=True)
    shards, errors, counts = build_train_shards(config, url, progress)
    with tempfile.TemporaryDirectory(prefix="mww-import-") as tmp:
        for name, (path, rows) in import_feature_sets(config, Path(tmp), progress).items():
            shard_url = fsstore.join(url, Path(path).name)
            fsstore.upload_atomic(Path(path), shard_url)
            shards[name] = (shard_url, rows)
    remove_stale_shards(url, shards)
    return finish_features(config, out_dir, (shards, errors, counts), progress)
