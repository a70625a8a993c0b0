"""The mining stage: windows the phase-1 model falsely accepts, and augmented copies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _clip_names(config: FullConfig, streams: list) -> dict[str, list[str]]:
    """Source file of each clip of the joined streams (as the features stage listed them)."""
    from mww_core.audio import list_audio_files

    names = {}
    for stream in streams:
        folder = config.data.data_dir / stream.source
        if stream.spans and folder.is_dir():
            files = [
                p.relative_to(config.data.data_dir).as_posix() for p in list_audio_files(folder)
            ]
            # A file the features stage skipped as unreadable breaks the mapping: fall back.
            if len(files) == len(stream.spans):
                names[stream.source] = files
    return names


def _top_hard_negatives(found, count: int = 10) -> list[dict]:
    """The highest-scoring mined windows, for the stage record."""
    order = np.argsort(-found.score, kind="stable")[:count]
    return [
        {"source": str(found.source[i]), "offset_s": round(float(found.offset_s[i]), 2),
         "score": round(float(found.score[i]), 4)}
        for i in order
    ]  # fmt: skip


def run_mining(
    config: FullConfig, feats: StageRecord, phase: StageRecord, progress: Progress | None = None
) -> StageRecord:
    """Mine hard negatives from the train split's negative and ambient streams."""
    fp = fingerprint(
        feats.fingerprint,
        phase.fingerprint,
        config.mining.fingerprint(),
        stages.code_fingerprint(__name__),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.features.mined import augment_mined_windows
        from mww_core.mining import HardExampleMiner
        from mww_core.model import load_model
        from mww_core.store import Windows, open_streams
        from mww_core.training.trainer import keras_scorer

        miner = HardExampleMiner(config)
        streams = open_streams(feats.outputs["streams"]["train"])
        if config.mining.enabled:
            scorer = keras_scorer(load_model(config.model, phase.outputs["best_weights"]), config)
            names = _clip_names(config, streams)
            found = miner.mine_from_dataset(scorer, streams, names, progress)
        else:
            found = miner.mine_from_dataset(lambda f: np.zeros(len(f) // 3, np.float32), [])
        copies = config.mining.augmented_copies if config.mining.enabled else 0
        augmented = augment_mined_windows(config, found, copies, progress=progress)
        log.info("mining: %d augmented copies of the %d kept windows", len(augmented), len(found))
        path = stage_dir / "hard_negatives.parquet"
        frames = config.features.window_frames
        miner.save_hard_negatives(path, Windows.concat([found, augmented], frames))
        return {
            "outputs": {"hard_negatives": str(path)},
            "metrics": {
                "kept": len(found),
                "augmented": len(augmented),
                **{k: v for k, v in miner.totals().items() if k != "kept"},
                "threshold": config.mining.threshold,
                "per_source": miner.stats,
                "top": _top_hard_negatives(found),
            },
        }

    return run_stage(config.run_dir / "mine_hard_negatives", "mine", fp, compute)
