"""The whole flow on a tiny config under a real (temporary) Prefect server."""

import json
import time
from pathlib import Path

import pytest
import yaml

from flows.train_wakeword import train_wakeword
from mww_core.evaluation import StreamingTFLiteModel
from mww_core.store import read_windows
from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow


# A tiny model fires on little: keep a couple of windows per source, whatever their score.
MINE_ALL = {"threshold": 0.0, "max_per_source": 2}


def test_flow_end_to_end_then_skips(tmp_path, prefect_harness):
    config = _with_paused_test_near_misses(write_tiny_config(tmp_path, mining=MINE_ALL))
    started = time.time()
    summary = train_wakeword(config=str(config))
    first = time.time() - started

    manifest = json.loads(open(summary["manifest"]).read())
    assert manifest["version"] == 2 and manifest["type"] == "micro"
    assert manifest["model"] == "hey_jarvis.tflite"
    assert 0 < manifest["micro"]["probability_cutoff"] <= 1
    assert 0 < manifest["micro"]["tensor_arena_size"] <= 22_860
    model = StreamingTFLiteModel(summary["model"])
    assert model.stride == 3
    report = tmp_path / "runs" / "tiny" / "evaluate" / "report.md"
    text = report.read_text()
    assert "false activations" in text
    # The demo's test split is heard in held-out conditions, each with its own recall.
    table = text.split("## Recall per condition (test, cutoff")[1].split("\n## ")[0]
    assert all(f"| {c} |" in table for c in ("clean", "noisy", "far_field", "command"))
    wordings = text.split("## Recall per wording (test, cutoff")[1].split("\n## ")[0]
    assert all(f"| {w} |" in wordings for w in ("fluent", "paused", "request"))
    assert "never used in training or validation (espeak-ng en-us-nyc" in text
    assert "Of the test's 6 near misses said with a pause" in text
    assert "Validation holds 4 near misses said with a pause too" in text
    assert summary["skipped"] == []
    # Mining re-made every kept window mining.augmented_copies (8) times, all in one shard.
    mine = json.loads((report.parent.parent / "mine_hard_negatives" / "stage.json").read_text())
    hard = read_windows([Path(mine["outputs"]["hard_negatives"])])
    assert mine["metrics"]["augmented"] == 8 * mine["metrics"]["kept"] == (hard.seed >= 0).sum()
    assert mine["metrics"]["kept"] > 0 and len(hard) == 9 * mine["metrics"]["kept"]
    # The metrics table artifact names the model that ships (phase 2, or phase 1 carried over).
    metrics = json.loads((report.parent / "stage.json").read_text())["metrics"]
    assert metrics["paused_near_misses"]["clips"] == 6  # no slips: every near miss counts
    rows = _evaluation_table()
    assert {r["model"] for r in rows} >= {f"{metrics['shipped']} (shipped)"}
    shipped_test = next(
        r for r in rows if r["model"].endswith("(shipped)") and r["split"] == "test"
    )
    assert shipped_test["recall"] == round(metrics["test"]["recall"], 3)
    # The report names the releases the shipped phase was trained with, from its stage.json.
    phase_dir = "train_phase_1" if metrics["shipped"] == "phase 1" else "train_phase_2"
    trained = json.loads((report.parent.parent / phase_dir / "stage.json").read_text())
    assert metrics["versions"]["trained"] == trained["versions"]
    assert f"Trained with python {trained['versions']['python']}, " in text

    from mww_core import pipeline
    from mww_core.config import load_config

    assert pipeline.up_to_date(load_config(config)) is not None  # the no-Prefect fast path
    started = time.time()
    again = train_wakeword(config=str(config))
    trained = {"data", "features", "train_phase_1", "mine", "train_phase_2"}
    assert set(again["skipped"]) == trained | {"evaluate", "export"}
    assert time.time() - started < first

    # Changing only evaluation settings re-runs evaluation and export alone; with slips counted
    # apart the demo data set's one-phoneme near misses are marked from its dataset.json.
    assert "slip_clips" not in metrics["test"]
    evaluation = {"target_fah": 5.0, "near_miss_min_distance": 2}
    config = write_tiny_config(tmp_path, mining=MINE_ALL, evaluation=evaluation)
    config = _with_paused_test_near_misses(config)
    assert pipeline.up_to_date(load_config(config)) is None
    changed = train_wakeword(config=str(config))
    assert set(changed["skipped"]) == trained
    metrics = json.loads((report.parent / "stage.json").read_text())["metrics"]
    described = json.loads((tmp_path / "data" / "dataset.json").read_text())
    distances = {p["text"]: p["spoken_distance"] for p in described["near_miss_phrases"]}
    slips = sum(
        1
        for name, entry in described["files"].items()
        if name.startswith("test/negative/")
        and distances.get(entry.get("text", "").replace(",", ""), 9) < 2  # paused ones too
    )
    assert metrics["test"]["slip_clips"] == slips > 0
    assert metrics["confusion_matrix"]["true_negatives"] + metrics["test"]["false_accepts"] == (
        metrics["clips"]["test"]["negative"] - slips
    )


def _with_paused_test_near_misses(config: Path) -> Path:
    """The tiny config with 6 test near misses said with a pause ("hey, travis"), which the
    report counts apart, and 4 in validation, which the report names."""
    spec = yaml.safe_load(config.read_text())
    spec["data"]["demo"]["test_paused_near_misses"] = 6
    spec["data"]["demo"]["validation_paused_near_misses"] = 4
    config.write_text(yaml.safe_dump(spec))
    return config


def _evaluation_table() -> list[dict]:
    """Rows of the newest ``evaluation-metrics`` table artifact, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["evaluation-metrics"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def test_second_flow_on_a_locked_run_fails_fast(tmp_path, prefect_harness):
    import subprocess
    import sys

    from mww_core.lock import RunLockedError

    config = write_tiny_config(tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    hold = (
        "import sys, time\nfrom pathlib import Path\nfrom mww_core.lock import run_lock\n"
        "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run_dir)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        started = time.time()
        with pytest.raises(RunLockedError, match="in use by another run"):
            train_wakeword(config=str(config))
        assert time.time() - started < 30
        assert not (run_dir / "features").exists()  # nothing was written
    finally:
        holder.kill()
        holder.wait()
