"""The export stage: the ESPHome model and its v2 manifest, checked before they are written."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def wake_word_stem(name: str) -> str:
    """File stem for a wake word: ``Hey Jarvis`` -> ``hey_jarvis``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "wake_word"


def run_export(config: FullConfig, evaluated: StageRecord) -> StageRecord:
    """Write ``<wake_word>.tflite`` and its ESPHome v2 manifest, after checking the model."""
    fp = fingerprint(
        evaluated.fingerprint,
        config.export.fingerprint(),
        config.evaluation.sliding_window_size,
        stages.code_fingerprint(__name__),
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
