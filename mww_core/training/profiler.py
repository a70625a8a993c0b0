"""TrainingProfiler: wall time per named section of the training loop, as a table."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class TrainingProfiler:
    """Accumulates the time spent in named sections (``with profiler.section("data"):``).

    Disabled profilers cost one attribute check per section.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name``."""
        if not self.enabled:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        """Record ``seconds`` spent in ``name`` (for time measured elsewhere)."""
        self.seconds[name] += seconds
        self.calls[name] += 1

    def share(self, name: str) -> float:
        """Fraction of all recorded time spent in ``name``."""
        total = sum(self.seconds.values())
        return self.seconds.get(name, 0.0) / total if total else 0.0

    def rows(self) -> list[dict]:
        """Sections by time spent, largest first: name, seconds, calls, ms per call, share."""
        total = sum(self.seconds.values()) or 1.0
        return [
            {
                "section": name,
                "seconds": round(sec, 3),
                "calls": self.calls[name],
                "ms_per_call": round(1000 * sec / max(self.calls[name], 1), 3),
                "share": round(sec / total, 4),
            }
            for name, sec in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        ]

    def reset(self) -> None:
        """Forget every section."""
        self.seconds.clear()
        self.calls.clear()
