"""``mww evaluate``: score any ESPHome v2 wake-word model on folders of audio as a device would."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from mww_core import evaluation, runtime_pymicro
from mww_core.audio import AudioError, list_audio_files, load_audio
from mww_core.cli import print_error
from mww_core.config import EvaluationConfig
from mww_core.frontend import SAMPLE_RATE_HZ

# TensorFlow is imported later, inside the commands: keep its C++ info lines off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger(__name__)
KINDS = ("positive", "negative", "ambient")
RUNTIMES = ("mww", "pymicro-wakeword")
Audio = tuple[Sequence[np.ndarray], Sequence[np.ndarray], Sequence[np.ndarray]]
"""Positive clips, negative clips and ambient recordings."""
PYMICRO_CAPTION = (
    "pymicro-wakeword: a clip is detected when the mean of the last sliding-window outputs "
    f"exceeds the cutoff; ambient activations at least {runtime_pymicro.REFRACTORY_S:g} s apart "
    "(wyoming-microwakeword's refractory period)"
)


def collect_audio_dirs(
    audio_dirs: Sequence[Path],
    positives: Sequence[Path] = (),
    negatives: Sequence[Path] = (),
    ambient: Sequence[Path] = (),
) -> dict[str, list[Path]]:
    """Audio folders per kind: explicit ``--positives`` etc., plus ``{positive,negative,ambient}/``
    subfolders of each ``AUDIO_DIR``.

    Raises:
        FileNotFoundError: A folder does not exist, or an AUDIO_DIR has none of the subfolders.
    """
    found: dict[str, list[Path]] = {
        "positive": [Path(p) for p in positives],
        "negative": [Path(p) for p in negatives],
        "ambient": [Path(p) for p in ambient],
    }
    for root in map(Path, audio_dirs):
        subdirs = {kind: root / kind for kind in KINDS if (root / kind).is_dir()}
        if not subdirs:
            raise FileNotFoundError(
                f"{root}: expected subfolders positive/, negative/ and/or ambient/ with audio "
                "files; or pass folders with --positives/--negatives/--ambient"
            )
        for kind, folder in subdirs.items():
            found[kind].append(folder)
    for folders in found.values():
        for folder in folders:
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: audio folder not found")
    return found


def load_folders(folders: Sequence[Path]) -> tuple[list[np.ndarray], list[str]]:
    """Every audio file below ``folders`` as 16 kHz float32; unreadable files are skipped."""
    clips, names = [], []
    for folder in folders:
        for path in list_audio_files(folder):
            try:
                clips.append(load_audio(path))
                names.append(str(path))
            except AudioError as exc:
                log.warning("skipped: %s", exc)
    return clips, names


def evaluate_model(
    manifest_path: Path,
    positives: Sequence[np.ndarray],
    negatives: Sequence[np.ndarray] = (),
    ambient: Sequence[np.ndarray] = (),
    target_fah: float = 1.0,
    reference_kernels: bool = True,
    runtime: str = "mww",
) -> dict[str, Any]:
    """Score an ESPHome v2 model on clips and ambient audio, as the device fires.

    Args:
        manifest_path: The model's ``.json`` manifest (its ``.tflite`` sits beside it).
        positives: Wake-word clips (16 kHz).
        negatives: Clips that must not fire.
        ambient: Long recordings for false activations per hour.
        target_fah: FAH target for the suggested cutoff (with ambient audio only).
        reference_kernels: Device-exact TFLite reference kernels (slower; ``mww`` runtime only).
        runtime: ``mww`` (our streaming runner with ESPHome's firing rule) or
            ``pymicro-wakeword`` (pymicro-wakeword's features, kernels and firing rule, see
            ``runtime_pymicro``).

    Returns:
        JSON-serializable: the ``runtime``, the manifest's ``cutoff`` and its sweep row
        ``at_manifest_cutoff``, ``suggested`` (cutoff meeting ``target_fah``, or None without
        ambient audio), per-clip ``positive_clip_max_scores``, counts, and the full ``sweep``.
    """
    tflite, micro = evaluation.load_manifest(manifest_path)
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if not positives and not negatives and not ambient:
        raise ValueError("no audio to evaluate: every folder given was empty")
    cutoff = float(micro["probability_cutoff"])
    config = EvaluationConfig(sliding_window_size=micro["sliding_window_size"])
    cutoffs = sorted({cutoff, *evaluation.sweep_cutoffs(config)})
    audio = (positives, negatives, ambient)
    if runtime == "mww":
        scored, rows, window = _score_mww(tflite, audio, config, cutoffs, reference_kernels)
    else:
        scored, rows, window = _score_pymicro(manifest_path, audio, config, cutoffs)
    at_manifest = next(r for r in rows if r["cutoff"] == cutoff)
    suggested = None
    if scored.ambient_duration_s > 0:
        row, met = evaluation.manifest_cutoff(rows, config, target_fah)
        suggested = {**row, "target_fah": target_fah, "target_met": met}
    max_scores = evaluation.clip_max_scores(
        scored.positive_probs, scored.positive_spans, scored.stride, window
    )
    return {
        "runtime": runtime,
        "model": str(tflite),
        "manifest": str(manifest_path),
        "cutoff": cutoff,
        "sliding_window_size": config.sliding_window_size,
        "positive_clips": len(scored.positive_spans),
        "negative_clips": len(scored.negative_spans),
        "ambient_hours": scored.ambient_duration_s / 3600.0,
        "at_manifest_cutoff": at_manifest,
        "suggested": suggested,
        "positive_clip_max_scores": max_scores,
        "sweep": rows,
    }


def _score_mww(
    tflite: Path,
    audio: Audio,
    config: EvaluationConfig,
    cutoffs: list[float],
    reference_kernels: bool,
) -> tuple[evaluation.ScoredStreams, list[dict[str, Any]], int]:
    """Our runner and ESPHome's rule: the scored streams, the sweep and the window to average."""
    model = evaluation.StreamingTFLiteModel(tflite, reference_kernels=reference_kernels)
    scored = evaluation.score_streams(model, *audio, config, model.stride)
    return scored, evaluation.sweep(scored, config, cutoffs), config.sliding_window_size


def _score_pymicro(
    manifest_path: Path, audio: Audio, config: EvaluationConfig, cutoffs: list[float]
) -> tuple[evaluation.ScoredStreams, list[dict[str, Any]], int]:
    """pymicro-wakeword's runtime and rule; its scores are window means already (window 1)."""
    model = runtime_pymicro.PymicroWakeWordModel(manifest_path)
    try:
        scored = runtime_pymicro.score_streams(model, *audio, config.gap_s)
    finally:
        model.close()
    return scored, runtime_pymicro.sweep(scored, cutoffs), 1


def _rate(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def render(result: dict[str, Any], console: Console) -> None:
    """Rich tables: the figures at the manifest's (and the suggested) cutoff, then the sweep."""
    summary = Table(
        title=f"{result['manifest']}  (sliding window {result['sliding_window_size']}, "
        f"runtime {result.get('runtime', 'mww')})",
        caption=PYMICRO_CAPTION if result.get("runtime") == "pymicro-wakeword" else None,
    )
    for column in ("cutoff", "recall", "false accepts", "ambient activations", "FAH"):
        summary.add_column(column, justify="right")
    summary.add_column("")
    hours = result["ambient_hours"]
    rows = [(result["at_manifest_cutoff"], "manifest cutoff")]
    if result["suggested"] is not None:
        met = "meets" if result["suggested"]["target_met"] else "misses"
        rows.append(
            (result["suggested"], f"best recall, {met} FAH <= {result['suggested']['target_fah']}")
        )
    for row, note in rows:
        summary.add_row(
            f"{row['cutoff']:.2f}",
            f"{_rate(row['recall'])} ({row['positives_detected']}/{result['positive_clips']})",
            f"{row['false_accepts']}/{result['negative_clips']}",
            f"{row['ambient_activations']} in {hours:.2f} h" if hours else "-",
            _rate(row["fah"], ".2f"),
            note,
        )
    console.print(summary)
    sweep = Table(title="cutoff sweep")
    for column in ("cutoff", "recall", "false accepts", "FAH"):
        sweep.add_column(column, justify="right")
    for row in result["sweep"]:
        if round(row["cutoff"] * 100) % 5 == 0 or row["cutoff"] == result["cutoff"]:
            sweep.add_row(f"{row['cutoff']:.2f}", _rate(row["recall"]), str(row["false_accepts"]),
                          _rate(row["fah"], ".2f"))  # fmt: skip
    console.print(sweep)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mww", description="mww wake-word tools")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser(
        "evaluate",
        help="score an ESPHome v2 model on folders of audio",
        description="Stream audio through an ESPHome micro_wake_word v2 model exactly as the "
        "device runs it and report recall, false accepts and false activations per hour. "
        "AUDIO_DIR folders hold positive/, negative/ and/or ambient/ subfolders.",
    )
    cmd.add_argument("manifest", type=Path, help="the model's ESPHome .json manifest")
    cmd.add_argument("audio_dirs", type=Path, nargs="*", metavar="AUDIO_DIR")
    for flag, what in (("positives", "wake-word clips"), ("negatives", "clips that must not "
                       "fire"), ("ambient", "long background recordings (for FAH)")):  # fmt: skip
        cmd.add_argument(f"--{flag}", type=Path, action="append", default=[], metavar="DIR",
                         help=f"folder of {what} (repeatable)")  # fmt: skip
    cmd.add_argument("--target-fah", type=float, default=1.0,
                     help="FAH target for the suggested cutoff (default 1.0)")  # fmt: skip
    cmd.add_argument("--fast", action="store_true",
                     help="optimized kernels (mww runtime): ~7x faster, may differ from "
                     "the device")  # fmt: skip
    cmd.add_argument("--runtime", choices=RUNTIMES, default="mww",
                     help="mww: our runner, bit-exact with the device, and ESPHome's firing rule "
                     "(default); pymicro-wakeword: the host runtime of Home Assistant and "
                     "wyoming-microwakeword, with its own features, kernels and rule")  # fmt: skip
    cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``mww evaluate MODEL.json [AUDIO_DIR...] [--positives DIR] [--negatives DIR] ...``."""
    args = _parser().parse_args(argv)
    console = Console(stderr=args.json)
    logging.basicConfig(level=logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=Console(stderr=True))])  # fmt: skip
    try:
        evaluation.load_manifest(args.manifest)  # fail fast, before loading any audio
        folders = collect_audio_dirs(args.audio_dirs, args.positives, args.negatives, args.ambient)
        audio = {kind: load_folders(folders[kind])[0] for kind in KINDS}
        seconds = sum(len(a) for a in audio["ambient"]) / SAMPLE_RATE_HZ
        log.info("%d positive, %d negative clips, %.1f min of ambient audio",
                 len(audio["positive"]), len(audio["negative"]), seconds / 60)  # fmt: skip
        result = evaluate_model(args.manifest, audio["positive"], audio["negative"],
                                audio["ambient"], args.target_fah, not args.fast,
                                args.runtime)  # fmt: skip
    except (evaluation.ManifestError, FileNotFoundError, AudioError, ValueError) as exc:
        print_error(exc)
        sys.exit(2)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        render(result, console)
