"""Streaming evaluation as ESPHome's micro_wake_word fires: recall, false accepts, FAH, cutoff."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from mww_core.config import EvaluationConfig
from mww_core.frontend import (
    FEATURE_STEP_SAMPLES,
    INPUT_SCALE,
    INPUT_ZERO_POINT,
    NUM_CHANNELS,
    SAMPLE_RATE_HZ,
    compute_features,
    quantize_like_device,
)

logger = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], np.ndarray]
"""Raw frontend features ``[frames, 40]`` uint16 -> one probability per ``stride`` frames."""

# The device's model output is uint8 with scale 1/256 (every reference model, and our exports).
DEVICE_OUTPUT_SCALE = 1.0 / 256.0
# Frames the frontend needs before its first output: the 30 ms window spans 3 steps of 10 ms.
FRONTEND_DELAY_FRAMES = 2
LEADING_GAP_S = 1.5
GAP_NOISE_DBFS = -60.0
MANIFEST_VERSION = 2


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
        count = features.shape[0] // self.stride
        chunks = quantize_like_device(features[: count * self.stride])
        chunks = chunks.reshape(count, 1, self.stride, NUM_CHANNELS)
        outputs = np.empty(count, dtype=np.uint8)
        interpreter = self._interpreter
        interpreter.reset_all_variables()
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
        return (outputs.astype(np.float32) - self._output_zero_point) * np.float32(
            self._output_scale
        )

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
        if not math.isclose(scale, INPUT_SCALE, rel_tol=1e-5) or zero_point != INPUT_ZERO_POINT:
            problems.append(
                f"input quantization ({scale}, {zero_point}), the device feeds "
                f"({INPUT_SCALE:.5f}, {INPUT_ZERO_POINT})"
            )
    if tuple(int(d) for d in out["shape"]) != (1, 1):
        problems.append(f"output shape {tuple(out['shape'])}, expected (1, 1)")
    if out["dtype"] != np.uint8:
        problems.append(f"output dtype {np.dtype(out['dtype']).name}, expected uint8")
    if problems:
        raise ValueError(f"{path}: not a streaming ESPHome model: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# How the device fires


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


def _as_float_audio(clip: np.ndarray) -> np.ndarray:
    """Mono audio as float32 in [-1, 1]; int16 PCM is scaled."""
    audio = np.asarray(clip)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    if np.issubdtype(audio.dtype, np.integer):
        return (audio.astype(np.float32) / 32768.0).astype(np.float32)
    return audio.astype(np.float32, copy=False)


def stream_clips(
    clips: Sequence[np.ndarray], gap_s: float, seed: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Concatenate 16 kHz clips into one stream separated by faint noise, as a device hears them.

    The stream starts with max(gap_s, 1.5 s) of noise (past the device's start-up blind spot) and
    every clip is followed by ``gap_s`` of -60 dBFS white noise (seeded).

    Returns:
        The float32 stream and each clip's ``(start, end)`` sample span (end exclusive).
    """
    rng = np.random.default_rng(seed)
    noise_rms = 10.0 ** (GAP_NOISE_DBFS / 20.0)
    gap = int(round(gap_s * SAMPLE_RATE_HZ))
    lead = max(gap, int(round(LEADING_GAP_S * SAMPLE_RATE_HZ)))

    def noise(length: int) -> np.ndarray:
        return (rng.standard_normal(length) * noise_rms).astype(np.float32)

    pieces = [noise(lead)]
    spans = []
    position = lead
    for clip in clips:
        audio = _as_float_audio(clip)
        pieces.extend([audio, noise(gap)])
        spans.append((position, position + len(audio)))
        position += len(audio) + gap
    return np.concatenate(pieces), spans


# --------------------------------------------------------------------------------------------
# Sweep and cutoff choice


@dataclass(frozen=True)
class ScoredStreams:
    """Model outputs for every evaluation stream, computed once and reused for every cutoff."""

    stride: int
    positive_probs: np.ndarray
    positive_spans: list[tuple[int, int]]
    negative_probs: np.ndarray
    negative_spans: list[tuple[int, int]]
    ambient_probs: list[np.ndarray] = field(default_factory=list)
    ambient_duration_s: float = 0.0


def score_audio(scorer: Scorer, audio: np.ndarray, stride: int) -> np.ndarray:
    """Frontend features of ``audio`` scored from a fresh state; checks the output count."""
    features = compute_features(_as_float_audio(audio))
    probs = np.asarray(scorer(features), dtype=np.float32)
    expected = len(features) // stride
    if probs.shape != (expected,):
        raise ValueError(
            f"scorer returned {probs.shape} outputs for {len(features)} frames, expected "
            f"({expected},) at stride {stride}"
        )
    return probs


def score_streams(
    scorer: Scorer,
    positives: Sequence[np.ndarray],
    negatives: Sequence[np.ndarray],
    ambient: Sequence[np.ndarray],
    config: EvaluationConfig,
    stride: int,
    seed: int = 0,
) -> ScoredStreams:
    """Concatenate the clips into streams and score them and every ambient recording once."""
    positive_audio, positive_spans = stream_clips(positives, config.gap_s, seed)
    negative_audio, negative_spans = stream_clips(negatives, config.gap_s, seed + 1)
    empty = np.zeros(0, dtype=np.float32)
    positive_probs = score_audio(scorer, positive_audio, stride) if positives else empty
    logger.info("scored %d positive clips", len(positives))
    negative_probs = score_audio(scorer, negative_audio, stride) if negatives else empty
    logger.info("scored %d negative clips", len(negatives))
    ambient_probs = []
    for index, recording in enumerate(ambient):
        ambient_probs.append(score_audio(scorer, recording, stride))
        logger.info("scored ambient recording %d/%d", index + 1, len(ambient))
    duration_s = sum(len(recording) for recording in ambient) / SAMPLE_RATE_HZ
    return ScoredStreams(
        stride,
        positive_probs,
        positive_spans,
        negative_probs,
        negative_spans,
        ambient_probs,
        duration_s,
    )


def sweep(
    scored: ScoredStreams, config: EvaluationConfig, cutoffs: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    """Recall, false accepts and FAH at each cutoff (``config.cutoffs`` unless given).

    Rows hold ``cutoff``, ``cutoff_uint8``, ``positives_detected``, ``recall`` (None without
    positives), ``false_accepts`` (negative clips with a hit), ``false_accept_rate`` (None
    without negatives), ``ambient_activations`` and ``fah`` (None without ambient audio).
    """
    stride = scored.stride

    def clips_hit(probs: np.ndarray, spans: list[tuple[int, int]], cutoff: float) -> int:
        return int(
            clip_hits(detect_with_config(probs, cutoff, config, stride), spans, stride).sum()
        )

    rows = []
    for cutoff in cutoffs if cutoffs is not None else config.cutoffs:
        detected = clips_hit(scored.positive_probs, scored.positive_spans, cutoff)
        false_accepts = clips_hit(scored.negative_probs, scored.negative_spans, cutoff)
        activations = sum(
            len(detect_with_config(probs, cutoff, config, stride)) for probs in scored.ambient_probs
        )
        n_pos, n_neg = len(scored.positive_spans), len(scored.negative_spans)
        rows.append(
            {
                "cutoff": float(cutoff),
                "cutoff_uint8": cutoff_to_uint8(cutoff),
                "positives_detected": detected,
                "recall": recall(detected, n_pos) if n_pos else None,
                "false_accepts": false_accepts,
                "false_accept_rate": false_accepts / n_neg if n_neg else None,
                "ambient_activations": int(activations),
                "fah": (
                    false_activations_per_hour(activations, scored.ambient_duration_s)
                    if scored.ambient_duration_s > 0
                    else None
                ),
            }
        )
    return rows


def sweep_cutoffs(config: EvaluationConfig) -> list[float]:
    """The manifest candidates ``config.cutoffs`` and the curve-only ``curve_cutoffs``, sorted."""
    return sorted({round(float(c), 4) for c in [*config.cutoffs, *config.curve_cutoffs]})


def choose_cutoff(
    sweep_rows: Sequence[dict[str, Any]],
    target_fah: float,
    cutoffs: Sequence[float] | None = None,
) -> tuple[dict[str, Any], bool]:
    """The sweep row whose cutoff goes into the manifest, and whether it meets ``target_fah``.

    Among rows with ``fah <= target_fah``: highest recall, then lowest FAH, then highest cutoff.
    If none meets the target: the lowest FAH (then the highest cutoff), flagged ``False``.
    ``cutoffs`` restricts the choice to these cutoffs (e.g. ``config.cutoffs``).
    """
    allowed = None if cutoffs is None else {round(float(c), 4) for c in cutoffs}
    rows = [
        row
        for row in sweep_rows
        if row.get("fah") is not None
        and (allowed is None or round(float(row["cutoff"]), 4) in allowed)
    ]
    if not rows:
        raise ValueError("cannot choose a cutoff: the sweep has no FAH (no ambient audio)")
    meeting = [row for row in rows if row["fah"] <= target_fah]
    if meeting:
        best = max(meeting, key=lambda r: (r["recall"] or 0.0, -r["fah"], r["cutoff"]))
        return best, True
    best = min(rows, key=lambda r: (r["fah"], -r["cutoff"]))
    logger.warning(
        "no cutoff meets the FAH target %.3g; lowest FAH is %.3g at cutoff %.2f",
        target_fah,
        best["fah"],
        best["cutoff"],
    )
    return best, False


def evaluate_streaming(
    scorer: Scorer,
    positives: Sequence[np.ndarray],
    negatives: Sequence[np.ndarray],
    ambient: Sequence[np.ndarray],
    config: EvaluationConfig,
    stride: int | None = None,
) -> dict[str, Any]:
    """Evaluate a scorer as the device fires and pick the cutoff meeting ``config.target_fah``.

    Args:
        scorer: Raw features -> probabilities per inference (e.g. ``StreamingTFLiteModel``).
        positives: 16 kHz wake-word clips.
        negatives: 16 kHz clips that must not fire (may be empty).
        ambient: Long 16 kHz recordings for FAH, each scored as its own stream.
        config: Window, refractory period, start-up blind spot, cutoffs, FAH target, gap.
        stride: Frames per inference; defaults to ``scorer.stride``.

    Returns:
        A JSON-serializable dict: the chosen ``cutoff``, ``target_fah``, ``target_met``, the
        chosen sweep row's counts and rates, ``ambient_hours``, clip counts, the firing settings,
        per-positive-clip ``positive_clip_hits``/``positive_clip_max_scores`` and the ``sweep``.
    """
    stride = stride if stride is not None else getattr(scorer, "stride", None)
    if stride is None:
        raise ValueError("pass stride= for a scorer without a .stride attribute")
    if not positives or not ambient:
        raise ValueError("evaluate_streaming needs positive clips and ambient audio (for FAH)")
    scored = score_streams(scorer, positives, negatives, ambient, config, stride)
    rows = sweep(scored, config)
    chosen, met = choose_cutoff(rows, config.target_fah)
    detections = detect_with_config(scored.positive_probs, chosen["cutoff"], config, stride)
    hits = clip_hits(detections, scored.positive_spans, stride)
    max_scores = clip_max_scores(
        scored.positive_probs, scored.positive_spans, stride, config.sliding_window_size
    )
    return {
        "cutoff": chosen["cutoff"],
        "target_fah": config.target_fah,
        "target_met": met,
        "recall": chosen["recall"],
        "positives_detected": chosen["positives_detected"],
        "false_accepts": chosen["false_accepts"],
        "false_accept_rate": chosen["false_accept_rate"],
        "fah": chosen["fah"],
        "ambient_activations": chosen["ambient_activations"],
        "ambient_hours": scored.ambient_duration_s / 3600.0,
        "positive_clips": len(scored.positive_spans),
        "negative_clips": len(scored.negative_spans),
        "stride": stride,
        "sliding_window_size": config.sliding_window_size,
        "refractory_inferences": config.refractory_inferences,
        "ignore_first_inferences": ignored_inferences(config.ignore_first_frames, stride),
        "positive_clip_hits": [bool(hit) for hit in hits],
        "positive_clip_max_scores": max_scores,
        "sweep": rows,
    }


def confusion_matrix(row: dict[str, Any], positive_clips: int, negative_clips: int) -> dict:
    """Clip-level confusion matrix of one sweep row, plus the ambient activations.

    Positives are wake-word clips, negatives near-miss clips; ambient audio has no clips, so
    only its activation count belongs to the "false positive" side.
    """
    detected, false_accepts = row["positives_detected"], row["false_accepts"]
    return {
        "cutoff": row["cutoff"],
        "true_positives": detected,
        "false_negatives": positive_clips - detected,
        "false_positives": false_accepts,
        "true_negatives": negative_clips - false_accepts,
        "ambient_activations": row["ambient_activations"],
    }


def best_row_at_recall(
    sweep_rows: Sequence[dict[str, Any]], min_recall: float
) -> dict[str, Any] | None:
    """The sweep row with at least ``min_recall`` and the fewest false activations.

    Ties go to fewer false accepts on near-miss clips, then to the higher cutoff. ``None`` when
    no cutoff reaches the recall.
    """
    rows = [
        r
        for r in sweep_rows
        if r.get("recall") is not None and r["recall"] >= min_recall - 1e-12
        and r.get("fah") is not None
    ]  # fmt: skip
    if not rows:
        return None
    return min(rows, key=lambda r: (r["fah"], r["false_accepts"], -r["cutoff"]))


def compare_at_equal_recall(
    sweeps: dict[str, Sequence[dict[str, Any]]], recalls: Sequence[float]
) -> list[dict[str, Any]]:
    """For each recall level, every model's lowest FAH (and its false accepts and cutoff).

    Args:
        sweeps: Sweep rows per model name (e.g. ``{"phase 1": ..., "phase 2": ...}``).
        recalls: Recall levels to compare at.

    Returns:
        One row per recall level: ``{"recall": r, "<model>": {"fah", "false_accepts",
        "cutoff", "recall"} or None}``.
    """
    out = []
    for level in recalls:
        entry: dict[str, Any] = {"recall": float(level)}
        for name, rows in sweeps.items():
            best = best_row_at_recall(rows, level)
            entry[name] = (
                None
                if best is None
                else {k: best[k] for k in ("fah", "false_accepts", "cutoff", "recall")}
            )
        out.append(entry)
    return out


def recall_by_group(hits: Sequence[bool], groups: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Recall per group of positive clips (e.g. per voice), so a weak group is visible."""
    if len(hits) != len(groups):
        raise ValueError(f"{len(hits)} clip results for {len(groups)} group labels")
    out: dict[str, dict[str, Any]] = {}
    for group in sorted(set(groups)):
        members = [bool(h) for h, g in zip(hits, groups, strict=True) if g == group]
        out[group] = {
            "clips": len(members),
            "detected": sum(members),
            "recall": recall(sum(members), len(members)),
        }
    return out


def voice_group(entry: dict[str, Any]) -> str:
    """Voice group of a clip described in a demo ``dataset.json``: generator and accent.

    ``{"generator": "espeak-ng", "voice": "en-gb-scotland+f3"}`` -> ``espeak-ng en-gb-scotland``;
    variants after ``+`` are dropped so each group holds several clips.
    """
    generator = str(entry.get("generator", "unknown"))
    voice = str(entry.get("voice", "")).split("+")[0]
    return f"{generator} {voice}".strip()


def clip_condition(entry: dict[str, Any]) -> str:
    """How a test positive described in a demo ``dataset.json`` is heard (``"clean"`` if unsaid).

    ``{"condition": "far_field", ...}`` -> ``far_field``; the demo's test positives are clean,
    noisy, reverberant, far_field, pitch_shifted or command (the wake word and a request).
    """
    return str(entry.get("condition") or "clean")


# --------------------------------------------------------------------------------------------
# ESPHome manifests

_MICRO_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "probability_cutoff": (lambda v: _is_number(v) and 0.0 < v <= 1.0, "a number in (0, 1]"),
    "sliding_window_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "feature_step_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (ms)"),
    "tensor_arena_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (bytes)"),
    "minimum_esphome_version": (lambda v: isinstance(v, str) and bool(v), "a version string"),
}


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
