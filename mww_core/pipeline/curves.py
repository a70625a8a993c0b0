"""Learning curves on another split: every validated step of a run, scored on (say) its test.

Training validates every ``training.eval_step_interval`` steps and keeps the weights it scored
(``train_phase_<n>/validated/step_<step>.weights.npz``, the moving average where the phase
keeps one). ``run_curves`` scores each of them on a split's feature streams the way validation
does (the float model, fired with the device's default firing settings) and returns, per step,
what validation said and what the split says: its recall at the cutoff validation chose at
that step, and its best recall within an FAH bound and near-miss limit ("matched").

On the test split (voices, settings and engines training never used) this is the learning
curve a recipe's length is chosen from. It chooses nothing in a run: the run's best step and
cutoff stay validation's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mww_core.config import EvaluationConfig, FullConfig
from mww_core.stages import StageRecord

if TYPE_CHECKING:
    from mww_core.training.batches import ValidationSet

PHASE_DIR = re.compile(r"train_phase_(\d+)$")
STEP_FILE = re.compile(r"step_(\d+)\.weights\.npz$")


def validated_steps(phase_dir: Path) -> list[tuple[int, Path]]:
    """``(step, weights)`` of every step a phase validated, in step order."""
    found = []
    for path in (Path(phase_dir) / "validated").glob("step_*.weights.npz"):
        match = STEP_FILE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def phase_dirs(run_dir: Path) -> list[Path]:
    """The run's ``train_phase_<n>`` folders in phase order."""
    dirs = [p for p in Path(run_dir).iterdir() if p.is_dir() and PHASE_DIR.search(p.name)]
    return sorted(dirs, key=lambda p: int(PHASE_DIR.search(p.name).group(1)))


def features_record(run_dir: Path) -> StageRecord:
    """The run's finished features stage (its ``stage.json``)."""
    path = Path(run_dir) / "features" / "stage.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no features stage in this run folder; run the pipeline first "
            "(python flows/train_wakeword.py --config <config>)"
        )
    return StageRecord(**json.loads(path.read_text()))


def matched_row(rows: list[dict], max_fah: float, max_near_miss_rate: float) -> dict | None:
    """The row ``evaluation.choose_cutoff`` picks at FAH <= ``max_fah`` and a near-miss false
    accept rate <= ``max_near_miss_rate`` (the most recall, then the fewest activations, then
    the highest cutoff); None, quietly, if no cutoff stays within both."""
    from mww_core import evaluation

    within = [
        r
        for r in rows
        if r.get("fah") is not None
        and r["fah"] <= max_fah
        and (r.get("false_accept_rate") or 0.0) <= max_near_miss_rate
    ]
    if not within:
        return None
    return evaluation.choose_cutoff(within, max_fah, None, max_near_miss_rate)[0]


def _history(phase_dir: Path) -> dict[int, dict]:
    path = phase_dir / "history.json"
    if not path.exists():
        return {}
    return {int(h["step"]): h for h in json.loads(path.read_text())}


def phase_curve(
    config: FullConfig,
    streams_of_split: ValidationSet,
    phase_dir: Path,
    max_fah: float,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    """One phase's curve: a point per validated step (see the module); ``progress(what, done,
    total)`` after each step."""
    from mww_core import evaluation
    from mww_core.model import load_model
    from mww_core.training.trainer import keras_scorer, score_feature_streams

    history = _history(phase_dir)
    limit = config.training.max_near_miss_rate
    points = []
    steps = validated_steps(phase_dir)
    for step, weights in steps:
        model = load_model(config.model, weights)
        scored = score_feature_streams(
            keras_scorer(model, config),
            streams_of_split.streams,
            config.model.stride,
            streams_of_split.slips,
        )
        rows = evaluation.sweep(scored, EvaluationConfig())
        validated = history.get(step, {})
        cutoff = validated.get("cutoff")
        there = next((r for r in rows if cutoff is not None and abs(r["cutoff"] - cutoff) < 1e-6),
                     None)  # fmt: skip
        matched = matched_row(rows, max_fah, limit if limit is not None else 1.0)
        points.append(
            {
                "step": step,
                "validation_recall": validated.get("recall"),
                "validation_cutoff": cutoff,
                "is_best": validated.get("is_best"),
                "recall": there["recall"] if there else None,
                "fah": there["fah"] if there else None,
                "false_accept_rate": there["false_accept_rate"] if there else None,
                "matched_recall": matched["recall"] if matched else None,
                "matched_cutoff": matched["cutoff"] if matched else None,
            }
        )
        if progress:
            progress(f"{phase_dir.name} on the curve", len(points), len(steps))
    return points


def run_curves(
    config: FullConfig,
    split: str = "test",
    max_fah: float = 1.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, list[dict]]:
    """Every phase's curve on ``split`` of the run ``config.run_dir``: ``{phase dir: points}``.

    Raises:
        FileNotFoundError: the run has no features stage, or no phase kept validated weights
            (a run trained before they were kept: train it again).
    """
    from mww_core.pipeline.train_stage import validation_set

    run_dir = config.run_dir
    feats = features_record(run_dir)
    splits = feats.outputs.get("streams", {})
    if split not in splits:
        raise ValueError(
            f"{run_dir}: the features stage has no {split!r} streams: it has "
            f"{', '.join(repr(s) for s in splits)}"
        )
    streams = validation_set(config, feats, split)
    curves = {
        d.name: phase_curve(config, streams, d, max_fah, progress) for d in phase_dirs(run_dir)
    }
    if not any(curves.values()):
        raise FileNotFoundError(
            f"{run_dir}: no phase kept its validated weights (train_phase_<n>/validated/); "
            "runs trained before they were kept have none: train the run again"
        )
    return curves
