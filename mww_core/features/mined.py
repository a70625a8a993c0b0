"""Augmented copies of mined hard negatives, cut again from their source audio."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
from pathlib import Path

import numpy as np

from mww_core.config import FullConfig
from mww_core.features.plan import MINED_KIND, WindowJob, job_seed
from mww_core.features.shards import Progress
from mww_core.features.workers import TASK_ROWS, make_windows, worker_pool
from mww_core.frontend import NUM_CHANNELS
from mww_core.store import Windows, empty_windows, scores_or_nan

log = logging.getLogger(__name__)


def _seed_name(source: str) -> str:
    """What a mined window's augmentation seed is drawn from: its source as the store names it.

    Sources inside the data folder are named relative to it. An absolute path (a retraining
    inbox, an extra source folder) is named by its file name and contents instead, so the same
    clips give the same copies wherever their folder lives (a path would make the seeds, and the
    fine-tuned model, depend on the folder's location).
    """
    path = Path(source)
    if not path.is_absolute() or not path.is_file():
        return source
    digest = hashlib.sha256()
    with path.open("rb") as audio:
        for block in iter(lambda: audio.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name}|{digest.hexdigest()[:16]}"


def augment_mined_windows(
    config: FullConfig,
    mined: Windows,
    copies: int,
    pool: cf.Executor | None = None,
    progress: Progress | None = None,
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
        progress: ``progress("augmented copies", done, total)`` as the copies are made.

    Returns:
        ``hard_negative`` rows with provenance: source, offset and the augmentation seed.
    """
    frames = config.features.window_frames
    rows = [i for i, s in enumerate(mined.source) if "#" not in s]
    if copies <= 0 or not rows or not config.augmentation.enabled:
        return empty_windows(frames)
    names = {s: _seed_name(s) for s in {str(mined.source[i]) for i in rows}}
    jobs = tuple(
        WindowJob(str(mined.source[i]), MINED_KIND, c, float(mined.offset_s[i]),
                  job_seed(config.augmentation.seed, f"mined|{names[str(mined.source[i])]}", c,
                           float(mined.offset_s[i])))
        for i in rows
        for c in range(copies)
    )  # fmt: skip
    if pool is None:
        with worker_pool(config) as own:
            return augment_mined_windows(config, mined, copies, own, progress)
    chunks = [jobs[a : a + TASK_ROWS] for a in range(0, len(jobs), TASK_ROWS)]
    feats, kept, errors = [], [], {}
    starts = range(0, len(jobs), TASK_ROWS)
    for start, (f, k, e) in zip(starts, pool.map(make_windows, chunks), strict=True):
        feats.append(f)
        kept += [start + i for i in k]
        errors.update(e)
        if progress is not None:
            progress("augmented copies", min(start + TASK_ROWS, len(jobs)), len(jobs))
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
