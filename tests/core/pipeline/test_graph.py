"""The stage graph and code fingerprints that follow the import graph."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mww_core
from mww_core import stages
from mww_core.config import load_config
from mww_core.pipeline import stage_graph
from tests.conftest import write_tiny_config

STAGE_MODULES = {
    "features": "mww_core.pipeline.features_stage",
    "train": "mww_core.pipeline.train_stage",
    "mine": "mww_core.pipeline.mine_stage",
    "evaluate": "mww_core.pipeline.evaluate_stage",
    "export": "mww_core.pipeline.export_stage",
}


def test_stage_graph_names_inputs_in_order(tmp_path):
    config = load_config(write_tiny_config(tmp_path))
    graph = stage_graph(config)
    names = [s.name for s in graph]
    assert names == [
        "data", "features", "train_phase_1", "mine", "train_phase_2", "evaluate", "export"
    ]  # fmt: skip
    for position, stage in enumerate(graph):  # every input runs before the stage that takes it
        assert set(stage.inputs) <= set(names[:position]), stage


def test_closure_follows_imports_inside_functions():
    closure = stages.module_closure(STAGE_MODULES["evaluate"])
    # evaluate_stage imports reports and export inside its functions only.
    assert {"mww_core.reports", "mww_core.export", "mww_core.evaluation"} <= closure.keys()
    assert "mww_core.pipeline.graph" not in closure  # the graph is not part of a stage's code


def test_reports_reach_only_the_evaluate_stage():
    reached = {name: stages.module_closure(m) for name, m in STAGE_MODULES.items()}
    assert [name for name, closure in reached.items() if "mww_core.reports" in closure] == [
        "evaluate"
    ]


def test_fingerprint_changes_with_any_reached_module(tmp_path):
    copy = tmp_path / "mww_core"
    shutil.copytree(Path(mww_core.__file__).parent, copy)
    before = {n: stages.code_fingerprint(m, root=copy) for n, m in STAGE_MODULES.items()}
    frontend = copy / "frontend.py"  # reached through evaluation by every stage but export
    frontend.write_text(frontend.read_text() + "\n# edited\n")
    after = {n: stages.code_fingerprint(m, root=copy) for n, m in STAGE_MODULES.items()}
    changed = {n for n in STAGE_MODULES if before[n] != after[n]}
    assert changed == {n for n, m in STAGE_MODULES.items()
                       if "mww_core.frontend" in stages.module_closure(m, root=copy)}  # fmt: skip
    assert "evaluate" in changed and "train" in changed


# A pipeline that runs end to end in about a minute: ten steps a phase, one mined window a file.
TEN_STEPS = {
    "training": {"batch_size": 16, "eval_step_interval": 10, "checkpoint_interval": 10,
                 "phases": [{"steps": 10, "learning_rate": 0.003},
                            {"steps": 10, "learning_rate": 0.001}]},
    "mining": {"threshold": 0.0, "max_per_source": 1, "augmented_copies": 0},
}  # fmt: skip

_RUN = """
import json, sys
from mww_core.config import load_config
from mww_core.pipeline import run_all
records = run_all(load_config(sys.argv[1]))
print(json.dumps({name: record.skipped for name, record in records.items()}))
"""


def _run_copy(project: Path, config: Path) -> dict[str, bool]:
    """Run the pipeline with the copy of mww_core in ``project``; which stages were skipped."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(config)],
        cwd=project, capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(project)},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run trained end to end once (in this process) for the reuse tests below."""
    from mww_core.pipeline import run_all

    folder = tmp_path_factory.mktemp("trained")
    config_path = write_tiny_config(folder, **TEN_STEPS)
    records = run_all(load_config(config_path))
    # The data folder is a copy of the session's tiny data set: the data stage finds it current.
    assert [name for name, r in records.items() if r.skipped] == ["data"]
    return config_path, records


@pytest.mark.slow
def test_data_copied_with_new_mtimes_reuses_every_stage(trained_run):
    from mww_core.pipeline import run_all

    config_path, first = trained_run
    data = load_config(config_path).data.data_dir
    copy = data.with_name("copy")
    shutil.copytree(data, copy, copy_function=shutil.copyfile)  # same bytes, new mtimes
    shutil.rmtree(data)
    copy.rename(data)
    again = run_all(load_config(config_path))
    assert [n for n, r in again.items() if not r.skipped] == []
    assert again["export"].outputs == first["export"].outputs


@pytest.mark.slow
def test_editing_a_module_only_evaluate_reaches_reruns_evaluate_and_export(trained_run, tmp_path):
    config_path, _ = trained_run
    project = tmp_path / "project"
    shutil.copytree(Path(mww_core.__file__).parent, project / "mww_core")
    assert all(_run_copy(project, config_path).values())  # the copy runs the same code
    reports = project / "mww_core" / "reports.py"
    reports.write_text(reports.read_text() + "\n# a change only the evaluate stage runs\n")
    second = _run_copy(project, config_path)
    assert {name for name, skipped in second.items() if not skipped} == {"evaluate", "export"}


@pytest.mark.slow
def test_a_cutoff_target_training_did_not_choose_at_is_named(trained_run, caplog):
    """Tuning only evaluation's target re-runs evaluation, which says training chose at 1 FAH."""
    from mww_core.pipeline import run_evaluation

    config_path, records = trained_run
    config = load_config(config_path)
    tuned = config.model_copy(
        update={"evaluation": config.evaluation.model_copy(update={"target_fah": 30.0})}
    )
    feats, phase = records["features"], records["train_phase_2"]
    assert config.target_mismatches() == []  # the tiny config's defaults agree
    with caplog.at_level(logging.WARNING, logger="mww_core.pipeline"):
        evaluated = run_evaluation(tuned, feats, phase, phase_1=records["train_phase_1"])
    assert not evaluated.skipped
    assert "training.target_fah (1.0) differs from evaluation.target_fah (30.0)" in caplog.text
