"""Shared fixtures: a tiny end-to-end config and one Prefect test harness per session."""

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Deterministic TensorFlow kernels everywhere in the suite (the Trainer enables them too).
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


# A model whose receptive field (27 frames) fits the short windows of feature-only tests.
SMALL_MODEL = {"first_conv_kernel": 3, "mixconv_kernels": [[3], [3], [3], [3]], "head_frames": 1}


def write_tiny_config(folder, **changes):
    """A config that runs the whole pipeline in a minute or two on 2 cores.

    When the data section is the tiny one (any ``data_dir``), a missing data folder is filled
    with a copy of the tiny demo data set, built once per test session: the builder is seeded,
    so every build is the same files, and each build costs about 20 s. The data stage then finds
    it current and reports itself skipped. Tests that change the data section build their own.
    """
    config = _tiny_spec(folder)
    for key, value in changes.items():
        section, _, field = key.partition(".")
        if field:
            config[section] = {**config.get(section, {}), field: value}
        else:
            config[section] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    data_dir = Path(config["data"]["data_dir"])
    default = {**_tiny_spec(folder)["data"], "data_dir": config["data"]["data_dir"]}
    if config["data"] == default and not data_dir.exists():
        shutil.copytree(_tiny_data(), data_dir)
    return path


_TINY_DATA: list[Path] = []


def _tiny_data() -> Path:
    """The tiny config's demo data set, built on first use in a folder removed at exit."""
    if not _TINY_DATA:
        from mww_core.config import load_config
        from mww_core.demo_data import build_demo_dataset

        root = Path(tempfile.mkdtemp(prefix="mww-tiny-data-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        spec = _tiny_spec(root)
        path = root / "tiny.yaml"
        path.write_text(yaml.safe_dump(spec))
        build_demo_dataset(load_config(path).data)
        _TINY_DATA.append(Path(spec["data"]["data_dir"]))
    return _TINY_DATA[0]


def _tiny_spec(folder) -> dict:
    """The tiny config as a dict, its run and data under ``folder``."""
    return {
        "run_name": "tiny",
        "runs_dir": str(folder / "runs"),
        "data": {
            "data_dir": str(folder / "data"),
            "demo": {
                "piper_positives": 12,
                "espeak_positives": 24,
                "near_miss_negatives": 20,
                "speech_negatives": 8,
                "ambient_minutes": {"train": 1.0, "validation": 0.5, "test": 0.5},
                "mining_minutes": 1.0,
                "rirs": 3,
                "noise_clips": 3,
            },
        },
        "augmentation": {"positive_copies": 2},
        "features": {"shard_rows": 64, "num_workers": 2},
        "training": {
            "batch_size": 32,
            "eval_step_interval": 20,
            "checkpoint_interval": 10,
            "phases": [
                {"steps": 40, "learning_rate": 0.003},
                {"steps": 20, "learning_rate": 0.001},
            ],
        },
        "export": {"representative_samples": 50},
    }


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def memory_url():
    """A fresh folder of the process-wide memory:// filesystem, emptied afterwards."""
    import fsspec

    url = f"memory://mww-test-{uuid.uuid4().hex[:8]}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end tests first: with two workers (``make test`` runs ``-n 2``), the
    longest tests start early and the short ones fill in around them, instead of one worker
    finishing a long test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
