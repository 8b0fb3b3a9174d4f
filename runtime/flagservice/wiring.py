"""Builds settings, adapters and the service once per container, lazily (nothing connects at import)."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import Any

from flagservice import telemetry
from flagservice.adapters import redis_credentials
from flagservice.adapters.database_secret import DatabaseAddress, database_conninfo_source
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.adapters.redis_pool import LazyCluster, PeakTrackingPool
from flagservice.cache_aside import CacheAside
from flagservice.cache_move import WarmReport, inactive_sync, warm_cache, warm_target
from flagservice.dual_cache import DualWriteCache
from flagservice.errors import CacheUnavailableError
from flagservice.l1 import L1Cache
from flagservice.ports import FlagCache
from flagservice.push.publish import ChangePublisher, HttpChannelPublisher, LambdaInvokePublisher, NoPublisher
from flagservice.service import FlagService
from flagservice.settings import Settings, SettingsError, get_settings
from flagservice.sync import CacheSync, SyncThread

_service: FlagService | None = None
_sync: SyncThread | None = None
_inactive_sync: SyncThread | None = None  # the repair of the inactive cache during a move (dual_cache.py)


def build_repository(settings: Settings) -> PostgresFlagRepository:
    address = DatabaseAddress(settings.DB_HOST, settings.DB_PORT, settings.DB_NAME, settings.DB_USER)
    conninfo = database_conninfo_source(
        database_url=settings.DATABASE_URL, secret_arn=settings.DB_SECRET_ARN, address=address
    )
    return PostgresFlagRepository.connect(conninfo, prepare=settings.DB_PREPARED_STATEMENTS)


def cache_credentials(settings: Settings) -> redis_credentials.RefreshingCredentials | None:
    """IAM tokens (deployed), the AUTH token of a secret, or none (a password in REDIS_URL, or no AUTH)."""
    if settings.REDIS_IAM_USER and settings.REDIS_CACHE_NAME:
        return redis_credentials.iam_credentials(
            user=settings.REDIS_IAM_USER, cache_name=settings.REDIS_CACHE_NAME, region=os.environ["AWS_REGION"]
        )
    if settings.REDIS_AUTH_SECRET_ARN:
        return redis_credentials.secret_credentials(settings.REDIS_AUTH_SECRET_ARN)
    return None


def build_cache(settings: Settings) -> RedisFlagCache:
    ttl = settings.CACHE_TTL_SECONDS
    client = RedisFlagCache.client_for(
        settings.REDIS_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        credentials=cache_credentials(settings),
        cluster=settings.REDIS_CLUSTER_MODE,
    )
    if not isinstance(client, LazyCluster) and isinstance(client.connection_pool, PeakTrackingPool):
        telemetry.watch_pool_peak(client.connection_pool.take_peak)
    return RedisFlagCache(
        client,
        env=settings.FLAGS_ENV,
        soft_ttl=lambda: ttl * random.uniform(0.9, 1.1),  # jitter spreads refreshes of flags cached together
        stale_max_age=settings.STALE_MAX_AGE_SECONDS,
        negative_ttl=settings.NEGATIVE_TTL_SECONDS,
        on_pool_exhausted=lambda: telemetry.record_count("RedisPoolExhausted"),
        on_connection_error=lambda: telemetry.record_count("RedisConnectionErrors"),
    )


def build_flag_cache(settings: Settings) -> RedisFlagCache | DualWriteCache:
    """The one cache, or during a move (REDIS_SECONDARY_URL) both, reads from REDIS_READ_FROM's."""
    primary = build_cache(settings)
    secondary_settings = settings.secondary()
    if secondary_settings is None:
        return primary
    secondary = build_cache(secondary_settings)
    if settings.REDIS_READ_FROM == "secondary":
        return DualWriteCache(secondary, primary)
    return DualWriteCache(primary, secondary)


def _syncs(
    repository: PostgresFlagRepository, cache: FlagCache, reads: CacheAside, publisher: ChangePublisher
) -> list[SyncThread]:
    """The active cache's background sync (which publishes the changes it replays); during a move, the
    inactive cache's repair beside it."""
    active = cache.active if isinstance(cache, DualWriteCache) else cache
    syncs = [SyncThread(CacheSync(repository, active, reads, publisher=publisher))]
    if isinstance(cache, DualWriteCache):
        syncs.append(SyncThread(inactive_sync(repository, cache)))
    return syncs


def warm_next_cache() -> WarmReport:
    """Fill the cache reads move to next (the inactive one during a move) with every flag (docs/operations.md)."""
    service = get_service()
    target = warm_target(service.reads.cache)
    if target is None:
        raise CacheUnavailableError("no cache configured")
    return warm_cache(service.reads.repository, target)


def build_publisher(settings: Settings) -> ChangePublisher:
    """Deployed: the publisher function (asynchronous invoke); locally: the stand-in channel; else nothing."""
    if settings.PUSH_PUBLISHER_FUNCTION:
        return LambdaInvokePublisher(settings.PUSH_PUBLISHER_FUNCTION, settings.FLAGS_ENV)
    if settings.PUSH_PUBLISH_URL:
        return HttpChannelPublisher(settings.PUSH_PUBLISH_URL, settings.FLAGS_ENV)
    return NoPublisher()


def get_service() -> FlagService:
    """The container's one service; raises SettingsError on invalid settings (answered as 500).

    Also starts (once per process) the background sync that keeps Redis honest (sync.py).
    """
    global _service, _sync, _inactive_sync
    if _service is None:
        settings = get_settings()
        with contextlib.ExitStack() as opened:  # a start-up failing halfway closes what it opened (pool threads)
            repository = build_repository(settings)
            opened.callback(repository.close)
            cache = build_flag_cache(settings)
            l1: L1Cache[Any] = L1Cache(max_age=settings.L1_MAX_AGE_MS / 1000)
            reads = CacheAside(repository, cache, l1=l1)
            publisher = build_publisher(settings)
            sync, *inactive = _syncs(repository, cache, reads, publisher)
            reads.on_suspect = sync.wake
            if isinstance(cache, DualWriteCache):  # a move: the cache read from may lack writes only another
                reads.suspect()  # container saw it miss; trusted once this container's first sync pass compared it
            service = FlagService(repository, reads=reads, publisher=publisher)
            opened.pop_all()
        _service, _sync, _inactive_sync = service, sync, (inactive[0] if inactive else None)
    for thread in (_sync, _inactive_sync):
        if thread is not None:
            thread.ensure_started()
    return _service


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    """The service's request scope around one handler call; with invalid settings there is no service,
    and the route's own get_service() answers 500 through the resolver."""
    try:
        service = get_service()
    except SettingsError:
        yield
        return
    with service.request():
        yield


def reset() -> None:
    """Forget the built service and settings (tests)."""
    global _service, _sync, _inactive_sync
    for thread in (_sync, _inactive_sync):
        if thread is not None:
            thread.stop()
    _service = None
    _sync = _inactive_sync = None
    get_settings.cache_clear()
