"""The features task publishes its progress as a Prefect progress artifact that reaches 100."""

from __future__ import annotations

import numpy as np
import yaml
from prefect import flow

from mww_core import pipeline
from mww_core.audio import write_wav
from mww_core.config import load_config
from tasks import stages
from tests.conftest import SMALL_MODEL


def _tiny_data(root):
    """Noise clips and a short recording per split: enough rows for several progress steps."""
    rng = np.random.default_rng(0)
    counts = {"train": (12, 20), "validation": (2, 2), "test": (2, 2)}
    for split, (positives, negatives) in counts.items():
        for kind, n in (("positive", positives), ("negative", negatives)):
            for i in range(n):
                clip = (0.1 * rng.standard_normal(16000)).astype(np.float32)
                write_wav(root / split / kind / f"{kind}_{i:03d}.wav", clip)
        ambient = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
        write_wav(root / split / "ambient" / "room.wav", ambient)


def _config(tmp_path):
    _tiny_data(tmp_path / "data")
    config = {
        "run_name": "progress",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"data_dir": str(tmp_path / "data"), "build_demo": False},
        "augmentation": {"positive_copies": 2, "negative_copies": 1},
        "features": {"window_frames": 60, "shard_rows": 8, "num_workers": 1},
        "model": SMALL_MODEL,
    }
    path = tmp_path / "progress.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _read_back(task_run_id):
    """The task run's ``features-progress`` artifacts and log messages, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        ArtifactFilterTaskRunId,
        LogFilter,
        LogFilterTaskRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # log lines are sent to the API in batches
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["features-progress"]),
                task_run_id=ArtifactFilterTaskRunId(any_=[task_run_id]),
            )
        )
        logs = client.read_logs(
            log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run_id]))
        )
    return artifacts, [log.message for log in logs]


def test_features_task_reports_progress_artifact(tmp_path, prefect_harness):
    config_path = _config(tmp_path)
    data = pipeline.prepare_data(load_config(config_path)).to_dict()

    @flow
    def features_only():
        graph = {s.name: s for s in pipeline.stage_graph(load_config(config_path))}
        task = stages.stage_task(graph["features"])
        future = task.submit(str(config_path), None, "features", {"data": data})
        return future.task_run_id, future.result()

    task_run_id, record = features_only()
    rows = record["metrics"]["train_windows"]
    assert record["name"] == "features" and rows > 12 * 2 + 20  # plus ambient windows
    assert record["metrics"]["shards_computed"] >= 2

    artifacts, messages = _read_back(task_run_id)
    (artifact,) = artifacts
    assert artifact.type == "progress"
    assert float(artifact.data) == 100.0
    assert artifact.description == "features: done"
    assert any(f"features: train windows {rows}/{rows} (100%)" in m for m in messages), messages
    assert any("features: streams test 3/3" in m for m in messages), messages
