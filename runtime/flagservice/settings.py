"""Runtime settings: one pydantic model whose field names are the environment variable names."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator


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
    # Deployed console sign-in (CONTRACT.md section 6): all four, or none (the console asks for the admin token).
    CONSOLE_USER_POOL_ID: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d_[A-Za-z0-9]{1,32}$")
    CONSOLE_CLIENT_ID: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,128}$")
    CONSOLE_IDENTITY_POOL_ID: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d:[0-9a-f-]{36}$")
    CONSOLE_SIGN_IN_URL: str | None = Field(default=None, pattern=r"^https://[A-Za-z0-9.-]+$")
    # true: REDIS_URL names any node of a cluster-mode-enabled cache (Redis Cluster), primary or replica.
    REDIS_CLUSTER_MODE: bool = False
    # A blue/green cache move (docs/operations.md): the second cache, which every cache step also goes to,
    # its replication group (IAM tokens are signed for it), whether it is a cluster (a move may switch
    # cluster mode on or off: REDIS_CLUSTER_MODE is the primary's alone), and which of the two answers reads.
    REDIS_SECONDARY_URL: str | None = Field(default=None, pattern=r"^rediss?://")
    REDIS_SECONDARY_CACHE_NAME: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]*$")
    REDIS_SECONDARY_CLUSTER_MODE: bool = False
    REDIS_READ_FROM: Literal["primary", "secondary"] = "primary"
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
    def _console_sign_in_together(self) -> Settings:
        names = ("CONSOLE_USER_POOL_ID", "CONSOLE_CLIENT_ID", "CONSOLE_IDENTITY_POOL_ID", "CONSOLE_SIGN_IN_URL")
        given = [getattr(self, name) for name in names]
        missing = [name for name, value in zip(names, given, strict=True) if not value]
        if any(given) and missing:
            # Name what is missing: a typo in one of four similar names is otherwise hard to spot.
            raise ValueError(f"{' and '.join(missing)} missing: {', '.join(names)} go together")
        if all(given) and self.CONSOLE_USER_POOL_ID.split("_")[0] != self.CONSOLE_IDENTITY_POOL_ID.split(":")[0]:  # type: ignore[union-attr]
            raise ValueError("CONSOLE_USER_POOL_ID and CONSOLE_IDENTITY_POOL_ID must be in one region")
        return self

    @model_validator(mode="after")
    def _a_secondary_cache_is_complete(self) -> Settings:
        secondary = self.REDIS_SECONDARY_URL
        if self.REDIS_READ_FROM == "secondary" and not secondary:
            raise ValueError("REDIS_READ_FROM=secondary needs REDIS_SECONDARY_URL")
        if secondary and secondary.rstrip("/") == self.REDIS_URL.rstrip("/"):
            raise ValueError("REDIS_SECONDARY_URL must name another cache than REDIS_URL")
        if self.REDIS_SECONDARY_CACHE_NAME and not secondary:
            raise ValueError("REDIS_SECONDARY_CACHE_NAME needs REDIS_SECONDARY_URL")
        if self.REDIS_SECONDARY_CLUSTER_MODE and not secondary:
            raise ValueError("REDIS_SECONDARY_CLUSTER_MODE needs REDIS_SECONDARY_URL")
        if secondary and self.REDIS_IAM_USER:
            if not self.REDIS_SECONDARY_CACHE_NAME or self.REDIS_SECONDARY_CACHE_NAME == self.REDIS_CACHE_NAME:
                raise ValueError("REDIS_SECONDARY_URL with REDIS_IAM_USER needs its own REDIS_SECONDARY_CACHE_NAME")
            if not secondary.startswith("rediss://"):
                raise ValueError("REDIS_SECONDARY_URL needs rediss:// with REDIS_IAM_USER (IAM requires TLS)")
        return self

    def secondary(self) -> Settings | None:
        """The same settings pointed at the secondary cache (None outside a move)."""
        if not self.REDIS_SECONDARY_URL:
            return None
        changes = {
            "REDIS_URL": self.REDIS_SECONDARY_URL,
            "REDIS_CACHE_NAME": self.REDIS_SECONDARY_CACHE_NAME,
            "REDIS_CLUSTER_MODE": self.REDIS_SECONDARY_CLUSTER_MODE,
        }
        unset = {"REDIS_SECONDARY_URL": None, "REDIS_SECONDARY_CACHE_NAME": None, "REDIS_SECONDARY_CLUSTER_MODE": False}
        return self.model_copy(update=changes | unset)

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


def cluster_mode(environ: Mapping[str, str]) -> bool:
    """REDIS_CLUSTER_MODE alone, for a process that needs no other setting (the local event stream)."""
    try:
        return bool(TypeAdapter(bool).validate_python(environ.get("REDIS_CLUSTER_MODE") or "false"))
    except ValidationError:
        raise SettingsError("invalid setting REDIS_CLUSTER_MODE: Input should be a valid boolean") from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings validated once per container; tests call get_settings.cache_clear()."""
    return load_settings()
