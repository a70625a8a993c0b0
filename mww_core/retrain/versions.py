"""Model versions: the current one, the next ``versions/vNNNN`` folder, what the model accepts."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from mww_core import stages
from mww_core.atomic import atomic_write_text
from mww_core.config import FullConfig
from mww_core.retrain.inbox import retrain_dir
from mww_core.stages import StageRecord

log = logging.getLogger(__name__)

CURRENT = "current.json"


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


def build_current_model(config: FullConfig, current: dict):
    """The Keras model of the current version (its weights loaded)."""
    from mww_core.model import build_model, load_weights

    model = build_model(config.model)
    load_weights(model, current["weights"])
    return model


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
