"""The whole flow on a tiny config under a real (temporary) Prefect server."""

import json
import time

import pytest

from flows.train_wakeword import train_wakeword
from mww_core.evaluation import StreamingTFLiteModel
from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow


def test_flow_end_to_end_then_skips(tmp_path, prefect_harness):
    config = write_tiny_config(tmp_path)
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
    assert "false activations" in report.read_text()
    assert summary["skipped"] == []

    started = time.time()
    again = train_wakeword(config=str(config))
    assert set(again["skipped"]) == {"data", "features", "mine", "train", "evaluate", "export"}
    assert time.time() - started < first

    # Changing only an evaluation setting re-runs evaluation and export alone.
    config = write_tiny_config(tmp_path, evaluation={"target_fah": 5.0})
    changed = train_wakeword(config=str(config))
    assert set(changed["skipped"]) == {"data", "features", "mine", "train"}
