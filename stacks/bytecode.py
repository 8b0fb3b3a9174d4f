"""Bytecode for Lambda's CPython 3.12, so that a cold start does not compile every imported module.

Lambda's /var/task is read-only: a module without a matching .pyc is compiled in memory on every cold
start. pip byte-compiles with the synth machine's interpreter (3.11 here), whose `cpython-311` files
3.12 ignores; and the deployment zip resets file times, which invalidates timestamp-checked .pyc files.
So when a CPython 3.12 is at hand, the bundle is also compiled with it in `unchecked-hash` mode. Without
one the bundle is still correct, only slower to start; the asset hash records which of the two it is.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path

LAMBDA_CACHE_TAG = "cpython-312"


def _candidates() -> list[str]:
    configured = os.environ.get("FLAGS_BYTECODE_PYTHON")
    if configured:
        return [configured]
    found = [shutil.which("python3.12") or ""]
    found += sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    found += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    return [path for path in found if path]


@cache
def bytecode_python() -> str | None:
    """A CPython 3.12 interpreter (FLAGS_BYTECODE_PYTHON, PATH, pyenv, /usr), or None."""
    for candidate in _candidates():
        try:
            tag = subprocess.run(
                [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if tag == LAMBDA_CACHE_TAG:
            return candidate
    return None


def bytecode_tag() -> str | None:
    return LAMBDA_CACHE_TAG if bytecode_python() else None


def compile_for_lambda(root: Path, *, only: Sequence[Path] | None = None) -> None:
    """Add 3.12 bytecode under root (or only the given paths in it), as Lambda will find it in /var/task."""
    python = bytecode_python()
    targets = [str(path) for path in (only if only is not None else [root]) if path.exists()]
    if python is None or not targets:
        return
    command = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    command += ["-s", str(root), "-p", "/var/task", *targets]
    # A file some package ships that 3.12 cannot compile is not our failure: it stays source-only.
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
