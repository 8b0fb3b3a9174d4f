"""The FlagCache on Redis (redis-py): bounded waits, version-guarded scripts, batched global stats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from flagservice.adapters import redis_keys, redis_scripts
from flagservice.adapters.cache_codec import decode, decode_snapshot, encode, encode_snapshot
from flagservice.adapters.redis_credentials import RefreshingCredentials
from flagservice.adapters.redis_pool import PeakTrackingPool
from flagservice.adapters.redis_stats import RedisStatsCounter
from flagservice.errors import CacheUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.ports import CacheEntry, CacheRead, CacheSnapshot, Guarded

T = TypeVar("T")
RESULTS = {1: Guarded.STORED, 0: Guarded.REFUSED, -1: Guarded.NO_REVISION}


class RedisFlagCache:
    """One environment's flag entries, revision copy and stats in Redis.

    Every command waits at most `command_timeout` (connect: `connect_timeout`) and is retried at most
    once, so a dead or paused Redis costs a request at most (1 + retries) x the timeout.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        env: str,
        soft_ttl: Callable[[], float],
        stale_max_age: int,
        negative_ttl: int,
        on_pool_exhausted: Callable[[], None] = lambda: None,
        on_connection_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._client = client
        self._env = env
        self._soft_ttl = soft_ttl
        self._hard_ttl_ms = stale_max_age * 1000
        self._negative_ttl_ms = negative_ttl * 1000
        self._on_pool_exhausted = on_pool_exhausted
        self._on_connection_error = on_connection_error
        self._stats = RedisStatsCounter(client, env=env)

    @staticmethod
    def client_for(
        url: str,
        *,
        max_connections: int,
        credentials: RefreshingCredentials | None = None,
        connect_timeout: float = 0.1,
        command_timeout: float = 0.05,
        retries: int = 1,
    ) -> redis.Redis:
        """A client with a blocking pool capped at `max_connections` and explicit, short timeouts.

        `credentials` (IAM token or secret) are re-read when the server refuses them (redis_credentials).
        """
        retry = Retry(NoBackoff(), retries)
        pool = PeakTrackingPool.from_url(
            url,
            max_connections=max_connections,
            timeout=command_timeout,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            retry=retry,
            health_check_interval=0,
            **(credentials.connection_options() if credentials else {}),
        )
        return redis.Redis(connection_pool=pool, retry=retry)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Translate every redis-py failure into CacheUnavailableError at the edge."""
        try:
            yield
        except redis.ConnectionError as exc:
            if "No connection available" in str(exc):
                self._on_pool_exhausted()
            else:
                self._on_connection_error()
            raise CacheUnavailableError(str(exc)) from exc
        except (redis.RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc

    def _run(self, call: Callable[[redis.Redis], Any]) -> Any:
        """One command (one round trip) on the pooled client, failures translated at the edge."""
        with self._guard():
            return call(self._client)

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA in the stats pipeline (one round trip); after a NOSCRIPT (new or flushed server), load it once."""
        sha = redis_scripts.sha1(script)
        try:
            return self._run(lambda client: client.evalsha(sha, len(keys), *keys, *args))
        except CacheUnavailableError as exc:
            if not isinstance(exc.__cause__, redis.exceptions.NoScriptError):
                raise
        with self._guard():
            self._client.script_load(script)
            return self._client.evalsha(sha, len(keys), *keys, *args)

    def read(self, key: str, *, lease_ms: int = 0) -> CacheRead:
        """A plain MGET (as cheap as a GET); only a missing or expired entry pays for the leasing script."""
        keys = self._flag_keys(key)
        value, revision = self._run(lambda client: client.mget(keys))
        entry = decode(value) if value is not None else None
        if lease_ms and (entry is None or not entry.fresh(int(time.time() * 1000))):
            return self._read_leasing(key, lease_ms)
        return CacheRead(entry=entry, revision=_revision(revision))

    def _read_leasing(self, key: str, lease_ms: int) -> CacheRead:
        keys = [*self._flag_keys(key), redis_keys.lease_key(self._env, key)]
        value, revision, leased = self._script(redis_scripts.READ, keys, [int(time.time() * 1000), lease_ms])
        entry = decode(value) if value is not None else None
        return CacheRead(entry=entry, revision=_revision(revision), leased=bool(leased))

    def _flag_keys(self, key: str) -> list[str]:
        return [redis_keys.flag_key(self._env, key), redis_keys.revision_key(self._env)]

    def revision(self) -> int | None:
        return _revision(self._run(lambda client: client.get(redis_keys.revision_key(self._env))))

    def most_read(self, limit: int) -> list[str]:
        hits = self._run(lambda client: client.hgetall(redis_keys.stats_key(self._env, "hits")))
        ranked = sorted(hits.items(), key=lambda item: -int(item[1]))
        return [key.decode() for key, _ in ranked[:limit]]

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], int | None]:
        names = [redis_keys.flag_key(self._env, key) for key in keys] + [redis_keys.revision_key(self._env)]
        *values, revision = self._run(lambda client: client.mget(names))
        decoded = {key: decode(value) for key, value in zip(keys, values, strict=True) if value is not None}
        entries = {key: entry for key, entry in decoded.items() if entry is not None}
        return entries, _revision(revision)

    def read_snapshot(self) -> tuple[CacheSnapshot | None, int | None]:
        keys = (redis_keys.snapshot_key(self._env), redis_keys.revision_key(self._env))
        value, revision = self._run(lambda client: client.mget(*keys))
        snapshot = decode_snapshot(value) if value is not None else None
        return snapshot, _revision(revision)

    def fill_snapshot(self, flags: list[StoredFlag], *, observed_revision: int) -> Guarded:
        soft = int(time.time() * 1000) + int(self._soft_ttl() * 1000)
        value = encode_snapshot(flags, revision=observed_revision, soft_expiry_ms=soft)
        keys = [
            redis_keys.snapshot_key(self._env),
            redis_keys.revision_key(self._env),
            redis_keys.lease_key(self._env, "*"),
        ]
        args = [observed_revision, observed_revision, value, self._hard_ttl_ms]
        return RESULTS[self._script(redis_scripts.FILL, keys, args)]

    def _value(self, flag: StoredFlag | None, version: int) -> tuple[str, int]:
        """The encoded value and its hard TTL: negative entries live NEGATIVE_TTL, flags STALE_MAX_AGE."""
        now_ms = int(time.time() * 1000)
        if flag is None:
            return encode(None, version=version, soft_expiry_ms=now_ms + self._negative_ttl_ms), self._negative_ttl_ms
        soft = now_ms + int(self._soft_ttl() * 1000)
        return encode(flag, version=version, soft_expiry_ms=soft), self._hard_ttl_ms

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded:
        value, ttl = self._value(flag, version)
        keys = [*self._flag_keys(key), redis_keys.lease_key(self._env, key)]
        args = [version, observed_revision, value, ttl]
        return RESULTS[self._script(redis_scripts.FILL, keys, args)]

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded:
        value, ttl = self._value(flag, version)
        previous = redis_keys.flag_key(self._env, key, schema=redis_keys.SCHEMA_VERSION - 1)
        keys = [*self._flag_keys(key), previous]
        args = [version, value, ttl, revision]
        return RESULTS[self._script(redis_scripts.APPLY, keys, args)]

    def seed_revision(self, revision: int) -> None:
        keys = [redis_keys.revision_key(self._env)]
        self._script(redis_scripts.SEED, keys, [revision])

    def count(self, key: str, *, hit: bool) -> None:
        self._stats.count(key, hit=hit)

    def flush_stats(self) -> None:
        """Send this request's counts without waiting for Redis (see redis_stats)."""
        with self._guard():
            self._stats.flush()

    def stats(self) -> tuple[dict[str, int], dict[str, int], str | None]:
        with self._guard():
            return self._stats.read()

    def ping(self) -> None:
        self._run(lambda client: client.ping())

    def pool_in_use(self) -> int:
        """Connections checked out of the pool right now (the RedisPoolInUse metric)."""
        return len(self._client.connection_pool._get_in_use_connections())  # noqa: SLF001 - redis-py has no public count


def _revision(value: bytes | None) -> int | None:
    """The revision copy as Redis returned it; None when it is missing (flushed, restarted)."""
    return int(value) if value is not None else None
