"""Feature shards on a real Dask LocalCluster through DaskTaskRunner, also when a worker dies."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import psutil
import pytest
from prefect import flow

from mww_core import fanout, fsstore, pipeline
from mww_core.audio import write_wav
from mww_core.config import load_config
from tasks import feature_fanout, stages
from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture
def dask_cluster():
    """Two worker processes on 127.0.0.1; every process the cluster started is gone afterwards."""
    from distributed import Client, LocalCluster

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster)
    started: set[int] = set()
    try:
        yield cluster, client, started
    finally:
        client.close()
        cluster.close(timeout=60)
        started |= {p.pid for p in psutil.Process().children(recursive=True)}
        started -= before  # e.g. the session's Prefect server
        deadline = time.time() + 30
        alive = [pid for pid in started if psutil.pid_exists(pid) and _is_dask(pid)]
        while alive and time.time() < deadline:
            time.sleep(0.2)
            alive = [pid for pid in alive if psutil.pid_exists(pid) and _is_dask(pid)]
        for pid in alive:  # make sure, then fail: the test must not leave workers running
            os.kill(pid, signal.SIGKILL)
        assert not alive, f"processes left running: {[_describe(pid) for pid in alive]}"


def _describe(pid: int) -> str:
    try:
        return f"{pid} {' '.join(psutil.Process(pid).cmdline())[:200]}"
    except psutil.Error:
        return str(pid)


def _is_dask(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
            proc.cmdline()
        )
    except psutil.Error:
        return False


def _make_data(root, clips=24, seed=0):
    """Clips of tones in noise, long noise recordings, RIRs and noise for augmentation."""
    rng = np.random.default_rng(seed)
    t = np.arange(24000) / 16000
    for split, count in (("train", clips), ("validation", 4), ("test", 4)):
        for i in range(count):
            kind = "positive" if i % 2 == 0 else "negative"
            tone = np.sin(2 * np.pi * rng.uniform(150, 900) * t) * np.exp(
                -(((t - 0.7) / 0.25) ** 2)
            )
            audio = 0.3 * tone + 0.02 * rng.standard_normal(len(t))
            write_wav(root / split / kind / f"clip_{i:03d}.wav", audio.astype(np.float32))
        write_wav(root / split / "ambient" / "room.wav", 0.05 * rng.standard_normal(16000 * 6))
    for i in range(2):
        rir = np.exp(-np.arange(2000) / 400) * rng.standard_normal(2000)
        write_wav(root / "rirs" / f"rir_{i}.wav", (rir / np.abs(rir).max()).astype(np.float32))
        write_wav(root / "noise" / f"noise_{i}.wav", 0.2 * rng.standard_normal(16000 * 2))
    return root


def _config_file(tmp_path, name, **performance):
    path = write_tiny_config(
        tmp_path / name,
        data={"data_dir": str(tmp_path / "data"), "build_demo": False},
        features={"shard_rows": 16, "num_workers": 2},
        performance=performance,
    )
    return str(path)


@flow(name="features-stage")
def features_stage(config_path: str) -> dict:
    """What flows/train_wakeword.py does up to the features stage."""
    cfg = stages.stage_config(config_path, None)
    graph = {stage.name: stage for stage in pipeline.stage_graph(cfg)}
    data = stages.stage_task(graph["data"])(config_path, None, "data", {})
    if cfg.performance.task_runner != "threads":
        feature_fanout.fan_out_shards(cfg)
    return stages.stage_task(graph["features"])(config_path, None, "features", {"data": data})


def _content(record: dict) -> dict[str, str]:
    return {
        name: fanout.shard_result(url).content
        for name, (url, _) in record["outputs"]["train_windows"].items()
    }


def _kill_first_busy_worker(client, killed: list) -> None:
    """Wait until a worker is running a shard task, then SIGKILL that worker's process."""
    pids = client.run(os.getpid)
    deadline = time.time() + 120
    while time.time() < deadline:
        for address, keys in client.processing().items():
            if keys and address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed.append((pids[address], list(keys)))
                return
        time.sleep(0.02)


def test_dask_shards_equal_in_process_and_survive_a_killed_worker(
    tmp_path, prefect_harness, dask_cluster
):
    cluster, client, started = dask_cluster
    _make_data(tmp_path / "data")
    address = cluster.scheduler_address
    started |= set(client.run(os.getpid).values())

    reference = features_stage(_config_file(tmp_path, "local"))  # in-process worker processes
    expected = _content(reference)
    assert len(expected) >= 4 and reference["metrics"]["shards_computed"] == len(expected)

    on_dask = features_stage(
        _config_file(tmp_path, "dask", task_runner="dask", dask_address=address)
    )
    assert on_dask["metrics"]["shards_computed"] == 0  # all made by the Dask workers
    assert _content(on_dask) == expected

    # The workers' shard processes exist now; the fixture checks that they are gone at the end.
    started |= {c.pid for c in psutil.Process().children(recursive=True)}
    killed: list = []
    killer = threading.Thread(target=_kill_first_busy_worker, args=(client, killed), daemon=True)
    config = _config_file(tmp_path, "killed", task_runner="dask", dask_address=address)
    killer.start()
    survived = features_stage(config)
    killer.join(timeout=5)
    assert killed, "no worker was busy long enough to be killed"
    pid, keys = killed[0]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert survived["metrics"]["shards_computed"] == 0
    assert _content(survived) == expected  # the killed shard was computed again, identically
    url = fanout.store_url(load_config(config))
    assert fsstore.list_files(url, ".parquet") == sorted(  # no partial shard, no extra file
        fsstore.to_url(u) for u, _ in survived["outputs"]["train_windows"].values()
    )
    started |= set(client.run(os.getpid).values())  # the nanny's replacement worker
