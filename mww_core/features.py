"""The features stage: place and augment clips, run the frontend, write incremental shards."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mww_core import fsstore, stages
from mww_core.audio import AudioError, list_audio_files, load_audio
from mww_core.augment import AudioAugmentationPipeline
from mww_core.config import FullConfig
from mww_core.evaluation.streams import stream_clips
from mww_core.frontend import NUM_CHANNELS, SAMPLE_RATE_HZ, compute_features, samples_for_frames
from mww_core.store import (
    Stream,
    Windows,
    empty_windows,
    scores_or_nan,
    shard_metadata,
    write_streams,
    write_windows_parts,
)

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
KINDS = ("positive", "negative", "ambient")
# Long negative recordings that only hard-negative mining scans (``train/mining/``): no training
# windows are cut from them, so hours of them cost a scan, not a bigger training set.
MINING_KIND = "mining"
# The job kind of a mined window re-made with augmentation (``augment_mined_windows``).
MINED_KIND = "mined"
Progress = Callable[[str, int, int], None]
# Windows per worker task (~0.2 s of work): small enough that no worker idles long at the end
# of the stage, large enough that sending tasks and results costs under 1 %.
TASK_ROWS = 32
# Code whose change invalidates cached shards.
SHARD_CODE = ("features", "augment", "frontend", "audio", "store")


@dataclass(frozen=True, slots=True)  # one per training window: 100,000s of them
class WindowJob:
    """One training window to make: which audio, which augmented copy, where."""

    source: str  # relative to the data folder (absolute for sources outside it)
    kind: str
    copy: int
    offset_s: float  # start in the source (long ambient audio); 0 for clips
    seed: int


@dataclass(frozen=True)
class ShardPlan:
    """The jobs of one shard and the fingerprint that names its file."""

    kind: str
    jobs: tuple[WindowJob, ...]
    fingerprint: str

    @property
    def file_name(self) -> str:
        """``<kind>-<fingerprint>.parquet``: a shard with the same inputs has the same name."""
        return f"{self.kind}-{self.fingerprint}.parquet"


def job_seed(base: int, source: str, copy: int, offset_s: float) -> int:
    """Seed of one window, independent of which worker makes it or in which order."""
    digest = hashlib.sha256(f"{base}|{source}|{copy}|{offset_s:.3f}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFFFFFFFFFFFFFF


def place_clip(clip: np.ndarray, window: int, end_gap: int) -> np.ndarray:
    """Put ``clip`` in a window of zeros so it ends ``end_gap`` samples before the end.

    A clip longer than the space keeps its end (the part that decides a detection).
    """
    out = np.zeros(window, np.float32)
    end = window - end_gap
    part = clip[-end:] if len(clip) > end else clip
    out[end - len(part) : end] = part
    return out


def source_folders(config: FullConfig, split: str) -> list[tuple[Path, str, int]]:
    """``(folder, kind, copies)`` of every audio folder of ``split``: the data layout + sources.

    Raises:
        AudioError: A configured extra source folder does not exist.
    """
    aug = config.augmentation
    default = {"positive": aug.positive_copies, "negative": aug.negative_copies}
    kinds = KINDS + ((MINING_KIND,) if split == "train" else ())
    found = [
        (config.data.data_dir / split / kind, kind, default.get(kind, aug.negative_copies))
        for kind in kinds
        if (config.data.data_dir / split / kind).is_dir()
    ]
    for source in config.data.sources:
        if source.split != split:
            continue
        if not source.path.is_dir():
            raise AudioError(
                f"{source.path}: data.sources entry is not a folder; fix the path or remove it"
            )
        copies = source.copies or default.get(source.kind, aug.negative_copies)
        found.append((source.path, source.kind, copies))
    return found


def source_name(config: FullConfig, path: Path) -> str:
    """How a file is named in the store: relative to the data folder when inside it."""
    try:
        return path.relative_to(config.data.data_dir).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def plan_window_jobs(config: FullConfig, split: str = "train") -> list[WindowJob]:
    """Every training window of ``split``: copies of each clip, hops through long audio."""
    jobs: list[WindowJob] = []
    window_s = samples_for_frames(config.features.window_frames) / SAMPLE_RATE_HZ
    seen: set[str] = set()
    for folder, kind, copies in source_folders(config, split):
        if kind == MINING_KIND:  # scanned by mining only (see plan_stream_jobs)
            continue
        for path in list_audio_files(folder):
            name = source_name(config, path)
            if name in seen:  # a configured source may overlap the data layout
                continue
            seen.add(name)
            offsets = [0.0]
            if kind == "ambient":
                end = max(_duration_s(path) - window_s, 0.0) + 1e-9
                offsets = np.arange(0.0, end, config.features.ambient_hop_s).tolist()
            for offset in offsets:
                for copy in range(copies):
                    seed = job_seed(config.augmentation.seed, name, copy, float(offset))
                    jobs.append(WindowJob(name, kind, copy, float(offset), seed))
    return jobs


def _duration_s(path: Path) -> float:
    import soundfile as sf

    try:
        return sf.info(str(path)).duration
    except Exception:  # unreadable files are reported when a worker loads them
        return 0.0


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def group_into_shards(config: FullConfig, jobs: list[WindowJob]) -> list[list[WindowJob]]:
    """Cut jobs into shards that depend only on each source's own name, not on its neighbours.

    Clips: sources in path order; a new shard starts at a source whose name hashes to a
    boundary (content-defined chunking, on average ``shard_rows`` rows per shard), so adding
    files changes only the shards they fall into. Long recordings: each file on its own,
    cut every ``shard_rows`` windows.
    """
    rows = config.features.shard_rows
    by_source: dict[tuple[str, str], list[WindowJob]] = {}
    for job in jobs:
        by_source.setdefault((job.kind, job.source), []).append(job)
    shards: list[list[WindowJob]] = []
    for kind in KINDS:
        names = sorted(s for k, s in by_source if k == kind)
        if kind == "ambient":
            for name in names:
                own = sorted(by_source[(kind, name)], key=lambda j: (j.offset_s, j.copy))
                shards += [own[i : i + rows] for i in range(0, len(own), rows)]
            continue
        copies = (
            max(1, round(np.median([len(by_source[(kind, n)]) for n in names]))) if names else 1
        )
        every = max(1, rows // copies)
        current: list[WindowJob] = []
        for name in names:
            if current and _stable_hash(name) % every == 0:
                shards.append(current)
                current = []
            current += sorted(by_source[(kind, name)], key=lambda j: j.copy)
        if current:
            shards.append(current)
    return shards


def plan_shards(config: FullConfig, jobs: list[WindowJob]) -> list[ShardPlan]:
    """Shards with fingerprints of everything their rows depend on (sources, config, code)."""
    data_dir = config.data.data_dir
    common = stages.fingerprint(
        config.augmentation.fingerprint() if config.augmentation.enabled else "off",
        config.features.window_frames,
        list(config.features.end_jitter_ms),
        stages.file_listing(data_dir / "rirs"),
        stages.file_listing(data_dir / "noise"),
        stages.code_fingerprint(*SHARD_CODE),
    )
    plans = []
    for shard in group_into_shards(config, jobs):
        sources = sorted({j.source for j in shard})
        stats = [(s, stages.file_digest(data_dir / s)) for s in sources]
        fp = stages.fingerprint(common, stats, [astuple(j) for j in shard])
        plans.append(ShardPlan(shard[0].kind, tuple(shard), fp))
    stages.file_hashes().save()
    return plans


# --- worker side -------------------------------------------------------------------------------

_WORKER: dict = {}


def init_worker(config: FullConfig) -> None:
    """Set up a feature worker process: the config, its augmentation pipeline, a clip cache."""
    data_dir = config.data.data_dir
    _WORKER["config"] = config
    _WORKER["pipeline"] = AudioAugmentationPipeline(
        config.augmentation, data_dir / "rirs", data_dir / "noise"
    )
    _WORKER["cache"] = (None, None)


def _load_cached(path: Path) -> np.ndarray:
    cached_path, cached = _WORKER["cache"]
    if cached_path != path:
        try:
            cached = load_audio(path)
        except AudioError as exc:
            cached = exc
        _WORKER["cache"] = (path, cached)
    if isinstance(cached, AudioError):
        raise cached
    return cached


def make_window(job: WindowJob) -> np.ndarray:
    """Raw frontend features ``[window_frames, 40]`` of one job (runs in a worker)."""
    config: FullConfig = _WORKER["config"]
    frames = config.features.window_frames
    window = samples_for_frames(frames)
    audio = _load_cached(config.data.data_dir / job.source)
    rng = np.random.default_rng(job.seed)
    if job.kind == "ambient":
        start = int(job.offset_s * SAMPLE_RATE_HZ)
        samples = np.zeros(window, np.float32)
        part = audio[start : start + window]
        samples[: len(part)] = part
    elif job.kind == MINED_KIND:  # may start before its clip (offset < 0): silence there
        start = int(round(job.offset_s * SAMPLE_RATE_HZ))
        samples = np.zeros(window, np.float32)
        first = max(start, 0)
        part = audio[first : start + window]
        samples[first - start : first - start + len(part)] = part
    else:
        low, high = config.features.end_jitter_ms
        end_gap = int(rng.integers(low, high + 1)) * SAMPLE_RATE_HZ // 1000
        samples = place_clip(audio, window, end_gap)
    if config.augmentation.enabled:
        samples = _WORKER["pipeline"].augment(samples, job.seed)
    return compute_features(samples)[:frames]


def make_windows(jobs: tuple[WindowJob, ...]) -> tuple[np.ndarray, list[int], dict[str, str]]:
    """Features of a run of jobs; unusable audio is skipped and reported by source, not raised.

    Returns:
        The features of the kept jobs, their indices in ``jobs``, and ``{source: reason}``.
    """
    frames = _WORKER["config"].features.window_frames
    feats = np.zeros((len(jobs), frames, NUM_CHANNELS), np.uint16)
    kept: list[int] = []
    errors: dict[str, str] = {}
    for i, job in enumerate(jobs):
        if job.source in errors:
            continue
        try:
            feats[len(kept)] = make_window(job)
            kept.append(i)
        except AudioError as exc:
            errors[job.source] = str(exc)
    return feats[: len(kept)], kept, errors


# --- augmented copies of mined hard negatives ---------------------------------------------------


def augment_mined_windows(
    config: FullConfig, mined: Windows, copies: int, pool: cf.Executor | None = None
) -> Windows:
    """``copies`` augmented remakes of each mined window, cut again from its source audio.

    Mining finds a few hundred windows; each is re-made with the features stage's augmentation
    (rooms, noise, EQ, pitch...) under its own seed, so phase 2 learns the confusion rather than
    a few hundred exact spectrograms. Windows whose source is not a file (``name#k``) are skipped.

    Args:
        config: The pipeline config (data folder, augmentation, window length).
        mined: Windows from ``HardExampleMiner`` (source relative to the data folder, offset).
        copies: Augmented copies per window.
        pool: Workers from ``worker_pool`` (default: a pool is started for the call).

    Returns:
        ``hard_negative`` rows with provenance: source, offset and the augmentation seed.
    """
    frames = config.features.window_frames
    rows = [i for i, s in enumerate(mined.source) if "#" not in s]
    if copies <= 0 or not rows or not config.augmentation.enabled:
        return empty_windows(frames)
    jobs = tuple(
        WindowJob(str(mined.source[i]), MINED_KIND, c, float(mined.offset_s[i]),
                  job_seed(config.augmentation.seed, f"mined|{mined.source[i]}", c,
                           float(mined.offset_s[i])))
        for i in rows
        for c in range(copies)
    )  # fmt: skip
    if pool is None:
        with worker_pool(config) as own:
            return augment_mined_windows(config, mined, copies, own)
    chunks = [jobs[a : a + TASK_ROWS] for a in range(0, len(jobs), TASK_ROWS)]
    feats, kept, errors = [], [], {}
    starts = range(0, len(jobs), TASK_ROWS)
    for start, (f, k, e) in zip(starts, pool.map(make_windows, chunks), strict=True):
        feats.append(f)
        kept += [start + i for i in k]
        errors.update(e)
    for source, reason in sorted(errors.items()):
        log.warning("%s: no augmented hard negatives (%s)", source, reason)
    made = [jobs[i] for i in kept]
    score = scores_or_nan(mined)[[rows[i // copies] for i in kept]]
    return Windows(
        features=np.concatenate(feats) if feats else np.zeros((0, frames, NUM_CHANNELS), "u2"),
        label=np.zeros(len(made), np.int8),
        weight_class=np.array(["hard_negative"] * len(made), dtype=object),
        source=np.array([j.source for j in made], dtype=object),
        offset_s=np.array([j.offset_s for j in made], np.float32),
        seed=np.array([j.seed for j in made], np.int64),
        score=score.astype(np.float32),
    )


# --- the stage ---------------------------------------------------------------------------------


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


def _tasks(plans: list[ShardPlan]) -> Iterator[tuple[int, int, tuple[WindowJob, ...]]]:
    for index, plan in enumerate(plans):
        for start in range(0, len(plan.jobs), TASK_ROWS):
            yield index, start, plan.jobs[start : start + TASK_ROWS]


@contextlib.contextmanager
def worker_pool(config: FullConfig) -> Iterator[cf.ProcessPoolExecutor]:
    """``features.num_workers`` feature worker processes, stopped on exit.

    Spawned, not forked (the parent may hold TensorFlow threads), with one math thread each.
    One pool serves both the train windows and the streams, so workers start once per stage.
    """
    ctx = multiprocessing.get_context("spawn")
    with (
        _single_threaded_children(),
        cf.ProcessPoolExecutor(
            config.features.num_workers,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(config,),
        ) as pool,
    ):
        yield pool


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


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """One math thread per worker: N workers x N BLAS/FFT threads would oversubscribe the CPU."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


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


def remove_stale_shards(store: Path | str, shards: dict[str, tuple[str, int]]) -> list[str]:
    """Delete shard files of the store (a folder or fsspec URL) the current plan no longer uses."""
    keep = {Path(location).name for location, _ in shards.values()}
    stale = [u for u in fsstore.list_files(store, ".parquet") if Path(u).name not in keep]
    for location in stale:
        fsstore.remove(location)
    if stale:
        log.info("removed %d outdated shard(s) from %s", len(stale), store)
    return stale


@dataclass(frozen=True)
class StreamJob:
    """One long stream to compute: a split's clips of one kind joined by gaps, or one recording."""

    split: str
    kind: str
    sources: tuple[str, ...]  # names as in the store (see ``source_name``)


def plan_stream_jobs(config: FullConfig, split: str) -> list[StreamJob]:
    """The streams of ``split`` in store order: joined positives, joined negatives, recordings."""
    clips: dict[str, list[str]] = {"positive": [], "negative": []}
    recordings = []
    for folder, kind, _ in source_folders(config, split):
        for path in list_audio_files(folder):
            name = source_name(config, path)
            if kind in ("ambient", MINING_KIND):
                recordings.append(StreamJob(split, kind, (name,)))
            else:
                clips[kind].append(name)
    joined = [StreamJob(split, k, tuple(clips[k])) for k in ("positive", "negative") if clips[k]]
    return joined + recordings


def make_stream(
    job: StreamJob, config: FullConfig | None = None
) -> tuple[Stream | None, dict[str, str]]:
    """Unaugmented features of one stream; unusable files are reported, not raised.

    Args:
        job: The stream.
        config: The pipeline config (default: the worker's, in a ``worker_pool`` process).

    Returns:
        The stream (None when none of its files is usable) and ``{source: reason}``.
    """
    config = config or _WORKER["config"]
    audio, errors = [], {}
    for name in job.sources:
        try:
            audio.append(load_audio(config.data.data_dir / name))
        except AudioError as exc:
            errors[name] = str(exc)
    if not audio:
        return None, errors
    if job.kind in ("ambient", MINING_KIND):
        return Stream(compute_features(audio[0]), job.sources[0], job.kind, []), errors
    joined, spans = stream_clips(audio, config.features.stream_gap_s, seed=config.augmentation.seed)
    stream = Stream(compute_features(joined), f"{job.split}/{job.kind}", job.kind, list(spans))
    return stream, errors


def build_streams(
    config: FullConfig,
    split: str,
    errors: dict[str, str] | None = None,
    pool: cf.Executor | None = None,
) -> list[Stream]:
    """Unaugmented long streams of a split: clips joined by gaps, and each long recording.

    Unusable files are skipped and added to ``errors`` (``{source: reason}``). With ``pool``
    (from ``worker_pool``) the streams are computed in its worker processes.
    """
    errors = {} if errors is None else errors
    jobs = plan_stream_jobs(config, split)
    if pool is None:
        results = (make_stream(job, config) for job in jobs)
    else:
        results = pool.map(make_stream, jobs)
    streams = []
    for stream, errs in results:
        errors.update(errs)
        if stream is not None:
            streams.append(stream)
    return streams


def report_bad_files(config: FullConfig, errors: dict[str, str]) -> list[dict[str, str]]:
    """Log each unusable file once; raise naming all of them when ``features.strict`` is set.

    Returns:
        ``[{"path", "reason"}]`` sorted by path, for the stage metrics.

    Raises:
        AudioError: ``features.strict`` is set and there is at least one unusable file.
    """
    bad = []
    for name, message in sorted(errors.items()):
        path = (config.data.data_dir / name).as_posix()
        reason = message.removeprefix(f"{path}: ").removeprefix(f"{Path(path)}: ")
        bad.append({"path": path, "reason": reason})
        log.warning("skipped unusable audio %s: %s", path, reason)
    if bad and config.features.strict:
        lines = "\n".join(f"  - {b['path']}: {b['reason']}" for b in bad)
        raise AudioError(
            f"features.strict is set and {len(bad)} audio file(s) are unusable:\n{lines}\n"
            "Fix or delete them, or set features.strict: false to skip them."
        )
    return bad


def build_features(
    config: FullConfig,
    out_dir: Path,
    progress: Progress | None = None,
    shard_dir: Path | None = None,
) -> dict:
    """Run the whole features stage; returns outputs and metrics.

    Args:
        config: The pipeline config.
        out_dir: The stage folder (streams are written here).
        progress: ``progress(what, done, total)`` callback.
        shard_dir: Folder of content-addressed train shards kept between runs, so that only
            shards whose inputs changed are computed; default ``out_dir / "shards"``.
    """
    from mww_core.importers import import_feature_sets

    out_dir.mkdir(parents=True, exist_ok=True)
    shard_dir = shard_dir or out_dir / "shards"
    with worker_pool(config) as pool:
        shards, errors, counts = build_train_windows(config, shard_dir, progress, pool)
        shards.update(import_feature_sets(config, shard_dir, progress))
        remove_stale_shards(shard_dir, shards)
        return finish_features(config, out_dir, (shards, errors, counts), progress, pool)


def finish_features(
    config: FullConfig,
    out_dir: Path,
    train: tuple[dict[str, tuple[str, int]], dict[str, str], dict[str, int]],
    progress: Progress | None = None,
    pool: cf.ProcessPoolExecutor | None = None,
) -> dict:
    """Write the validation/test streams and return the stage's outputs and metrics.

    Args:
        config: The pipeline config.
        out_dir: The stage folder (streams are written here).
        train: What building the train shards returned: shards, unusable files, counts.
        progress: ``progress(what, done, total)`` callback.
        pool: Workers from ``worker_pool`` (default: the streams are made in this process).
    """
    shards, errors, counts = train
    streams: dict[str, str] = {}
    stream_seconds: dict[str, float] = {}
    for index, split in enumerate(SPLITS, 1):
        path = out_dir / split / "streams.parquet"
        items = build_streams(config, split, errors, pool)
        write_streams(path, items)
        streams[split] = str(path)
        stream_seconds[split] = sum(s.duration_s for s in items)
        if progress:
            progress(f"streams {split}", index, len(SPLITS))
    bad = report_bad_files(config, errors)
    return {
        "outputs": {"train_windows": shards, "streams": streams},
        "metrics": {
            "train_windows": sum(n for _, n in shards.values()),
            "stream_seconds": stream_seconds,
            "bad_files": bad,
            "skipped_files": [f"{b['path']}: {b['reason']}" for b in bad],
            **counts,
        },
    }
