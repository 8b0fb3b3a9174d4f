"""Builds settings, adapters and the service once per container, lazily (nothing connects at import)."""

from __future__ import annotations

import contextlib
import random
from typing import Any

from flagservice import telemetry
from flagservice.adapters.database_secret import database_conninfo, read_secret
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.cache_aside import CacheAside
from flagservice.l1 import L1Cache
from flagservice.service import FlagService
from flagservice.settings import Settings, get_settings
from flagservice.sync import CacheSync, SyncThread

_service: FlagService | None = None
_sync: SyncThread | None = None


def build_repository(settings: Settings) -> PostgresFlagRepository:
    conninfo = database_conninfo(database_url=settings.DATABASE_URL, secret_arn=settings.DB_SECRET_ARN)
    return PostgresFlagRepository.connect(conninfo, prepare=settings.DB_PREPARED_STATEMENTS)


def redis_auth_token(settings: Settings) -> str | None:
    """The ElastiCache AUTH token from Secrets Manager, when one is configured."""
    if not settings.REDIS_AUTH_SECRET_ARN:
        return None
    return str(read_secret(settings.REDIS_AUTH_SECRET_ARN))


def build_cache(settings: Settings) -> RedisFlagCache:
    ttl = settings.CACHE_TTL_SECONDS
    client = RedisFlagCache.client_for(
        settings.REDIS_URL, max_connections=settings.REDIS_MAX_CONNECTIONS, password=redis_auth_token(settings)
    )
    return RedisFlagCache(
        client,
        env=settings.FLAGS_ENV,
        soft_ttl=lambda: ttl * random.uniform(0.9, 1.1),  # jitter spreads refreshes of flags cached together
        stale_max_age=settings.STALE_MAX_AGE_SECONDS,
        negative_ttl=settings.NEGATIVE_TTL_SECONDS,
        on_pool_exhausted=lambda: telemetry.record_count("RedisPoolExhausted"),
        on_connection_error=lambda: telemetry.record_count("RedisConnectionErrors"),
    )


def get_service() -> FlagService:
    """The container's one service; raises SettingsError on invalid settings (answered as 500).

    Also starts (once per process) the background sync that keeps Redis honest (sync.py).
    """
    global _service, _sync
    if _service is None:
        settings = get_settings()
        with contextlib.ExitStack() as opened:  # a start-up failing halfway closes what it opened (pool threads)
            repository = build_repository(settings)
            opened.callback(repository.close)
            cache = build_cache(settings)
            l1: L1Cache[Any] = L1Cache(max_age=settings.L1_MAX_AGE_MS / 1000)
            reads = CacheAside(repository, cache, l1=l1)
            sync = SyncThread(CacheSync(repository, cache, reads))
            reads.on_suspect = sync.wake
            service = FlagService(repository, reads=reads)
            opened.pop_all()
        _service, _sync = service, sync
    if _sync is not None:
        _sync.ensure_started()
    return _service


def reset() -> None:
    """Forget the built service and settings (tests)."""
    global _service, _sync
    if _sync is not None:
        _sync.stop()
    _service = None
    _sync = None
    get_settings.cache_clear()
