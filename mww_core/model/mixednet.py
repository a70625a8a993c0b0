"""MixedNet: the architecture of the official ESPHome v2 models, non-streaming and streaming."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mww_core.config import ModelConfig
from mww_core.frontend import NUM_CHANNELS
from mww_core.model.seeds import InitialSeeds


def receptive_field(config: ModelConfig) -> int:
    """Input frames one output sees (``ModelConfig.receptive_field``)."""
    return config.receptive_field


def _block_layers(
    config: ModelConfig, index: int, seeds: InitialSeeds
) -> tuple[list[keras.layers.Layer], ...]:
    kernels = config.mixconv_kernels[index]
    depthwise = [
        keras.layers.DepthwiseConv2D(
            (k, 1), padding="valid", depthwise_initializer=seeds.glorot(),
            name=f"block{index}_dw{j}",
        )
        for j, k in enumerate(kernels)
    ]  # fmt: skip
    pointwise = keras.layers.Conv2D(
        config.pointwise_filters[index],
        1,
        use_bias=False,
        kernel_initializer=seeds.glorot(),
        name=f"block{index}_pointwise",
    )
    norm = keras.layers.BatchNormalization(name=f"block{index}_bn")
    return depthwise, [pointwise, norm]


def _mixconv(depthwise: list[keras.layers.Layer], kernels: list[int], x):
    """Depthwise convs over channel groups, one kernel each, cropped to the shortest output."""
    if len(depthwise) == 1:
        return depthwise[0](x)
    groups = np.array_split(np.arange(x.shape[-1]), len(depthwise))
    longest = max(kernels)
    outputs = []
    for layer, k, idx in zip(depthwise, kernels, groups, strict=True):
        part = layer(x[..., int(idx[0]) : int(idx[-1]) + 1])
        outputs.append(part[:, longest - k :])
    return keras.ops.concatenate(outputs, axis=-1)


def build(config: ModelConfig, seeds: InitialSeeds | None = None) -> keras.Model:
    """Non-streaming MixedNet over exactly ``receptive_field(config)`` frames -> P(wake word)."""
    seeds = seeds or InitialSeeds()
    frames = receptive_field(config)
    inputs = keras.Input((frames, NUM_CHANNELS), name="features")
    x = keras.layers.Reshape((frames, 1, NUM_CHANNELS), name="to_image")(inputs)
    x = _body(config, x, layers=None, seeds=seeds)
    x = keras.layers.Flatten(name="flatten")(x)
    if config.dropout:
        # Training only: the streaming and exported models read the head's input directly.
        x = keras.layers.Dropout(config.dropout, seed=seeds(), name="dropout")(x)
    outputs = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=seeds.glorot(), name="head"
    )(x)
    return keras.Model(inputs, outputs, name="mixednet")


def stem_width(config: ModelConfig) -> int:
    """Channels per frame entering the first convolution: the 40 bands, or with
    ``frequency_filters`` the pooled bands times the filters."""
    if not config.frequency_filters:
        return NUM_CHANNELS
    return config.frequency_bands * config.frequency_filters


def frequency_stem(config: ModelConfig, conv: keras.layers.Layer, x):
    """The frequency convolution of every frame, ``[batch, frames, 1, 40]`` -> ``[batch,
    frames, 1, stem_width]``: one frame at a time (no ring buffer), the same filters slid
    across the bands, then max-pooled over neighbouring bands."""
    x = keras.ops.reshape(x, (-1, x.shape[1], NUM_CHANNELS, 1))
    x = keras.ops.relu(conv(x))
    pool = config.frequency_pool
    x = keras.ops.max_pool(x, (1, pool), strides=(1, pool), padding="valid")
    return keras.ops.reshape(x, (-1, x.shape[1], 1, stem_width(config)))


def _body(config: ModelConfig, x, layers: dict | None, seeds: InitialSeeds | None = None):
    """Shared convolutional stack; ``layers`` reuses an existing model's layers by name."""
    seeds = seeds or InitialSeeds()

    def get(layer):
        return layers[layer.name] if layers is not None else layer

    if config.frequency_filters:
        conv = keras.layers.Conv2D(
            config.frequency_filters,
            (1, config.frequency_kernel),
            padding="valid",
            kernel_initializer=seeds.glorot(),
            name="frequency_conv",
        )
        x = frequency_stem(config, get(conv), x)
    x = get(
        keras.layers.Conv2D(
            config.first_conv_filters,
            (config.first_conv_kernel, 1),
            strides=(config.stride, 1),
            padding="valid",
            use_bias=False,
            kernel_initializer=seeds.glorot(),
            name="first_conv",
        )
    )(x)
    x = keras.layers.ReLU(name="first_relu")(x)
    for i, kernels in enumerate(config.mixconv_kernels):
        depthwise, (pointwise, norm) = _block_layers(config, i, seeds)
        x = _mixconv([get(d) for d in depthwise], kernels, x)
        x = get(pointwise)(x)
        x = get(norm)(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    return x


def score_long(model: keras.Model, config: ModelConfig, features: np.ndarray) -> np.ndarray:
    """Outputs of ``model`` for every window ending on a 3-frame boundary of a long input.

    Equals the streaming model's outputs (after its state has filled) because the stack is
    causal with valid padding: the body runs once over the whole input, the dense head slides.
    ``features`` is float ``[frames, 40]``; returns one probability per ``stride`` frames.
    """
    layers = {layer.name: layer for layer in model.layers}
    pad = (receptive_field(config) - config.stride) % config.stride
    x = np.concatenate([np.zeros((pad, NUM_CHANNELS), np.float32), features], axis=0)
    if len(x) < receptive_field(config):
        return np.zeros(0, np.float32)
    body = _body(config, tf.constant(x[None, :, None, :]), layers)
    body = body.numpy()[0, :, 0, :]  # [steps, channels]
    kernel, bias = layers["head"].get_weights()
    windows = np.lib.stride_tricks.sliding_window_view(body, config.head_frames, axis=0)
    # sliding_window_view puts the window last: [steps, channels, head] -> flatten time-major.
    flat = windows.transpose(0, 2, 1).reshape(len(windows), -1)
    logits = flat @ kernel[:, 0] + bias[0]
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


class StreamingMixedNet(tf.Module):
    """Streaming MixedNet: ``stride`` frames per call, ring buffers kept in tf.Variables.

    It reuses the trained Keras layers; each buffer holds the frames its convolution needs
    from earlier calls (first conv: ``kernel - stride``; depthwise: ``max(kernel) - 1``).
    """

    def __init__(self, model: keras.Model, config: ModelConfig):
        super().__init__(name="streaming_mixednet")
        self.config = config
        self.layers = {layer.name: layer for layer in model.layers}
        self.first_conv = self.layers["first_conv"]
        widths = [stem_width(config), config.first_conv_filters, *config.pointwise_filters]
        lengths = [config.first_conv_kernel - config.stride]
        lengths += [max(k) - 1 for k in config.mixconv_kernels] + [config.head_frames - 1]
        self.states = [
            tf.Variable(tf.zeros((1, n, 1, c)), trainable=False, name=f"stream_{i}_states")
            for i, (n, c) in enumerate(zip(lengths, widths, strict=True))
        ]
        spec = tf.TensorSpec((1, config.stride, NUM_CHANNELS), tf.float32, name="input_audio")
        self.step = tf.function(self._step, input_signature=[spec])

    def _buffer(self, index: int, x):
        state = self.states[index]
        full = tf.concat([state, x], axis=1)
        state.assign(full[:, -state.shape[1] :])
        return full

    def _step(self, frames):
        """One streaming inference: ``[1, stride, 40]`` float features -> ``[1, 1]``."""
        cfg = self.config
        x = tf.reshape(frames, (1, cfg.stride, 1, NUM_CHANNELS))
        if cfg.frequency_filters:
            x = frequency_stem(cfg, self.layers["frequency_conv"], x)
        x = tf.nn.relu(self.first_conv(self._buffer(0, x)))
        for i, kernels in enumerate(cfg.mixconv_kernels):
            depthwise = [self.layers[f"block{i}_dw{j}"] for j in range(len(kernels))]
            x = _mixconv(depthwise, kernels, self._buffer(i + 1, x))
            x = self.layers[f"block{i}_pointwise"](x)
            x = self.layers[f"block{i}_bn"](x, training=False)
            x = tf.nn.relu(x)
        x = self._buffer(len(cfg.mixconv_kernels) + 1, x)
        x = tf.reshape(x, (1, -1))
        return self.layers["head"](x)

    def reset(self) -> None:
        """Zero every ring buffer, as the device does at start."""
        for state in self.states:
            state.assign(tf.zeros_like(state))
