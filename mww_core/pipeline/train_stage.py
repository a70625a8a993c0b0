"""A training phase as a stage: seeded batches, validation like the device, checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _train_fingerprint(config: FullConfig, phase_index: int, *upstream: str) -> str:
    phase = config.training.phases[phase_index]
    shared = config.training.model_copy(update={"phases": []})
    return fingerprint(
        *upstream,
        phase.fingerprint(),
        shared.fingerprint(),
        config.model.fingerprint(),
        config.performance.fingerprint(),
        stages.code_fingerprint(__name__),
    )


def streamed_data(config: FullConfig, paths: list, input_frames: int, **focus):
    """The training shards as ``StreamedTrainingData`` with the config's seed and pool sizes
    (and each row's engine when a phase trains against telling engines apart).

    ``focus`` passes ``focus_paths``, ``focus_fraction`` and ``focus_weight`` on.
    """
    from mww_core.training.streamed import StreamedTrainingData

    cfg = config.training
    adversarial = any(phase.engine_adversarial > 0 for phase in cfg.phases)
    return StreamedTrainingData(
        paths,
        input_frames,
        cfg.seed,
        pool_windows=cfg.pool_windows,
        draws_per_window=cfg.pool_draws_per_window,
        engine_prefixes=cfg.engine_prefixes if adversarial else (),
        **focus,
    )


def validation_set(config: FullConfig, feats: StageRecord, split: str = "validation"):
    """The streams of a features record's ``split`` (validation by default), with their
    near-miss slips marked as training counts them apart."""
    from mww_core.features.streams import split_slips
    from mww_core.store import open_streams
    from mww_core.training.batches import ValidationSet

    streams = open_streams(feats.outputs["streams"][split])
    slips = split_slips(config, split, streams, config.training.near_miss_min_distance)
    return ValidationSet(streams, slips)


def run_train_phase(
    config: FullConfig,
    phase_index: int,
    feats: StageRecord,
    previous: StageRecord | None = None,
    mined: StageRecord | None = None,
    progress: Progress | None = None,
    training_logger=None,
) -> StageRecord:
    """One training phase; later phases start from the previous best weights.

    ``training_logger`` (a ``mww_core.training.display.TrainingLogger``) receives the
    training events; by default they become log lines.
    """
    upstream = [feats.fingerprint] + [r.fingerprint for r in (previous, mined) if r]
    fp = _train_fingerprint(config, phase_index, *upstream)

    def compute(stage_dir: Path) -> dict:
        from mww_core.training.trainer import HISTORY, Trainer

        paths = [p for p, _ in feats.outputs["train_windows"].values()]
        if mined is not None:
            paths.append(Path(mined.outputs["hard_negatives"]))
        trainer = Trainer(config, stage_dir, progress, training_logger)
        data = streamed_data(config, paths, trainer.input_frames)
        validation = validation_set(config, feats)
        init = Path(previous.outputs["best_weights"]) if previous else None
        init_best = previous.metrics.get("best") if previous else None
        result = trainer.train_phase(phase_index, data, validation, init, init_best=init_best)
        history = stage_dir / HISTORY  # the trainer's record of every validation, resumes too
        return {
            "outputs": {
                "best_weights": result["best_weights"],
                "own_best_weights": result["own_best_weights"],
                "history": str(history),
                "tensorboard": str(stage_dir / "tensorboard"),
            },
            "metrics": {"best": result["best"], "seconds": result["seconds"]},
        }

    name = f"train_phase_{phase_index + 1}"
    return run_stage(config.run_dir / name, name, fp, compute)
