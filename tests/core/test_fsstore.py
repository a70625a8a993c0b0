"""fsspec store URLs: atomic writes, listings, and the features stage + training on memory://."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest

from mww_core import fanout, fsstore, pipeline
from mww_core.config import FullConfig
from mww_core.stages import StageRecord
from mww_core.store import read_windows
from tests.core.features.test_stage import _make_data


def test_atomic_write_shows_a_file_only_when_complete(memory_url):
    target = fsstore.join(memory_url, "a.bin")
    with pytest.raises(RuntimeError, match="boom"):
        with fsstore.atomic_write(target) as out:
            out.write(b"partial")
            raise RuntimeError("boom")
    assert not fsstore.exists(target)
    assert fsspec.filesystem("memory").ls(memory_url, detail=False) == []  # no temp left
    with fsstore.atomic_write(target) as out:
        out.write(b"complete")
    assert fsstore.read_bytes(target) == b"complete"
    assert fsstore.list_files(memory_url, ".bin") == [target]


def test_local_paths_and_urls(tmp_path):
    assert fsstore.to_url(tmp_path) == tmp_path.resolve().as_uri()
    assert fsstore.local_path(fsstore.to_url(tmp_path)) == tmp_path.resolve()
    assert fsstore.local_path("memory://x/y") is None
    with pytest.raises(ValueError, match="install the backend"):
        fsstore.exists("nosuchproto://bucket/key")


def _config(root, runs, store_url=None):
    return FullConfig.model_validate(
        {
            "run_name": "fs",
            "runs_dir": str(runs),
            "data": {"data_dir": str(root), "build_demo": False},
            "augmentation": {"positive_copies": 2, "negative_copies": 1},
            "features": {"shard_rows": 8, "num_workers": 1},
            "training": {
                "batch_size": 8,
                "eval_step_interval": 3,
                "checkpoint_interval": 3,
                "phases": [{"steps": 3, "learning_rate": 0.001}] * 2,
            },
            "performance": {"feature_store_url": store_url},
        }
    )


def _fingerprints(record: StageRecord) -> dict[str, str]:
    return {
        name: fanout.shard_result(url).content
        for name, (url, _) in record.outputs["train_windows"].items()
    }


@pytest.mark.slow
def test_memory_store_gives_the_same_features_and_trains(tmp_path, memory_url):
    root = _make_data(tmp_path / "data")
    data = StageRecord(name="data", fingerprint="test-data")
    on_disk = pipeline.run_features(_config(root, tmp_path / "file"), data)
    config = _config(root, tmp_path / "memory", memory_url)
    in_memory = pipeline.run_features(config, data)

    urls = [u for u, _ in in_memory.outputs["train_windows"].values()]
    assert urls and all(u.startswith(memory_url + "/") for u in urls)
    assert not (tmp_path / "memory" / "fs" / "feature_shards").exists()  # nothing local
    expected = _fingerprints(on_disk)
    assert len(expected) > 2
    assert _fingerprints(in_memory) == expected
    a = read_windows([p for p, _ in on_disk.outputs["train_windows"].values()])
    b = read_windows(urls)
    np.testing.assert_array_equal(a.features, b.features)

    phase = pipeline.run_train_phase(config, 0, in_memory)
    assert (tmp_path / "memory" / "fs" / "train_phase_1").is_dir()
    # The same windows read from memory:// train the same weights as read from local files.
    local = pipeline.run_train_phase(_config(root, tmp_path / "file"), 0, on_disk)
    with np.load(phase.outputs["best_weights"]) as a, np.load(local.outputs["best_weights"]) as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])

    # A finished stage whose shards live in the memory:// store is recognized as complete.
    again = pipeline.run_features(config, data)
    assert again.skipped and again.started == in_memory.started  # the recorded run
