"""The TFLite-Micro audio frontend as ESPHome runs it, and the device's int8 quantization."""

from __future__ import annotations

import numpy as np
from micro_features_cpp import create_frontend, process_samples

SAMPLE_RATE_HZ = 16000
FEATURE_STEP_SAMPLES = 160  # 10 ms
NUM_CHANNELS = 40
# The filterbank's band (ESPHome's micro_wake_word frontend settings): NUM_CHANNELS triangular
# filters evenly spaced on the mel scale between these frequencies.
LOWER_BAND_HZ = 125.0
UPPER_BAND_HZ = 7500.0
# pymicro-features returns the frontend's uint16 output multiplied by this factor.
FEATURE_SCALE = 0.0390625
# The quantization ESPHome applies before the model (micro_wake_word streaming_model.cpp):
# int8 = ((raw * 256) + 333) // 666 - 128, with raw the frontend's uint16 output. That is
# round(feature / DEVICE_INPUT_SCALE) - 128 with the scale below, whatever scale the model
# declares. Official models declare 26/255 (INPUT_SCALE), 0.3% off the device's. Our models
# declare the device's own scale (their input range pinned to [0, DEVICE_INPUT_MAX]), so a
# runtime that quantizes with the model's declared scale, as pymicro-wakeword does, feeds them
# exactly the int8 values the device does.
INPUT_SCALE = 0.10196078568696976
DEVICE_INPUT_SCALE = 0.0390625 * 666 / 256
DEVICE_INPUT_MAX = 255 * DEVICE_INPUT_SCALE  # about 25.91
INPUT_ZERO_POINT = -128
MAX_FEATURE_VALUE = 26.0


def frames_for_samples(num_samples: int) -> int:
    """Number of 10 ms feature frames the frontend yields for ``num_samples`` samples."""
    steps = num_samples // FEATURE_STEP_SAMPLES
    return max(0, steps - 2)


def samples_for_frames(num_frames: int) -> int:
    """Samples of audio needed to produce ``num_frames`` frames."""
    return (num_frames + 2) * FEATURE_STEP_SAMPLES


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to int16 PCM, clipping out-of-range values."""
    if samples.dtype == np.int16:
        return samples
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def compute_features(samples: np.ndarray) -> np.ndarray:
    """Frontend features of a 16 kHz mono clip: ``[frames, 40]`` uint16 raw frontend values.

    Raw values are stored (not floats) because they are what the device quantizes; divide by
    25.6 (``features_to_float``) for the float features the model trains on.
    """
    pcm = to_pcm16(samples)
    # pymicro_features' own C backend, called directly: its MicroFrontend wrapper builds a
    # dataclass per 10 ms step, which cost a third of the frontend's time.
    frontend = create_frontend()
    data = pcm[: (len(pcm) // FEATURE_STEP_SAMPLES) * FEATURE_STEP_SAMPLES].tobytes()
    step = 2 * FEATURE_STEP_SAMPLES
    out = np.zeros((frames_for_samples(len(pcm)), NUM_CHANNELS), dtype=np.uint16)
    row, block = 0, []
    for start in range(0, len(data), step):
        features, _ = process_samples(frontend, data[start : start + step])
        if features:
            block.append(features)
        if len(block) == _BLOCK_FRAMES or (block and start + step >= len(data)):
            # Convert in blocks: one numpy call per block, bounded memory for hour-long audio.
            out[row : row + len(block)] = np.rint(np.array(block, np.float64) / FEATURE_SCALE)
            row, block = row + len(block), []
    return out[:row]


_BLOCK_FRAMES = 1024


def _mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


# Mel-scale edges of the triangular filters: channel i peaks at edge i + 1.
_MEL_EDGES = np.linspace(_mel(LOWER_BAND_HZ), _mel(UPPER_BAND_HZ), NUM_CHANNELS + 2)


def channel_centres_hz() -> np.ndarray:
    """Centre frequency of each of the frontend's channels (its filters' peaks), in Hz."""
    return 700.0 * np.expm1(_MEL_EDGES[1:-1] / 1127.0)


def channel_position(hz: np.ndarray) -> np.ndarray:
    """Fractional channel index of each frequency (0 = the first channel's centre)."""
    return (_mel(hz) - _MEL_EDGES[1]) / (_MEL_EDGES[1] - _MEL_EDGES[0])


def features_to_float(raw: np.ndarray) -> np.ndarray:
    """Raw uint16 frontend values to the float features (about 0-26) the model trains on."""
    # One pass that allocates, one in place (float32 products of 0.0390625 are exact).
    out = np.multiply(raw, np.float32(FEATURE_SCALE), dtype=np.float32)
    return np.minimum(out, np.float32(MAX_FEATURE_VALUE), out=out)


def quantize_like_device(raw: np.ndarray) -> np.ndarray:
    """Raw frontend values to the int8 model input, exactly as ESPHome computes it."""
    value = (raw.astype(np.int32) * 256 + 333) // 666 - 128
    return np.clip(value, -128, 127).astype(np.int8)
