"""`python -m local.server` (the process `make dev` runs) as a child of a test suite: started, awaited, stopped.

Used by the console suite (tests/console/stack.py) and the OFREP suites (tests/ofrep/conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
# Settings of a deployed function or of `make dev` that must not leak from the caller's environment.
DROPPED_ENV = ("AWS_LAMBDA_FUNCTION_NAME", "DB_SECRET_ARN", "REDIS_AUTH_SECRET_ARN", "DEV_HANDLER", "DEV_DATA_DIR")


def inherited_env() -> dict[str, str]:
    """This process's environment without the settings of DROPPED_ENV."""
    return {name: value for name, value in os.environ.items() if name not in DROPPED_ENV}


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The server in a session of its own (its workers in its group), its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "local.server"], cwd=REPO, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def serving_url(process: subprocess.Popen[bytes], log: Path) -> str | None:
    """The URL the server printed once it serves; None if it exited first or did not within STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("serving http://"):
                return line.split()[1]
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's pid (it stops its workers and event stream); SIGKILL to its group only if it hangs."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_SECONDS)
