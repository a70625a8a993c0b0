"""Cutoff sweeps, the cutoff choice for a FAH target, comparisons and recall per group."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mww_core.config import EvaluationConfig
from mww_core.evaluation.firing import (
    clip_hits,
    clip_max_scores,
    cutoff_to_uint8,
    detect_with_config,
    detection_samples,
    false_activations_per_hour,
    ignored_inferences,
    recall,
)
from mww_core.evaluation.slips import outside
from mww_core.evaluation.streams import ScoredStreams, Scorer, score_streams

logger = logging.getLogger(__name__)


def sweep(
    scored: ScoredStreams, config: EvaluationConfig, cutoffs: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    """Recall, false accepts and FAH at each cutoff (``config.cutoffs`` unless given).

    Rows hold ``cutoff``, ``cutoff_uint8``, ``positives_detected``, ``recall`` (None without
    positives), ``false_accepts`` (negative clips with a hit), ``false_accept_rate`` (None
    without negatives), ``ambient_activations`` and ``fah`` (None without ambient audio).
    With slips marked (``scored.negative_slips``, ``scored.ambient_slips``: near misses closer
    to the wake word than ``near_miss_min_distance`` phonemes, ``evaluation.slips``), the false
    accepts, their rate, the ambient activations and the FAH leave them out, and
    ``slip_false_accepts`` (of ``slip_clips``) and ``slip_activations`` count them instead.
    """
    stride = scored.stride
    n_neg = len(scored.negative_spans)
    slips = scored.negative_slips
    slips = np.zeros(n_neg, dtype=bool) if slips is None else np.asarray(slips, dtype=bool)
    if len(slips) != n_neg:
        raise ValueError(f"{len(slips)} slip marks for {n_neg} negative clips")
    ambient_slips = scored.ambient_slips or [[] for _ in scored.ambient_probs]
    marked = scored.negative_slips is not None or scored.ambient_slips is not None

    def hits(probs: np.ndarray, spans: list[tuple[int, int]], cutoff: float) -> np.ndarray:
        return clip_hits(detect_with_config(probs, cutoff, config, stride), spans, stride)

    rows = []
    for cutoff in cutoffs if cutoffs is not None else config.cutoffs:
        detected = int(hits(scored.positive_probs, scored.positive_spans, cutoff).sum())
        negative_hits = hits(scored.negative_probs, scored.negative_spans, cutoff)
        false_accepts = int(negative_hits[~slips].sum())
        activations = slipped = 0
        for probs, spans in zip(scored.ambient_probs, ambient_slips, strict=True):
            times = detection_samples(detect_with_config(probs, cutoff, config, stride), stride)
            kept = int(outside(times, spans).sum())
            activations, slipped = activations + kept, slipped + len(times) - kept
        n_pos, n_counted = len(scored.positive_spans), int((~slips).sum())
        row = {
            "cutoff": float(cutoff),
            "cutoff_uint8": cutoff_to_uint8(cutoff),
            "positives_detected": detected,
            "recall": recall(detected, n_pos) if n_pos else None,
            "false_accepts": false_accepts,
            "false_accept_rate": false_accepts / n_counted if n_counted else None,
            "ambient_activations": int(activations),
            "fah": (
                false_activations_per_hour(activations, scored.ambient_duration_s)
                if scored.ambient_duration_s > 0
                else None
            ),
        }
        if marked:
            row["slip_false_accepts"] = int(negative_hits[slips].sum())
            row["slip_clips"] = int(slips.sum())
            row["slip_activations"] = int(slipped)
        rows.append(row)
    return rows


def sweep_cutoffs(config: EvaluationConfig) -> list[float]:
    """The manifest candidates ``config.cutoffs`` and the curve-only ``curve_cutoffs``, sorted."""
    return sorted({round(float(c), 4) for c in [*config.cutoffs, *config.curve_cutoffs]})


def choose_cutoff(
    sweep_rows: Sequence[dict[str, Any]],
    target_fah: float,
    cutoffs: Sequence[float] | None = None,
    max_near_miss_rate: float | None = None,
    centre: bool = False,
) -> tuple[dict[str, Any], bool]:
    """The sweep row whose cutoff goes into the manifest, and whether it meets the targets.

    Among rows with ``fah <= target_fah`` (and, with ``max_near_miss_rate``, a near-miss false
    accept rate no higher): highest recall, then lowest FAH, then highest cutoff. If none meets
    both, the rows meeting the FAH target with the fewest near-miss false accepts compete;
    if none meets the FAH target: the lowest FAH (then the highest cutoff). Either is flagged
    ``False``. ``cutoffs`` restricts the choice to these cutoffs (e.g. ``config.cutoffs``).

    With ``centre``, rows that meet the targets and tie on the highest recall give the middle
    of their cutoffs (the upper one of two middles) instead of the one with the lowest FAH. A
    small validation set often detects every clip over a wide range of cutoffs; its top end
    has the lowest FAH but no margin, and voices validation lacks, or a slightly retrained
    model, fall off it. The middle keeps a margin on both sides, within the targets.
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

    def best_recall(candidates: list[dict[str, Any]]) -> dict[str, Any]:
        return max(candidates, key=lambda r: (r["recall"] or 0.0, -r["fah"], r["cutoff"]))

    def chosen(candidates: list[dict[str, Any]]) -> dict[str, Any]:
        if not centre:
            return best_recall(candidates)
        top = max(r["recall"] or 0.0 for r in candidates)
        plateau = sorted(
            (r for r in candidates if (r["recall"] or 0.0) == top), key=lambda r: r["cutoff"]
        )
        return plateau[len(plateau) // 2]

    if meeting and max_near_miss_rate is not None:
        rate = [r.get("false_accept_rate") or 0.0 for r in meeting]
        both = [r for r, x in zip(meeting, rate, strict=True) if x <= max_near_miss_rate]
        if both:
            return chosen(both), True
        fewest = min(rate)
        best = best_recall([r for r, x in zip(meeting, rate, strict=True) if x == fewest])
        logger.warning(
            "no cutoff meets the FAH target %.3g with at most %.3g near-miss false accepts; "
            "fewest is %.3g at cutoff %.2f",
            target_fah, max_near_miss_rate, fewest, best["cutoff"],
        )  # fmt: skip
        return best, False
    if meeting:
        return chosen(meeting), True
    best = min(rows, key=lambda r: (r["fah"], -r["cutoff"]))
    logger.warning(
        "no cutoff meets the FAH target %.3g; lowest FAH is %.3g at cutoff %.2f",
        target_fah,
        best["fah"],
        best["cutoff"],
    )
    return best, False


def manifest_cutoff(
    sweep_rows: Sequence[dict[str, Any]],
    config: EvaluationConfig,
    target_fah: float | None = None,
) -> tuple[dict[str, Any], bool]:
    """The manifest's cutoff as every evaluation picks it: ``choose_cutoff`` among
    ``config.cutoffs`` at ``target_fah`` (default ``config.target_fah``) and
    ``config.max_near_miss_rate``, a best-recall plateau giving its middle (``centre``)."""
    target = config.target_fah if target_fah is None else target_fah
    return choose_cutoff(sweep_rows, target, config.cutoffs, config.max_near_miss_rate, centre=True)


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
    chosen, met = manifest_cutoff(rows, config)
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
    slips = row.get("slip_clips", 0)
    matrix = {
        "cutoff": row["cutoff"],
        "true_positives": detected,
        "false_negatives": positive_clips - detected,
        "false_positives": false_accepts,
        "true_negatives": negative_clips - slips - false_accepts,
        "ambient_activations": row["ambient_activations"],
    }
    if "slip_clips" in row:  # slips, counted apart (``evaluation.slips``)
        matrix |= {"slip_clips": slips, "slips_accepted": row["slip_false_accepts"]}
    return matrix


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


_COMPARED = ("fah", "false_accepts", "cutoff", "recall")
_SLIP_KEYS = ("slip_false_accepts", "slip_clips", "slip_activations")


def compare_at_equal_recall(
    sweeps: dict[str, Sequence[dict[str, Any]]], recalls: Sequence[float]
) -> list[dict[str, Any]]:
    """For each recall level, every model's lowest FAH (and its false accepts and cutoff).

    Args:
        sweeps: Sweep rows per model name (e.g. ``{"phase 1": ..., "phase 2": ...}``).
        recalls: Recall levels to compare at.

    Returns:
        One row per recall level: ``{"recall": r, "<model>": {"fah", "false_accepts",
        "cutoff", "recall"} (and the slip counts when the sweep has them) or None}``.
    """
    out = []
    for level in recalls:
        entry: dict[str, Any] = {"recall": float(level)}
        for name, rows in sweeps.items():
            best = best_row_at_recall(rows, level)
            entry[name] = (
                None
                if best is None
                else {k: best[k] for k in (*_COMPARED, *_SLIP_KEYS) if k in best}
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


def said_with_a_pause(entry: dict[str, Any]) -> bool:
    """Whether a ``dataset.json`` entry is a near-miss clip said with a pause ("hey, travis":
    a comma in its text)."""
    return bool(entry.get("near_miss")) and "," in str(entry.get("text", ""))


def paused_near_misses(
    fired: Sequence[bool], entries: Sequence[dict[str, Any]], slips: Sequence[bool] | None = None
) -> dict[str, int] | None:
    """False accepts among the near-miss clips said with a pause ("hey, travis": a comma in
    the ``text`` of their ``dataset.json`` entry), slips left out, of how many.

    ``fired`` and ``entries`` (and ``slips``) are per negative clip, in stream order. A model
    that takes a pause for the wake word fires on these. None when there are none.
    """
    if len(fired) != len(entries):
        raise ValueError(f"{len(fired)} clip results for {len(entries)} clip entries")
    paused = [said_with_a_pause(e) for e in entries]
    if slips is not None:
        paused = [p and not bool(s) for p, s in zip(paused, slips, strict=True)]
    if not any(paused):
        return None
    accepted = sum(bool(f) for f, p in zip(fired, paused, strict=True) if p)
    return {"false_accepts": accepted, "clips": sum(paused)}


def paused_near_misses_at(
    scored: ScoredStreams,
    cutoff: float,
    config: EvaluationConfig,
    entries: Sequence[dict[str, Any]],
) -> dict[str, int] | None:
    """``paused_near_misses`` of scored streams at ``cutoff``: which negative clips fire as
    the device fires, with ``entries`` (their ``dataset.json`` entries, in stream order) and
    the streams' own slips."""
    detections = detect_with_config(scored.negative_probs, cutoff, config, scored.stride)
    fired = clip_hits(detections, scored.negative_spans, scored.stride)
    return paused_near_misses(fired, entries, scored.negative_slips)


def unpaused(wordings: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Recall of the wake words said without a pause (every wording of ``recall_by_group``'s
    per-wording result but ``paused`` and ``unknown``): people mostly say a wake word in one
    breath, and a model may find the paused wording in voices where it finds nothing else.
    None when there is no paused group to leave out, or nothing else."""
    said = [g for name, g in wordings.items() if name not in ("paused", "unknown")]
    if "paused" not in wordings or not said:
        return None
    clips, detected = sum(g["clips"] for g in said), sum(g["detected"] for g in said)
    return {"clips": clips, "detected": detected, "recall": recall(detected, clips)}


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


def clip_wording(entry: dict[str, Any], wake_word: str) -> str:
    """How a test positive described in a demo ``dataset.json`` says the wake word, from its
    ``text``: ``fluent`` (as written, "hey jarvis"), ``paused`` (a comma inside it, "hey,
    jarvis": the engines pause there), ``exclaimed`` ("hey jarvis!"), ``request`` (words after
    it, "hey jarvis, lock the door") or ``unknown`` (no text)."""
    text = str(entry.get("text") or "")
    if not text:
        return "unknown"
    words = text.lower().replace(",", " ").replace("!", " ").split()
    if len(words) > len(wake_word.split()):
        return "request"
    if "," in text:
        return "paused"
    return "exclaimed" if text.rstrip().endswith("!") else "fluent"
