"""Two writers committing out of order, forced at the database (not in our code), on real PostgreSQL and Redis.

A trigger installed by the test holds one writer's transaction on an advisory lock the test owns:
either at COMMIT (a deferred constraint trigger: after the write took its revision) or early (a row
trigger: before it did). Whatever the hold point, revisions must follow commit order, every read path
must serve the kill switch once it is acknowledged, and `If-Match: *` must never land on a stale read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.flags.model import FlagDefinition
from flagservice.service import FlagService
from tests.conftest import clean_database, redis_cache

HOLD_LOCK = 4242
HELD_KEY = "held"
HOLD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION test_hold_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key = '{HELD_KEY}' THEN PERFORM pg_advisory_xact_lock_shared({HOLD_LOCK}); END IF;
    RETURN NEW;
END $$;
"""
TRIGGERS = {
    # After the write took its revision (the last statement), while COMMIT runs.
    "at-commit": "CREATE CONSTRAINT TRIGGER test_hold AFTER INSERT ON cache_outbox DEFERRABLE INITIALLY DEFERRED"
    " FOR EACH ROW EXECUTE FUNCTION test_hold_write()",
    # Before the write took anything (where a revision from nextval() used to be taken already).
    "early": "CREATE TRIGGER test_hold BEFORE UPDATE ON flags FOR EACH ROW EXECUTE FUNCTION test_hold_write()",
}


class Hold:
    """The test's own session holding the advisory lock that held writes wait on."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def __enter__(self) -> Hold:
        self.conn.execute("SELECT pg_advisory_lock(%s)", (HOLD_LOCK,))
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (HOLD_LOCK,))
        self.conn.close()


@pytest.fixture(params=list(TRIGGERS))
def hold_point(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    clean_database(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(HOLD_FUNCTION)
        conn.execute("DROP TRIGGER IF EXISTS test_hold ON cache_outbox; DROP TRIGGER IF EXISTS test_hold ON flags")
        conn.execute(TRIGGERS[request.param])
    yield request.param
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS test_hold ON cache_outbox; DROP TRIGGER IF EXISTS test_hold ON flags")


def define(key: str, enabled: bool = True, **fields: Any) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": key, "enabled": enabled, **fields})


@pytest.fixture
def containers(postgres_url: str, redis_url: str) -> list[FlagService]:
    """Three containers on one environment: two writers and a reader."""
    first = redis_cache(redis_url)
    caches = [first, *(redis_cache(redis_url) for _ in range(2))]
    for cache in caches[1:]:
        cache._env = first._env  # noqa: SLF001 - one environment namespace
    return [FlagService(PostgresFlagRepository.connect(postgres_url), cache) for cache in caches]


class VisibilityWatch:
    """An independent session polling which of the two writes is visible, to learn their commit order."""

    def __init__(self, url: str, keys: dict[str, int]) -> None:
        self.url, self.keys = url, keys
        self.first_seen: dict[str, int] = {}
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        sql = "SELECT key, version FROM flags WHERE key = ANY(%s)"
        with psycopg.connect(self.url, autocommit=True) as conn:
            for poll in range(100_000):
                rows = dict(conn.execute(sql, (list(self.keys),)).fetchall())
                for key, old in self.keys.items():
                    if rows.get(key, old) > old:
                        self.first_seen.setdefault(key, poll)
                if len(self.first_seen) == len(self.keys):
                    return
                time.sleep(0.0005)

    def order(self) -> tuple[str, str] | None:
        """(earlier, later) when one write was seen committed strictly before the other, else None."""
        self.thread.join(timeout=10)
        (a, seen_a), (b, seen_b) = sorted(self.first_seen.items(), key=lambda item: item[1])
        return (a, b) if seen_a < seen_b else None


def test_revisions_follow_commit_order_and_every_read_path_serves_the_kill_switch(
    hold_point: str, containers: list[FlagService], postgres_url: str
) -> None:
    slow, fast, reader = containers
    slow.put_flag(define(HELD_KEY), actor="t", if_match=None)
    fast.put_flag(define("kill"), actor="t", if_match=None)
    reader.get_flag("kill")
    reader.evaluate_all({"targetingKey": "u"}, if_none_match=None)  # a bulk snapshot at the old revision
    watch = VisibilityWatch(postgres_url, {HELD_KEY: 1, "kill": 1})
    with ThreadPoolExecutor(2) as pool:
        # Given a write held by the database, and a kill switch written while it is held
        with Hold(postgres_url):
            held = pool.submit(slow.patch_flag, HELD_KEY, {"description": "slow"}, actor="t", if_match=None)
            time.sleep(0.3)
            killed = pool.submit(fast.patch_flag, "kill", {"enabled": False}, actor="oncall", if_match=None)
            time.sleep(0.5)
        held_result, kill_result = held.result(timeout=10), killed.result(timeout=10)
    # Then the write that became visible later has the higher revision
    revisions = {HELD_KEY: held_result.revision, "kill": kill_result.revision}
    order = watch.order()
    if order is not None:
        earlier, later = order
        assert revisions[later] > revisions[earlier], (hold_point, order, revisions)
    if hold_point == "early":
        assert order == ("kill", HELD_KEY)  # the held write took its revision after the kill switch committed
    # And every read path of the reader serves the kill switch within 1 s of its acknowledgement
    time.sleep(0.3)
    assert reader.get_flag("kill").flag.definition.enabled is False
    bulk = reader.evaluate_all({"targetingKey": "u"}, if_none_match=None)
    assert bulk.answers is not None
    assert {a.key: a.result.value for a in bulk.answers if a.result} == {"kill": False, HELD_KEY: True}


def test_a_write_queued_behind_a_slow_commit_still_succeeds(
    hold_point: str, containers: list[FlagService], postgres_url: str
) -> None:
    slow, fast, _ = containers
    slow.put_flag(define(HELD_KEY), actor="t", if_match=None)
    with ThreadPoolExecutor(2) as pool:
        hold = Hold(postgres_url)
        with hold:
            held = pool.submit(slow.patch_flag, HELD_KEY, {"description": "slow"}, actor="t", if_match=None)
            time.sleep(0.1)
            queued = pool.submit(fast.put_flag, define("other"), actor="t", if_match=None)
            time.sleep(1.5)  # a 1.5 s commit ahead of it
        assert held.result(timeout=10).version == 2
        assert queued.result(timeout=10).version == 1


def test_if_match_star_lands_on_top_of_a_concurrent_kill_switch(
    containers: list[FlagService], postgres_url: str
) -> None:
    clean_database(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(HOLD_FUNCTION)
        conn.execute("DROP TRIGGER IF EXISTS test_hold ON cache_outbox; DROP TRIGGER IF EXISTS test_hold ON flags")
        conn.execute(TRIGGERS["at-commit"])
    try:
        oncall, editor, reader = containers
        oncall.put_flag(define(HELD_KEY), actor="t", if_match=None)
        reader.get_flag(HELD_KEY)
        with ThreadPoolExecutor(2) as pool, Hold(postgres_url):
            # Given a kill switch holding the row at commit, when an edit with If-Match: * arrives meanwhile
            killed = pool.submit(oncall.patch_flag, HELD_KEY, {"enabled": False}, actor="oncall", if_match=None)
            time.sleep(0.3)
            edited = pool.submit(editor.patch_flag, HELD_KEY, {"description": "edit"}, actor="ed", if_match="*")
            time.sleep(0.3)
        killed.result(timeout=10)
        result = edited.result(timeout=10)
        # Then the edit applied to the killed version and kept the kill switch
        assert result.flag is not None and result.flag.definition.enabled is False and result.version == 3
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS test_hold ON cache_outbox")


def test_concurrent_patches_never_lose_a_field(containers: list[FlagService], postgres_url: str) -> None:
    # Given a flag
    clean_database(postgres_url)
    first, second, _ = containers
    first.put_flag(define("f", description="0"), actor="t", if_match=None)
    errors: list[BaseException] = []

    def patch(service: FlagService, changes: dict[str, Any]) -> None:
        try:
            service.patch_flag("f", changes, actor="t", if_match="*")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # When two containers patch different fields of it at once
    threads = [
        threading.Thread(target=patch, args=(first, {"enabled": False})),
        threading.Thread(target=patch, args=(second, {"description": "edited"})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Then both changes are kept, as two versions
    flag = first.reads.repository.get("f")
    assert not errors and flag is not None
    assert (flag.definition.enabled, flag.definition.description, flag.version) == (False, "edited", 3)
