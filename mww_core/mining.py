"""Hard-negative mining: windows of negative audio that the current model scores high."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mww_core.config import FullConfig
from mww_core.evaluation.firing import detection_samples
from mww_core.frontend import FEATURE_STEP_SAMPLES, SAMPLE_RATE_HZ
from mww_core.store import (
    StoredStream,
    Stream,
    Windows,
    empty_windows,
    read_windows,
    write_windows,
)

log = logging.getLogger(__name__)

MINED_KINDS = ("negative", "ambient", "mining")
FRAME_S = FEATURE_STEP_SAMPLES / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class _Candidate:
    """One inference above the threshold, with the source file it came from."""

    inference: int
    score: float
    source: str
    offset_s: float  # window start, seconds from the start of ``source``


def min_separation_inferences(window_frames: int, stride: int, max_overlap: float) -> int:
    """Inferences between two kept windows so they overlap by at most ``max_overlap``.

    160-frame windows, stride 3 and 50 % overlap -> windows at least 80 frames (27 inferences)
    apart.
    """
    if not 0.0 <= max_overlap < 1.0:
        raise ValueError(f"max_overlap must be within [0, 1), got {max_overlap}")
    return max(1, math.ceil(window_frames * (1.0 - max_overlap) / stride))


def deduplicate(inferences: np.ndarray, scores: np.ndarray, separation: int) -> np.ndarray:
    """Greedy non-maximum suppression: the highest-scoring inferences at least ``separation`` apart.

    Returns positions into ``inferences`` ordered by descending score (ties: earlier first).
    """
    order = np.lexsort((np.asarray(inferences), -np.asarray(scores)))
    kept: list[int] = []
    taken: list[int] = []
    for pos in order:
        i = int(inferences[pos])
        if all(abs(i - k) >= separation for k in taken):
            kept.append(int(pos))
            taken.append(i)
    return np.asarray(kept, dtype=np.int64)


class HardExampleMiner:
    """Streams a model over long negative audio and keeps the windows it falsely accepts.

    A window is a candidate when the model's output at its last frame exceeds
    ``mining.threshold``. Candidates closer than allowed by ``mining.max_overlap`` to a higher
    scoring one are dropped as duplicates, and at most ``mining.max_per_source`` are kept per
    source file (each clip of a joined negative stream is its own source). Kept windows carry
    their score and provenance (source file, start offset) and the weight class
    ``hard_negative`` (weight ``training.phases[].class_weights.hard_negative``, 40 by default).

    Attributes:
        config: The full pipeline config.
        frames: Frames per mined window (``features.window_frames``).
        stride: Frames per model output.
        stats: Per scanned stream: ``scanned`` windows, ``above_threshold``, ``duplicates``,
            ``over_cap``, ``kept`` and ``sources_with_hits``.
    """

    def __init__(self, config: FullConfig):
        """Set up the miner from ``config.mining``, ``config.features`` and ``config.model``."""
        self.config = config
        self.frames = config.features.window_frames
        self.stride = config.model.stride
        self.stats: dict[str, dict[str, int]] = {}

    def get_hard_samples(
        self, probs: np.ndarray, stream: Stream, clip_names: Sequence[str] | None = None
    ) -> Windows:
        """Windows of ``stream`` whose output exceeds the mining threshold.

        Args:
            probs: Model output per ``stride`` frames of ``stream.features``.
            stream: An ambient recording, or negative clips joined with gaps (``spans``).
            clip_names: Source file of each span of a joined stream (provenance); defaults to
                ``"<stream source>#<clip index>"``.

        Returns:
            The kept windows, ordered by source and position.
        """
        cfg = self.config.mining
        probs = np.asarray(probs, dtype=np.float32)
        first_full = -(-self.frames // self.stride) - 1  # the first inference with a full window
        above = np.flatnonzero(probs > cfg.threshold)
        above = above[above >= first_full]
        candidates = self._attribute(above, probs, stream, clip_names)
        separation = min_separation_inferences(self.frames, self.stride, cfg.max_overlap)
        by_source: dict[str, list[_Candidate]] = {}
        for cand in candidates:
            by_source.setdefault(cand.source, []).append(cand)
        kept: list[_Candidate] = []
        duplicates = over_cap = 0
        for source in sorted(by_source):
            group = by_source[source]
            order = deduplicate(
                np.array([c.inference for c in group]), np.array([c.score for c in group]),
                separation,
            )  # fmt: skip
            duplicates += len(group) - len(order)
            over_cap += max(0, len(order) - cfg.max_per_source)
            chosen = sorted((group[p] for p in order[: cfg.max_per_source]), key=_position)
            kept.extend(chosen)
        self.stats[stream.source] = {
            "scanned": int(len(probs)),
            "above_threshold": len(candidates),
            "duplicates": duplicates,
            "over_cap": over_cap,
            "kept": len(kept),
            "sources_with_hits": len(by_source),
        }
        return self._windows(stream, kept)

    def _attribute(
        self,
        inferences: np.ndarray,
        probs: np.ndarray,
        stream: Stream,
        clip_names: Sequence[str] | None,
    ) -> list[_Candidate]:
        """Source file and start offset of each candidate window."""
        start_frames = (inferences + 1) * self.stride - self.frames
        if not stream.spans:
            return [
                _Candidate(int(i), float(probs[i]), stream.source, float(s * FRAME_S))
                for i, s in zip(inferences, start_frames, strict=True)
            ]
        if clip_names is not None and len(clip_names) != len(stream.spans):
            raise ValueError(
                f"{stream.source}: {len(clip_names)} clip names for {len(stream.spans)} clips"
            )
        names = clip_names or [f"{stream.source}#{k}" for k in range(len(stream.spans))]
        starts = np.array([s for s, _ in stream.spans], dtype=np.int64)
        # A window belongs to the last clip that started before the window's final sample.
        at = detection_samples(inferences, self.stride)
        owner = np.searchsorted(starts, at, side="right") - 1
        out = []
        for i, s, k in zip(inferences, start_frames, owner, strict=True):
            if k < 0:  # the leading noise before the first clip: nothing to learn from
                continue
            offset = (int(s) * FEATURE_STEP_SAMPLES - int(starts[k])) / SAMPLE_RATE_HZ
            out.append(_Candidate(int(i), float(probs[i]), names[k], offset))
        return out

    def _windows(self, stream: Stream, kept: list[_Candidate]) -> Windows:
        if not kept:
            return empty_windows(self.frames)
        ends = [(c.inference + 1) * self.stride for c in kept]
        return Windows(
            features=np.stack([stream.features[e - self.frames : e] for e in ends]),
            label=np.zeros(len(kept), np.int8),
            weight_class=np.array(["hard_negative"] * len(kept), dtype=object),
            source=np.array([c.source for c in kept], dtype=object),
            offset_s=np.array([c.offset_s for c in kept], np.float32),
            seed=np.full(len(kept), -1, np.int64),
            score=np.array([c.score for c in kept], np.float32),
        )

    def mine_from_dataset(
        self,
        scorer: Callable[[np.ndarray], np.ndarray],
        streams: list[Stream | StoredStream],
        clip_names: Mapping[str, Sequence[str]] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Windows:
        """Hard negatives from every negative or ambient stream (positives are skipped).

        Args:
            scorer: Raw features ``[frames, 40]`` -> one probability per ``stride`` frames.
            streams: Feature streams of a split (``Stream`` or ``StoredStream``: each is read
                into memory only while it is mined).
            clip_names: Per joined stream source, the file of each of its clips.
            progress: ``progress("streams scanned", done, total)`` after each mined stream.
        """
        names = clip_names or {}
        parts = []
        mined = [stored for stored in streams if stored.kind in MINED_KINDS]
        for done, stored in enumerate(mined, 1):  # one stream in memory at a time
            stream = stored.load()
            parts.append(
                self.get_hard_samples(scorer(stream.features), stream, names.get(stream.source))
            )
            if progress is not None:
                progress("streams scanned", done, len(mined))
        found = Windows.concat(parts, self.frames)
        totals = self.totals()
        log.info(
            "mining: kept %d of %d windows above %.2f (%d duplicates, %d over the cap of %d per "
            "source) from %d windows scanned in %d streams",
            totals["kept"], totals["above_threshold"], self.config.mining.threshold,
            totals["duplicates"], totals["over_cap"], self.config.mining.max_per_source,
            totals["scanned"], len(parts),
        )  # fmt: skip
        for source, row in self.stats.items():
            if row["above_threshold"]:
                log.info("mining %s: %s", source, row)
        return found

    def totals(self) -> dict[str, int]:
        """Every statistic summed over the streams mined so far."""
        keys = ("scanned", "above_threshold", "duplicates", "over_cap", "kept")
        return {k: int(sum(row[k] for row in self.stats.values())) for k in keys}

    @staticmethod
    def save_hard_negatives(path: Path, windows: Windows) -> None:
        """Write hard negatives (with scores and provenance) to one Parquet shard."""
        write_windows(path, windows)

    @staticmethod
    def load_hard_negatives(path: Path) -> Windows:
        """Read a shard written by ``save_hard_negatives``."""
        return read_windows([path])

    def get_all_hard_negatives(self, paths: list[Path]) -> Windows:
        """Every hard negative from several mining runs, without repeats (same window and seed)."""
        windows = Windows.concat([read_windows([p]) for p in paths], self.frames)
        if len(windows) == 0:
            return windows
        keys = [
            f"{s}|{o:.3f}|{seed}"
            for s, o, seed in zip(windows.source, windows.offset_s, windows.seed, strict=True)
        ]
        _, first = np.unique(np.asarray(keys), return_index=True)
        rows = np.sort(first)
        return Windows(
            features=windows.features[rows],
            label=windows.label[rows],
            weight_class=windows.weight_class[rows],
            source=windows.source[rows],
            offset_s=windows.offset_s[rows],
            seed=windows.seed[rows],
            score=windows.score[rows],
        )


def _position(candidate: _Candidate) -> tuple[str, float]:
    return (candidate.source, candidate.offset_s)
