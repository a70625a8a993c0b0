"""Architectures: shapes, presets, and non-streaming == streaming == exported TFLite for each."""

import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from mww_core.config import ModelConfig
from mww_core.config.model import FEATURE_BANDS
from mww_core.evaluation import StreamingTFLiteModel
from mww_core.export import (
    ESPHOME_OPS,
    convert_streaming_tflite,
    manifest_arena_size,
    measure_tensor_arena,
    tflite_ops,
)
from mww_core.frontend import NUM_CHANNELS, features_to_float, quantize_like_device
from mww_core.model import (
    MODELS,
    build_model,
    build_streaming,
    receptive_field,
    score_long,
    score_long_chunks,
)
from mww_core.model import convert_streaming_tflite as convert_any
from mww_core.model.mixednet import frequency_stem

# The official hey_jarvis v2 model (shared/reference-models): file bytes and TFLM arena.
OFFICIAL_FILE_BYTES = 52_272
OFFICIAL_ARENA_BYTES = 22_860
# Tolerances. Float streaming vs non-streaming: same math, different op order -> 1e-5.
# Quantized TFLite vs float Keras: int8 weights/activations/state and a uint8 output (steps
# of 1/256): median within 4 steps, every output within 12 steps.
FLOAT_ATOL = 1e-5
TFLITE_MEDIAN_STEPS, TFLITE_MAX_STEPS = 4, 12


def _trained_like(config: ModelConfig) -> keras.Model:
    """A model with non-trivial batch-norm statistics, so outputs vary with the input.

    Inception's 22 stacked batch norms compound any gain, so it only gets shifted means
    (otherwise its outputs saturate at 0 and 1 and the comparison says little); the head's
    weights are scaled up so the outputs span many of the uint8 output's steps.
    """
    keras.utils.set_random_seed(3)
    model = build_model(config)
    gains = {"moving_mean": -0.05}
    if config.name == "mixednet":
        gains.update(moving_variance=0.5, gamma=1.2, beta=0.05)
    head = model.get_layer("head")
    head.kernel.assign(head.kernel.numpy() * 4.0)  # outputs spread over many uint8 steps
    for weight in model.weights:
        for name, change in gains.items():
            if weight.path.endswith(name):
                shifted = weight.numpy() + change if name in ("moving_mean", "beta") else None
                weight.assign(shifted if shifted is not None else weight.numpy() * change)
    if config.frequency_filters:
        # Its ReLU and pooling average noise away: widen the head and centre its logits on
        # noise like the tests', so the outputs spread over many uint8 steps, none saturated.
        noise = np.random.default_rng(4).uniform(0, 6, (64, receptive_field(config), 40))
        flat = keras.Model(model.input, model.get_layer("flatten").output)(noise).numpy()
        kernel = head.kernel.numpy() * 8.0
        head.kernel.assign(kernel)
        head.bias.assign(-(flat @ kernel).mean(axis=0))
    return model


# Every architecture, and MixedNet with its frequency convolution.
SHAPES = [{"name": name} for name in sorted(MODELS)]
SHAPES.append({"name": "mixednet", "frequency_filters": 4, "frequency_kernel": 5})


@pytest.fixture(
    scope="module",
    params=SHAPES,
    ids=lambda shape: (
        "-".join(f"{k}={v}" for k, v in shape.items() if k != "name") or shape["name"]
    ),
)
def trained_like_model(request):
    config = ModelConfig(**request.param)
    return config, _trained_like(config)


def test_default_shape_matches_official_hey_jarvis():
    config = ModelConfig()
    model = build_model(config)
    assert receptive_field(config) == 149
    assert model.input_shape == (None, 149, 40)
    assert 20_000 < model.count_params() < 25_000
    assert model.get_layer("first_conv").kernel.shape == (5, 1, 40, 30)
    kernels = [model.get_layer(f"block{i}_dw0").kernel.shape[0] for i in range(4)]
    assert kernels == [5, 9, 13, 21]


def test_notebook_preset_is_the_training_notebook_shape():
    config = ModelConfig(preset="notebook")
    assert config.first_conv_filters == 32
    assert config.pointwise_filters == [64, 64, 64, 64]
    assert config.mixconv_kernels == [[5], [7, 11], [9, 15], [23]]
    model = build_model(config)
    assert model.input_shape[1] == receptive_field(config)
    assert model.output_shape == (None, 1)
    # Explicit fields override the preset.
    assert ModelConfig(preset="notebook", first_conv_filters=8).first_conv_filters == 8


def test_wide_preset_widens_the_official_shape_within_a_device_budget():
    """The demo's shape: the official kernels at 1.6 times the widths, still a model a
    micro_wake_word device loads (ESPHome's ops, an arena well under 32 kB)."""
    config = ModelConfig(preset="wide")
    assert config.first_conv_filters == 48
    assert config.pointwise_filters == [96, 96, 96, 96]
    assert config.mixconv_kernels == ModelConfig().mixconv_kernels
    assert receptive_field(config) == 149
    assert "wide" in ModelConfig.model_fields["preset"].description  # --explain-config names it
    model = _trained_like(config)
    assert model.count_params() > 2 * build_model(ModelConfig()).count_params()
    raw = np.random.default_rng(1).integers(0, 200, (400, 40)).astype(np.uint16)
    tflite = convert_streaming_tflite(model, config, [features_to_float(raw)], chunks=300)
    assert tflite_ops(tflite) <= ESPHOME_OPS
    arena = manifest_arena_size(measure_tensor_arena(tflite))
    assert OFFICIAL_ARENA_BYTES < arena < 32_768
    assert OFFICIAL_FILE_BYTES < len(tflite) < 100_000


def test_inception_preset_builds_with_149_frames():
    config = ModelConfig(name="inception")
    model = build_model(config)
    assert receptive_field(config) == 149
    assert model.output_shape == (None, 1)
    assert 15_000 < model.count_params() < 30_000


def test_frequency_convolution_finds_a_pattern_wherever_it_lies_across_the_bands():
    """The same filters slide across the bands: a formant-like bump two pooled bands higher
    gives the same channels two pooled bands higher; without it the first conv reads bands."""
    config = ModelConfig(frequency_filters=6, frequency_kernel=5, frequency_pool=2)
    assert config.frequency_bands == 18
    model = build_model(config)
    conv = model.get_layer("frequency_conv")
    assert conv.kernel.shape == (1, 5, 1, 6)
    assert model.get_layer("first_conv").kernel.shape == (5, 1, 18 * 6, 30)
    bump = np.zeros((2, 7, 1, 40), np.float32)
    bump[0, :, 0, 10:15] = [1.0, 3.0, 4.0, 3.0, 1.0]
    bump[1, :, 0, 14:19] = [1.0, 3.0, 4.0, 3.0, 1.0]  # 4 bands = 2 pooled bands higher
    out = np.asarray(frequency_stem(config, conv, bump)).reshape(2, 7, 18, 6)
    assert np.abs(out[0]).max() > 0
    np.testing.assert_allclose(out[1, :, 2:], out[0, :, :-2], atol=1e-6)
    assert not np.allclose(out[1], out[0])
    # Off by default, as the official models: the first convolution reads the 40 bands.
    assert "frequency_conv" not in [layer.name for layer in build_model(ModelConfig()).layers]


def test_frequency_convolution_settings_are_checked_and_quiet_when_off():
    assert FEATURE_BANDS == NUM_CHANNELS  # the config's count of the frontend's bands
    with pytest.raises(ValueError, match="MixedNet option"):
        ModelConfig(name="inception", frequency_filters=4)
    with pytest.raises(ValueError, match="leave no band"):
        ModelConfig(frequency_filters=4, frequency_kernel=40, frequency_pool=2)
    # Off, the fields leave the fingerprint (and every cached model) as it was before them.
    assert "frequency_filters" not in ModelConfig().fingerprint_data()
    assert ModelConfig(frequency_filters=4).fingerprint() != ModelConfig().fingerprint()


def test_bad_presets_and_block_lists_are_rejected():
    with pytest.raises(ValueError, match="one per block"):
        ModelConfig(pointwise_filters=[60, 60], mixconv_kernels=[[5]])
    with pytest.raises(ValueError, match="notebook"):
        ModelConfig(preset="tiny")
    with pytest.raises(ValueError, match="one per block"):
        ModelConfig(name="inception", branch_kernels=[5])


def test_streaming_equals_non_streaming(trained_like_model):
    config, model = trained_like_model
    frames = receptive_field(config)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 6, (300, 40)).astype(np.float32)
    long = score_long(model, config, x)
    streaming = build_streaming(model, config)
    outs = np.array([float(streaming.step(x[None, i : i + 3])[0, 0]) for i in range(0, 300, 3)])
    # After the ring buffers fill, every streaming output equals the non-streaming window.
    np.testing.assert_allclose(outs[-len(long) :], long, atol=FLOAT_ATOL)
    padded = np.concatenate([np.zeros((2, 40), np.float32), x])
    windows = np.stack([padded[i : i + frames] for i in range(0, len(padded) - frames + 1, 3)])
    np.testing.assert_allclose(model.predict(windows, verbose=0)[:, 0], long, atol=FLOAT_ATOL)
    assert np.std(long) > 1e-3  # the comparison is not between constants
    streaming.reset()
    again = np.array([float(streaming.step(x[None, i : i + 3])[0, 0]) for i in range(0, 30, 3)])
    np.testing.assert_allclose(again, outs[:10], atol=FLOAT_ATOL)


def test_long_inputs_scored_chunk_by_chunk_equal_scored_whole(trained_like_model):
    config, model = trained_like_model
    x = np.random.default_rng(2).uniform(0, 6, (1000, 40)).astype(np.float32)
    whole = score_long(model, config, x)
    assert np.std(whole) > 1e-3
    for sizes in ([1000], [7, 140, 1, 1, 1, 400, 450], [149, 851], [60] * 16 + [40]):
        parts = np.split(x, np.cumsum(sizes)[:-1])
        got = score_long_chunks(model, config, iter(parts))
        # Equal up to float rounding: convolutions over inputs of other lengths may sum in
        # another order.
        assert got.shape == whole.shape
        np.testing.assert_allclose(got, whole, rtol=0, atol=1e-6)


def _tflite_probs(tflite: bytes, raw: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(tflite)
        probs = StreamingTFLiteModel(path).probabilities(raw)
        # Fed chunk by chunk (state carried over), the outputs are exactly the same. (A fresh
        # runner: reset_all_variables zeroes int8 state whose zero point is -128, which is not
        # the float 0 a fresh interpreter holds, e.g. in Inception's buffers.)
        chunked = StreamingTFLiteModel(path).score_chunks(np.split(raw, [1, 5, 100, 101, 250]))
        np.testing.assert_array_equal(chunked, probs)
        return probs


def test_exported_tflite_matches_keras(trained_like_model):
    config, model = trained_like_model
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 200, (400, 40)).astype(np.uint16)
    tflite = convert_any(model, config, [features_to_float(raw)], chunks=300)
    assert tflite_ops(tflite) <= ESPHOME_OPS
    probs = _tflite_probs(tflite, raw)
    keras_probs = score_long(model, config, features_to_float(raw))
    assert np.std(keras_probs) > 1e-2
    diff = np.abs(probs[-len(keras_probs) :] - keras_probs) * 256
    assert np.median(diff) < TFLITE_MEDIAN_STEPS
    assert diff.max() < TFLITE_MAX_STEPS


def test_default_export_is_no_larger_than_official_hey_jarvis():
    """Acceptance 4: file and TFLM arena (measured, and as written to the manifest)."""
    config = ModelConfig()
    model = _trained_like(config)
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 200, (400, 40)).astype(np.uint16)
    tflite = convert_streaming_tflite(model, config, [features_to_float(raw)], chunks=300)
    measured = measure_tensor_arena(tflite)
    assert len(tflite) <= OFFICIAL_FILE_BYTES
    assert measured <= manifest_arena_size(measured) <= OFFICIAL_ARENA_BYTES
    # The input scale is the device's own: a runtime that quantizes with the declared scale
    # (pymicro-wakeword: round(feature / scale) + zero point) feeds what ESPHome feeds.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(tflite)
        interpreter = Interpreter(model_path=str(path))
        scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    raw = np.arange(0, 664, dtype=np.uint16)  # every value below the int8 ceiling
    declared = np.round(features_to_float(raw) / np.float32(scale) + zero_point)
    np.testing.assert_array_equal(declared.astype(np.int8), quantize_like_device(raw))


def test_mixednet_dropout_acts_in_training_only():
    config = ModelConfig(dropout=0.5)
    keras.utils.set_random_seed(5)
    model = build_model(config)
    assert model.get_layer("dropout").rate == 0.5
    assert "dropout" not in [layer.name for layer in build_model(ModelConfig()).layers]
    x = np.random.default_rng(4).uniform(0, 6, (4, receptive_field(config), 40)).astype("float32")
    a, b = (model(x, training=True).numpy() for _ in range(2))
    assert not np.allclose(a, b)  # training: a new mask each call
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    # Inference skips it: the long-input scorer (equal to the streaming model) matches.
    long = score_long(model, config, x[0])  # one window: two frames of padding, then x[0]
    window = np.concatenate([np.zeros((1, 2, 40), "float32"), x[:1, :-2]], axis=1)
    np.testing.assert_allclose(long, model(window).numpy()[:, 0], atol=FLOAT_ATOL)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_initial_weights_are_the_seeds_whatever_other_threads_draw(name):
    """Keras seeds an unseeded layer from Python's global ``random``; a Prefect task shares
    it with other threads. A seeded build gives the weights a quiet process gives, regardless."""
    import random
    import threading

    config = ModelConfig(name=name)

    def build(seed, busy):
        stop = threading.Event()
        drawing = threading.Thread(
            target=lambda: [random.random() for _ in iter(stop.is_set, True)]
        )
        if busy:
            drawing.start()
        try:
            keras.utils.set_random_seed(7)
            return build_model(config, seed).get_weights()
        finally:
            stop.set()
            if busy:
                drawing.join()

    quiet = build(None, busy=False)  # what set_random_seed(7) alone gives with nothing else running
    for busy in (False, True):
        seeded = build(7, busy)
        assert all(np.array_equal(a, b) for a, b in zip(quiet, seeded, strict=True))
    other = build(8, busy=False)
    assert not all(np.array_equal(a, b) for a, b in zip(quiet, other, strict=True))
