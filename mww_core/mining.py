"""Hard-negative mining: windows of negative audio that the current model scores high."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mww_core.config import FullConfig
from mww_core.store import Stream, Windows, empty_windows, read_windows, write_windows

log = logging.getLogger(__name__)


class HardExampleMiner:
    """Streams a model over long negative audio and keeps the windows it falsely accepts."""

    def __init__(self, config: FullConfig):
        self.config = config
        self.frames = config.features.window_frames
        self.stride = config.model.stride
        self.stats: dict[str, dict[str, int]] = {}

    def get_hard_samples(self, probs: np.ndarray, stream: Stream) -> Windows:
        """Windows of ``stream`` whose output exceeds the mining threshold.

        Peaks closer than half a window to a higher one are dropped (they overlap), and at most
        ``mining.max_per_source`` are kept per source.
        """
        cfg = self.config.mining
        candidates = np.flatnonzero(probs > cfg.threshold)
        order = candidates[np.argsort(-probs[candidates], kind="stable")]
        spacing = max(1, self.frames // (2 * self.stride))
        kept: list[int] = []
        for i in order:
            if all(abs(int(i) - k) >= spacing for k in kept):
                kept.append(int(i))
            if len(kept) >= cfg.max_per_source:
                break
        kept.sort()
        ends = [(i + 1) * self.stride for i in kept if (i + 1) * self.stride >= self.frames]
        self.stats[stream.source] = {"scanned": int(len(probs)), "kept": len(ends)}
        if not ends:
            return empty_windows(self.frames)
        feats = np.stack([stream.features[e - self.frames : e] for e in ends])
        return Windows(
            features=feats,
            label=np.zeros(len(ends), np.int8),
            weight_class=np.array(["hard_negative"] * len(ends), dtype=object),
            source=np.array([stream.source] * len(ends), dtype=object),
            offset_s=np.array([(e - self.frames) * 0.01 for e in ends], np.float32),
            seed=np.full(len(ends), -1, np.int64),
            score=np.array([probs[e // self.stride - 1] for e in ends], np.float32),
        )

    def mine_from_dataset(
        self, scorer: Callable[[np.ndarray], np.ndarray], streams: list[Stream]
    ) -> Windows:
        """Hard negatives from every negative or ambient stream."""
        parts = [
            self.get_hard_samples(scorer(s.features), s)
            for s in streams
            if s.kind in ("negative", "ambient")
        ]
        found = Windows.concat(parts, self.frames)
        log.info(
            "mining: %d windows kept from %d sources (%d inferences scanned)",
            len(found), len(parts), sum(v["scanned"] for v in self.stats.values()),
        )  # fmt: skip
        return found

    @staticmethod
    def save_hard_negatives(path: Path, windows: Windows) -> None:
        """Write hard negatives (with scores and provenance) to one Parquet shard."""
        write_windows(path, windows)

    @staticmethod
    def load_hard_negatives(path: Path) -> Windows:
        """Read a shard written by ``save_hard_negatives``."""
        return read_windows([path])

    def get_all_hard_negatives(self, paths: list[Path]) -> Windows:
        """Every hard negative from several mining runs."""
        return Windows.concat([read_windows([p]) for p in paths], self.frames)
