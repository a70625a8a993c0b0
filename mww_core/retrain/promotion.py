"""The promotion gate, and the end of a round: a new version or not, state, the round's report."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from mww_core.atomic import atomic_write_text
from mww_core.config import FullConfig, RetrainConfig
from mww_core.retrain.inbox import STATE, InboxScan, load_state, retrain_dir
from mww_core.retrain.versions import current_version, write_version

log = logging.getLogger(__name__)


def decide_promotion(current: dict, candidate: dict, tolerances: RetrainConfig) -> tuple[bool, str]:
    """Promote unless test recall falls or test FAH rises by more than the tolerances.

    Args:
        current: Test metrics row (``recall``, ``fah``) of the current model.
        candidate: The same row of the fine-tuned model.
        tolerances: ``recall_tolerance`` and ``fah_tolerance``.

    Returns:
        Whether to promote, and a sentence saying why.
    """
    recall_before, recall_after = current["recall"] or 0.0, candidate["recall"] or 0.0
    fah_before, fah_after = current["fah"] or 0.0, candidate["fah"] or 0.0
    problems = []
    if recall_before - recall_after > tolerances.recall_tolerance + 1e-9:
        problems.append(
            f"test recall fell from {recall_before:.3f} to {recall_after:.3f} "
            f"(more than the {tolerances.recall_tolerance} allowed by retrain.recall_tolerance)"
        )
    if fah_after - fah_before > tolerances.fah_tolerance + 1e-9:
        problems.append(
            f"test FAH rose from {fah_before:.2f} to {fah_after:.2f} "
            f"(more than the {tolerances.fah_tolerance} allowed by retrain.fah_tolerance)"
        )
    if problems:
        return False, "kept the current model: " + "; ".join(problems)
    return True, (
        f"promoted: test recall {recall_before:.3f} -> {recall_after:.3f}, "
        f"FAH {fah_before:.2f} -> {fah_after:.2f}, within the configured tolerances"
    )


def finish_round(
    config: FullConfig, scan: InboxScan, result: dict | None, promote: bool, reason: str
) -> dict:
    """Promote (or not), mark the new clips processed and record the round's summary."""
    current = current_version(config)
    summary = {
        "round": scan.round,
        "new_files": sorted(scan.new_files),
        "promoted": promote,
        "reason": reason,
        "previous_version": current["version"],
        "finished": time.time(),
    }
    if result is not None:
        summary["comparison"] = {k: result[k] for k in ("current", "candidate")}
    if promote and result is not None:
        exported, evaluated = result["export"]["outputs"], result["evaluate"]
        files = {
            "weights": str(Path(scan.round_dir) / "fine_tune" / "best.weights.npz"),
            "tflite": exported["tflite"],
            "manifest": exported["manifest"],
            "metrics": evaluated["outputs"]["metrics"],
        }
        info = {"source": scan.round_dir, "test": evaluated["metrics"]["test"], "reason": reason}
        current = write_version(config, files, evaluated["metrics"]["cutoff"], info)
    summary["version"] = current["version"]
    round_dir = Path(scan.round_dir)
    round_dir.mkdir(parents=True, exist_ok=True)
    det = result["evaluate"]["outputs"].get("det_plot") if result else None
    report = round_dir / "report.md"
    atomic_write_text(report, round_report(summary, det and os.path.relpath(det, round_dir)))
    summary["report"] = str(report)
    atomic_write_text(round_dir / "round.json", json.dumps(summary, indent=2))
    state = load_state(config)
    state["processed"].update(scan.new_files)
    state["rounds"].append(summary)
    atomic_write_text(retrain_dir(config) / STATE, json.dumps(state, indent=2))
    log.info("round %d: %s", scan.round, reason)
    return summary


def round_report(summary: dict, det_plot: str | None) -> str:
    """Markdown of a round: current against candidate on test audio and on the new clips."""
    lines = [f"# Retraining round {summary['round']}: {summary['reason']}", ""]
    lines.append(f"New clips: {len(summary['new_files'])}. Current model: `{summary['version']}`.")
    comparison = summary.get("comparison")
    if comparison:
        lines += [
            "",
            "| model | test recall | test FAH | inbox false accepts | inbox FAH | cutoff |",
            "|---|---|---|---|---|---|",
        ]
        for label, row in (
            ("current", comparison["current"]),
            ("candidate", comparison["candidate"]),
        ):
            test, inbox = row["test"], row["inbox"]
            lines.append(
                f"| {label} | {_fmt(test['recall'], '.3f')} | {_fmt(test['fah'], '.2f')} "
                f"| {inbox['false_accepts']}/{inbox['clips']} | {_fmt(inbox['fah'], '.1f')} "
                f"| {inbox['cutoff']:.2f} |"
            )
    if det_plot:
        lines += ["", f"![candidate DET curve]({det_plot})"]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
