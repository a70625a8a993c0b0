"""A second opinion: score audio with pymicro-wakeword, the runtime Home Assistant hosts use."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

from mww_core import evaluation
from mww_core.frontend import SAMPLE_RATE_HZ, to_pcm16

logger = logging.getLogger(__name__)

# wyoming-microwakeword skips a detection within --refractory-seconds (default 2) of the last
# one it reported (wyoming_microwakeword/__main__.py); pymicro-wakeword itself has no refractory.
REFRACTORY_S = 2.0
# Audio is fed in blocks, as a client streams it (the result does not depend on the size).
_BLOCK_SAMPLES = SAMPLE_RATE_HZ


class PymicroWakeWordModel:
    """An ESPHome v2 model run by pymicro-wakeword, with its own features and firing rule.

    What pymicro-wakeword (2.x) exposes: per 10 ms feature frame of ``MicroWakeWordFeatures``,
    ``MicroWakeWord.process_streaming_prob`` returns, after each inference (every ``stride``
    frames), the mean of the last ``sliding_window_size`` model outputs, and 0.0 on the frames
    between inferences and until the window is full; ``process_streaming`` is
    ``mean > probability_cutoff``. The raw output of each inference is not exposed, so this runtime
    yields window means and pymicro's decisions, not per-inference probabilities: ESPHome's rule
    (uint8 sums, 74 blind start-up frames, refractory that zeroes the window) does not apply.
    Other differences from ``evaluation.StreamingTFLiteModel``: pymicro quantizes the float
    features with the model's input scale, one int8 step below ESPHome's integer formula on 42 %
    of raw frontend values, and runs TFLite's optimized C kernels instead of the reference ones.

    Attributes:
        manifest_path: The model's ESPHome v2 manifest.
        stride: Feature frames per inference, read by pymicro from the model's input shape.
        cutoff: The manifest's ``probability_cutoff``.
        sliding_window_size: The manifest's ``sliding_window_size``.
    """

    def __init__(self, manifest_path: str | Path) -> None:
        """Load the model through ``MicroWakeWord.from_config``, as pymicro's own CLI does.

        Raises:
            evaluation.ManifestError: The manifest is missing or invalid (every problem listed).
        """
        self.manifest_path = Path(manifest_path)
        _, micro = evaluation.load_manifest(self.manifest_path)  # clear errors before pymicro's
        self._model = MicroWakeWord.from_config(self.manifest_path)
        self._features = MicroWakeWordFeatures()
        self.stride = int(self._model.stride)
        self.cutoff = float(micro["probability_cutoff"])
        self.sliding_window_size = int(micro["sliding_window_size"])

    def window_means(self, audio: np.ndarray) -> np.ndarray:
        """Stream 16 kHz audio from a fresh state; pymicro's window mean after each inference.

        Args:
            audio: Mono float audio in [-1, 1] or int16 PCM.

        Returns:
            float64, one value per ``stride`` feature frames (as ``StreamingTFLiteModel``
            returns per-inference outputs): 0.0 until the window is full.
        """
        pcm = _as_pcm16(audio)
        self._model.reset()
        self._features.reset()
        means, frame = [], 0
        for start in range(0, len(pcm), _BLOCK_SAMPLES):
            block = pcm[start : start + _BLOCK_SAMPLES].tobytes()
            for features in self._features.process_streaming(block):
                mean = self._model.process_streaming_prob(features)
                frame += 1
                if frame % self.stride == 0:
                    means.append(mean)
        return np.asarray(means, dtype=np.float64)

    def close(self) -> None:
        """Release pymicro's interpreter."""
        self._model.close()


def _as_pcm16(audio: np.ndarray) -> np.ndarray:
    """Mono float audio in [-1, 1] (or int16 PCM) as the int16 PCM pymicro-wakeword reads."""
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {samples.shape}")
    if samples.dtype == np.int16:
        return samples
    return to_pcm16(samples.astype(np.float32, copy=False))


def decisions(means: np.ndarray, cutoff: float) -> np.ndarray:
    """Inference indices at which ``process_streaming`` says True: ``mean > cutoff`` (floats)."""
    return np.flatnonzero(np.asarray(means) > cutoff)


def activations(
    means: np.ndarray, cutoff: float, stride: int, refractory_s: float = REFRACTORY_S
) -> np.ndarray:
    """Detections a wyoming-microwakeword client receives: True at least ``refractory_s`` after
    the last detection reported (a skipped True does not restart the wait).

    Returns:
        int64 inference indices, ascending.
    """
    refractory = refractory_s * SAMPLE_RATE_HZ
    candidates = decisions(means, cutoff)
    times = evaluation.detection_samples(candidates, stride)
    fired: list[int] = []
    last = None
    for index, time in zip(candidates, times, strict=True):
        if last is None or time - last >= refractory:
            fired.append(int(index))
            last = time
    return np.asarray(fired, dtype=np.int64)


def score_streams(
    model: PymicroWakeWordModel,
    positives: Sequence[np.ndarray],
    negatives: Sequence[np.ndarray],
    ambient: Sequence[np.ndarray],
    gap_s: float,
    seed: int = 0,
) -> evaluation.ScoredStreams:
    """``evaluation.score_streams`` with pymicro: the same streams, scored as window means.

    The positive and negative clips are concatenated exactly as ``evaluation.score_streams``
    does (same gaps and noise seeds), so both runtimes hear the same audio. The ``*_probs``
    fields of the result hold pymicro's window means, not per-inference outputs.
    """
    positive_audio, positive_spans = evaluation.stream_clips(positives, gap_s, seed)
    negative_audio, negative_spans = evaluation.stream_clips(negatives, gap_s, seed + 1)
    empty = np.zeros(0, dtype=np.float64)
    positive_means = model.window_means(positive_audio) if positives else empty
    logger.info("pymicro-wakeword scored %d positive clips", len(positives))
    negative_means = model.window_means(negative_audio) if negatives else empty
    logger.info("pymicro-wakeword scored %d negative clips", len(negatives))
    ambient_means = []
    for index, recording in enumerate(ambient):
        ambient_means.append(model.window_means(recording))
        logger.info("pymicro-wakeword scored ambient recording %d/%d", index + 1, len(ambient))
    duration_s = sum(len(recording) for recording in ambient) / SAMPLE_RATE_HZ
    return evaluation.ScoredStreams(
        model.stride,
        positive_means,
        positive_spans,
        negative_means,
        negative_spans,
        ambient_means,
        duration_s,
    )


def sweep(
    scored: evaluation.ScoredStreams,
    cutoffs: Sequence[float],
    refractory_s: float = REFRACTORY_S,
) -> list[dict[str, Any]]:
    """``evaluation.sweep``'s rows under pymicro's rule, from its window means.

    A clip counts as detected (or falsely accepted) when ``process_streaming`` says True
    within ``[start, end + 0.5 s)`` of it, as pymicro's CLI decides per file; ambient
    activations are counted as a wyoming-microwakeword client receives them (``activations``).
    """
    stride = scored.stride

    def clips_hit(means: np.ndarray, spans: list[tuple[int, int]], cutoff: float) -> int:
        return int(evaluation.clip_hits(decisions(means, cutoff), spans, stride).sum())

    n_pos, n_neg = len(scored.positive_spans), len(scored.negative_spans)
    ambient_s = scored.ambient_duration_s
    rows = []
    for cutoff in cutoffs:
        detected = clips_hit(scored.positive_probs, scored.positive_spans, cutoff)
        false_accepts = clips_hit(scored.negative_probs, scored.negative_spans, cutoff)
        fired = sum(
            len(activations(means, cutoff, stride, refractory_s)) for means in scored.ambient_probs
        )
        fah = evaluation.false_activations_per_hour(fired, ambient_s) if ambient_s else None
        rows.append(
            {
                "cutoff": float(cutoff),
                "cutoff_uint8": evaluation.cutoff_to_uint8(cutoff),  # ESPHome's; pymicro's is float
                "positives_detected": detected,
                "recall": evaluation.recall(detected, n_pos) if n_pos else None,
                "false_accepts": false_accepts,
                "false_accept_rate": false_accepts / n_neg if n_neg else None,
                "ambient_activations": fired,
                "fah": fah,
            }
        )
    return rows
