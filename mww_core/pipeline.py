"""The pipeline's stages as plain functions: fingerprint inputs, skip or run, record outputs."""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mww_core import stages
from mww_core.atomic import atomic_write_text
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

# Stage modules (TensorFlow, audiomentations, matplotlib) are imported inside the stage that
# needs them, so a run whose stages are all up to date starts in a second or two.

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# mww_core modules each stage runs: their source is part of the stage's fingerprint.
STAGE_CODE = {
    "data": ("demo_data", "audio"),
    "features": ("features", "augment", "frontend", "store", "audio", "evaluation"),
    "train": ("training.trainer", "model.mixednet", "store", "evaluation"),
    "mine": ("mining", "model.mixednet", "store"),
    "evaluate": ("evaluation", "export", "model.mixednet", "reports"),
    "export": ("export", "evaluation"),
}


def wake_word_stem(name: str) -> str:
    """File stem for a wake word: ``Hey Jarvis`` -> ``hey_jarvis``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "wake_word"


def prepare_data(config: FullConfig, progress: Progress | None = None) -> StageRecord:
    """Build the demo data set when configured; check the data folder either way."""
    data = config.data
    started = time.time()
    built = False
    if data.build_demo:
        from mww_core.demo_data import build_demo_dataset, demo_fingerprint

        manifest = data.data_dir / "dataset.json"
        current = manifest.exists() and (
            json.loads(manifest.read_text()).get("fingerprint") == demo_fingerprint(data)
        )
        build_demo_dataset(data, progress)
        built = not current
    missing = [
        str(data.data_dir / split / kind)
        for split in ("train", "validation", "test")
        for kind in ("positive", "ambient")
        if not (data.data_dir / split / kind).is_dir()
    ]
    if missing:
        raise FileNotFoundError(
            f"data folder {data.data_dir} lacks {', '.join(missing)}; lay out your audio as "
            "{train,validation,test}/{positive,negative,ambient}/*.wav (see README)"
        )
    listing = stages.file_listing(data.data_dir)
    return StageRecord(
        name="data",
        fingerprint=fingerprint(listing),
        outputs={"data_dir": str(data.data_dir)},
        metrics={"files": len(listing), "bytes": sum(size for _, size, _ in listing)},
        started=started,
        finished=time.time(),
        skipped=not built,
    )


def run_features(
    config: FullConfig, data: StageRecord, progress: Progress | None = None
) -> StageRecord:
    """Features stage: train windows and validation/test streams as Parquet."""
    fp = fingerprint(
        data.fingerprint,
        config.augmentation.fingerprint(),
        config.features.fingerprint(),
        stages.code_fingerprint(*STAGE_CODE["features"]),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.features import build_features

        return build_features(config, stage_dir, progress)

    return run_stage(config.run_dir / "features", "features", fp, compute)


def _train_fingerprint(config: FullConfig, phase_index: int, *upstream: str) -> str:
    phase = config.training.phases[phase_index]
    shared = config.training.model_copy(update={"phases": []})
    return fingerprint(
        *upstream,
        phase.fingerprint(),
        shared.fingerprint(),
        config.model.fingerprint(),
        config.performance.fingerprint(),
        stages.code_fingerprint(*STAGE_CODE["train"]),
    )


def run_train_phase(
    config: FullConfig,
    phase_index: int,
    feats: StageRecord,
    previous: StageRecord | None = None,
    mined: StageRecord | None = None,
    progress: Progress | None = None,
) -> StageRecord:
    """One training phase; later phases start from the previous best weights."""
    upstream = [feats.fingerprint] + [r.fingerprint for r in (previous, mined) if r]
    fp = _train_fingerprint(config, phase_index, *upstream)

    def compute(stage_dir: Path) -> dict:
        from mww_core.store import read_streams, read_windows
        from mww_core.training.trainer import Trainer, TrainingData, ValidationSet

        paths = [Path(p) for p, _ in feats.outputs["train_windows"].values()]
        if mined is not None:
            paths.append(Path(mined.outputs["hard_negatives"]))
        trainer = Trainer(config, stage_dir, progress)
        data = TrainingData(read_windows(paths), trainer.input_frames, config.training.seed)
        validation = ValidationSet(read_streams(Path(feats.outputs["streams"]["validation"])))
        init = Path(previous.outputs["best_weights"]) if previous else None
        result = trainer.train_phase(phase_index, data, validation, init)
        history = stage_dir / "history.json"
        atomic_write_text(history, json.dumps(trainer.history, indent=2))
        return {
            "outputs": {"best_weights": result["best_weights"], "history": str(history)},
            "metrics": {"best": result["best"], "seconds": result["seconds"]},
        }

    return run_stage(config.run_dir / f"train_phase_{phase_index + 1}", "train", fp, compute)


def _load_model(config: FullConfig, weights: str):
    from mww_core.model import build_model, load_weights

    model = build_model(config.model)
    load_weights(model, weights)
    return model


def run_mining(
    config: FullConfig, feats: StageRecord, phase: StageRecord, progress: Progress | None = None
) -> StageRecord:
    """Mine hard negatives from the train split's negative and ambient streams."""
    fp = fingerprint(
        feats.fingerprint,
        phase.fingerprint,
        config.mining.fingerprint(),
        stages.code_fingerprint(*STAGE_CODE["mine"]),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.mining import HardExampleMiner
        from mww_core.store import read_streams
        from mww_core.training.trainer import keras_scorer

        miner = HardExampleMiner(config)
        streams = read_streams(Path(feats.outputs["streams"]["train"]))
        if config.mining.enabled:
            scorer = keras_scorer(_load_model(config, phase.outputs["best_weights"]), config)
            found = miner.mine_from_dataset(scorer, streams)
        else:
            found = miner.mine_from_dataset(lambda f: np.zeros(len(f) // 3, np.float32), [])
        path = stage_dir / "hard_negatives.parquet"
        miner.save_hard_negatives(path, found)
        return {
            "outputs": {"hard_negatives": str(path)},
            "metrics": {"kept": len(found), "per_source": miner.stats},
        }

    return run_stage(config.run_dir / "mine_hard_negatives", "mine", fp, compute)


def representative_spectrograms(config: FullConfig, feats: StageRecord) -> list[np.ndarray]:
    """Float training windows for quantization, half positive, chosen with the seed."""
    from mww_core.frontend import features_to_float
    from mww_core.store import read_windows

    paths = [Path(p) for p, _ in feats.outputs["train_windows"].values()]
    windows = read_windows(paths)
    rng = np.random.default_rng(config.training.seed)
    n = max(2, config.export.representative_samples // 50)
    pos = np.flatnonzero(windows.label == 1)
    neg = np.flatnonzero(windows.label == 0)
    rows = np.concatenate(
        [rng.choice(pos, min(n // 2, len(pos)), False), rng.choice(neg, min(n, len(neg)), False)]
    )
    return [features_to_float(windows.features[i]) for i in rows]


def run_evaluation(
    config: FullConfig, feats: StageRecord, phase: StageRecord, progress: Progress | None = None
) -> StageRecord:
    """Quantize the best model, stream validation (cutoff) and test (report) like the device."""
    fp = fingerprint(
        feats.fingerprint,
        phase.fingerprint,
        config.evaluation.fingerprint(),
        config.export.representative_samples,
        stages.code_fingerprint(*STAGE_CODE["evaluate"]),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core import evaluation, export
        from mww_core.reports import write_report
        from mww_core.store import read_streams
        from mww_core.training.trainer import score_feature_streams

        model = _load_model(config, phase.outputs["best_weights"])
        tflite = export.convert_streaming_tflite(
            model, config.model, representative_spectrograms(config, feats)
        )
        model_path = stage_dir / "model.tflite"
        export.atomic_write_bytes(model_path, tflite)
        runner = evaluation.StreamingTFLiteModel(model_path)
        results = {}
        for split in ("validation", "test"):
            streams = read_streams(Path(feats.outputs["streams"][split]))
            scored = score_feature_streams(runner, streams, runner.stride)
            results[split] = evaluation.sweep(scored, config.evaluation)
            if progress:
                progress("evaluate", len(results), 2)
        chosen, met = evaluation.choose_cutoff(results["validation"], config.evaluation.target_fah)
        test_row = next(r for r in results["test"] if r["cutoff"] == chosen["cutoff"])
        metrics = {
            "cutoff": chosen["cutoff"],
            "target_fah": config.evaluation.target_fah,
            "target_met_on_validation": met,
            "validation": chosen,
            "test": test_row,
        }
        metrics_path = stage_dir / "metrics.json"
        atomic_write_text(metrics_path, json.dumps({**metrics, "sweeps": results}, indent=2))
        report = write_report(stage_dir, metrics, results)
        return {
            "outputs": {"model": str(model_path), "metrics": str(metrics_path), **report},
            "metrics": metrics,
        }

    return run_stage(config.run_dir / "evaluate", "evaluate", fp, compute)


def run_export(config: FullConfig, evaluated: StageRecord) -> StageRecord:
    """Write ``<wake_word>.tflite`` and its ESPHome v2 manifest, after checking the model."""
    fp = fingerprint(
        evaluated.fingerprint,
        config.export.fingerprint(),
        config.evaluation.sliding_window_size,
        stages.code_fingerprint(*STAGE_CODE["export"]),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core import evaluation, export

        tflite = Path(evaluated.outputs["model"]).read_bytes()
        ops = export.tflite_ops(tflite)
        unsupported = ops - export.ESPHOME_OPS
        if unsupported:
            raise RuntimeError(f"model uses ops ESPHome lacks: {sorted(unsupported)}")
        measured = export.measure_tensor_arena(tflite)
        arena = export.manifest_arena_size(measured)
        stem = wake_word_stem(config.export.wake_word_name)
        manifest = export.build_manifest(
            config.export,
            f"{stem}.tflite",
            evaluated.metrics["cutoff"],
            config.evaluation.sliding_window_size,
            arena,
        )
        model_path, manifest_path = export.write_export(stage_dir, stem, tflite, manifest)
        evaluation.StreamingTFLiteModel(model_path)  # raises if the interface is not ESPHome's
        return {
            "outputs": {"tflite": str(model_path), "manifest": str(manifest_path)},
            "metrics": {
                "file_bytes": len(tflite),
                "arena_measured_bytes": measured,
                "tensor_arena_size": arena,
                "ops": sorted(ops),
                "probability_cutoff": manifest["micro"]["probability_cutoff"],
            },
        }

    return run_stage(config.run_dir / "export", "export", fp, compute)


def clear_run(config: FullConfig) -> None:
    """Delete a run folder (every stage re-runs next time)."""
    shutil.rmtree(config.run_dir, ignore_errors=True)
