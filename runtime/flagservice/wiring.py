"""Builds settings, adapters and the service once per container, lazily (nothing connects at import)."""

from __future__ import annotations

from flagservice.adapters.database_secret import database_conninfo
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.service import FlagService
from flagservice.settings import Settings, get_settings

_service: FlagService | None = None


def build_repository(settings: Settings) -> PostgresFlagRepository:
    conninfo = database_conninfo(database_url=settings.DATABASE_URL, secret_arn=settings.DB_SECRET_ARN)
    return PostgresFlagRepository.connect(conninfo)


def get_service() -> FlagService:
    """The container's one service; raises SettingsError on invalid settings (answered as 500)."""
    global _service
    if _service is None:
        _service = FlagService(build_repository(get_settings()))
    return _service


def reset() -> None:
    """Forget the built service and settings (tests)."""
    global _service
    _service = None
    get_settings.cache_clear()
