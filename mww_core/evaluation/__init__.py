"""Streaming evaluation as ESPHome's micro_wake_word fires: recall, false accepts, FAH, cutoff.

``firing`` (the firing rule), ``streams`` (clips joined into streams), ``sweep`` (cutoff
sweeps and choices) are plain numpy and load fast; ``runner`` (the TFLite interpreter and
manifest checks) is imported on first use, so modules that only need the firing rule or
``stream_clips`` do not load the TFLite runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

from mww_core.evaluation.firing import (  # noqa: F401
    DEVICE_OUTPUT_SCALE,
    FRONTEND_DELAY_FRAMES,
    clip_hits,
    clip_max_scores,
    cutoff_to_uint8,
    detect,
    detect_with_config,
    detection_samples,
    false_activations_per_hour,
    ignored_inferences,
    probabilities_to_uint8,
    recall,
    sliding_mean,
)
from mww_core.evaluation.slips import Slips, find_slips  # noqa: F401
from mww_core.evaluation.streams import (  # noqa: F401
    GAP_NOISE_DBFS,
    LEADING_GAP_S,
    ScoredStreams,
    score_audio,
    score_streams,
    stream_clips,
)
from mww_core.evaluation.sweep import (  # noqa: F401
    best_row_at_recall,
    choose_cutoff,
    clip_condition,
    clip_wording,
    compare_at_equal_recall,
    confusion_matrix,
    evaluate_streaming,
    manifest_cutoff,
    paused_near_misses,
    paused_near_misses_at,
    recall_by_group,
    said_with_a_pause,
    sweep,
    sweep_cutoffs,
    unpaused,
    voice_group,
)

_RUNNER = {"MANIFEST_VERSION", "ManifestError", "StreamingTFLiteModel", "load_manifest"}


def __getattr__(name: str) -> Any:
    """``StreamingTFLiteModel``, ``load_manifest``... from ``runner``, imported when first used."""
    if name in _RUNNER:
        return getattr(importlib.import_module("mww_core.evaluation.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
