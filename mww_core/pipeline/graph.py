"""The stage graph: every stage's name, inputs and function, read by the flow, mww-train and
the up-to-date check alike. Adding a stage means adding it here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.pipeline.data_stage import prepare_data
from mww_core.pipeline.evaluate_stage import run_evaluation
from mww_core.pipeline.export_stage import run_export
from mww_core.pipeline.features_stage import run_features
from mww_core.pipeline.mine_stage import run_mining
from mww_core.pipeline.train_stage import run_train_phase
from mww_core.stages import StageRecord

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
Records = dict[str, StageRecord]


@dataclass(frozen=True)
class Hooks:
    """Where a stage's progress goes: ``progress(what, done, total)`` and training events."""

    progress: Progress | None = None
    training_logger: Any = None  # a mww_core.training.display.TrainingLogger


@dataclass(frozen=True)
class Stage:
    """One node of the graph.

    Attributes:
        name: The stage's name: its folder under the run folder and its key in the records.
        label: What a person reads in logs, progress bars and the Prefect UI.
        inputs: Names of the stages whose records it takes, in the order ``run`` takes them.
        run: ``run(config, hooks, *input_records) -> StageRecord``; skips itself when its
            fingerprint is unchanged.
        retries: How often a transient failure (a killed worker, a timed-out tool) is retried
            under Prefect; a retry resumes, since the run folder holds what was done.
    """

    name: str
    label: str
    inputs: tuple[str, ...]
    run: Callable[..., StageRecord]
    retries: int = 0

    def __call__(self, config: FullConfig, records: Records, hooks: Hooks = Hooks()) -> StageRecord:
        """Run (or reuse) this stage on the records of the stages before it."""
        return self.run(config, hooks, *(records[name] for name in self.inputs))


def phase_name(index: int) -> str:
    """Stage name of training phase ``index`` (0-based): ``train_phase_1`` for the first."""
    return f"train_phase_{index + 1}"


def last_phase_name(config: FullConfig) -> str:
    """Stage name of the last training phase (whose best weights are evaluated and shipped)."""
    return phase_name(len(config.training.phases) - 1)


def _data(config: FullConfig, hooks: Hooks) -> StageRecord:
    return prepare_data(config, hooks.progress)


def _features(config: FullConfig, hooks: Hooks, data: StageRecord) -> StageRecord:
    return run_features(config, data, hooks.progress)


def _first_phase(config: FullConfig, hooks: Hooks, feats: StageRecord) -> StageRecord:
    return run_train_phase(config, 0, feats, None, None, hooks.progress, hooks.training_logger)


def _later_phase(index: int) -> Callable[..., StageRecord]:
    def run(config: FullConfig, hooks: Hooks, feats, previous, mined) -> StageRecord:
        return run_train_phase(
            config, index, feats, previous, mined, hooks.progress, hooks.training_logger
        )

    return run


def _mine(config: FullConfig, hooks: Hooks, feats, phase) -> StageRecord:
    mined = run_mining(config, feats, phase, hooks.progress)
    if hooks.training_logger is not None:
        hooks.training_logger.print_mining_stats({"kept": mined.metrics.get("kept")})
    return mined


def _evaluate(config: FullConfig, hooks: Hooks, feats, phase, first) -> StageRecord:
    return run_evaluation(config, feats, phase, hooks.progress, first)


def _export(config: FullConfig, hooks: Hooks, evaluated) -> StageRecord:  # noqa: ARG001
    return run_export(config, evaluated)


def stage_graph(config: FullConfig) -> list[Stage]:
    """The stages in the order they run: data, features, phase 1, mining, the later phases,
    evaluation and export (one training stage per ``training.phases`` entry)."""
    first = phase_name(0)
    graph = [
        Stage("data", "prepare data", (), _data, retries=2),
        Stage("features", "features", ("data",), _features, retries=2),
        Stage(first, "train phase 1", ("features",), _first_phase, retries=1),
        Stage("mine", "mine hard negatives", ("features", first), _mine),
    ]
    for index in range(1, len(config.training.phases)):
        inputs = ("features", phase_name(index - 1), "mine")
        label = f"train phase {index + 1}"
        graph.append(Stage(phase_name(index), label, inputs, _later_phase(index), retries=1))
    last = last_phase_name(config)
    graph += [
        Stage("evaluate", "evaluate", ("features", last, first), _evaluate),
        Stage("export", "export", ("evaluate",), _export),
    ]
    return graph


def run_all(config: FullConfig, hooks: Hooks = Hooks(), until: str = "export") -> Records:
    """Every stage in order in this process (no Prefect), up to the stage named ``until``.

    Returns each stage's record by stage name.
    """
    records: Records = {}
    for stage in stage_graph(config):
        records[stage.name] = stage(config, records, hooks)
        if stage.name == until:
            break
    return records


def up_to_date(config: FullConfig) -> Records | None:
    """Every stage's record when all are up to date (nothing would run), else None.

    Checks the same fingerprints the stages do, without importing TensorFlow or starting
    anything, so an unchanged run can finish in a second or two.
    """
    try:
        with stages.dry_run():
            return run_all(config)
    except stages.WouldRun as stage:
        log.info("stage %s has new inputs: running the pipeline", stage)
        return None


def train(config: FullConfig, hooks: Hooks = Hooks()) -> StageRecord:
    """Data, features, every training phase and mining, as stages; the last phase's record."""
    return run_all(config, hooks, until=last_phase_name(config))[last_phase_name(config)]
