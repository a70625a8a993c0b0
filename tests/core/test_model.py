"""MixedNet: shape of the official model, and non-streaming == streaming == exported TFLite."""

import keras
import numpy as np
import pytest

from mww_core.config import ModelConfig
from mww_core.evaluation import StreamingTFLiteModel
from mww_core.export import ESPHOME_OPS, convert_streaming_tflite, measure_tensor_arena, tflite_ops
from mww_core.frontend import features_to_float
from mww_core.model import build_model
from mww_core.model.mixednet import StreamingMixedNet, receptive_field, score_long


@pytest.fixture(scope="module")
def trained_like_model():
    """A default MixedNet with non-trivial batch-norm statistics."""
    keras.utils.set_random_seed(3)
    config = ModelConfig()
    model = build_model(config)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * 1.2, beta + 0.05, mean - 0.05, var * 0.5])
    return config, model


def test_default_shape_matches_official_hey_jarvis():
    config = ModelConfig()
    model = build_model(config)
    assert receptive_field(config) == 149
    assert model.input_shape == (None, 149, 40)
    assert 20_000 < model.count_params() < 25_000
    assert model.get_layer("first_conv").kernel.shape == (5, 1, 40, 30)


def test_notebook_preset_with_mixed_kernels_builds():
    config = ModelConfig(
        first_conv_filters=32,
        pointwise_filters=[64, 64, 64, 64],
        mixconv_kernels=[[5], [7, 11], [9, 15], [23]],
    )
    model = build_model(config)
    assert model.input_shape[1] == receptive_field(config)
    assert model.output_shape == (None, 1)


def test_unequal_block_lists_are_rejected():
    with pytest.raises(ValueError, match="one per block"):
        ModelConfig(pointwise_filters=[60, 60], mixconv_kernels=[[5]])


def test_streaming_equals_non_streaming(trained_like_model):
    config, model = trained_like_model
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 6, (300, 40)).astype(np.float32)
    long = score_long(model, config, x)
    streaming = StreamingMixedNet(model, config)
    outs = np.array([float(streaming.step(x[None, i : i + 3])[0, 0]) for i in range(0, 300, 3)])
    # After the ring buffers fill, every streaming output equals the non-streaming window.
    np.testing.assert_allclose(outs[-len(long) :], long, atol=1e-5)
    padded = np.concatenate([np.zeros((2, 40), np.float32), x])
    windows = np.stack([padded[i : i + 149] for i in range(0, len(padded) - 148, 3)])
    np.testing.assert_allclose(model.predict(windows, verbose=0)[:, 0], long, atol=1e-5)
    assert np.std(long) > 1e-3  # the comparison is not between constants


def test_export_matches_reference_interface_and_keras(trained_like_model):
    config, model = trained_like_model
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 200, (400, 40)).astype(np.uint16)
    tflite = convert_streaming_tflite(model, config, [features_to_float(raw)], chunks=300)
    assert tflite_ops(tflite) <= ESPHOME_OPS
    assert len(tflite) <= 52_272
    assert measure_tensor_arena(tflite) <= 22_860
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(tflite)
        runner = StreamingTFLiteModel(path)
        probs = runner.probabilities(raw)
    keras_probs = score_long(model, config, features_to_float(raw))
    # Quantized streaming vs float Keras: within a few output steps of 1/256 after warm-up.
    diff = np.abs(probs[-len(keras_probs) :] - keras_probs)
    assert np.median(diff) < 4 / 256
