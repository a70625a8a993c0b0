"""The firing rule as ESPHome runs it: sliding mean, uint8 cutoff, refractory period, FAH."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mww_core.config import EvaluationConfig
from mww_core.frontend import (
    FEATURE_STEP_SAMPLES,
    SAMPLE_RATE_HZ,
)

logger = logging.getLogger(__name__)

# The device's model output is uint8 with scale 1/256 (every reference model, and our exports).
DEVICE_OUTPUT_SCALE = 1.0 / 256.0
# Frames the frontend needs before its first output: the 30 ms window spans 3 steps of 10 ms.
FRONTEND_DELAY_FRAMES = 2


def sliding_mean(probs: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` outputs at each inference, as ESPHome's ring buffer computes it.

    The ring buffer starts filled with zeros, so the first ``window - 1`` means divide by
    ``window`` too (missing outputs count as 0).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = np.asarray(probs, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    return (cumulative[ends] - cumulative[np.maximum(ends - window, 0)]) / window


def probabilities_to_uint8(probs: np.ndarray) -> np.ndarray:
    """Probabilities back to the device's uint8 model output (scale 1/256, exact for TFLite)."""
    scaled = np.rint(np.asarray(probs, dtype=np.float64) / DEVICE_OUTPUT_SCALE)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def cutoff_to_uint8(cutoff: float) -> int:
    """The uint8 threshold ESPHome compares against: ``int(probability_cutoff * 255)``.

    ESPHome's code generator truncates (components/micro_wake_word/__init__.py), so 0.97 -> 247.
    """
    if not 0.0 <= cutoff <= 1.0:
        raise ValueError(f"probability cutoff must be within [0, 1], got {cutoff}")
    return int(cutoff * 255)


def ignored_inferences(ignore_first_frames: int, stride: int) -> int:
    """Inferences without a detection at stream start, from the device's frame count (74).

    Inference ``i`` has consumed ``(i + 1) * stride`` frames and the device accepts a detection
    once ``ignore_first_frames`` frames were seen: 74 frames at stride 3 -> 24 inferences.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return max(0, -(-ignore_first_frames // stride) - 1)


def detect(
    probs: np.ndarray,
    cutoff: float,
    sliding_window_size: int,
    refractory_inferences: int,
    ignore_first_inferences: int,
) -> np.ndarray:
    """Inference indices at which the device fires.

    Mirrors ESPHome's integer test ``sum(last window uint8 outputs) > int(cutoff * 255) * window``
    (so "mean > cutoff" with the cutoff truncated to uint8). After a fire the device zeroes its
    probability ring; no fire happens within the next ``refractory_inferences`` inferences, nor in
    the first ``ignore_first_inferences``.

    Args:
        probs: Model outputs per inference in [0, 1].
        cutoff: probability_cutoff of the manifest.
        sliding_window_size: Outputs averaged (manifest ``sliding_window_size``).
        refractory_inferences: Inferences ignored after each fire.
        ignore_first_inferences: Inferences ignored at the start of the stream.

    Returns:
        int64 array of inference indices, ascending.
    """
    if sliding_window_size < 1:
        raise ValueError(f"sliding_window_size must be >= 1, got {sliding_window_size}")
    window = sliding_window_size
    threshold = cutoff_to_uint8(cutoff) * window
    cumulative = np.concatenate([[0], np.cumsum(probabilities_to_uint8(probs), dtype=np.int64)])
    ends = np.arange(1, len(cumulative))
    sums = cumulative[ends] - cumulative[np.maximum(ends - window, 0)]
    candidates = np.flatnonzero(sums > threshold)
    fires: list[int] = []
    pos = int(np.searchsorted(candidates, ignore_first_inferences))
    while pos < len(candidates):
        i = int(candidates[pos])
        last = fires[-1] if fires else None
        # Within a window of the last fire the zeroed ring holds only the outputs since then.
        if last is not None and i - last < window:
            if cumulative[i + 1] - cumulative[last + 1] <= threshold:
                pos += 1
                continue
        fires.append(i)
        pos = int(np.searchsorted(candidates, i + refractory_inferences + 1))
    return np.asarray(fires, dtype=np.int64)


def detect_with_config(
    probs: np.ndarray, cutoff: float, config: EvaluationConfig, stride: int
) -> np.ndarray:
    """``detect`` with the window, refractory period and start-up frames of ``config``."""
    return detect(
        probs,
        cutoff,
        config.sliding_window_size,
        config.refractory_inferences,
        ignored_inferences(config.ignore_first_frames, stride),
    )


def detection_samples(inferences: np.ndarray, stride: int) -> np.ndarray:
    """Stream position (samples) at which each inference happens: the end of its last frame.

    The frontend emits frame ``k`` once ``(k + 3) * 160`` samples arrived (first frame after 480);
    inference ``i`` ends with frame ``(i + 1) * stride - 1``.
    """
    index = np.asarray(inferences, dtype=np.int64)
    return ((index + 1) * stride + FRONTEND_DELAY_FRAMES) * FEATURE_STEP_SAMPLES


def clip_hits(
    detections: np.ndarray,
    spans: Sequence[tuple[int, int]],
    stride: int,
    tolerance_s: float = 0.5,
) -> np.ndarray:
    """Per clip, whether a detection happened in ``[start, end + tolerance)`` of its span."""
    times = np.sort(detection_samples(detections, stride))
    if len(spans) == 0:
        return np.zeros(0, dtype=bool)
    starts, ends = np.asarray(spans, dtype=np.int64).T
    tolerance = int(round(tolerance_s * SAMPLE_RATE_HZ))
    first = np.searchsorted(times, starts, side="left")
    after = np.searchsorted(times, ends + tolerance, side="left")
    return after > first


def clip_max_scores(
    probs: np.ndarray,
    spans: Sequence[tuple[int, int]],
    stride: int,
    sliding_window_size: int,
    tolerance_s: float = 0.5,
) -> list[float]:
    """Per clip, the highest sliding-window mean within ``[start, end + tolerance)`` (0 if none)."""
    smoothed = sliding_mean(probs, sliding_window_size)
    times = detection_samples(np.arange(len(smoothed)), stride)
    tolerance = int(round(tolerance_s * SAMPLE_RATE_HZ))
    scores = []
    for start, end in spans:
        lo, hi = np.searchsorted(times, [start, end + tolerance], side="left")
        scores.append(float(smoothed[lo:hi].max()) if hi > lo else 0.0)
    return scores


# --------------------------------------------------------------------------------------------
# Rates


def false_activations_per_hour(num_false: int, duration_s: float) -> float:
    """False activations per hour of audio."""
    if duration_s <= 0:
        raise ValueError(f"cannot compute false activations per hour over {duration_s} s of audio")
    if num_false < 0:
        raise ValueError(f"num_false must be >= 0, got {num_false}")
    return num_false * 3600.0 / duration_s


def recall(num_detected: int, num_clips: int) -> float:
    """Share of positive clips detected."""
    if num_clips <= 0:
        raise ValueError(f"cannot compute recall over {num_clips} clips")
    if not 0 <= num_detected <= num_clips:
        raise ValueError(f"num_detected must be within [0, {num_clips}], got {num_detected}")
    return num_detected / num_clips


# --------------------------------------------------------------------------------------------
# Streams of clips
