"""Inception: microWakeWord's reduced Inception-v3 stack, non-streaming and streaming.

Shape (after microWakeWord's ``inception.py``): a strided first conv, then per block three
branches -- 1x1; 1x1 -> k; 1x1 -> k -> k -- cropped to a common length (the newest steps),
concatenated and mixed by a 1x1 conv; every conv is followed by batch norm and ReLU. Valid
padding in time everywhere, so one body serves training, long-input scoring and streaming.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from mww_core.config import ModelConfig
from mww_core.frontend import NUM_CHANNELS
from mww_core.model.seeds import InitialSeeds
from mww_core.model.streaming import RingBuffers, left_pad, no_buffer, slide_dense_head

Buffer = Callable[[str, object], object]


def receptive_field(config: ModelConfig) -> int:
    """Input frames one output sees (``ModelConfig.receptive_field``)."""
    return config.receptive_field


def _layers(config: ModelConfig, seeds: InitialSeeds) -> dict[str, keras.layers.Layer]:
    """Every weighted layer of the stack, by name (convs have no bias: batch norm follows)."""

    def conv(name: str, filters: int, kernel: int = 1, stride: int = 1) -> None:
        made[name] = keras.layers.Conv2D(
            filters, (kernel, 1), strides=(stride, 1), use_bias=False,
            kernel_initializer=seeds.glorot(), name=name,
        )  # fmt: skip
        made[f"{name}_bn"] = keras.layers.BatchNormalization(name=f"{name}_bn")

    made: dict[str, keras.layers.Layer] = {}
    conv("first_conv", config.first_conv_filters, config.first_conv_kernel, config.stride)
    blocks = zip(
        config.branch_filters, config.branch_kernels, config.pointwise_filters, strict=True
    )
    for i, (width, kernel, out) in enumerate(blocks):
        conv(f"block{i}_b1", width)
        conv(f"block{i}_b2_in", width)
        conv(f"block{i}_b2_conv", width, kernel)
        conv(f"block{i}_b3_in", width)
        conv(f"block{i}_b3_conv0", width, kernel)
        conv(f"block{i}_b3_conv1", width, kernel)
        conv(f"block{i}_pointwise", out)
    return made


def _body(config: ModelConfig, x, layers: dict, buffer: Buffer = no_buffer, training=None):
    """The convolutional stack; ``buffer`` supplies past steps to temporal convs when streaming."""

    def conv_bn(name: str, inputs):
        y = layers[name](inputs)
        return tf.nn.relu(layers[f"{name}_bn"](y, training=training))

    x = conv_bn("first_conv", buffer("first_conv", x))
    for i in range(len(config.branch_kernels)):
        b1 = conv_bn(f"block{i}_b1", x)
        b2 = conv_bn(f"block{i}_b2_in", x)
        b2 = conv_bn(f"block{i}_b2_conv", buffer(f"block{i}_b2_conv", b2))
        b3 = conv_bn(f"block{i}_b3_in", x)
        b3 = conv_bn(f"block{i}_b3_conv0", buffer(f"block{i}_b3_conv0", b3))
        b3 = conv_bn(f"block{i}_b3_conv1", buffer(f"block{i}_b3_conv1", b3))
        # Keep each branch's newest steps (microWakeWord's StridedDrop of the oldest ones).
        steps = b3.shape[1]
        x = keras.ops.concatenate([b1[:, -steps:], b2[:, -steps:], b3], axis=-1)
        x = conv_bn(f"block{i}_pointwise", x)
    return x


def build(config: ModelConfig, seeds: InitialSeeds | None = None) -> keras.Model:
    """Non-streaming Inception over exactly ``receptive_field(config)`` frames -> P(wake word)."""
    seeds = seeds or InitialSeeds()
    frames = receptive_field(config)
    inputs = keras.Input((frames, NUM_CHANNELS), name="features")
    x = keras.layers.Reshape((frames, 1, NUM_CHANNELS), name="to_image")(inputs)
    x = _InceptionBody(config, seeds, name="inception_body")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    # Keras draws a dropout seed only for a rate above 0.
    x = keras.layers.Dropout(
        config.dropout, seed=seeds() if config.dropout else None, name="dropout"
    )(x)
    outputs = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=seeds.glorot(), name="head"
    )(x)
    return keras.Model(inputs, outputs, name="inception")


class _InceptionBody(keras.layers.Layer):
    """The stack as one Keras layer, so its sub-layers are tracked and trained by name."""

    def __init__(self, config: ModelConfig, seeds: InitialSeeds, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        # A dict of layers: Keras tracks them in insertion order.
        self.stack = _layers(config, seeds)

    def call(self, x, training=None):
        return _body(self.config, x, self.stack, training=training)


def _stack(model: keras.Model) -> dict[str, keras.layers.Layer]:
    return model.get_layer("inception_body").stack


def score_long(model: keras.Model, config: ModelConfig, features: np.ndarray) -> np.ndarray:
    """Outputs for every window ending on a ``stride`` boundary of a long float input.

    Equals the streaming model's outputs once its buffers have filled (valid padding: the body
    runs once over the whole input and the dense head slides over its steps).
    """
    x = left_pad(features, receptive_field(config), config.stride)
    if len(x) < receptive_field(config):
        return np.zeros(0, np.float32)
    body = _body(config, tf.constant(x[None, :, None, :]), _stack(model), training=False)
    return slide_dense_head(body.numpy()[0, :, 0, :], model.get_layer("head"), config.head_frames)


class StreamingInception(tf.Module):
    """Streaming Inception: ``stride`` frames per call, one ring buffer per temporal conv."""

    def __init__(self, model: keras.Model, config: ModelConfig):
        super().__init__(name="streaming_inception")
        self.config = config
        self.stack = _stack(model)
        self.head = model.get_layer("head")
        sizes = {"first_conv": (config.first_conv_kernel - config.stride, NUM_CHANNELS)}
        for i, (width, k) in enumerate(
            zip(config.branch_filters, config.branch_kernels, strict=True)
        ):
            for name in ("b2_conv", "b3_conv0", "b3_conv1"):
                sizes[f"block{i}_{name}"] = (k - 1, width)
        sizes["head"] = (config.head_frames - 1, config.pointwise_filters[-1])
        self.buffers = RingBuffers(sizes)
        spec = tf.TensorSpec((1, config.stride, NUM_CHANNELS), tf.float32, name="input_audio")
        self.step = tf.function(self._step, input_signature=[spec])

    def _step(self, frames):
        """One streaming inference: ``[1, stride, 40]`` float features -> ``[1, 1]``."""
        x = tf.reshape(frames, (1, self.config.stride, 1, NUM_CHANNELS))
        x = _body(self.config, x, self.stack, self.buffers, training=False)
        x = tf.reshape(self.buffers("head", x), (1, -1))
        return self.head(x)

    def reset(self) -> None:
        """Zero every ring buffer."""
        self.buffers.reset()
