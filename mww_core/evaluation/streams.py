"""Clips joined into streams as a device hears them, and scoring them once for a sweep."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mww_core.config import EvaluationConfig
from mww_core.frontend import (
    SAMPLE_RATE_HZ,
    compute_features,
)

logger = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], np.ndarray]
"""Raw frontend features ``[frames, 40]`` uint16 -> one probability per ``stride`` frames."""

LEADING_GAP_S = 1.5
GAP_NOISE_DBFS = -60.0


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
    # Slips (``evaluation.slips``): per negative clip, whether it is one, and per ambient
    # recording the sample spans where one is said. None: nothing is a slip.
    negative_slips: np.ndarray | None = None
    ambient_slips: list[list[tuple[int, int]]] | None = None


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
