"""The pipeline's stages as plain functions: fingerprint inputs, skip or run, record outputs."""

from __future__ import annotations

import json
import logging
import re
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
_MODEL_CODE = ("model", "model.mixednet", "model.inception", "model.streaming")
STAGE_CODE = {
    "data": ("demo_data", "audio"),
    "features": ("features", "augment", "frontend", "store", "audio", "evaluation", "importers"),
    "train": (
        *_MODEL_CODE,
        "training.trainer",
        "training.batches",
        "training.metrics",
        "training.display",
        "training.profiler",
        "store",
        "evaluation",
    ),
    "mine": ("mining", *_MODEL_CODE, "store", "evaluation", "features", "augment", "frontend"),
    "evaluate": ("evaluation", "export", *_MODEL_CODE, "reports"),
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
        if not current and stages.is_dry_run():
            raise stages.WouldRun("data")
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
    """Features stage: train windows and validation/test streams as Parquet.

    Train shards live in ``<run>/feature_shards``, named by their inputs, so after a change
    (say, 10 new negative files) only the shards whose inputs changed are computed again.
    """
    extra = [stages.file_listing(s.path) for s in config.data.sources]
    extra += [stages.file_listing(s.path) for s in config.data.feature_sets]
    fp = fingerprint(
        data.fingerprint,
        config.data.model_dump(mode="json", include={"sources", "feature_sets"}),
        extra,
        config.augmentation.fingerprint(),
        config.features.fingerprint(),
        stages.code_fingerprint(*STAGE_CODE["features"], "importers"),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core import fanout, fsstore
        from mww_core.features import build_features

        # Shards made by Dask workers (tasks.feature_fanout) are already in the store.
        local = fsstore.local_path(fanout.store_location(config))
        if local is None:  # memory://, s3://, gs://...: the store-agnostic path
            return fanout.build_features_at(config, stage_dir, fanout.store_url(config), progress)
        return build_features(config, stage_dir, progress, local)

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
    training_logger=None,
) -> StageRecord:
    """One training phase; later phases start from the previous best weights.

    ``training_logger`` (a ``mww_core.training.display.TrainingLogger``) receives the
    training events; by default they become log lines.
    """
    upstream = [feats.fingerprint] + [r.fingerprint for r in (previous, mined) if r]
    fp = _train_fingerprint(config, phase_index, *upstream)

    def compute(stage_dir: Path) -> dict:
        from mww_core.store import read_streams, read_windows
        from mww_core.training.trainer import Trainer, TrainingData, ValidationSet

        paths = [p for p, _ in feats.outputs["train_windows"].values()]
        if mined is not None:
            paths.append(Path(mined.outputs["hard_negatives"]))
        trainer = Trainer(config, stage_dir, progress, training_logger)
        data = TrainingData(read_windows(paths), trainer.input_frames, config.training.seed)
        validation = ValidationSet(read_streams(Path(feats.outputs["streams"]["validation"])))
        init = Path(previous.outputs["best_weights"]) if previous else None
        init_best = previous.metrics.get("best") if previous else None
        result = trainer.train_phase(phase_index, data, validation, init, init_best=init_best)
        history = stage_dir / "history.json"
        atomic_write_text(history, json.dumps(trainer.history, indent=2))
        return {
            "outputs": {
                "best_weights": result["best_weights"],
                "own_best_weights": result["own_best_weights"],
                "history": str(history),
                "tensorboard": str(stage_dir / "tensorboard"),
            },
            "metrics": {"best": result["best"], "seconds": result["seconds"]},
        }

    return run_stage(config.run_dir / f"train_phase_{phase_index + 1}", "train", fp, compute)


def _load_model(config: FullConfig, weights: str):
    from mww_core.model import build_model, load_weights

    model = build_model(config.model)
    load_weights(model, weights)
    return model


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
        stages.code_fingerprint(*STAGE_CODE["mine"]),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.features import augment_mined_windows
        from mww_core.mining import HardExampleMiner
        from mww_core.store import Windows, read_streams
        from mww_core.training.trainer import keras_scorer

        miner = HardExampleMiner(config)
        streams = read_streams(Path(feats.outputs["streams"]["train"]))
        if config.mining.enabled:
            scorer = keras_scorer(_load_model(config, phase.outputs["best_weights"]), config)
            found = miner.mine_from_dataset(scorer, streams, _clip_names(config, streams))
        else:
            found = miner.mine_from_dataset(lambda f: np.zeros(len(f) // 3, np.float32), [])
        copies = config.mining.augmented_copies if config.mining.enabled else 0
        augmented = augment_mined_windows(config, found, copies)
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


def representative_spectrograms(config: FullConfig, feats: StageRecord) -> list[np.ndarray]:
    """Float training windows for quantization, half positive, chosen with the seed."""
    from mww_core.frontend import features_to_float
    from mww_core.store import read_windows

    paths = [p for p, _ in feats.outputs["train_windows"].values()]
    windows = read_windows(paths)
    rng = np.random.default_rng(config.training.seed)
    n = max(2, config.export.representative_samples // 50)
    pos = np.flatnonzero(windows.label == 1)
    neg = np.flatnonzero(windows.label == 0)
    rows = np.concatenate(
        [rng.choice(pos, min(n // 2, len(pos)), False), rng.choice(neg, min(n, len(neg)), False)]
    )
    return [features_to_float(windows.features[i]) for i in rows]


EQUAL_RECALL_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def _phase_1_record(config: FullConfig, phase: StageRecord) -> StageRecord | None:
    """Phase 1's record from the run folder, unless ``phase`` is phase 1 itself."""
    path = config.run_dir / "train_phase_1" / stages.MANIFEST
    if not path.exists():
        return None
    record = StageRecord(**json.loads(path.read_text()))
    return None if record.fingerprint == phase.fingerprint else record


def _evaluate_weights(
    config: FullConfig, feats: StageRecord, weights: str, model_path: Path, done: Callable
) -> dict:
    """Quantize one model, stream validation and test audio; sweeps and the scored streams."""
    from mww_core import evaluation, export
    from mww_core.store import read_streams
    from mww_core.training.trainer import score_feature_streams

    model = _load_model(config, weights)
    tflite = export.convert_streaming_tflite(
        model, config.model, representative_spectrograms(config, feats)
    )
    export.atomic_write_bytes(model_path, tflite)
    runner = evaluation.StreamingTFLiteModel(model_path)
    sweeps, scored = {}, {}
    for split in ("validation", "test"):
        streams = read_streams(Path(feats.outputs["streams"][split]))
        scored[split] = score_feature_streams(runner, streams, runner.stride)
        sweeps[split] = evaluation.sweep(
            scored[split], config.evaluation, evaluation.sweep_cutoffs(config.evaluation)
        )
        done()
    chosen, met = evaluation.choose_cutoff(
        sweeps["validation"], config.evaluation.target_fah, config.evaluation.cutoffs
    )
    test_row = next(r for r in sweeps["test"] if r["cutoff"] == chosen["cutoff"])
    summary = {
        "cutoff": chosen["cutoff"],
        "target_met_on_validation": met,
        "validation": chosen,
        "test": test_row,
    }
    return {"summary": summary, "sweeps": sweeps, "scored": scored}


def _test_groups(config: FullConfig, hits: list[bool]) -> dict:
    """Test recall per voice group and per condition, and what the test split holds out.

    Read from the data set's ``dataset.json``; ``{}`` unless it describes every test positive.
    """
    from mww_core import evaluation
    from mww_core.audio import list_audio_files

    data_dir = config.data.data_dir
    manifest = data_dir / "dataset.json"
    folder = data_dir / "test" / "positive"
    if not manifest.exists() or not folder.is_dir():
        return {}
    described = json.loads(manifest.read_text())
    files = described.get("files", {})
    names = [p.relative_to(data_dir).as_posix() for p in list_audio_files(folder)]
    if len(names) != len(hits) or not all(n in files for n in names):
        log.info("recall per voice group skipped: %s does not describe every test clip", manifest)
        return {}
    voices = [evaluation.voice_group(files[n]) for n in names]
    out = {"voice_groups": evaluation.recall_by_group(hits, voices)}
    if any("condition" in files[n] for n in names):
        conditions = [evaluation.clip_condition(files[n]) for n in names]
        out["conditions"] = evaluation.recall_by_group(hits, conditions)
    summary = described.get("held_out", {}).get("test", {}).get("summary")
    return {**out, "test_held_out": summary} if summary else out


def _evaluation_metrics(
    config: FullConfig, final: dict, first: dict | None, learned: dict | None = None
) -> dict:
    """The evaluate stage's metrics: final model at its cutoff, phase 1 beside it, comparisons.

    ``learned`` is phase 2's own best when the final model is phase 1's carried-over weights.
    """
    from mww_core import evaluation

    cfg = config.evaluation
    summary, scored = final["summary"], final["scored"]
    stride = scored["test"].stride
    test = scored["test"]
    detections = evaluation.detect_with_config(test.positive_probs, summary["cutoff"], cfg, stride)
    hits = [bool(h) for h in evaluation.clip_hits(detections, test.positive_spans, stride)]
    sweeps = {"phase 2": (learned or final)["sweeps"]}
    sweeps |= {"phase 1": first["sweeps"]} if first else {}
    # Fixed levels, plus every high recall either model reaches (where the models differ).
    reached = {r["recall"] for s in sweeps.values() for r in s["test"] if (r["recall"] or 0) >= 0.9}
    levels = sorted({*EQUAL_RECALL_LEVELS, summary["test"]["recall"] or 0.0, *reached})
    return {
        **summary,
        "target_fah": cfg.target_fah,
        "ambient_hours": {s: v.ambient_duration_s / 3600.0 for s, v in scored.items()},
        "clips": {
            s: {"positive": len(v.positive_spans), "negative": len(v.negative_spans)}
            for s, v in scored.items()
        },
        "confusion_matrix": evaluation.confusion_matrix(
            summary["test"], len(test.positive_spans), len(test.negative_spans)
        ),
        **_test_groups(config, hits),
        "firing": {
            "stride": stride,
            "sliding_window_size": cfg.sliding_window_size,
            "refractory_inferences": cfg.refractory_inferences,
            "ignore_first_inferences": evaluation.ignored_inferences(
                cfg.ignore_first_frames, stride
            ),
        },
        "phase_1": first["summary"] if first else None,
        "shipped": "phase 1" if learned else "phase 2",
        "phase_2": (learned or final)["summary"],
        "equal_recall": (
            evaluation.compare_at_equal_recall({n: s["test"] for n, s in sweeps.items()}, levels)
            if first
            else []
        ),
    }


def run_evaluation(
    config: FullConfig,
    feats: StageRecord,
    phase: StageRecord,
    progress: Progress | None = None,
    phase_1: StageRecord | None = None,
) -> StageRecord:
    """Quantize the best model, stream validation (cutoff) and test (report) like the device.

    The phase-1 model is evaluated the same way (``phase_1``, or phase 1's record in the run
    folder) so the report shows what mining and phase 2 changed.
    """
    first = phase_1 if phase_1 is not None else _phase_1_record(config, phase)
    fp = fingerprint(
        feats.fingerprint,
        phase.fingerprint,
        first.fingerprint if first else None,
        config.evaluation.fingerprint(),
        config.export.representative_samples,
        stages.code_fingerprint(*STAGE_CODE["evaluate"]),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.reports import write_report

        total = 4 if first else 2
        count = iter(range(1, total + 1))

        def done() -> None:
            if progress:
                progress("evaluate", next(count), total)

        model_path = stage_dir / "model.tflite"
        own = phase.outputs.get("own_best_weights")
        carried = bool(first and own and (phase.metrics.get("best") or {}).get("carried_over"))
        # A carried-over phase ships phase 1's weights: evaluate those once, and what it learned.
        shipped = first.outputs["best_weights"] if carried else phase.outputs["best_weights"]
        final = _evaluate_weights(config, feats, shipped, model_path, done)
        earlier = learned = None
        if first and carried:
            earlier = final
            learned = _evaluate_weights(
                config, feats, own, stage_dir / "phase_2_model.tflite", done
            )
        elif first:
            weights = first.outputs["best_weights"]
            earlier = _evaluate_weights(
                config, feats, weights, stage_dir / "phase_1_model.tflite", done
            )
        metrics = _evaluation_metrics(config, final, earlier, learned)
        sweeps = {"phase 2": (learned or final)["sweeps"]}
        sweeps |= {"phase 1": earlier["sweeps"]} if earlier else {}
        metrics_path = stage_dir / "metrics.json"
        atomic_write_text(metrics_path, json.dumps({**metrics, "sweeps": sweeps}, indent=2))
        report = write_report(stage_dir, metrics, sweeps)
        log.info(
            "evaluation: cutoff %.2f, test recall %s, FAH %s",
            metrics["cutoff"], metrics["test"]["recall"], metrics["test"]["fah"],
        )  # fmt: skip
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


def run_all(
    config: FullConfig,
    progress: Progress | None = None,
    training_logger=None,
    last: str = "export",
) -> dict[str, StageRecord]:
    """Every stage in order in this process (no Prefect), up to ``last`` ("train" or "export").

    The flow composes the same stages as Prefect tasks; this is the sequence for the CLI, the
    module-level ``train()`` and the up-to-date check. Returns each stage's record by name.
    """
    records = {"data": prepare_data(config, progress)}
    feats = records["features"] = run_features(config, records["data"], progress)
    phase = run_train_phase(config, 0, feats, training_logger=training_logger)
    mined = records["mine"] = run_mining(config, feats, phase, progress)
    if training_logger is not None:
        training_logger.print_mining_stats({"kept": mined.metrics.get("kept")})
    for index in range(1, len(config.training.phases)):
        phase = run_train_phase(config, index, feats, phase, mined, None, training_logger)
    records["train"] = phase
    if last == "train":
        return records
    records["evaluate"] = run_evaluation(config, feats, phase, progress)
    records["export"] = run_export(config, records["evaluate"])
    return records


def up_to_date(config: FullConfig) -> dict[str, StageRecord] | None:
    """Every stage's record when all are up to date (nothing would run), else None.

    Checks the same fingerprints the stages do, without importing TensorFlow or starting
    anything, so an unchanged run can finish in a second or two.
    """
    try:
        with stages.dry_run():
            return run_all(config)
    except stages.WouldRun as stage:
        log.info("stage %s has new inputs: running the pipeline", stage)
        return None
