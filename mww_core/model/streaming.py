"""Pieces every streaming architecture shares: ring buffers, the dense head, TFLite export."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from mww_core.config import ModelConfig
from mww_core.frontend import NUM_CHANNELS


class RingBuffers(tf.Module):
    """Named ring buffers of past time steps, one per temporal layer, kept in tf.Variables."""

    def __init__(self, sizes: dict[str, tuple[int, int]]):
        super().__init__(name="ring_buffers")
        # Ordered by insertion, so variable names (and TFLite state order) are stable.
        self.names = list(sizes)
        self.states = [
            tf.Variable(tf.zeros((1, n, 1, c)), trainable=False, name=f"stream_{i}_states")
            for i, (n, c) in enumerate(sizes.values())
        ]

    def __call__(self, key: str, x):
        """Prepend the stored steps to ``x`` and keep the newest ones for the next call."""
        state = self.states[self.names.index(key)]
        if state.shape[1] == 0:
            return x
        full = tf.concat([state, x], axis=1)
        state.assign(full[:, -state.shape[1] :])
        return full

    def reset(self) -> None:
        """Zero every buffer, as the device does at start."""
        for state in self.states:
            state.assign(tf.zeros_like(state))


def no_buffer(key: str, x):
    """The non-streaming stand-in for ``RingBuffers``: the whole input is there already."""
    return x


def slide_dense_head(body: np.ndarray, head: keras.layers.Layer, head_frames: int) -> np.ndarray:
    """Sigmoid of the dense head over every ``head_frames`` window of ``[steps, channels]``."""
    kernel, bias = head.get_weights()
    if len(body) < head_frames:
        return np.zeros(0, np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(body, head_frames, axis=0)
    # sliding_window_view puts the window last: [steps, channels, head] -> flatten time-major.
    flat = windows.transpose(0, 2, 1).reshape(len(windows), -1)
    logits = flat @ kernel[:, 0] + bias[0]
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def left_pad(features: np.ndarray, receptive_field: int, stride: int) -> np.ndarray:
    """Zero frames before ``features`` so windows end on the same frames the device scores."""
    pad = (receptive_field - stride) % stride
    return np.concatenate([np.zeros((pad, NUM_CHANNELS), np.float32), features], axis=0)


def _representative_chunks(spectrograms: list[np.ndarray], stride: int, limit: int):
    """Consecutive ``stride``-frame chunks (capped at ``DEVICE_INPUT_MAX``); the first two pin
    the input range to [0, DEVICE_INPUT_MAX], so the input scale is the device's own."""
    from mww_core.frontend import DEVICE_INPUT_MAX

    top = np.float32(DEVICE_INPUT_MAX)
    yield [np.zeros((1, stride, NUM_CHANNELS), np.float32)]
    yield [np.full((1, stride, NUM_CHANNELS), top, np.float32)]
    produced = 0
    for spec in spectrograms:
        for start in range(0, len(spec) - stride + 1, stride):
            yield [np.minimum(spec[None, start : start + stride].astype(np.float32), top)]
            produced += 1
            if produced >= limit:
                return


def convert_streaming(
    model: keras.Model,
    streaming: tf.Module,
    step: Callable,
    config: ModelConfig,
    representative: list[np.ndarray],
    chunks: int = 1500,
) -> bytes:
    """Quantize any streaming module to ESPHome's int8 interface (as export.py does MixedNet).

    ``step`` is the module's ``[1, stride, 40] -> [1, 1]`` function. Input int8, output uint8,
    ring buffers as int8 resource variables (``_experimental_variable_quantization``).
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(streaming)
    spec = tf.TensorSpec((1, config.stride, NUM_CHANNELS), tf.float32)
    archive.add_endpoint(name="serve", fn=step, input_signature=[spec])
    with tempfile.TemporaryDirectory(prefix="mww-export-") as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.uint8
        converter._experimental_variable_quantization = True
        converter.representative_dataset = lambda: _representative_chunks(
            representative, config.stride, chunks
        )
        return converter.convert()
