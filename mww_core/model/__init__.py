"""Model registry: one architecture per file, looked up by ``ModelConfig.name``."""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from mww_core.config import ModelConfig
from mww_core.frontend import NUM_CHANNELS
from mww_core.model import inception, mixednet
from mww_core.model.seeds import InitialSeeds

MODELS = {"mixednet": mixednet.build, "inception": inception.build}
# Per architecture: its receptive field, long-input scorer and streaming clone.
_ARCHITECTURES = {"mixednet": mixednet, "inception": inception}
_STREAMING = {"mixednet": mixednet.StreamingMixedNet, "inception": inception.StreamingInception}


def _architecture(config: ModelConfig):
    try:
        return _ARCHITECTURES[config.name]
    except KeyError:
        raise ValueError(
            f"unknown model {config.name!r}; choose one of {', '.join(sorted(MODELS))}"
        ) from None


def build_model(config: ModelConfig, seed: int | None = None) -> keras.Model:
    """Build the non-streaming Keras model named by ``config.name``.

    ``seed`` gives its initial weights (``InitialSeeds``); without it they come from Python's
    global ``random``.
    """
    _architecture(config)
    return MODELS[config.name](config, InitialSeeds(seed))


def receptive_field(config: ModelConfig) -> int:
    """Input frames of one training example (the model's receptive field)."""
    return _architecture(config).receptive_field(config)


def score_long(model: keras.Model, config: ModelConfig, features: np.ndarray) -> np.ndarray:
    """One probability per ``stride`` frames of a long float input, as the streaming model."""
    return _architecture(config).score_long(model, config, features)


def window_scores(
    model: keras.Model, config: ModelConfig, windows: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """The probability at the end of each float window ``[n, frames, 40]`` (its last
    ``receptive_field`` frames), as training scores a window."""
    frames = receptive_field(config)
    out = [
        np.asarray(model(windows[i : i + batch_size, -frames:], training=False)).reshape(-1)
        for i in range(0, len(windows), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def score_long_chunks(
    model: keras.Model, config: ModelConfig, chunks: Iterable[np.ndarray]
) -> np.ndarray:
    """``score_long`` of a long float input given as consecutive chunks of any length.

    Holds one chunk and the frames of context before it: each call scores the new frames with
    the receptive field before them, so the outputs equal ``score_long`` of the whole input
    (the stack is causal with valid padding; ``tests/core/test_model.py`` checks they agree).
    """
    stride, field = config.stride, receptive_field(config)
    # score_long's output k ends at frame (field - pad) + k * stride of its input.
    reach = field - (field - stride) % stride
    kept = np.zeros((0, NUM_CHANNELS), np.float32)  # input frames [base, total)
    base = total = done = 0  # done: where the last output's window ends (0: none yet)
    outputs = []
    for chunk in chunks:
        kept = np.concatenate([kept, np.asarray(chunk, np.float32)])
        total += len(chunk)
        ready = total - total % stride  # outputs end on stride boundaries
        if not done:  # from the start, padded as score_long pads it
            probs = score_long(model, config, kept[: ready - base])
            done = reach + stride * (len(probs) - 1) if len(probs) else 0
        elif ready > done:
            # From the last output's window (scored again and dropped), so that every new
            # window has all of its frames and none of the zeros score_long pads in front.
            probs = score_long(model, config, kept[done - reach - base : ready - base])[1:]
            done = ready
        else:
            continue
        outputs.append(probs)
        if done:
            kept, base = kept[done - reach - base :], done - reach
    return np.concatenate(outputs) if outputs else np.zeros(0, np.float32)


def build_streaming(model: keras.Model, config: ModelConfig) -> tf.Module:
    """The streaming clone of ``model``: ``.step([1, stride, 40]) -> [1, 1]`` and ``.reset()``."""
    _architecture(config)
    return _STREAMING[config.name](model, config)


def convert_streaming_tflite(
    model: keras.Model, config: ModelConfig, representative: list[np.ndarray], chunks: int = 1500
) -> bytes:
    """The int8 streaming TFLite model of any registered architecture."""
    from mww_core.model.streaming import convert_streaming

    streaming = build_streaming(model, config)
    return convert_streaming(model, streaming, streaming.step, config, representative, chunks)


def save_weights(model, path) -> None:
    """Write the model's weights to an ``.npz`` atomically.

    npz rather than Keras' ``.weights.h5``: Keras' h5 loader trips numpy 2's ``__array__``
    deprecation on h5py datasets, and an npz is trivially portable.
    """
    from mww_core.atomic import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, *model.get_weights())


def load_weights(model, path) -> None:
    """Load weights written by ``save_weights`` (same architecture)."""
    with np.load(path) as data:
        model.set_weights([data[f"arr_{i}"] for i in range(len(data.files))])


def load_model(config: ModelConfig, weights) -> keras.Model:
    """The configured architecture with the weights of ``weights`` (an ``.npz`` file)."""
    model = build_model(config)
    load_weights(model, weights)
    return model
