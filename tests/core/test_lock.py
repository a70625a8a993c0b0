"""Run-folder lock: a second holder fails fast naming the first; a killed holder frees it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from mww_core.lock import RunLockedError, run_lock

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from mww_core.lock import run_lock\n"
    "with run_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(60)\n"
)


def test_second_holder_fails_fast_and_kill_releases(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            with run_lock(tmp_path):
                pass
        assert time.monotonic() - started < 1.0
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with run_lock(tmp_path):  # the kernel released the dead holder's lock
        pass
