"""The fault proxy in a child process (`python -m bench.common.faultproxy`), controlled over its stdin/stdout."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

from bench.common.faults import Fault


class ProxyProcess:
    """The proxy in a child process (this module's CLI), controlled over its stdin/stdout."""

    def __init__(self, upstream: tuple[str, int], *, port: int = 0) -> None:
        argv = [sys.executable, "-m", "bench.common.faultproxy", "--upstream", f"{upstream[0]}:{upstream[1]}"]
        self._process = subprocess.Popen(
            [*argv, "--port", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        first = self._readline()
        if not first.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the fault proxy did not start: {first!r}")
        self.port = int(first.split()[1])

    @property
    def pid(self) -> int:
        return self._process.pid

    def _readline(self) -> str:
        assert self._process.stdout is not None
        return self._process.stdout.readline().strip()

    def _ask(self, line: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        answer = self._readline()
        if not answer.startswith("ok"):
            raise RuntimeError(f"fault proxy refused {line!r}: {answer}")
        return answer[2:].strip()

    def set(self, fault: Fault) -> None:
        spec = {"mode": fault.mode.value, "delay_ms": fault.delay_ms, "direction": fault.direction.value,
                "close_after_bytes": fault.close_after_bytes, "bytes_per_second": fault.bytes_per_second}  # fmt: skip
        self._ask(json.dumps(spec))

    def snapshot(self) -> dict[str, Any]:
        return dict(json.loads(self._ask('"stats"')))

    def retarget(self, upstream: tuple[str, int]) -> None:
        self._ask(json.dumps({"upstream": f"{upstream[0]}:{upstream[1]}"}))

    def stop(self) -> None:
        """Close stdin (the child's signal to stop), then wait; kill it (by pid) if it lingers."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
