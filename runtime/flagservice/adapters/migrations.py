"""Plain SQL migrations, applied in file-name order under an advisory lock, recorded in a table.

Migrations are additive (expand now, contract a release later) and idempotent, so a deployment
may run `migrate()` any number of times, from any number of processes at once.
"""

from __future__ import annotations

from importlib import resources

import psycopg

# Any fixed 64-bit number works; every migrating process must use the same one.
MIGRATION_LOCK_ID = 7_311_220_001


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with the code, in the order they apply."""
    folder = resources.files("flagservice.adapters") / "sql"
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in names]


def migrate(conninfo: str, *, connect_timeout: int = 10) -> list[str]:
    """Apply every pending migration; return the names applied by this call.

    Each migration runs in its own transaction with its bookkeeping row, under a session-level
    advisory lock, so two deployments racing each other apply each file exactly once.
    """
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=connect_timeout) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for name, sql in migration_files():
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode("utf-8"))
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied_now.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now
