"""Feature worker processes: make the windows of jobs (augmented, through the frontend)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mww_core.audio import AudioError, load_audio
from mww_core.augment import AudioAugmentationPipeline
from mww_core.config import FullConfig
from mww_core.features.plan import MINED_KIND, WindowJob
from mww_core.frontend import NUM_CHANNELS, SAMPLE_RATE_HZ, compute_features, samples_for_frames

# Windows per worker task (~0.2 s of work): small enough that no worker idles long at the end
# of the stage, large enough that sending tasks and results costs under 1 %.
TASK_ROWS = 32
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


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


# This process's config, augmentation pipeline and last loaded clip (set by ``init_worker``).
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
        after = None
        if job.word_end_s > 0:  # said before a request: the window ends after the word
            cut = int(round(job.word_end_s * SAMPLE_RATE_HZ))
            audio, after = audio[:cut], audio[cut:]
        elif job.follow:
            low, high = config.features.continuation_pause_ms
            pause = int(rng.integers(low, high + 1)) * SAMPLE_RATE_HZ // 1000
            try:
                follow = _load_follow(config.data.data_dir / job.follow)
            except AudioError:  # reported by the negative's own window; the word stays usable
                follow = np.zeros(0, np.float32)
            after = np.concatenate([np.zeros(pause, np.float32), follow])
        samples = place_clip(audio, window, end_gap, after)
    if config.augmentation.enabled:
        samples = _WORKER["pipeline"].augment(samples, job.seed)
    return compute_features(samples)[:frames]


def place_clip(
    clip: np.ndarray, window: int, end_gap: int, after: np.ndarray | None = None
) -> np.ndarray:
    """Put ``clip`` in a window of zeros so it ends ``end_gap`` samples before the end.

    A clip longer than the space keeps its end (the part that decides a detection). ``after``
    (another utterance) fills the gap from the clip's end on, as far as it reaches.
    """
    out = np.zeros(window, np.float32)
    end = window - end_gap
    part = clip[-end:] if len(clip) > end else clip
    out[end - len(part) : end] = part
    if after is not None:
        tail = after[:end_gap]
        out[end : end + len(tail)] = tail
    return out


@functools.lru_cache(maxsize=512)
def _load_follow(path: Path) -> np.ndarray:
    """A continuation clip (short negatives, read again and again by many positives)."""
    return load_audio(path)


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
