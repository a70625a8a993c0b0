"""Slips: near misses so close to the wake word that they are the wake word said carelessly.

"Kay jarvis", "heyl jarvis" and "ray jarvis" are one phoneme from "hey jarvis", in its
unstressed first word. The official ``hey_jarvis`` model accepts most of them (9-14 of the demo
test split's 18 such clips at cutoffs 0.97-0.5) and still falsely accepts 1.1% of the near
misses of an independent check. Near misses at least ``near_miss_min_distance`` phonemes away
("hey travis", "jarvis" alone, "hey marvin") are what the near-miss limit is for; closer ones
are marked here as slips, so that the cutoff rules may leave them out of the near-miss rate
and the FAH, while the sweep still counts them on their own.

A data set describes its near misses in ``dataset.json`` (the demo builder writes it):
``near_miss_phrases`` with each phrase's ``spoken_distance``, ``files`` with each negative
clip's ``text`` and each ambient recording's ``near_misses`` (start, length, sentence).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mww_core.frontend import SAMPLE_RATE_HZ

logger = logging.getLogger(__name__)

# An ambient near-miss sentence counts from a little before it starts to a little after it
# ends, so that the device's detection delay (sliding window, 30 ms inferences) stays inside.
_SPAN_MARGIN_S = (0.5, 1.0)


@dataclass(frozen=True)
class Slips:
    """What of a split's streams is a slip: per negative clip, and spans of ambient audio."""

    negative: np.ndarray  # bool, one per clip of the joined negative stream, in stream order
    ambient: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # source -> samples


def _normalize(text: str) -> str:
    # As demo_data.confusables.normalize, which is not imported: importing the demo_data
    # package loads the whole data set builder into every evaluation.
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def phrase_distances(described: dict[str, Any]) -> dict[str, int]:
    """Normalized near-miss phrase -> its spoken phoneme distance to the wake word."""
    phrases = described.get("near_miss_phrases")
    if not isinstance(phrases, list):
        return {}
    out = {}
    for phrase in phrases:
        if not isinstance(phrase, dict) or "text" not in phrase:
            continue
        distance = phrase.get("spoken_distance", phrase.get("distance"))
        if distance is not None:
            out[_normalize(phrase["text"])] = int(distance)
    return out


def said_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """The longest of the (normalized) near-miss ``phrases`` that ``text`` says, word for
    word; None when it says none."""
    padded = f" {_normalize(text)} "
    said = [p for p in phrases if f" {p} " in padded]
    return max(said, key=len) if said else None


def said_distance(text: str, distances: dict[str, int]) -> int | None:
    """Distance of the longest near-miss phrase ``text`` says (None: it says none)."""
    phrase = said_phrase(text, distances)
    return None if phrase is None else distances[phrase]


def find_slips(
    data_dir: Path,
    min_distance: int,
    negative_clips: Sequence[str],
    ambient_sources: Sequence[str] = (),
) -> Slips | None:
    """The slips among a split's negative clips and in its ambient recordings.

    Args:
        data_dir: The data folder, whose ``dataset.json`` describes the clips.
        min_distance: Near misses closer than this many phonemes are slips (1: none are).
        negative_clips: The joined negative stream's clip names, in stream order (relative to
            ``data_dir``, as the store names them).
        ambient_sources: The ambient recordings' names.

    Returns:
        None when nothing can be a slip: ``min_distance`` 1, or no ``dataset.json`` that
        describes near-miss phrases (every clip then counts, as before).
    """
    manifest = Path(data_dir) / "dataset.json"
    if min_distance <= 1 or not manifest.is_file():
        return None
    try:
        described = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s unreadable (%s): no near miss is treated as a slip", manifest, exc)
        return None
    distances = phrase_distances(described)
    if not distances:
        logger.warning("%s names no near-miss phrases: no near miss is a slip", manifest)
        return None
    files = described.get("files", {})

    def is_slip(entry: dict[str, Any] | None) -> bool:
        if not entry or not entry.get("near_miss"):
            return False
        distance = said_distance(entry.get("text", ""), distances)
        return distance is not None and distance < min_distance

    negative = np.array([is_slip(files.get(name)) for name in negative_clips], dtype=bool)
    before, after = _SPAN_MARGIN_S
    ambient = {}
    for source in ambient_sources:
        spans = []
        for said in (files.get(source) or {}).get("near_misses", []):
            distance = said_distance(said.get("text", ""), distances)
            if distance is not None and distance < min_distance:
                start = float(said["start_s"]) - before
                end = float(said["start_s"]) + float(said["seconds"]) + after
                spans.append((int(max(start, 0.0) * SAMPLE_RATE_HZ), int(end * SAMPLE_RATE_HZ)))
        ambient[source] = spans
    return Slips(negative, ambient)


def outside(times: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Which of ``times`` (samples) fall in none of ``spans`` (``[start, end)`` samples)."""
    keep = np.ones(len(times), dtype=bool)
    for start, end in spans:
        keep &= ~((times >= start) & (times < end))
    return keep
