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
    # ElastiCache IAM authentication: the user, and the replication group the token is signed for.
    REDIS_IAM_USER: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]*$")
    REDIS_CACHE_NAME: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]*$")
    DATABASE_URL: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    DB_SECRET_ARN: str | None = None
    # Where the database is and as whom to connect; the password comes from DB_SECRET_ARN's secret
    # (RDS-managed secrets hold only username and password). DB_HOST alone: no password (local servers).
    DB_HOST: str | None = None
    DB_PORT: int = Field(default=5432, ge=1, le=65535)
    DB_NAME: str | None = None
    DB_USER: str | None = None
    CACHE_TTL_SECONDS: int = Field(default=300, ge=1)
    STALE_MAX_AGE_SECONDS: int = Field(default=86400, ge=1)
    NEGATIVE_TTL_SECONDS: int = Field(default=30, ge=1)
    L1_MAX_AGE_MS: int = Field(default=1000, ge=0)
    REDIS_MAX_CONNECTIONS: int = Field(default=10, ge=1, le=1000)
    ADMIN_TOKEN: str | None = Field(default=None, min_length=32)
    DB_PREPARED_STATEMENTS: bool = True  # false behind RDS Proxy, which pins sessions that prepare
    CORS_ALLOWED_ORIGINS: str | None = Field(default=None, pattern=r"^(\*|https?://[^,\s]+(,https?://[^,\s]+)*)$")
    EVENT_STREAM_URL: str | None = Field(default=None, pattern=r"^(https?|wss?)://\S+$")
    # The deployed push channel (issue 17): advertised instead of EVENT_STREAM_URL when set.
    PUSH_CHANNEL_URL: str | None = Field(default=None, pattern=r"^wss?://[^\s?#]+$")
    PUSH_CHANNEL_HOST: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:-]{1,255}$")
    PUSH_TOKEN_SECRET: str | None = Field(default=None, min_length=32)
    PUSH_TOKEN_SECRET_ARN: str | None = Field(default=None, pattern=r"^arn:")
    PUSH_PUBLISHER_FUNCTION: str | None = Field(default=None, pattern=r"^[A-Za-z0-9:_.-]{1,170}$")
    PUSH_PUBLISH_URL: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def _one_database_source(self) -> Settings:
        if self.DATABASE_URL and (self.DB_SECRET_ARN or self.DB_HOST):
            raise ValueError("set only one of DATABASE_URL and DB_SECRET_ARN (or DB_HOST)")
        if not (self.DATABASE_URL or self.DB_SECRET_ARN or self.DB_HOST):
            raise ValueError("one of DATABASE_URL and DB_SECRET_ARN is required")
        return self

    @model_validator(mode="after")
    def _one_cache_credential(self) -> Settings:
        if bool(self.REDIS_IAM_USER) != bool(self.REDIS_CACHE_NAME):
            raise ValueError("REDIS_IAM_USER and REDIS_CACHE_NAME go together")
        if self.REDIS_IAM_USER and self.REDIS_AUTH_SECRET_ARN:
            raise ValueError("set only one of REDIS_IAM_USER and REDIS_AUTH_SECRET_ARN")
        if self.REDIS_IAM_USER and not self.REDIS_URL.startswith("rediss://"):
            raise ValueError("REDIS_IAM_USER needs a rediss:// REDIS_URL (IAM authentication requires TLS)")
        return self

    @model_validator(mode="after")
    def _push_channel_credential(self) -> Settings:
        if self.PUSH_CHANNEL_URL and not (self.PUSH_TOKEN_SECRET or self.PUSH_TOKEN_SECRET_ARN):
            raise ValueError("PUSH_CHANNEL_URL needs PUSH_TOKEN_SECRET or PUSH_TOKEN_SECRET_ARN (its credential)")
        if self.PUSH_TOKEN_SECRET and self.PUSH_TOKEN_SECRET == self.ADMIN_TOKEN:
            raise ValueError("PUSH_TOKEN_SECRET must not be the admin token")
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
        name = ".".join(str(part) for part in first["loc"])
        # A rule across variables (a model validator) has no location: its message names the variables.
        message = f"invalid setting {name}: {first['msg']}" if name else f"invalid settings: {first['msg']}"
        raise SettingsError(message) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings validated once per container; tests call get_settings.cache_clear()."""
    return load_settings()
