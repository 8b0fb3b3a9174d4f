"""Runtime settings: one pydantic model whose field names are the environment variable names."""

from __future__ import annotations

import functools
import os

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the variable."""


class Settings(BaseModel):
    """The environment variables of CONTRACT.md section 4 (Powertools reads its own)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    FLAGS_ENV: str = Field(default="dev", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    REDIS_URL: str = Field(pattern=r"^rediss?://")
    REDIS_AUTH_SECRET_ARN: str | None = None
    DATABASE_URL: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    DB_SECRET_ARN: str | None = None
    CACHE_TTL_SECONDS: int = Field(default=300, ge=1)
    STALE_MAX_AGE_SECONDS: int = Field(default=86400, ge=1)
    NEGATIVE_TTL_SECONDS: int = Field(default=30, ge=1)
    L1_MAX_AGE_MS: int = Field(default=1000, ge=0)
    REDIS_MAX_CONNECTIONS: int = Field(default=10, ge=1, le=1000)
    ADMIN_TOKEN: str | None = Field(default=None, min_length=32)
    DB_PREPARED_STATEMENTS: bool = True  # false behind RDS Proxy, which pins sessions that prepare
    CORS_ALLOWED_ORIGINS: str | None = Field(default=None, pattern=r"^(\*|https?://[^,\s]+(,https?://[^,\s]+)*)$")
    EVENT_STREAM_URL: str | None = Field(default=None, pattern=r"^(https?|wss?)://\S+$")

    @model_validator(mode="after")
    def _one_database_source(self) -> Settings:
        if self.DATABASE_URL and self.DB_SECRET_ARN:
            raise ValueError("set only one of DATABASE_URL and DB_SECRET_ARN")
        if not self.DATABASE_URL and not self.DB_SECRET_ARN:
            raise ValueError("one of DATABASE_URL and DB_SECRET_ARN is required")
        return self

    @property
    def cors_origins(self) -> frozenset[str]:
        """Origins allowed to call the public routes from a browser: `*` locally unless set, none deployed."""
        if self.CORS_ALLOWED_ORIGINS is None:
            return frozenset() if self.deployed else frozenset({"*"})
        return frozenset(self.CORS_ALLOWED_ORIGINS.split(","))

    @property
    def deployed(self) -> bool:
        """True inside Lambda: admin auth comes from IAM, never from a bearer token."""
        return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Validate settings from the environment; raise SettingsError with one line naming the variable."""
    env = os.environ if environ is None else environ
    names = Settings.model_fields.keys()
    try:
        return Settings.model_validate({name: env[name] for name in names if env.get(name, "") != ""})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "DATABASE_URL/DB_SECRET_ARN"
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings validated once per container; tests call get_settings.cache_clear()."""
    return load_settings()
