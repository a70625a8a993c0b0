"""deployments/prefect.yaml against a real Prefect server and process worker on 127.0.0.1."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import write_tiny_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]
POOL = "mww-process"
STAGES = {"data", "features", "train_phase_1", "mine", "train_phase_2", "evaluate", "export"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(home: Path) -> dict:
    """This process's environment without any Prefect server settings, with its own home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


def _wait_healthy(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"prefect server not healthy after {timeout_s} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen | None) -> None:
    """SIGTERM by pid, then SIGKILL if it does not exit in 30 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Server:
    """A running server, its environment and a CLI runner."""

    def __init__(self, env: dict, folder: Path):
        self.env = env
        self.folder = folder

    def cli(self, *args: str, timeout_s: float = 120) -> str:
        """Run ``prefect ARGS`` from the project root; fail the test with its output on error."""
        done = subprocess.run(
            [*PREFECT, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout_s,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{output}"
        return output


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """Server + pool + deployments + worker for this module; every process stopped after."""
    folder = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = _clean_env(folder / "home")
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    server = worker = None
    server_log, worker_log = folder / "server.log", folder / "worker.log"
    try:
        with server_log.open("w") as out:
            server = subprocess.Popen(
                [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_healthy(env["PREFECT_API_URL"], server, server_log)
        running = Server(env, folder)
        running.cli("work-pool", "create", POOL, "--type", "process")
        running.cli("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
        with worker_log.open("w") as out:
            worker = subprocess.Popen(
                [*PREFECT, "worker", "start", "--pool", POOL],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        yield running
    finally:
        _stop(worker)  # the worker first: it reports to the server as it shuts down
        _stop(server)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """A tiny config whose run and data live in this module's temporary folder."""
    return write_tiny_config(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def deployed_run(prefect_server, tiny_config) -> str:
    """The tiny run trained by ``prefect deployment run`` on the worker; the CLI's output."""
    return prefect_server.cli(
        "deployment", "run", "train-wakeword/demo",
        "--param", f"config={tiny_config}", "--param", "run_name=tiny",
        "--watch", "--watch-timeout", "900",
        timeout_s=960,
    )  # fmt: skip


def test_train_deployment_runs_on_worker(deployed_run, tiny_config):
    assert "Completed" in deployed_run, deployed_run
    export = tiny_config.parent / "runs" / "tiny" / "export"
    manifest = json.loads((export / "hey_jarvis.json").read_text())
    assert manifest["model"] == "hey_jarvis.tflite"
    assert (export / "hey_jarvis.tflite").stat().st_size > 10_000
    stages = [json.loads(p.read_text()) for p in export.parent.glob("*/stage.json")]
    assert {s["name"] for s in stages} == STAGES - {"data"}


def test_retrain_schedule_is_listed(prefect_server):
    output = prefect_server.cli("deployment", "schedule", "ls", "retrain-on-new-negatives/nightly")
    assert "30 3 * * *" in output, output


def test_run_folder_alone_resumes_without_prefect_database(
    prefect_server, tiny_config, deployed_run
):
    """A fresh PREFECT_HOME (no database, no cache) still skips every finished stage."""
    export = tiny_config.parent / "runs" / "tiny" / "export" / "stage.json"
    assert export.exists(), deployed_run
    # The run was made through the module's server, whose database is in its own PREFECT_HOME;
    # this run gets an empty one (no PREFECT_API_URL: a temporary server on a new database).
    home = prefect_server.folder / "empty-home"
    shutil.rmtree(home, ignore_errors=True)
    env = _clean_env(home)
    done = subprocess.run(
        [sys.executable, "flows/train_wakeword.py", "--config", str(tiny_config),
         "--run-name", "tiny"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    stdout = "\n" + done.stdout
    summary = json.loads(stdout[stdout.rindex("\n{") :])  # the JSON summary printed last
    assert set(summary["skipped"]) == STAGES, summary
    assert json.loads(export.read_text())["fingerprint"]  # the record the skip relied on
