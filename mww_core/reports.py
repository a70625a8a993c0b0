"""Evaluation reports: a markdown report, DET and ROC plots a person can read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from mww_core.atomic import atomic_path, atomic_write_text  # noqa: E402

Rows = Sequence[dict[str, Any]]
# Sweep rows per model name, then per split: {"phase 2": {"validation": rows, "test": rows}}.
Sweeps = dict[str, dict[str, list[dict[str, Any]]]]
FINAL = "phase 2"
STYLES = {"validation": "--", "test": "-"}
COLORS = {"phase 2": "tab:blue", "phase 1": "tab:orange"}


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def fah_text(row: dict[str, Any], hours: float) -> str:
    """FAH with its evidence: ``0 (0 activations in 0.50 h)`` rather than a bare ``0.00``."""
    if row.get("fah") is None:
        return "n/a (no ambient audio)"
    count = row["ambient_activations"]
    noun = "activation" if count == 1 else "activations"
    slips = f"; {row['slip_activations']} more on slips" if row.get("slip_activations") else ""
    return f"{row['fah']:.2f} ({count} {noun} in {hours:.2f} h{slips})"


def _slips(row: dict[str, Any], key: str = "slip_false_accepts") -> str:
    """`` + 3 slips`` after a count that leaves slips out, when there were any."""
    count = row.get(key) or 0
    return f" + {count} slip{'s' if count != 1 else ''}" if count else ""


def false_accepts_text(row: dict[str, Any], negatives: int) -> str:
    """``4/90``, or with slips counted apart (``evaluation.slips``) ``4/60; slips 3/30``."""
    if "slip_clips" not in row:
        return f"{row['false_accepts']}/{negatives}"
    counted = negatives - row["slip_clips"]
    return (
        f"{row['false_accepts']}/{counted}; slips {row['slip_false_accepts']}/{row['slip_clips']}"
    )


# --------------------------------------------------------------------------------------------
# Plots


def _floored(values: list[float], floor: float) -> list[float]:
    return [max(v, floor) for v in values]


def _log_axis(axis, floor: float, top: float, zero_label: str) -> None:
    """A log axis whose lowest tick (the floor, where zeros are drawn) reads ``zero_label``."""
    decades = [10.0**e for e in range(-6, 6) if floor < 10.0**e <= top * 1.01]
    axis.set_major_locator(FixedLocator([floor, *decades]))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: zero_label if v == floor else f"{v:g}"))


def _label(model: str, split: str, shipped: str) -> str:
    return f"{model}{' (shipped)' if model == shipped else ''}, {split}"


def plot_det(
    sweeps: Sweeps,
    path: Path,
    cutoff: float,
    ambient_hours: float,
    positive_clips: int,
    shipped: str = FINAL,
) -> None:
    """Miss rate against false activations per hour, both on log axes, one curve per model/split.

    Zero values are drawn at a floor (half the smallest non-zero value the audio can show) and
    labelled "0", so a model with no false activations still draws a readable curve.
    """
    fah_floor = 0.5 / max(ambient_hours, 1e-9)
    miss_floor = 0.5 / max(positive_clips, 1)
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    top_fah = fah_floor
    for model, splits in sweeps.items():
        for split, rows in splits.items():
            rows = [r for r in rows if r["fah"] is not None and r["recall"] is not None]
            if not rows:
                continue
            fah = _floored([r["fah"] for r in rows], fah_floor)
            miss = _floored([1 - r["recall"] for r in rows], miss_floor)
            top_fah = max(top_fah, *fah)
            test = split == "test"  # the figures the report compares; validation drawn faint
            ax.plot(fah, miss, STYLES.get(split, "-"), marker=".", color=COLORS.get(model),
                    linewidth=2.0 if test else 1.0, alpha=1.0 if test else 0.45,
                    label=_label(model, split, shipped))  # fmt: skip
            chosen = [r for r in rows if r["cutoff"] == cutoff]
            if chosen and model == shipped and test:
                x = max(chosen[0]["fah"], fah_floor)
                y = max(1 - chosen[0]["recall"], miss_floor)
                ax.scatter([x], [y], s=140, facecolors="none", edgecolors="black", zorder=3,
                           label=f"chosen cutoff {cutoff:.2f}")  # fmt: skip
                ax.axhline(
                    y,
                    color="dimgrey",
                    linestyle=":",
                    linewidth=1,
                    label=f"equal recall {chosen[0]['recall']:.3f}: compare FAH along it",
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(fah_floor / 1.6, top_fah * 1.6)
    ax.set_ylim(miss_floor / 1.6, 1.3)
    _log_axis(ax.xaxis, fah_floor, top_fah, "0")
    _log_axis(ax.yaxis, miss_floor, 1.0, "0")
    ax.set_xlabel(f"false activations per hour on ambient audio ({ambient_hours:.2f} h; log)")
    ax.set_ylabel(f"miss rate, 1 - recall ({positive_clips} wake-word clips; log)")
    ax.set_title("Detection error trade-off (lower left is better)")
    ax.text(0.01, 0.01, f"'0': none in the audio ({ambient_hours:.2f} h, {positive_clips} clips)",
            transform=ax.transAxes, fontsize=8, color="dimgrey")  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    _save(fig, path)


def plot_roc(sweeps: Sweeps, path: Path, cutoff: float, shipped: str = FINAL) -> None:
    """Recall against the false-accept rate on near-miss clips, one curve per model/split.

    The axes are zoomed to the swept region (cutoffs far from 0 and 1 never reach the corners).
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    xs, ys = [0.0], [1.0]
    for model, splits in sweeps.items():
        for split, rows in splits.items():
            rows = [
                r for r in rows if r["false_accept_rate"] is not None and r["recall"] is not None
            ]
            if not rows:
                continue
            rows = sorted(rows, key=lambda r: r["cutoff"], reverse=True)
            x, y = [r["false_accept_rate"] for r in rows], [r["recall"] for r in rows]
            xs, ys = xs + x, ys + y
            ax.plot(x, y, STYLES.get(split, "-"), marker=".", color=COLORS.get(model),
                    label=_label(model, split, shipped))  # fmt: skip
            chosen = [r for r in rows if r["cutoff"] == cutoff]
            if chosen and model == shipped and split == "test":
                ax.scatter([chosen[0]["false_accept_rate"]], [chosen[0]["recall"]], s=140,
                           facecolors="none", edgecolors="black", zorder=3,
                           label=f"chosen cutoff {cutoff:.2f}")  # fmt: skip
    right = max(max(xs) * 1.1, 0.05)
    bottom = min(ys)
    ax.set_xlim(-0.02 * right, right)
    ax.set_ylim(bottom - 0.05 * (1.0 - bottom) - 0.01, 1.0 + 0.05 * (1.0 - bottom) + 0.01)
    ax.set_xlabel("false-accept rate on near-miss clips (share of clips that fired)")
    ax.set_ylabel("recall (share of wake-word clips detected)")
    ax.set_title("ROC on clips, zoomed to the swept cutoffs (upper left is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Markdown


def _results_table(metrics: dict[str, Any]) -> list[str]:
    hours = metrics["ambient_hours"]
    lines = [
        "| model | split | cutoff | recall | false accepts (near-miss clips) "
        "| false activations / hour |",
        "|---|---|---|---|---|---|",
    ]
    shipped = metrics.get("shipped", FINAL)
    if shipped == FINAL:
        models = [(FINAL, metrics)]
        models += [("phase 1", metrics["phase_1"])] if metrics.get("phase_1") else []
    else:  # phase 2 kept phase 1's weights: show what it learned, not shipped, beside them
        models = [("phase 1 (shipped)", metrics), (f"{FINAL} (not shipped)", metrics["phase_2"])]
    for name, entry in models:
        for split in ("validation", "test"):
            row = entry[split]
            lines.append(
                f"| {name} | {split} | {row['cutoff']:.2f} | {_fmt(row['recall'], '.3f')} "
                f"({row['positives_detected']}/{metrics['clips'][split]['positive']}) "
                f"| {false_accepts_text(row, metrics['clips'][split]['negative'])} "
                f"| {fah_text(row, hours[split])} |"
            )
    return lines


def _confusion_table(metrics: dict[str, Any]) -> list[str]:
    cm = metrics["confusion_matrix"]
    clips = metrics["clips"]["test"]
    slips = cm.get("slip_clips", 0)
    hours = metrics["ambient_hours"]["test"]
    return (
        [
            f"## Confusion matrix (test, cutoff {cm['cutoff']:.2f})",
            "",
            "| | fired | did not fire |",
            "|---|---|---|",
            f"| wake-word clips ({clips['positive']}) | {cm['true_positives']} (hit) "
            f"| {cm['false_negatives']} (miss) |",
            f"| near-miss clips ({clips['negative'] - slips}) | {cm['false_positives']} "
            f"(false accept) | {cm['true_negatives']} (correct reject) |",
        ]
        + (
            [
                f"| slips, counted apart ({slips}) | {cm['slips_accepted']} (accepted) "
                f"| {slips - cm['slips_accepted']} (rejected) |"
            ]
            if "slip_clips" in cm
            else []
        )
        + [
            f"| ambient audio ({hours:.2f} h) | {cm['ambient_activations']} (false activations) "
            "| the rest |",
        ]
    )


def _verdict(first: dict[str, Any] | None, final: dict[str, Any] | None) -> str:
    """Phase 2 against phase 1 at one recall: FAH first, near-miss false accepts on a tie."""
    if first is None or final is None:
        return "phase 1 does not reach it" if first is None else "phase 2 does not reach it"
    a, b = (first["fah"], first["false_accepts"]), (final["fah"], final["false_accepts"])
    if a == b:
        return "equal"
    better = b < a
    what = "FAH" if a[0] != b[0] else "near-miss false accepts (FAH equal)"
    return f"phase 2 {'lower' if better else 'HIGHER'} {what}"


def _headline_levels(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The equal-recall rows at the chosen cutoff's test recall and at 0.9 and 0.95.

    A fixed level within 0.01 of the chosen recall is left out: it would repeat that row.
    """
    chosen = metrics["test"].get("recall")
    wanted = [chosen] if chosen is not None else []
    wanted += [r for r in (0.9, 0.95) if chosen is None or abs(r - chosen) >= 0.01]
    rows = metrics.get("equal_recall") or []
    picked = []
    for level in wanted:
        match = [r for r in rows if abs(r["recall"] - level) < 1e-9]
        if match:
            picked.append({**match[0], "chosen": level == chosen})
    return picked


def _headline_table(metrics: dict[str, Any]) -> list[str]:
    """Phase 1 vs phase 2 at equal test recall, in a few rows, with the verdict spelled out."""
    picked = _headline_levels(metrics)
    if not picked:
        return []
    hours = metrics["ambient_hours"]["test"]
    negatives = metrics["clips"]["test"]["negative"]

    def cell(best: dict[str, Any] | None) -> str:
        if best is None:
            return "not reached | n/a"
        count = round(best["fah"] * hours)
        return (
            f"{best['fah']:.2f} ({count} in {hours:.2f} h; cutoff {best['cutoff']:.2f}) "
            f"| {false_accepts_text(best, negatives)}"
        )

    lines = [
        "## Did mining help? Phase 1 vs phase 2 at equal recall (test)",
        "",
        "Each model at its own cutoff that reaches the recall with the fewest false activations "
        "on ambient audio; phase 2 is phase 1 fine-tuned with the mined hard negatives.",
        "",
        "| recall at least | phase 1: FAH | phase 1: near-miss false accepts | phase 2: FAH "
        "| phase 2: near-miss false accepts | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in picked:
        mark = " (chosen cutoff's recall)" if row["chosen"] else ""
        lines.append(
            f"| {row['recall']:.3f}{mark} | {cell(row.get('phase 1'))} | {cell(row.get(FINAL))} "
            f"| {_verdict(row.get('phase 1'), row.get(FINAL))} |"
        )
    return lines


def _comparison_table(metrics: dict[str, Any]) -> list[str]:
    rows = metrics.get("equal_recall") or []
    if not rows:
        return []
    hours = metrics["ambient_hours"]["test"]
    lines = [
        "## Phase 1 vs phase 2 at every recall level (test)",
        "",
        "For each recall level, the cutoff of each model that reaches it with the fewest false "
        f"activations ({hours:.2f} h of ambient audio). Phase 2 adds the mined hard negatives.",
        "",
        "| recall at least | phase 1: FAH, false accepts (cutoff) "
        "| phase 2: FAH, false accepts (cutoff) |",
        "|---|---|---|",
    ]
    for row in rows:
        cells = []
        for name in ("phase 1", FINAL):
            best = row.get(name)
            cells.append(
                "not reached"
                if best is None
                else f"{best['fah']:.2f}, {best['false_accepts']}{_slips(best)} "
                f"({best['cutoff']:.2f})"
            )
        lines.append(f"| {row['recall']:.3f} | {cells[0]} | {cells[1]} |")
    return lines


def _group_table(metrics: dict[str, Any], key: str, what: str) -> list[str]:
    """Recall per group of the test positives (voice group, condition) at the chosen cutoff."""
    groups = metrics.get(key) or {}
    if not groups:
        return []
    lines = [
        f"## Recall per {what} (test, cutoff {metrics['cutoff']:.2f})",
        "",
        f"| {what} | clips | detected | recall |",
        "|---|---|---|---|",
    ]
    for name, g in sorted(groups.items(), key=lambda kv: (kv[1]["recall"], kv[0])):
        lines.append(f"| {name} | {g['clips']} | {g['detected']} | {g['recall']:.3f} |")
    return lines


def _engine_table(metrics: dict[str, Any]) -> list[str]:
    return _group_table(metrics, "engines", "engine")


def _voice_table(metrics: dict[str, Any]) -> list[str]:
    return _group_table(metrics, "voice_groups", "voice group")


def _phase_choice_line(metrics: dict[str, Any], shipped: str) -> list[str]:
    """Why phase 2 ships when phase 1's row above shows more validation recall."""
    first = (metrics.get("phase_1") or {}).get("validation") or {}
    final = metrics.get("validation") or {}
    if shipped != FINAL or not first or (first.get("recall") or 0) <= (final.get("recall") or 0):
        return []
    return [
        f"Phase 2 ships though phase 1's validation recall is higher here "
        f"({first['recall']:.3f} against {final['recall']:.3f}): training's own validations "
        "(of the float models) found phase 2 better, or within phase 2's `carry_over_margin` "
        "of phase 1. Its mined hard negatives teach what the validation audio cannot show.",
        "",
    ]


def _gender_table(metrics: dict[str, Any]) -> list[str]:
    return _group_table(metrics, "speaker_genders", "speaker gender")


def _condition_table(metrics: dict[str, Any]) -> list[str]:
    return _group_table(metrics, "conditions", "condition")


def _wording_table(metrics: dict[str, Any]) -> list[str]:
    lines = _group_table(metrics, "wordings", "wording")
    said = metrics.get("unpaused")
    if lines and said:
        lines.append(
            f"| **without a pause** (all but paused) | {said['clips']} | {said['detected']} "
            f"| {said['recall']:.3f} |"
        )
    if lines:
        lines[1:1] = [
            "",
            'fluent: "hey jarvis"; paused: "hey, jarvis" (the engines pause at the comma; '
            'people mostly say it in one breath); exclaimed: "hey jarvis!"; request: a '
            "request follows.",
        ]
    return lines


def _paused_near_miss_line(metrics: dict[str, Any]) -> list[str]:
    said = metrics.get("paused_near_misses")
    if not said:
        return []
    in_validation = said.get("validation_clips", 0)
    chose = (
        f"Validation holds {in_validation} near misses said with a pause too, counted in the "
        "cutoff's near-miss limit (those that are slips apart)."
        if in_validation
        else "Validation's near misses, which chose the cutoff, are all said in one breath."
    )
    return [
        f'Of the test\'s {said["clips"]} near misses said with a pause ("hey, travis"; slips '
        f"apart), {said['false_accepts']} fired at the cutoff: a model that takes a pause for "
        f"the wake word fires on them. {chose}",
        "",
    ]


def _held_out_line(metrics: dict[str, Any]) -> list[str]:
    held_out = metrics.get("test_held_out")
    if not held_out:
        return []
    return [
        "The test split's voices, engine settings and rooms are never used in training or "
        f"validation ({held_out}).",
        "",
    ]


def _learning_curve_table(metrics: dict[str, Any]) -> list[str]:
    curves = metrics.get("learning_curve") or {}
    if not any(curves.values()):
        return []
    lines = [
        "## Learning curves (validation: voices and settings training never used)",
        "",
        "Each phase's float model at every validation, at the cutoff that meets the training "
        "FAH target on validation ambient audio; * marks the weights the phase kept. A phase "
        "trained more than once (`restarts`) names each start; steps count on across them.",
        "",
        "| phase | step | recall | FAH | cutoff | near-miss false accept rate |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in curves.items():
        for row in rows:
            mark = " *" if row.get("is_best") else ""
            start = f", start {row['restart']}" if row.get("restart") else ""
            lines.append(
                f"| {name}{start} | {row['step']}{mark} | {_fmt(row['recall'], '.3f')} | "
                f"{_fmt(row['fah'], '.2f')} | {_fmt(row['cutoff'], '.2f')} | "
                f"{_fmt(row['false_accept_rate'], '.3f')} |"
            )
    return lines


def _cutoff_table(rows: Rows, chosen: float, positive_clips: int, model: str) -> list[str]:
    lines = [
        f"## Cutoff table (test, {model}: the shipped model)",
        "",
        "| cutoff | recall | missed | false accepts | ambient activations | FAH |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: r["cutoff"]):
        mark = " **← chosen**" if row["cutoff"] == chosen else ""
        lines.append(
            f"| {row['cutoff']:.2f}{mark} | {_fmt(row['recall'], '.3f')} "
            f"| {positive_clips - row['positives_detected']} | {row['false_accepts']}"
            f"{_slips(row)} | {row['ambient_activations']}{_slips(row, 'slip_activations')} "
            f"| {_fmt(row['fah'], '.2f')} |"
        )
    return lines


def _how_evaluated(metrics: dict[str, Any]) -> list[str]:
    firing = metrics["firing"]
    lines = [
        "## How this was measured",
        "",
        f"The int8 streaming model runs on TFLite's reference kernels (bit-exact with TFLite "
        f"Micro), {firing['stride']} feature frames (10 ms each) per inference. It fires when "
        f"the mean of the last {firing['sliding_window_size']} outputs exceeds the cutoff "
        f"(compared in uint8 as ESPHome does), then ignores {firing['refractory_inferences']} "
        f"inferences; no detection in the first {firing['ignore_first_inferences']} inferences "
        "of a stream. Clips are joined into one stream with faint noise between them; a clip "
        "counts as detected when a detection falls within it or 0.5 s after its end. The cutoff "
        "is chosen on validation audio, the test figures are reported at that cutoff.",
    ]
    if "slip_clips" in metrics.get("test", {}):
        lines += [
            "",
            "Slips (near misses closer to the wake word than "
            "`evaluation.near_miss_min_distance` phonemes, such as 'kay jarvis' for 'hey "
            "jarvis': the wake word said carelessly) are counted apart: they count neither "
            "toward the near-miss limit nor toward the FAH, and the tables show them beside the "
            "other false accepts.",
        ]
    return lines + _versions_line(metrics.get("versions"))


def _versions_line(versions: dict[str, dict[str, str]] | None) -> list[str]:
    """The packages the shipped phase was trained with, and any evaluation ran with otherwise."""
    if not versions:
        return []
    trained, evaluated = versions.get("trained") or {}, versions.get("evaluated") or {}
    line = "Trained with " + (
        ", ".join(f"{name} {version}" for name, version in trained.items())
        or "packages its stage.json does not record (a run from before they were recorded)"
    )
    changed = {n: v for n, v in evaluated.items() if trained and trained.get(n) != v}
    if changed:
        line += "; evaluated with " + ", ".join(f"{n} {v}" for n, v in changed.items())
    return ["", line + ". Other releases can train another model from the same config, data "
            "and seed: `constraints.txt` pins the versions `make` installs."]  # fmt: skip


def build_report(metrics: dict[str, Any], sweeps: Sweeps) -> str:
    """The markdown report of one evaluation (``metrics`` as ``run_evaluation`` records them)."""
    target = (
        ""
        if metrics["target_met_on_validation"]
        else " (target NOT met on validation: the "
        "cutoff with the fewest false activations was taken)"
    )
    lines = [
        "# Evaluation (streaming int8 model, fired as ESPHome fires)",
        "",
        f"Probability cutoff **{metrics['cutoff']:.2f}**, chosen on validation audio for the "
        f"best recall at no more than {metrics['target_fah']} false activations per hour"
        f"{target}.",
        "",
        *_held_out_line(metrics),
        *_results_table(metrics),
        "",
        *_paused_near_miss_line(metrics),
    ]
    shipped = metrics.get("shipped", FINAL)
    if shipped != FINAL:
        lines += [
            "Phase 2 did not beat phase 1 on validation, so the shipped model is phase 1's "
            "weights. The phase 2 figures below are phase 2's own best weights (trained with the "
            "mined hard negatives): what mining changed, not what ships.",
            "",
        ]
    lines += _phase_choice_line(metrics, shipped)
    headline = _headline_table(metrics)
    lines += [*headline, ""] if headline else []
    lines += [*_confusion_table(metrics), ""]
    sections = (
        _comparison_table(metrics), _engine_table(metrics), _voice_table(metrics),
        _gender_table(metrics), _condition_table(metrics), _wording_table(metrics),
        _learning_curve_table(metrics),
    )  # fmt: skip
    for section in sections:
        if section:
            lines += [*section, ""]
    lines += [
        "## Plots",
        "",
        "![DET curve](det.png)",
        "",
        "![ROC curve](roc.png)",
        "",
        *_cutoff_table(
            sweeps[shipped]["test"],
            metrics["cutoff"],
            metrics["clips"]["test"]["positive"],
            shipped,
        ),
        "",
        *_how_evaluated(metrics),
    ]
    return "\n".join(lines) + "\n"


def write_report(stage_dir: Path, metrics: dict[str, Any], sweeps: Sweeps) -> dict[str, str]:
    """Write ``report.md``, ``det.png`` and ``roc.png`` into ``stage_dir``; returns their paths."""
    det, roc = stage_dir / "det.png", stage_dir / "roc.png"
    shipped = metrics.get("shipped", FINAL)
    plot_det(sweeps, det, metrics["cutoff"], metrics["ambient_hours"]["test"],
             metrics["clips"]["test"]["positive"], shipped)  # fmt: skip
    plot_roc(sweeps, roc, metrics["cutoff"], shipped)
    report = stage_dir / "report.md"
    atomic_write_text(report, build_report(metrics, sweeps))
    return {"report": str(report), "det_plot": str(det), "roc_plot": str(roc)}
