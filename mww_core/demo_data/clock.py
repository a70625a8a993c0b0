"""Progress and wall time of each step of the demo build."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


class _StageClock:
    """Reports progress per stage and records each stage's wall time."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[..., None]]:
        """Time a stage; yields ``tick(n=1)`` that advances its progress."""
        started = time.perf_counter()
        done = 0

        def tick(n: int = 1) -> None:
            nonlocal done
            if n:
                done += n
                if self.progress is not None:
                    self.progress(name, done, total)

        if self.progress is not None:
            self.progress(name, 0, total)
        yield tick
        self.seconds[name] = round(time.perf_counter() - started, 2)
        logger.info("%s: %d items in %.1f s", name, total, self.seconds[name])
