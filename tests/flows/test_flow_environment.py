"""The flow module's defaults for a local run: set before Prefect is imported, overridable."""

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, os, flows.train_wakeword; "
    "print(json.dumps({k: os.environ.get(k) for k in "
    "('PREFECT_SERVER_ANALYTICS_ENABLED', 'PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS')}))"
)


def _environment_after_import(**set_before: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_")}
    env |= set_before
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=PROJECT, env=env, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_local_run_sends_no_telemetry_unless_asked():
    # Offline machines printed an ERROR line per run when the temporary server tried to send it.
    assert _environment_after_import() == {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    chosen = _environment_after_import(PREFECT_SERVER_ANALYTICS_ENABLED="true")
    assert chosen["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"
