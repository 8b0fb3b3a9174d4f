"""Where local server data lives, and who may reach it.

PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged user. That
user must traverse every parent folder of its data: a checkout inside `mktemp -d` (mode 700,
owned by root) is unreachable. So data lives in a world-traversable folder keyed by the checkout
(`/var/tmp/flagservice-<uid>-<hash>`), and the checkout's git-ignored `.local/data` links to it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]
SHARED_BASES = (Path("/var/tmp"), Path(tempfile.gettempdir()))
FALLBACK_SERVER_USER = "pgserver"  # the user pgserver itself creates when run as root


class DataDirError(Exception):
    """A data folder is unusable (not ours, unreachable, in use); the message says what to do."""


def shared_base() -> Path:
    """A folder every user may traverse and write (sticky, like /var/tmp), kept across reboots if possible."""
    for base in SHARED_BASES:
        if base.is_dir() and os.access(base, os.W_OK | os.X_OK):
            return base
    raise DataDirError("no writable /var/tmp or temporary folder")


def owned_dir(path: Path, mode: int = 0o755) -> Path:
    """Create `path` (or accept it) only if it is a real folder owned by us: never follow another user's link."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise DataDirError(f"{path} is not a folder owned by uid {os.geteuid()}; remove it or choose another")
    os.chmod(path, mode)
    return path


def checkout_key(checkout: Path) -> str:
    return hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:12]


def default_data_root(checkout: Path = CHECKOUT) -> Path:
    """The world-traversable data folder of one checkout (not created)."""
    return shared_base() / f"flagservice-{os.geteuid()}-{checkout_key(checkout)}"


def data_root(checkout: Path = CHECKOUT, override: str | None = None) -> Path:
    """The data folder of `make dev` (DEV_DATA_DIR overrides), created and linked from `.local/data`."""
    if override:
        return owned_dir(Path(override).resolve())
    root = owned_dir(default_data_root(checkout))
    link = checkout / ".local" / "data"
    link.parent.mkdir(exist_ok=True)
    if link.is_symlink() and Path(os.readlink(link)) != root:
        link.unlink()
    if not link.is_symlink() and not link.exists():
        link.symlink_to(root, target_is_directory=True)
    return root


def server_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: ourselves unless root; as root `postgres`, or pgserver's own user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_SERVER_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_SERVER_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(FALLBACK_SERVER_USER)


def can_traverse(path: Path, user: pwd.struct_passwd | None) -> bool:
    """True if `user` (None: ourselves) may search every folder from / down to `path`."""
    if user is None or user.pw_uid == 0:
        return True
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    for folder in [path, *path.parents] if path.is_dir() else list(path.parents):
        info = folder.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def unreachable_hint(path: Path, user: pwd.struct_passwd | None) -> str:
    name = user.pw_name if user else "the server user"
    return f"{path} is not reachable by {name}: put it under a world-traversable folder such as {shared_base()}"


def hold_lock(path: Path) -> int | None:
    """Take an exclusive lock on `path` for this process's life; None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def lock_holder(path: Path) -> int | None:
    """The pid recorded in a held lock file, or None if nobody holds it."""
    if not path.exists():
        return None
    fd = hold_lock(path)
    if fd is not None:
        os.close(fd)
        return None
    text = path.read_text().strip()
    return int(text) if text.isdigit() else -1


def remove_tree(path: Path) -> None:
    """Delete a data folder; as root the server user's files inside are ours to delete too."""
    shutil.rmtree(path, ignore_errors=False)
