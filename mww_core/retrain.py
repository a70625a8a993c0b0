"""Retraining on new negative audio: inbox scan, mining, fine-tuning and gated promotion."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mww_core import pipeline, stages
from mww_core.atomic import atomic_write_text
from mww_core.config import FullConfig, RetrainConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

# TensorFlow and the TFLite interpreter are imported inside the steps that need them, so a
# round with nothing new finishes in well under a second.

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
STATE = "state.json"
CURRENT = "current.json"

# The joined stream of a round's new clips (its source name in the stored streams).
INBOX_SOURCE = "inbox"


@dataclass
class InboxScan:
    """What a scan of the negatives inbox found: the new clips and the round they start."""

    inbox_dir: str
    fingerprint: str  # of every clip in the inbox (content hashes)
    new_files: dict[str, str]  # path relative to the inbox -> sha256 of its content
    total_files: int
    round: int
    round_dir: str
    seconds: float

    def to_dict(self) -> dict:
        """Plain dict (JSON-serializable)."""
        return asdict(self)


def retrain_dir(config: FullConfig) -> Path:
    """Folder of a run's retraining state, model versions and rounds."""
    return config.run_dir / "retrain"


def round_config(config: FullConfig, number: int) -> FullConfig:
    """The config whose run folder is round ``number`` (so pipeline stages write there)."""
    return config.model_copy(
        update={"runs_dir": retrain_dir(config) / "rounds", "run_name": f"round-{number:04d}"}
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_state(config: FullConfig) -> dict:
    """Processed inbox clips (by content hash) and a summary of every round so far."""
    path = retrain_dir(config) / STATE
    if not path.exists():
        return {"processed": {}, "rounds": []}
    return json.loads(path.read_text())


def scan_inbox(config: FullConfig) -> InboxScan:
    """Hash every clip in the inbox; clips whose content was processed before are not new."""
    from mww_core.audio import list_audio_files

    started = time.time()
    inbox = config.retrain.inbox_dir
    if not inbox.is_dir():
        raise FileNotFoundError(
            f"{inbox}: negatives inbox folder not found; create it and drop new negative clips "
            "(wav/flac) there, or point retrain.inbox_dir at your folder"
        )
    hashes = {p.relative_to(inbox).as_posix(): _sha256(p) for p in list_audio_files(inbox)}
    state = load_state(config)
    seen = set(state["processed"].values())
    number = len(state["rounds"]) + 1
    return InboxScan(
        inbox_dir=str(inbox),
        fingerprint=fingerprint(sorted(hashes.values())),
        new_files={rel: h for rel, h in hashes.items() if h not in seen},
        total_files=len(hashes),
        round=number,
        round_dir=str(round_config(config, number).run_dir),
        seconds=time.time() - started,
    )


# --- model versions ----------------------------------------------------------------------------


def load_record(stage_dir: Path) -> StageRecord:
    """The ``stage.json`` of a finished stage, or a clear error naming what to run."""
    path = stage_dir / stages.MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: stage not finished; run the train-wakeword flow with this config and run "
            "name first (retraining starts from a trained run)"
        )
    return StageRecord(**json.loads(path.read_text()))


def has_current_version(config: FullConfig) -> bool:
    """Whether a retraining run has recorded the current model version yet."""
    return (retrain_dir(config) / CURRENT).exists()


def current_version(config: FullConfig) -> dict:
    """The promoted model; the first call records the training run's export as ``v0001``."""
    path = retrain_dir(config) / CURRENT
    if path.exists():
        return json.loads(path.read_text())
    run = config.run_dir
    trained = load_record(run / f"train_phase_{len(config.training.phases)}")
    evaluated = load_record(run / "evaluate")
    exported = load_record(run / "export")
    files = {
        "weights": trained.outputs["best_weights"],
        "tflite": exported.outputs["tflite"],
        "manifest": exported.outputs["manifest"],
        "metrics": evaluated.outputs["metrics"],
    }
    info = {"source": str(run), "test": evaluated.metrics["test"]}
    return write_version(config, files, evaluated.metrics["cutoff"], info)


def write_version(config: FullConfig, files: dict[str, str], cutoff: float, info: dict) -> dict:
    """Copy a model into the next ``versions/vNNNN`` folder and make it the current one.

    The folder is filled under a temporary name and renamed, then ``current.json`` is replaced
    atomically; earlier versions stay where they are.
    """
    versions = retrain_dir(config) / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[1:]) for p in versions.glob("v[0-9]*") if p.name[1:].isdigit()]
    name = f"v{max(numbers, default=0) + 1:04d}"
    tmp = versions / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for source in files.values():
        shutil.copy2(source, tmp / Path(source).name)
    final = versions / name
    record = {
        "version": name,
        "created": time.time(),
        "cutoff": cutoff,
        **{key: str(final / Path(source).name) for key, source in files.items()},
        **info,
    }
    atomic_write_text(tmp / "version.json", json.dumps(record, indent=2))
    tmp.rename(final)
    atomic_write_text(retrain_dir(config) / CURRENT, json.dumps(record, indent=2))
    log.info("model %s is now current (%s)", name, final)
    return record


# --- one round ---------------------------------------------------------------------------------


def inbox_stream(config: FullConfig, paths: list[Path]):
    """The new clips joined by gaps into one negative feature stream, as the device hears them.

    Returns:
        The stream and the clips in it (unreadable clips are skipped with a warning).
    """
    from mww_core.audio import AudioError, load_audio
    from mww_core.evaluation import stream_clips
    from mww_core.frontend import compute_features
    from mww_core.store import Stream

    clips, kept = [], []
    for path in paths:
        try:
            clips.append(load_audio(path))
            kept.append(path)
        except AudioError as exc:
            log.warning("inbox clip skipped: %s", exc)
    if not clips:
        raise ValueError(f"none of the {len(paths)} new inbox clips could be read (see warnings)")
    audio, spans = stream_clips(clips, config.features.stream_gap_s, seed=config.augmentation.seed)
    return Stream(compute_features(audio), INBOX_SOURCE, "negative", list(spans)), kept


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
    config: FullConfig, scan: InboxScan, inbox: StageRecord, current: dict
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
        from mww_core.features.mined import augment_mined_windows
        from mww_core.mining import HardExampleMiner
        from mww_core.store import Windows, read_streams
        from mww_core.training.trainer import keras_scorer

        miner = HardExampleMiner(config)
        model = build_current_model(config, current)
        names = {INBOX_SOURCE: inbox.outputs["clips"]}  # absolute paths: copies re-read them
        streams = read_streams(Path(inbox.outputs["streams"]))
        found = miner.mine_from_dataset(keras_scorer(model, config), streams, names)
        augmented = augment_mined_windows(config, found, copies)
        path = stage_dir / "hard_negatives.parquet"
        frames = config.features.window_frames
        miner.save_hard_negatives(path, Windows.concat([found, augmented], frames))
        return {
            "outputs": {"hard_negatives": str(path)},
            "metrics": {"kept": len(found), "augmented": len(augmented)},
        }

    return run_stage(Path(scan.round_dir) / "mine", "inbox_mining", fp, compute)


def build_current_model(config: FullConfig, current: dict):
    """The Keras model of the current version (its weights loaded)."""
    from mww_core.model import build_model, load_weights

    model = build_model(config.model)
    load_weights(model, current["weights"])
    return model


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
    those weights learned instead of pulling them towards another phase's balance.
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
    phase = last.model_copy(update={"steps": tune.steps, "learning_rate": tune.learning_rate})
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
    from mww_core.store import Windows, read_windows
    from mww_core.training.trainer import TrainingData

    old = read_windows(training_shards(config, scan))
    new = read_windows([new_path])
    if len(new) == 0:
        log.warning("the current model accepts no window of the new clips: nothing to unlearn")
    windows = Windows.concat([old, new], config.features.window_frames)
    focus = np.arange(len(windows)) >= len(old)
    tune = config.retrain.fine_tune
    return TrainingData(
        windows, frames, tuned.training.seed, focus, tune.inbox_fraction, tune.inbox_weight
    )


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
        from mww_core.store import read_streams
        from mww_core.training.trainer import Trainer, ValidationSet

        trainer = Trainer(tuned, stage_dir, progress)
        new_path = Path(mined.outputs["hard_negatives"])
        data = rehearsal_data(config, tuned, scan, new_path, trainer.input_frames)
        feats = load_record(config.run_dir / "features")
        validation = ValidationSet(read_streams(Path(feats.outputs["streams"]["validation"])))
        index = len(tuned.training.phases) - 1
        result = trainer.train_phase(
            index, data, validation, Path(current["weights"]), freeze_batch_norm=True
        )
        return {
            "outputs": {"best_weights": result["best_weights"]},
            "metrics": {
                "validation": result["best"],
                "seconds": result["seconds"],
                "rehearsed_windows": len(data.windows) - len(data.focus_rows),
                "inbox_windows": len(data.focus_rows),
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


def accepted_clips(config: FullConfig, paths: list[Path]) -> list[Path]:
    """The clips the current model fires on, each streamed on its own as the device hears it."""
    from mww_core import evaluation
    from mww_core.audio import load_audio
    from mww_core.frontend import compute_features

    current = current_version(config)
    runner = evaluation.StreamingTFLiteModel(current["tflite"])
    fired = []
    for path in paths:
        audio, spans = evaluation.stream_clips([load_audio(path)], 0.5, seed=0)
        probs = runner(compute_features(audio))
        hits = evaluation.detect_with_config(
            probs, current["cutoff"], config.evaluation, runner.stride
        )
        if evaluation.clip_hits(hits, spans, runner.stride).any():
            fired.append(path)
    return fired


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
    mined = run_inbox_mining(config, scan, inbox, current)
    tuned = run_fine_tune(config, scan, mined, current, progress)
    result = evaluate_candidate(config, scan, tuned, inbox, current)
    promote, reason = decide_promotion(
        result["current"]["test"], result["candidate"]["test"], config.retrain
    )
    return finish_round(config, scan, result, promote, reason)


def decide_promotion(current: dict, candidate: dict, tolerances: RetrainConfig) -> tuple[bool, str]:
    """Promote unless test recall falls or test FAH rises by more than the tolerances.

    Args:
        current: Test metrics row (``recall``, ``fah``) of the current model.
        candidate: The same row of the fine-tuned model.
        tolerances: ``recall_tolerance`` and ``fah_tolerance``.

    Returns:
        Whether to promote, and a sentence saying why.
    """
    recall_before, recall_after = current["recall"] or 0.0, candidate["recall"] or 0.0
    fah_before, fah_after = current["fah"] or 0.0, candidate["fah"] or 0.0
    problems = []
    if recall_before - recall_after > tolerances.recall_tolerance + 1e-9:
        problems.append(
            f"test recall fell from {recall_before:.3f} to {recall_after:.3f} "
            f"(more than the {tolerances.recall_tolerance} allowed by retrain.recall_tolerance)"
        )
    if fah_after - fah_before > tolerances.fah_tolerance + 1e-9:
        problems.append(
            f"test FAH rose from {fah_before:.2f} to {fah_after:.2f} "
            f"(more than the {tolerances.fah_tolerance} allowed by retrain.fah_tolerance)"
        )
    if problems:
        return False, "kept the current model: " + "; ".join(problems)
    return True, (
        f"promoted: test recall {recall_before:.3f} -> {recall_after:.3f}, "
        f"FAH {fah_before:.2f} -> {fah_after:.2f}, within the configured tolerances"
    )


def finish_round(
    config: FullConfig, scan: InboxScan, result: dict | None, promote: bool, reason: str
) -> dict:
    """Promote (or not), mark the new clips processed and record the round's summary."""
    current = current_version(config)
    summary = {
        "round": scan.round,
        "new_files": sorted(scan.new_files),
        "promoted": promote,
        "reason": reason,
        "previous_version": current["version"],
        "finished": time.time(),
    }
    if result is not None:
        summary["comparison"] = {k: result[k] for k in ("current", "candidate")}
    if promote and result is not None:
        exported, evaluated = result["export"]["outputs"], result["evaluate"]
        files = {
            "weights": str(Path(scan.round_dir) / "fine_tune" / "best.weights.npz"),
            "tflite": exported["tflite"],
            "manifest": exported["manifest"],
            "metrics": evaluated["outputs"]["metrics"],
        }
        info = {"source": scan.round_dir, "test": evaluated["metrics"]["test"], "reason": reason}
        current = write_version(config, files, evaluated["metrics"]["cutoff"], info)
    summary["version"] = current["version"]
    round_dir = Path(scan.round_dir)
    round_dir.mkdir(parents=True, exist_ok=True)
    det = result["evaluate"]["outputs"].get("det_plot") if result else None
    report = round_dir / "report.md"
    atomic_write_text(report, round_report(summary, det and os.path.relpath(det, round_dir)))
    summary["report"] = str(report)
    atomic_write_text(round_dir / "round.json", json.dumps(summary, indent=2))
    state = load_state(config)
    state["processed"].update(scan.new_files)
    state["rounds"].append(summary)
    atomic_write_text(retrain_dir(config) / STATE, json.dumps(state, indent=2))
    log.info("round %d: %s", scan.round, reason)
    return summary


def round_report(summary: dict, det_plot: str | None) -> str:
    """Markdown of a round: current against candidate on test audio and on the new clips."""
    lines = [f"# Retraining round {summary['round']}: {summary['reason']}", ""]
    lines.append(f"New clips: {len(summary['new_files'])}. Current model: `{summary['version']}`.")
    comparison = summary.get("comparison")
    if comparison:
        lines += [
            "",
            "| model | test recall | test FAH | inbox false accepts | inbox FAH | cutoff |",
            "|---|---|---|---|---|---|",
        ]
        for label, row in (
            ("current", comparison["current"]),
            ("candidate", comparison["candidate"]),
        ):
            test, inbox = row["test"], row["inbox"]
            lines.append(
                f"| {label} | {_fmt(test['recall'], '.3f')} | {_fmt(test['fah'], '.2f')} "
                f"| {inbox['false_accepts']}/{inbox['clips']} | {_fmt(inbox['fah'], '.1f')} "
                f"| {inbox['cutoff']:.2f} |"
            )
    if det_plot:
        lines += ["", f"![candidate DET curve]({det_plot})"]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
