"""One retraining round: the new clips' features, mining, the fine-tune, the candidate's test."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mww_core import pipeline, stages
from mww_core.config import FullConfig
from mww_core.retrain.inbox import INBOX_SOURCE, InboxScan, inbox_stream, round_config, scan_inbox
from mww_core.retrain.promotion import decide_promotion, finish_round
from mww_core.retrain.versions import build_current_model, current_version, load_record
from mww_core.stages import StageRecord, fingerprint, run_stage

# TensorFlow and the TFLite interpreter are imported inside the steps that need them, so a
# round with nothing new finishes in well under a second.

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def run_round(config: FullConfig, progress: Progress | None = None) -> dict:
    """One retraining round in this process (no Prefect): the steps the retraining flow runs.

    Returns:
        The round's summary (``finish_round``), or ``{"round": None}`` when nothing is new.
    """
    scan = scan_inbox(config)
    current = current_version(config)
    if not scan.new_files:
        return {"round": None, "version": current["version"]}
    inbox = run_inbox_features(config, scan)
    mined = run_inbox_mining(config, scan, inbox, current, progress)
    tuned = run_fine_tune(config, scan, mined, current, progress)
    result = evaluate_candidate(config, scan, tuned, inbox, current)
    promote, reason = decide_promotion(
        result["current"]["test"], result["candidate"]["test"], config.retrain
    )
    return finish_round(config, scan, result, promote, reason)


def run_inbox_features(config: FullConfig, scan: InboxScan) -> StageRecord:
    """Features of the new inbox clips only, cached in the round folder."""
    fp = fingerprint(
        scan.new_files,
        config.features.fingerprint(),
        stages.code_fingerprint(__name__),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.store import write_streams

        inbox = Path(scan.inbox_dir)
        stream, kept = inbox_stream(config, [inbox / rel for rel in sorted(scan.new_files)])
        path = stage_dir / "inbox_streams.parquet"
        write_streams(path, [stream])
        return {
            "outputs": {"streams": str(path), "clips": [str(p.resolve()) for p in kept]},
            "metrics": {"clips": len(stream.spans), "seconds": stream.duration_s},
        }

    return run_stage(Path(scan.round_dir) / "features", "inbox_features", fp, compute)


def run_inbox_mining(
    config: FullConfig,
    scan: InboxScan,
    inbox: StageRecord,
    current: dict,
    progress: Progress | None = None,
) -> StageRecord:
    """Windows of the new clips that the current model falsely accepts, and augmented copies.

    Each kept window is re-made ``retrain.fine_tune.augmented_copies`` times from its clip with
    the features stage's augmentation, as mining does, so the fine-tune learns the confusion
    rather than a few exact spectrograms.
    """
    copies = config.retrain.fine_tune.augmented_copies
    fp = fingerprint(
        inbox.fingerprint,
        current["version"],
        config.mining.fingerprint(),
        config.augmentation.fingerprint(),
        copies,
        stages.code_fingerprint(__name__),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.features import augment_mined_windows
        from mww_core.mining import HardExampleMiner
        from mww_core.store import Windows, read_streams
        from mww_core.training.trainer import keras_scorer

        miner = HardExampleMiner(config)
        model = build_current_model(config, current)
        names = {INBOX_SOURCE: inbox.outputs["clips"]}  # absolute paths: copies re-read them
        streams = read_streams(Path(inbox.outputs["streams"]))
        found = miner.mine_from_dataset(keras_scorer(model, config), streams, names, progress)
        augmented = augment_mined_windows(config, found, copies, progress=progress)
        path = stage_dir / "hard_negatives.parquet"
        frames = config.features.window_frames
        miner.save_hard_negatives(path, Windows.concat([found, augmented], frames))
        return {
            "outputs": {"hard_negatives": str(path)},
            "metrics": {"kept": len(found), "augmented": len(augmented)},
        }

    return run_stage(Path(scan.round_dir) / "mine", "inbox_mining", fp, compute)


def training_shards(config: FullConfig, scan: InboxScan) -> list[str]:
    """The run's training windows, its mined hard negatives and those of earlier rounds.

    These are what the fine-tune rehearses. Train shards may live in a remote feature store:
    they are paths or fsspec URLs.
    """
    run = config.run_dir
    paths = [p for p, _ in load_record(run / "features").outputs["train_windows"].values()]
    mined = run / "mine_hard_negatives" / stages.MANIFEST
    if mined.exists():
        paths.append(load_record(mined.parent).outputs["hard_negatives"])
    for number in range(1, scan.round):
        earlier = round_config(config, number).run_dir / "mine" / "hard_negatives.parquet"
        if earlier.exists():
            paths.append(str(earlier))
    return paths


def shipped_phase(config: FullConfig) -> int:
    """Index of the training phase whose weights the run shipped.

    A later phase that did not beat the weights it started from on validation carries them
    over (``carried_over`` in its best record): then an earlier phase's weights ship.
    """
    index = len(config.training.phases) - 1
    while index > 0:
        best = load_record(config.run_dir / f"train_phase_{index + 1}").metrics.get("best") or {}
        if not best.get("carried_over"):
            break
        index -= 1
    return index


def fine_tune_config(config: FullConfig, scan: InboxScan) -> FullConfig:
    """The config with the fine-tune appended as a phase; validated once, at its last step.

    The phase samples as the phase whose weights shipped did (positive and hard-negative
    shares, class weights), at the fine-tune's steps and learning rate: rehearsal keeps what
    those weights learned instead of pulling them towards another phase's balance. It trains
    once, whatever the phase's ``restarts``.
    """
    tune = config.retrain.fine_tune
    last = config.training.phases[shipped_phase(config)]
    shares = last.positive_fraction + last.hard_negative_fraction + tune.inbox_fraction
    if shares >= 1.0:
        raise ValueError(
            f"retrain.fine_tune.inbox_fraction ({tune.inbox_fraction}) plus the last phase's "
            f"positive_fraction ({last.positive_fraction}) and hard_negative_fraction "
            f"({last.hard_negative_fraction}) is {shares:.2f}; it must stay below 1 so that "
            "batches keep ordinary negatives: lower retrain.fine_tune.inbox_fraction"
        )
    # One start: restarts would fine-tune the same weights again and again.
    update = {"steps": tune.steps, "learning_rate": tune.learning_rate, "restarts": 1}
    phase = last.model_copy(update=update)
    training = config.training.model_copy(
        update={
            "phases": [*config.training.phases, phase],
            "eval_step_interval": phase.steps,
            "seed": config.retrain.seed + scan.round,
        }
    )
    return config.model_copy(update={"training": training})


def rehearsal_data(config: FullConfig, tuned: FullConfig, scan: InboxScan, new_path: Path, frames):
    """The run's training windows to rehearse, with this round's inbox windows as the focus."""
    from mww_core.pipeline.train_stage import streamed_data

    tune = config.retrain.fine_tune
    data = streamed_data(
        tuned,
        training_shards(config, scan),
        frames,
        focus_paths=[new_path],
        focus_fraction=tune.inbox_fraction,
        focus_weight=tune.inbox_weight,
    )
    if data.focus_rows == 0:
        log.warning("the current model accepts no window of the new clips: nothing to unlearn")
    return data


def run_fine_tune(
    config: FullConfig,
    scan: InboxScan,
    mined: StageRecord,
    current: dict,
    progress: Progress | None = None,
) -> StageRecord:
    """Fine-tune the current model: rehearse the training data, unlearn the new false accepts."""
    tuned = fine_tune_config(config, scan)
    shards = training_shards(config, scan)
    fp = fingerprint(
        mined.fingerprint,
        current["version"],
        shards,  # train shards are named by a fingerprint of their inputs
        config.retrain.fingerprint(),
        tuned.training.fingerprint(),
        config.model.fingerprint(),
        stages.code_fingerprint(__name__),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.pipeline.train_stage import validation_set
        from mww_core.training.trainer import Trainer

        trainer = Trainer(tuned, stage_dir, progress)
        new_path = Path(mined.outputs["hard_negatives"])
        data = rehearsal_data(config, tuned, scan, new_path, trainer.input_frames)
        feats = load_record(config.run_dir / "features")
        validation = validation_set(tuned, feats)
        index = len(tuned.training.phases) - 1
        result = trainer.train_phase(
            index, data, validation, Path(current["weights"]), freeze_batch_norm=True
        )
        return {
            "outputs": {"best_weights": result["best_weights"]},
            "metrics": {
                "validation": result["best"],
                "seconds": result["seconds"],
                "rehearsed_windows": len(data) - data.focus_rows,
                "inbox_windows": data.focus_rows,
            },
        }

    return run_stage(Path(scan.round_dir) / "fine_tune", "fine_tune", fp, compute)


def inbox_false_accepts(config: FullConfig, tflite: str, cutoff: float, streams_path: str) -> dict:
    """False accepts and false activations per hour of a streaming model on the inbox stream."""
    from mww_core import evaluation
    from mww_core.store import read_streams

    runner = evaluation.StreamingTFLiteModel(tflite)
    (stream,) = read_streams(Path(streams_path))
    probs = runner(stream.features)
    scored = evaluation.ScoredStreams(
        stride=runner.stride,
        positive_probs=np.zeros(0, np.float32),
        positive_spans=[],
        negative_probs=probs,
        negative_spans=list(stream.spans),
        ambient_probs=[probs],
        ambient_duration_s=stream.duration_s,
    )
    (row,) = evaluation.sweep(scored, config.evaluation, [cutoff])
    return {
        "cutoff": cutoff,
        "clips": len(stream.spans),
        "false_accepts": row["false_accepts"],
        "false_accept_rate": row["false_accept_rate"],
        "activations": row["ambient_activations"],
        "fah": row["fah"],
    }


def evaluate_candidate(
    config: FullConfig, scan: InboxScan, tuned: StageRecord, inbox: StageRecord, current: dict
) -> dict:
    """Evaluate and export the fine-tuned model (pipeline stages); compare both on the inbox."""
    rcfg = round_config(config, scan.round)
    feats = load_record(config.run_dir / "features")
    evaluated = pipeline.run_evaluation(rcfg, feats, tuned)
    exported = pipeline.run_export(rcfg, evaluated)
    streams = inbox.outputs["streams"]
    cutoff = evaluated.metrics["cutoff"]
    return {
        "evaluate": evaluated.to_dict(),
        "export": exported.to_dict(),
        "current": {
            "version": current["version"],
            "test": current["test"],
            "inbox": inbox_false_accepts(config, current["tflite"], current["cutoff"], streams),
        },
        "candidate": {
            "test": evaluated.metrics["test"],
            "inbox": inbox_false_accepts(config, exported.outputs["tflite"], cutoff, streams),
        },
    }
