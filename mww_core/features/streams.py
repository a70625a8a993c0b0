"""Validation and test streams: a split's clips joined by gaps, and each long recording."""

from __future__ import annotations

import concurrent.futures as cf
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from mww_core.audio import AudioError, list_audio_files, load_audio
from mww_core.config import FullConfig
from mww_core.evaluation.slips import find_slips
from mww_core.evaluation.streams import stream_clips
from mww_core.features.plan import MINING_KIND, source_folders, source_name
from mww_core.features.workers import _WORKER
from mww_core.frontend import compute_features
from mww_core.store import Stream

logger = logging.getLogger(__name__)


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


def split_slips(config: FullConfig, split: str, streams: list, min_distance: int):
    """The slips of a split's streams (``evaluation.find_slips``), or None.

    The joined negative stream holds the split's negative clips in ``plan_stream_jobs`` order;
    when its clip count differs (an unusable file was left out) nothing is marked, with a
    warning, rather than marking the wrong clips.
    """
    if min_distance <= 1:
        return None
    names = next((j.sources for j in plan_stream_jobs(config, split) if j.kind == "negative"), ())
    joined = [s for s in streams if s.kind == "negative"]
    count = len(joined[0].spans) if joined else 0
    if len(names) != count:
        logger.warning(
            "%s negative stream holds %d clips, its folders %d: near-miss slips not marked",
            split, count, len(names),
        )  # fmt: skip
        return None
    ambient = [s.source for s in streams if s.kind == "ambient"]
    return find_slips(config.data.data_dir, min_distance, names, ambient)


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


def iter_streams(
    config: FullConfig,
    split: str,
    errors: dict[str, str] | None = None,
    pool: cf.Executor | None = None,
) -> Iterator[Stream]:
    """Unaugmented long streams of a split, one at a time: clips joined by gaps, and each long
    recording.

    Unusable files are skipped and added to ``errors`` (``{source: reason}``). With ``pool``
    (from ``worker_pool``) the streams are computed in its worker processes.
    """
    errors = {} if errors is None else errors
    jobs = plan_stream_jobs(config, split)
    if pool is None:
        results = (make_stream(job, config) for job in jobs)
    else:
        results = pool.map(make_stream, jobs)
    for stream, errs in results:
        errors.update(errs)
        if stream is not None:
            yield stream
