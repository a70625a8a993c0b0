"""The streaming int8 TFLite runner (ESPHome's reference kernels) and manifest checks."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from mww_core.evaluation.firing import DEVICE_OUTPUT_SCALE
from mww_core.frontend import (
    DEVICE_INPUT_SCALE,
    INPUT_SCALE,
    INPUT_ZERO_POINT,
    NUM_CHANNELS,
    quantize_like_device,
)

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 2

_MICRO_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "probability_cutoff": (lambda v: _is_number(v) and 0.0 < v <= 1.0, "a number in (0, 1]"),
    "sliding_window_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "feature_step_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (ms)"),
    "tensor_arena_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (bytes)"),
    "minimum_esphome_version": (lambda v: isinstance(v, str) and bool(v), "a version string"),
}


class ManifestError(ValueError):
    """An unusable ESPHome model manifest; the message names the file and every problem."""


# --------------------------------------------------------------------------------------------
# The TFLite streaming runner


class StreamingTFLiteModel:
    """A streaming int8 ``.tflite`` wake-word model, run as ESPHome runs it.

    Input ``[1, stride, 40]`` int8, output ``[1, 1]`` uint8, state in resource variables. By
    default the interpreter uses TFLite's reference kernels: they are bit-exact with TFLite Micro
    (the device runtime), whereas the optimized/XNNPACK kernels differ by up to ~11/256 on a few
    outputs, which can move a detection across a cutoff. An instance is not thread-safe.

    Attributes:
        path: The model file.
        stride: Feature frames consumed per inference, read from the input shape.
        input_details: The interpreter's input tensor details.
        output_details: The interpreter's output tensor details.
    """

    def __init__(self, path: str | Path, reference_kernels: bool = True) -> None:
        """Load and check the model.

        Args:
            path: A streaming ``.tflite`` file.
            reference_kernels: Use the reference kernels: device-exact, ~7x slower than the
                optimized ones, and then about as costly as the frontend (~8 s per hour of audio
                each on one core).

        Raises:
            FileNotFoundError: The file does not exist.
            ValueError: The model does not have the device's input/output interface.
        """
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: TFLite model not found")
        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        self._interpreter = Interpreter(
            model_path=str(self.path), experimental_op_resolver_type=resolver, num_threads=1
        )
        self._interpreter.allocate_tensors()
        self.input_details = self._interpreter.get_input_details()[0]
        self.output_details = self._interpreter.get_output_details()[0]
        _check_streaming_interface(self.path, self.input_details, self.output_details)
        self.stride = int(self.input_details["shape"][1])
        self._input_index = self.input_details["index"]
        self._output_index = self.output_details["index"]
        scale, zero_point = self.output_details["quantization"]
        self._output_scale = float(scale)
        self._output_zero_point = int(zero_point)
        if not math.isclose(self._output_scale, DEVICE_OUTPUT_SCALE, rel_tol=1e-6):
            logger.warning(
                "%s: output scale %g is not 1/256; detect() assumes the device's 1/256 grid",
                self.path,
                self._output_scale,
            )

    def probabilities(self, raw_features: np.ndarray) -> np.ndarray:
        """Score one stream from a fresh state.

        Args:
            raw_features: ``[frames, 40]`` raw uint16 frontend values (``compute_features``).

        Returns:
            float32 probabilities in [0, 1), one per ``stride`` frames; an incomplete tail of
            frames is dropped, as the device would still be waiting for it.
        """
        return self.score_chunks([raw_features])

    def score_chunks(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """``probabilities`` of a stream given as consecutive chunks (one held at a time).

        The state carries over from chunk to chunk, so the outputs are those of the whole.
        """
        self._interpreter.reset_all_variables()
        carry = np.zeros((0, NUM_CHANNELS), np.uint16)
        outputs = []
        for chunk in chunks:
            features = np.concatenate([carry, self._checked(chunk)])
            usable = len(features) - len(features) % self.stride
            outputs.append(self._invoke_all(features[:usable]))
            carry = features[usable:]
        probs = np.concatenate(outputs) if outputs else np.zeros(0, np.uint8)
        return (probs.astype(np.float32) - self._output_zero_point) * np.float32(self._output_scale)

    def _checked(self, raw_features: np.ndarray) -> np.ndarray:
        features = np.asarray(raw_features)
        if features.ndim != 2 or features.shape[1] != NUM_CHANNELS:
            raise ValueError(
                f"expected features of shape [frames, {NUM_CHANNELS}], got {features.shape}"
            )
        if not np.issubdtype(features.dtype, np.integer):
            raise TypeError(
                f"expected raw uint16 frontend values (compute_features), got {features.dtype}; "
                "float features would be quantized wrongly"
            )
        return features

    def _invoke_all(self, features: np.ndarray) -> np.ndarray:
        """uint8 outputs of the model on ``features`` (a whole number of strides), in order."""
        count = features.shape[0] // self.stride
        chunks = quantize_like_device(features).reshape(count, 1, self.stride, NUM_CHANNELS)
        outputs = np.empty(count, dtype=np.uint8)
        interpreter = self._interpreter
        set_tensor, invoke, get_tensor = (
            interpreter.set_tensor,
            interpreter.invoke,
            interpreter.get_tensor,
        )
        in_index, out_index = self._input_index, self._output_index
        for i in range(count):
            set_tensor(in_index, chunks[i])
            invoke()
            outputs[i] = get_tensor(out_index)[0, 0]
        return outputs

    __call__ = probabilities


def _check_streaming_interface(path: Path, inp: dict[str, Any], out: dict[str, Any]) -> None:
    """Raise once, listing every way the model's interface differs from what ESPHome runs."""
    problems = []
    shape = tuple(int(d) for d in inp["shape"])
    if len(shape) != 3 or shape[0] != 1 or shape[2] != NUM_CHANNELS:
        problems.append(f"input shape {shape}, expected (1, stride, {NUM_CHANNELS})")
    if inp["dtype"] != np.int8:
        problems.append(f"input dtype {np.dtype(inp['dtype']).name}, expected int8")
    else:
        scale, zero_point = inp["quantization"]
        # The device ignores the declared scale (DEVICE_INPUT_SCALE is what it feeds); official
        # models declare INPUT_SCALE, ours the device's own.
        known = any(math.isclose(scale, s, rel_tol=1e-5) for s in (INPUT_SCALE, DEVICE_INPUT_SCALE))
        if not known or zero_point != INPUT_ZERO_POINT:
            problems.append(
                f"input quantization ({scale}, {zero_point}), the device feeds "
                f"({DEVICE_INPUT_SCALE:.5f}, {INPUT_ZERO_POINT})"
            )
    if tuple(int(d) for d in out["shape"]) != (1, 1):
        problems.append(f"output shape {tuple(out['shape'])}, expected (1, 1)")
    if out["dtype"] != np.uint8:
        problems.append(f"output dtype {np.dtype(out['dtype']).name}, expected uint8")
    if problems:
        raise ValueError(f"{path}: not a streaming ESPHome model: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# How the device fires


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_manifest(json_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Read an ESPHome micro_wake_word v2 manifest.

    Returns:
        The ``.tflite`` path (relative to the manifest's folder) and the ``micro`` section.

    Raises:
        ManifestError: Missing/unreadable file or invalid fields, all listed at once.
    """
    path = Path(json_path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: the manifest must be a JSON object")
    problems = []
    if data.get("version") != MANIFEST_VERSION:
        problems.append(f"version is {data.get('version')!r}, expected {MANIFEST_VERSION}")
    if data.get("type") != "micro":
        problems.append(f"type is {data.get('type')!r}, expected 'micro'")
    model = data.get("model")
    tflite_path = path.parent / str(model)
    if not isinstance(model, str) or not model:
        problems.append("model is missing (the .tflite file name)")
    elif not tflite_path.is_file():
        problems.append(f"model file {tflite_path} does not exist")
    micro = data.get("micro")
    if not isinstance(micro, dict):
        problems.append("micro section is missing")
        micro = {}
    for name, (valid, expected) in _MICRO_FIELDS.items():
        if name not in micro:
            problems.append(f"micro.{name} is missing ({expected})")
        elif not valid(micro[name]):
            problems.append(f"micro.{name} = {micro[name]!r}, expected {expected}")
    if problems:
        raise ManifestError(f"{path}: invalid ESPHome v2 manifest:\n  - " + "\n  - ".join(problems))
    return tflite_path, dict(micro)
