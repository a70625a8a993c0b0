"""Evaluation reports: markdown tables and a DET plot a person can read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from mww_core.atomic import atomic_path, atomic_write_text  # noqa: E402


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def plot_det(sweeps: dict[str, list[dict]], path: Path, cutoff: float) -> None:
    """False activations per hour against miss rate, one curve per split, chosen cutoff marked."""
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    for split, rows in sweeps.items():
        rows = [r for r in rows if r["fah"] is not None and r["recall"] is not None]
        ax.plot([r["fah"] for r in rows], [1 - r["recall"] for r in rows], marker=".", label=split)
        chosen = [r for r in rows if r["cutoff"] == cutoff]
        if chosen:
            ax.scatter([chosen[0]["fah"]], [1 - chosen[0]["recall"]], s=80, zorder=3,
                       facecolors="none", edgecolors="black")  # fmt: skip
    ax.set_xlabel("false activations per hour (ambient audio)")
    ax.set_ylabel("miss rate (1 - recall)")
    ax.set_title(f"Detection error trade-off (circle: cutoff {cutoff:.2f})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_report(stage_dir: Path, metrics: dict, sweeps: dict[str, list[dict]]) -> dict:
    """Write ``report.md`` and ``det.png``; returns their paths."""
    det = stage_dir / "det.png"
    plot_det(sweeps, det, metrics["cutoff"])
    test, val = metrics["test"], metrics["validation"]
    lines = [
        "# Evaluation (streaming int8 model, fired as ESPHome fires)",
        "",
        f"Probability cutoff **{metrics['cutoff']:.2f}**, chosen on validation audio for at most "
        f"{metrics['target_fah']} false activations per hour"
        + ("" if metrics["target_met_on_validation"] else " (target NOT met on validation)")
        + ".",
        "",
        "| split | recall | false accepts (near-miss clips) | false activations / hour |",
        "|---|---|---|---|",
    ]
    for name, row in (("validation", val), ("test", test)):
        lines.append(
            f"| {name} | {_fmt(row['recall'], '.3f')} | {row['false_accepts']} "
            f"({_fmt(row['false_accept_rate'], '.3f')}) | {_fmt(row['fah'], '.2f')} |"
        )
    lines += ["", "![DET curve](det.png)", "", "## Test sweep", "",
              "| cutoff | recall | false accepts | FAH |", "|---|---|---|---|"]  # fmt: skip
    for row in sweeps["test"][::5]:
        lines.append(
            f"| {row['cutoff']:.2f} | {_fmt(row['recall'], '.3f')} | {row['false_accepts']} "
            f"| {_fmt(row['fah'], '.2f')} |"
        )
    report = stage_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return {"report": str(report), "det_plot": str(det)}
