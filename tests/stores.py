"""Real Redis and PostgreSQL servers for the test session, through the same library `make dev` uses."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flagservice.local.embedded import ServerProcess, start_postgres, start_redis


def _traversable_dir(prefix: str) -> Path:
    """A folder the unprivileged server user can reach (a mktemp folder is 700 and root's)."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path(tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o755)
    return path


def postgres_for_tests(prefer: str | None = None) -> ServerProcess:
    """A throwaway cluster on a free port (TEST_POSTGRES_SERVER=embedded picks the pip-packaged one)."""
    chosen = prefer or os.environ.get("TEST_POSTGRES_SERVER", "system")
    return start_postgres(data_dir=_traversable_dir("flagservice-pg-") / "data", prefer=chosen)


def redis_for_tests(prefer: str = "system") -> ServerProcess:
    """A throwaway redis-server on a free port without persistence."""
    return start_redis(prefer=prefer)
