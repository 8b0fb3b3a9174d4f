"""Migrations and demo flags for `make dev`, run in a short-lived forked child.

The service keeps a connection pool once built; built in the main process, its open connection
would be inherited by every worker forked after it, and several processes sharing one PostgreSQL
socket corrupt each other's conversations. A child that migrates, seeds and exits keeps the
main process free of connections.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

from local.prefork.signals import die_with_parent


class SetupError(Exception):
    """Migrations or seeding failed; the child has printed why."""


def migrate_and_seed(conninfo: str) -> list[str]:
    """Apply migrations; seed the demo flags only into a database whose schema this call created."""
    from flagservice.adapters.migrations import migrate, migration_files
    from local.seed import seed_demo_flags

    applied = migrate(conninfo)
    if migration_files()[0][0] not in applied:
        return []
    return seed_demo_flags()


def _child(conninfo: str, write_fd: int, parent: int) -> None:
    code = 0
    try:
        die_with_parent(parent)
        os.write(write_fd, json.dumps(migrate_and_seed(conninfo)).encode())
    except KeyboardInterrupt:
        code = 130
    except BaseException as error:  # noqa: BLE001 - report anything, then leave without the parent's cleanup
        traceback.print_exc()
        print(f"make dev: migrations or demo flags failed: {error}", file=sys.stderr)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_setup(conninfo: str) -> list[str]:
    """Migrate and seed in a child process; return the demo flag keys written (empty if none)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(conninfo, write_fd, parent)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as reader:
            output = reader.read()
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    if os.waitstatus_to_exitcode(status) != 0 or not output:
        raise SetupError("setting up the database failed (see above)")
    return list(json.loads(output))
