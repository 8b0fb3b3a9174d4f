"""Holding one write at a chosen point inside PostgreSQL, from the harness's own session (never in our code).

`install()` adds to a database a control table, a ticket sequence and two triggers on `flags` that
call one function. Once the harness `arm()`s a (point, key), the first write of that key to reach
the point waits on advisory lock `LOCK`, which the harness holds, until it `release()`s it:

- `commit`: a DEFERRABLE INITIALLY DEFERRED constraint trigger (AFTER INSERT OR UPDATE): the write
  waits inside COMMIT, after every statement of its transaction (its revision already taken).
- `early`: a BEFORE INSERT OR UPDATE row trigger: the write waits at its first statement on the
  flag's row (today's write path: before it locks the row, reads the version or takes a revision).

Only the first write to reach the point is held (a sequence hands out tickets; sequences ignore
transactions), so other writers of the same key pass. The function sets `lock_timeout = 0` for itself:
the service's own lock timeout must not end the hold early; the service's statement timeout still
bounds it, so the harness never holds longer than `HOLD_CAP`.
"""

from __future__ import annotations

import time

import psycopg

LOCK = 4242
POINTS = ("commit", "early")
HOLD_CAP = 1.2  # seconds: under the service's 2 s statement timeout; a 1.5 s commit is "normal" (issue 13)

INSTALL = f"""
CREATE TABLE IF NOT EXISTS harness_hold (point text NOT NULL, key text NOT NULL);
CREATE SEQUENCE IF NOT EXISTS harness_hold_ticket;
CREATE OR REPLACE FUNCTION harness_hold_here() RETURNS trigger LANGUAGE plpgsql SET lock_timeout = 0 AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM harness_hold WHERE point = TG_ARGV[0] AND key = NEW.key) THEN
    IF nextval('harness_hold_ticket') = 1 THEN
      PERFORM pg_advisory_xact_lock({LOCK});
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER harness_hold_early BEFORE INSERT OR UPDATE ON flags
  FOR EACH ROW EXECUTE FUNCTION harness_hold_here('early');
DROP TRIGGER IF EXISTS harness_hold_commit ON flags;
CREATE CONSTRAINT TRIGGER harness_hold_commit AFTER INSERT OR UPDATE ON flags
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION harness_hold_here('commit');
"""
WAITING = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = %s"


def install(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(INSTALL)


class Hold:
    """The harness's side: arm for a (point, key), see the write waiting, let it go."""

    def __init__(self, url: str) -> None:
        # A held write that never commits must not hang the harness's next arm() for ever.
        self._conn = psycopg.connect(url, autocommit=True, connect_timeout=5, options="-c lock_timeout=10000")
        self._held = False

    def arm(self, point: str, key: str) -> None:
        if point not in POINTS:
            raise ValueError(f"unknown hold point {point!r}")
        self._conn.execute("SELECT pg_advisory_lock(%s)", (LOCK,))  # waits for a previous held write's commit
        self._held = True
        self._conn.execute("DELETE FROM harness_hold")
        self._conn.execute("INSERT INTO harness_hold (point, key) VALUES (%s, %s)", (point, key))
        self._conn.execute("SELECT setval('harness_hold_ticket', 1, false)")

    def waiting(self) -> bool:
        row = self._conn.execute(WAITING, (LOCK,)).fetchone()
        return bool(row and row[0])

    def engaged(self, timeout: float) -> float | None:
        """When a write was first seen waiting (time.monotonic()), or None if none came within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.waiting():
                return time.monotonic()
            time.sleep(0.005)
        return None

    def release(self) -> None:
        if self._held:
            self._conn.execute("DELETE FROM harness_hold")
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
            self._held = False

    def close(self) -> None:
        self.release()
        self._conn.close()
