"""The FlagCache on Redis (redis-py): bounded waits, version-guarded scripts, batched global stats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from flagservice.adapters import redis_keys, redis_scripts
from flagservice.adapters.cache_codec import decode, decode_snapshot, encode, encode_snapshot
from flagservice.adapters.redis_credentials import RefreshingCredentials
from flagservice.adapters.redis_pool import BoundedCluster, LazyCluster, PeakTrackingPool
from flagservice.adapters.redis_stats import RedisStatsCounter
from flagservice.errors import CacheUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.ports import CacheEntry, CacheRead, CacheSnapshot, Guarded, Signal

T = TypeVar("T")
Client = redis.Redis | LazyCluster  # standalone (cluster mode disabled) or a cluster's client, built on first use
RESULTS = {1: Guarded.STORED, 0: Guarded.REFUSED, -1: Guarded.NO_REVISION}
# A page's fill is one script call up to this much: its reply must come within the command timeout (50 ms),
# which a call of megabytes (a page of 1,000 definitions near 32 KiB) could outlast and count against the breaker.
FILL_BATCH_BYTES = 256 * 1024


class Fill(NamedTuple):
    """One entry of a FILL call: the entry's key and its refill lease, the version, value and hard ttl."""

    key: str
    lease: str
    version: int
    value: str
    ttl_ms: int


class RedisFlagCache:
    """One environment's flag entries, revision copy and stats in Redis.

    Every command waits at most `command_timeout` (connect: `connect_timeout`) and is retried at most
    once, so a dead or paused Redis costs a request at most (1 + retries) x the timeout.

    In cluster mode every key of the environment hashes to one slot (redis_keys: the `{env}` hash tag),
    so every command, script and pipeline here goes to the one primary that owns it.
    """

    def __init__(
        self,
        client: Client,
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
        self._stats = RedisStatsCounter(self._commands, env=env)

    @staticmethod
    def client_for(
        url: str,
        *,
        max_connections: int,
        credentials: RefreshingCredentials | None = None,
        connect_timeout: float = 0.1,
        command_timeout: float = 0.05,
        retries: int = 1,
        cluster: bool = False,
    ) -> Client:
        """A client with a blocking pool capped at `max_connections` and explicit, short timeouts.

        `credentials` (IAM token or secret) are re-read when the server refuses them (redis_credentials).
        `cluster`: REDIS_URL names any node of a cluster-mode-enabled cache (cluster_client).
        """
        retry = Retry(NoBackoff(), retries)
        if cluster:
            options = {"socket_connect_timeout": connect_timeout, "socket_timeout": command_timeout}
            return RedisFlagCache.cluster_client(url, max_connections, retry, credentials, options)
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

    @staticmethod
    def cluster_client(
        url: str, max_connections: int, retry: Retry, credentials: RefreshingCredentials | None, options: dict[str, Any]
    ) -> LazyCluster:
        """redis-py's RedisCluster (MOVED/ASK, topology refresh, failover) within the same budget (BoundedCluster).

        Reads go to primaries only (no READONLY, no load balancing): a replica may lag, and the version
        guards and the revision check assume one copy. `max_connections` caps each node's pool, which
        fails at once when exhausted (redis-py's cluster pool does not block). Partial coverage is
        accepted: a shard that is down makes only its own slots fail, not this environment's.
        """
        return LazyCluster(
            lambda: BoundedCluster.from_url(
                url, retry=retry, max_connections=max_connections, require_full_coverage=False,
                reinitialize_steps=5, load_balancing_strategy=None, refreshing=credentials,
                **options, **({"credential_provider": credentials} if credentials else {}),
            )
        )  # fmt: skip

    def _commands(self) -> Any:
        """The client to send commands with (redis.Redis or RedisCluster: the same command methods)."""
        return self._client.get() if isinstance(self._client, LazyCluster) else self._client

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Translate every redis-py failure into CacheUnavailableError at the edge."""
        try:
            yield
        except redis.ConnectionError as exc:
            if "No connection available" in str(exc) or isinstance(exc, redis.exceptions.MaxConnectionsError):
                self._on_pool_exhausted()
            else:
                self._on_connection_error()
            raise CacheUnavailableError(str(exc)) from exc
        except redis.exceptions.RedisClusterException as exc:  # not a RedisError: no node answered a refresh
            self._on_connection_error()
            if isinstance(self._client, LazyCluster):
                self._client.forget()
            raise CacheUnavailableError(str(exc)) from exc
        except (redis.RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc

    def _run(self, call: Callable[[Any], Any]) -> Any:
        """One command (one round trip) on the pooled client, failures translated at the edge."""
        with self._guard():
            return call(self._commands())

    def _script(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA (one round trip); after a NOSCRIPT (a new, flushed or failed-over server), EVAL, which also
        caches the script on the node that owns the keys (SCRIPT LOAD would go to every primary in cluster mode)."""
        sha = redis_scripts.sha1(script)
        try:
            return self._run(lambda client: client.evalsha(sha, len(keys), *keys, *args))
        except CacheUnavailableError as exc:
            if not isinstance(exc.__cause__, redis.exceptions.NoScriptError):
                raise
        return self._run(lambda client: client.eval(script, len(keys), *keys, *args))

    def read(self, key: str, *, lease_ms: int = 0) -> CacheRead:
        """A plain MGET (as cheap as a GET); only a missing or expired entry pays for the leasing script."""
        keys = [redis_keys.flag_key(self._env, key), *self._signal_keys()]
        value, revision, changes = self._run(lambda client: client.mget(keys))
        entry = decode(value) if value is not None else None
        if lease_ms and (entry is None or not entry.fresh(int(time.time() * 1000))):
            return self._read_leasing(key, lease_ms)
        return CacheRead(entry=entry, signal=_signal(revision, changes))

    def _read_leasing(self, key: str, lease_ms: int) -> CacheRead:
        env = self._env
        keys = [
            redis_keys.flag_key(env, key),
            *self._signal_keys(),
            redis_keys.lease_key(env, key),
            redis_keys.keyset_key(env),
            redis_keys.lease_key(env, "#keys"),
        ]
        value, revision, changes, state = self._script(redis_scripts.READ, keys, [_now_ms(), lease_ms, key])
        return CacheRead(
            entry=decode(value) if value is not None else None,
            signal=_signal(revision, changes),
            leased=state in (1, 3),
            absent=state == 2,
            keys_needed=state in (3, 4),
        )

    def _signal_keys(self) -> list[str]:
        return [redis_keys.revision_key(self._env), redis_keys.changes_key(self._env)]

    def signal(self) -> Signal:
        revision, changes = self._run(lambda client: client.mget(self._signal_keys()))
        return _signal(revision, changes)

    def most_read(self, limit: int) -> list[str]:
        hits = self._run(lambda client: client.hgetall(redis_keys.stats_key(self._env, "hits")))
        ranked = sorted(hits.items(), key=lambda item: -int(item[1]))
        return [key.decode() for key, _ in ranked[:limit]]

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], Signal]:
        names = [redis_keys.flag_key(self._env, key) for key in keys] + self._signal_keys()
        *values, revision, changes = self._run(lambda client: client.mget(names))
        decoded = {key: decode(value) for key, value in zip(keys, values, strict=True) if value is not None}
        entries = {key: entry for key, entry in decoded.items() if entry is not None}
        return entries, _signal(revision, changes)

    def read_snapshot(self, *, lease_ms: int = 0) -> tuple[CacheSnapshot | None, Signal, bool]:
        keys = [redis_keys.snapshot_key(self._env), *self._signal_keys(), redis_keys.lease_key(self._env, "*")]
        value, revision, changes, leased = self._script(redis_scripts.READ_SNAPSHOT, keys, [_now_ms(), lease_ms])
        snapshot = decode_snapshot(value) if value is not None else None
        return snapshot, _signal(revision, changes), bool(leased)

    def fill_snapshot(self, flags: list[StoredFlag], *, revision: int, observed_revision: int) -> Guarded:
        soft = _now_ms() + int(self._soft_ttl() * 1000)
        value = encode_snapshot(flags, revision=revision, soft_expiry_ms=soft)
        entry = Fill(redis_keys.snapshot_key(self._env), redis_keys.lease_key(self._env, "*"), revision, value,
                     self._hard_ttl_ms)  # fmt: skip
        return self._fill([entry], observed_revision)[0]

    def fill_keys(self, keys: set[str], *, revision: int, observed_revision: int) -> Guarded:
        names = [
            redis_keys.keyset_key(self._env),
            redis_keys.revision_key(self._env),
            redis_keys.lease_key(self._env, "#keys"),
        ]
        args = [revision, self._negative_ttl_ms, *sorted(keys)]
        return RESULTS[self._script(redis_scripts.FILL_KEYS, names, args)]

    def _value(self, flag: StoredFlag | None, version: int) -> tuple[str, int]:
        """The encoded value and its hard TTL: tombstones live NEGATIVE_TTL, flags STALE_MAX_AGE."""
        now_ms = _now_ms()
        if flag is None:
            return encode(None, version=version, soft_expiry_ms=now_ms + self._negative_ttl_ms), self._negative_ttl_ms
        soft = now_ms + int(self._soft_ttl() * 1000)
        return encode(flag, version=version, soft_expiry_ms=soft), self._hard_ttl_ms

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded:
        return self._fill([self._flag_fill(key, flag, version)], observed_revision)[0]

    def fill_many(self, flags: list[StoredFlag], *, observed_revision: int) -> list[Guarded]:
        """FILL calls of at most FILL_BATCH_BYTES each: one for a page of ordinary flags."""
        results: list[Guarded] = []
        for batch in _batches([self._flag_fill(flag.key, flag, flag.version) for flag in flags]):
            results += self._fill(batch, observed_revision)
        return results

    def _flag_fill(self, key: str, flag: StoredFlag | None, version: int) -> Fill:
        value, ttl = self._value(flag, version)
        return Fill(redis_keys.flag_key(self._env, key), redis_keys.lease_key(self._env, key), version, value, ttl)

    def _fill(self, entries: list[Fill], observed_revision: int) -> list[Guarded]:
        """One FILL call; every key carries the environment's hash tag (one slot in cluster mode)."""
        keys = [redis_keys.revision_key(self._env)]
        args: list[Any] = [observed_revision]
        for entry in entries:
            keys += [entry.key, entry.lease]
            args += [entry.version, entry.value, entry.ttl_ms]
        return [RESULTS[result] for result in self._script(redis_scripts.FILL, keys, args)]

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded:
        value, ttl = self._value(flag, version)
        env = self._env
        keys = [
            redis_keys.flag_key(env, key),
            *self._signal_keys(),
            redis_keys.keyset_key(env),
            redis_keys.flag_key(env, key, schema=redis_keys.SCHEMA_VERSION - 1),
            redis_keys.flag_key(env, key, schema=redis_keys.SCHEMA_VERSION + 1),
            redis_keys.written_key(env),
        ]
        args = [version, value, ttl, revision, key, 1 if flag is not None else 0]
        return RESULTS[self._script(redis_scripts.APPLY, keys, args)]

    def seed_revision(self, revision: int) -> None:
        self._script(redis_scripts.SEED, self._signal_keys(), [revision])

    def written_since(self, revision: int) -> set[str]:
        names = self._run(
            lambda client: client.zrangebyscore(redis_keys.written_key(self._env), f"({revision}", "+inf")
        )
        return {name.decode() for name in names}

    def drop_all(self) -> None:
        """SCAN the environment's namespaces and delete what it finds, in batches (never KEYS)."""
        with self._guard():
            client, batch = self._commands(), []
            for name in client.scan_iter(match=redis_keys.namespace_pattern(self._env), count=500, **self._one_node()):
                batch.append(name)
                if len(batch) >= 500:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)

    def _one_node(self) -> dict[str, Any]:
        """Cluster mode: SCAN only the primary owning the environment's slot (redis-py would scan every one)."""
        if not isinstance(self._client, LazyCluster):
            return {}
        client = self._client.get()
        return {"target_nodes": client.get_node_from_key(redis_keys.revision_key(self._env))}

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
        if isinstance(self._client, LazyCluster):
            return self._client.in_use()
        return len(self._client.connection_pool._get_in_use_connections())  # noqa: SLF001 - redis-py has no public count


def _batches(entries: list[Fill]) -> Iterator[list[Fill]]:
    """Consecutive batches of at most FILL_BATCH_BYTES of values (a larger value alone)."""
    batch: list[Fill] = []
    size = 0
    for entry in entries:
        if batch and size + len(entry.value) > FILL_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += len(entry.value)
    if batch:
        yield batch


def _signal(revision: bytes | None, changes: bytes | None) -> Signal:
    """The signal as Redis returned it; a missing revision (flushed, restarted) is None."""
    return Signal(int(revision) if revision is not None else None, int(changes) if changes is not None else 0)


def _now_ms() -> int:
    return int(time.time() * 1000)
