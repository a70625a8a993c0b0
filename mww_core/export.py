"""Streaming int8 TFLite conversion, tensor-arena measurement and the ESPHome v2 manifest."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

import keras
import numpy as np

from mww_core.atomic import atomic_write_bytes, atomic_write_text
from mww_core.config import ExportConfig, ModelConfig

log = logging.getLogger(__name__)

# Ops ESPHome's micro_wake_word registers in its op resolver (streaming_model.cpp).
ESPHOME_OPS = {
    "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CONV_2D",
    "DEPTHWISE_CONV_2D", "RESHAPE", "CONCATENATION", "STRIDED_SLICE", "FULLY_CONNECTED",
    "LOGISTIC", "QUANTIZE", "MUL", "ADD", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD",
    "PACK", "SPLIT_V",
}  # fmt: skip
ARENA_MARGIN = 1.05  # headroom over the host-measured arena (host pointers are 64-bit)


def convert_streaming_tflite(
    model: keras.Model,
    config: ModelConfig,
    representative: list[np.ndarray],
    chunks: int = 1500,
) -> bytes:
    """Quantize the streaming clone of ``model`` (any registered architecture) for ESPHome.

    Input ``[1, stride, 40]`` int8, output ``[1, 1]`` uint8, ring buffers as int8 resource
    variables, like the official models. ``representative`` are float spectrograms.
    """
    from mww_core.model import convert_streaming_tflite as convert

    return convert(model, config, representative, chunks)


def tflite_ops(tflite: bytes) -> set[str]:
    """Names of the builtin ops a TFLite flatbuffer uses."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    return {op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"}


def measure_tensor_arena(tflite: bytes) -> int:
    """Bytes of tensor arena TFLite Micro allocates for the model (its recording allocator).

    Runs the real TFLM interpreter (package ``tflite-micro``) and reads the allocator's report,
    which it prints to the C-level stderr.
    """
    from tflite_micro.python.tflite_micro import runtime

    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=512 * 1024)
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        report = captured.read().decode(errors="replace")
    match = re.search(r"Arena allocation total (\d+) bytes", report)
    if match is None:
        raise RuntimeError(f"TFLite Micro did not report an arena size:\n{report[-2000:]}")
    return int(match.group(1))


def manifest_arena_size(measured: int) -> int:
    """The ``tensor_arena_size`` to write: the measured arena plus a small margin, 16-aligned."""
    return int(-(-int(measured * ARENA_MARGIN) // 16) * 16)


def build_manifest(
    export: ExportConfig, model_file: str, cutoff: float, sliding_window_size: int, arena: int
) -> dict:
    """The ESPHome micro_wake_word v2 manifest, with the reference models' fields."""
    return {
        "type": "micro",
        "wake_word": export.wake_word_name,
        "author": export.author,
        "website": export.website,
        "model": model_file,
        "trained_languages": list(export.trained_languages),
        "version": 2,
        "micro": {
            "probability_cutoff": round(float(cutoff), 2),
            "feature_step_size": 10,
            "sliding_window_size": int(sliding_window_size),
            "tensor_arena_size": int(arena),
            "minimum_esphome_version": export.minimum_esphome_version,
        },
    }


def write_export(out_dir: Path, stem: str, tflite: bytes, manifest: dict) -> tuple[Path, Path]:
    """Write ``<stem>.tflite`` and ``<stem>.json`` atomically; the manifest goes last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{stem}.tflite"
    manifest_path = out_dir / f"{stem}.json"
    atomic_write_bytes(model_path, tflite)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return model_path, manifest_path
