"""The pipeline as plain functions (no Prefect): one stage graph, each stage in its own module.

A stage's module is the root of its code fingerprint (every ``mww_core`` module it imports,
transitively), so the modules here import their siblings directly, never this package.
"""

from mww_core.pipeline.data_stage import prepare_data
from mww_core.pipeline.evaluate_stage import run_evaluation
from mww_core.pipeline.export_stage import run_export, wake_word_stem
from mww_core.pipeline.features_stage import run_features
from mww_core.pipeline.graph import (
    Hooks,
    Stage,
    last_phase_name,
    phase_name,
    run_all,
    stage_graph,
    train,
    up_to_date,
)
from mww_core.pipeline.mine_stage import run_mining
from mww_core.pipeline.train_stage import run_train_phase

__all__ = [
    "Hooks",
    "Stage",
    "last_phase_name",
    "phase_name",
    "prepare_data",
    "run_all",
    "run_evaluation",
    "run_export",
    "run_features",
    "run_mining",
    "run_train_phase",
    "stage_graph",
    "train",
    "up_to_date",
    "wake_word_stem",
]
