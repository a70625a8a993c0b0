"""The features stage: place and augment clips, run the frontend, write Parquet shards."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mww_core.audio import list_audio_files, load_audio
from mww_core.augment import AudioAugmentationPipeline
from mww_core.config import FullConfig
from mww_core.evaluation import stream_clips
from mww_core.frontend import SAMPLE_RATE_HZ, compute_features, samples_for_frames
from mww_core.store import Stream, Windows, write_streams, write_windows

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
KINDS = ("positive", "negative", "ambient")
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class WindowJob:
    """One training window to make: which audio, which augmented copy, where."""

    source: str  # relative to the data folder
    kind: str
    copy: int
    offset_s: float  # start in the source (long ambient audio); 0 for clips
    seed: int


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


def plan_window_jobs(config: FullConfig, split: str = "train") -> list[WindowJob]:
    """Every training window of ``split``: copies of each clip, hops through long ambient audio."""
    data_dir = config.data.data_dir
    aug = config.augmentation
    jobs: list[WindowJob] = []
    window_s = samples_for_frames(config.features.window_frames) / SAMPLE_RATE_HZ
    for kind in KINDS:
        copies = aug.positive_copies if kind == "positive" else aug.negative_copies
        for path in list_audio_files(data_dir / split / kind):
            rel = path.relative_to(data_dir).as_posix()
            if kind == "ambient":
                duration = _duration_s(path)
                offsets = np.arange(
                    0.0, max(duration - window_s, 0.0) + 1e-9, config.features.ambient_hop_s
                )
            else:
                offsets = np.zeros(1)
            for offset in offsets:
                for copy in range(copies):
                    seed = job_seed(aug.seed, rel, copy, float(offset))
                    jobs.append(WindowJob(rel, kind, copy, float(offset), seed))
    return jobs


def _duration_s(path: Path) -> float:
    import soundfile as sf

    try:
        return sf.info(str(path)).duration
    except Exception:  # unreadable files are reported when a worker loads them
        return 0.0


# --- worker side -------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(config: FullConfig) -> None:
    data_dir = config.data.data_dir
    _WORKER["config"] = config
    _WORKER["pipeline"] = AudioAugmentationPipeline(
        config.augmentation, data_dir / "rirs", data_dir / "noise"
    )
    _WORKER["cache"] = (None, None)


def _load_cached(path: Path) -> np.ndarray:
    cached_path, cached = _WORKER["cache"]
    if cached_path != path:
        cached = load_audio(path)
        _WORKER["cache"] = (path, cached)
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
    else:
        low, high = config.features.end_jitter_ms
        end_gap = int(rng.integers(low, high + 1)) * SAMPLE_RATE_HZ // 1000
        samples = place_clip(audio, window, end_gap)
    if config.augmentation.enabled:
        samples = _WORKER["pipeline"].augment(samples, job.seed)
    return compute_features(samples)[:frames]


def make_shard(jobs: list[WindowJob], path: Path) -> tuple[Path, int, list[str]]:
    """Compute and write one shard; bad audio is skipped and reported, not fatal."""
    from mww_core.audio import AudioError

    feats, kept, errors = [], [], []
    for job in jobs:
        try:
            feats.append(make_window(job))
            kept.append(job)
        except AudioError as exc:
            errors.append(str(exc))
    frames = _WORKER["config"].features.window_frames
    windows = Windows(
        features=np.stack(feats) if feats else np.zeros((0, frames, 40), np.uint16),
        label=np.array([j.kind == "positive" for j in kept], np.int8),
        weight_class=np.array(
            ["positive" if j.kind == "positive" else "negative" for j in kept], dtype=object
        ),
        source=np.array([j.source for j in kept], dtype=object),
        offset_s=np.array([j.offset_s for j in kept], np.float32),
        seed=np.array([j.seed for j in kept], np.int64),
    )
    write_windows(path, windows)
    return path, len(kept), errors


# --- the stage ---------------------------------------------------------------------------------


def build_features(config: FullConfig, out_dir: Path, progress: Progress | None = None) -> dict:
    """Run the whole features stage into ``out_dir``; returns outputs and metrics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, errors = _build_train_windows(config, out_dir, progress)
    streams: dict[str, str] = {}
    stream_seconds: dict[str, float] = {}
    for split in SPLITS:
        path = out_dir / split / "streams.parquet"
        items = build_streams(config, split)
        write_streams(path, items)
        streams[split] = str(path)
        stream_seconds[split] = sum(s.duration_s for s in items)
        if progress:
            progress(f"streams {split}", SPLITS.index(split) + 1, len(SPLITS))
    for message in sorted(set(errors)):
        log.warning("skipped: %s", message)
    return {
        "outputs": {"train_windows": shards, "streams": streams},
        "metrics": {
            "train_windows": sum(n for _, n in shards.values()) if shards else 0,
            "stream_seconds": stream_seconds,
            "skipped_files": sorted(set(errors)),
        },
    }


def _build_train_windows(
    config: FullConfig, out_dir: Path, progress: Progress | None
) -> tuple[dict, list[str]]:
    jobs = plan_window_jobs(config, "train")
    if not any(j.kind == "positive" for j in jobs):
        raise FileNotFoundError(
            f"{config.data.data_dir / 'train' / 'positive'}: no positive clips; put wav files of "
            "the wake word there (see README, 'Train your own wake word')"
        )
    # Group by source so a worker loads each long file once, then cut into shards.
    jobs.sort(key=lambda j: (j.kind, j.source, j.offset_s, j.copy))
    size = config.features.shard_rows
    batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    shards: dict[str, tuple[str, int]] = {}
    errors: list[str] = []
    ctx = multiprocessing.get_context("spawn")  # the parent may hold TensorFlow threads
    with cf.ProcessPoolExecutor(
        config.features.num_workers, mp_context=ctx, initializer=_init_worker, initargs=(config,)
    ) as pool:
        futures = [
            pool.submit(make_shard, batch, out_dir / "train" / f"windows-{i:05d}.parquet")
            for i, batch in enumerate(batches)
        ]
        for done, future in enumerate(cf.as_completed(futures), 1):
            path, rows, errs = future.result()
            shards[path.name] = (str(path), rows)
            errors += errs
            if progress:
                progress("train windows", done, len(futures))
    return dict(sorted(shards.items())), errors


def build_streams(config: FullConfig, split: str) -> list[Stream]:
    """Unaugmented long streams of a split: clips joined by gaps, and each ambient file."""
    from mww_core.audio import AudioError

    data_dir = config.data.data_dir
    streams = []
    for kind in ("positive", "negative"):
        clips, names = [], []
        for path in list_audio_files(data_dir / split / kind):
            try:
                clips.append(load_audio(path))
                names.append(path.relative_to(data_dir).as_posix())
            except AudioError as exc:
                log.warning("skipped: %s", exc)
        if not clips:
            continue
        audio, spans = stream_clips(
            clips, config.features.stream_gap_s, seed=config.augmentation.seed
        )
        streams.append(Stream(compute_features(audio), f"{split}/{kind}", kind, list(spans)))
    for path in list_audio_files(data_dir / split / "ambient"):
        try:
            audio = load_audio(path)
        except AudioError as exc:
            log.warning("skipped: %s", exc)
            continue
        rel = path.relative_to(data_dir).as_posix()
        streams.append(Stream(compute_features(audio), rel, "ambient", []))
    return streams
