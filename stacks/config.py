"""One typed, frozen configuration per environment, read from cdk.json.

cdk.json is the single source: the CDK CLI passes its `context` to the app, and `app.py` (run without the
CLI by `make synth` and the tests) loads the same file, so both synthesize the same templates. Unknown or
misspelt keys are errors, not silently ignored defaults.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
ENVIRONMENTS_KEY = "flagservice:environments"
ENVIRONMENT_NAMES = ("dev", "staging", "prod")
# Connections that exist besides the flag function's pool: the migration function and an operator's psql.
OTHER_DATABASE_CONNECTIONS = 3
# With RDS Proxy on, the proxy's pool (not the reserved concurrency) bounds the function's connections.
PROXY_MAX_CONNECTIONS_PERCENT = 40


class ConfigError(ValueError):
    """cdk.json does not describe the environments correctly."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class NetworkConfig(_Section):
    vpc_cidr: str = Field(pattern=r"^10\.\d{1,3}\.\d{1,3}\.0/(1[6-9]|2[0-2])$")
    # Interface endpoints bill per AZ-hour; dev accepts cross-AZ calls to one ENI to halve that.
    endpoint_az_count: int = Field(ge=1, le=2)


class CacheConfig(_Section):
    engine: Literal["valkey", "redis"]
    engine_version: str = Field(pattern=r"^\d+\.\d+$")
    parameter_group_family: str = Field(pattern=r"^(valkey|redis)\d+(\.x)?$")
    node_type: str = Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    replicas: int = Field(ge=0, le=5)
    multi_az: bool
    snapshot_retention_days: int = Field(ge=0, le=35)
    # The global revision key has no TTL and must never be evicted: only volatile-* policies guarantee it.
    maxmemory_policy: Literal["volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random"]
    slowlog_microseconds: int = Field(ge=0)
    # A replacement cache is the next generation, built beside the current one (docs/operations.md).
    generation: int = Field(default=1, ge=1, le=99)
    # Cluster mode enabled (Redis Cluster): `shards` node groups, each a primary and `replicas` replicas.
    # The function gets REDIS_CLUSTER_MODE=true and the configuration endpoint (docs/infrastructure.md).
    cluster_mode: bool = False
    shards: int = Field(default=1, ge=1, le=90)
    # In a stack of its own (FlagsCache-<env>-<generation>) rather than the stateful stack: every cache a
    # blue/green move builds (cacheMove below) lives there, and stays there once the move is closed.
    own_stack: bool = False

    @model_validator(mode="after")
    def _multi_az_needs_a_replica(self) -> CacheConfig:
        if self.multi_az and self.replicas < 1:
            raise ValueError("cache.multiAz needs at least one replica")
        return self

    @model_validator(mode="after")
    def _shards_need_cluster_mode(self) -> CacheConfig:
        if self.shards > 1 and not self.cluster_mode:
            raise ValueError("cache.shards above 1 needs cache.clusterMode")
        if self.cluster_mode and self.replicas < 1:
            raise ValueError("cache.clusterMode needs at least one replica per shard (its failover is the point)")
        return self


class CacheMoveConfig(_Section):
    """A blue/green move to the next cache generation (docs/operations.md, "Moving to a new cache").

    While set, the next generation (the current cache's settings with `changes` over them) is deployed in a
    stack of its own beside the current cache, and `phase` sets the service's cache settings: `dual-write`
    (reads from the current cache, every cache step to both), `switch-reads` (reads from the next one,
    still writing both), `finish` (the next one alone; the current one kept for a rollback until the move
    is closed in cdk.json).
    """

    phase: Literal["dual-write", "switch-reads", "finish"]
    changes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("changes")
    @classmethod
    def _the_generation_is_not_a_change(cls, changes: dict[str, Any]) -> dict[str, Any]:
        fixed = {"generation", "ownStack"} & set(changes)
        if fixed:
            raise ValueError(f"cacheMove.changes cannot set {', '.join(sorted(fixed))}: the move decides them")
        return changes


class DatabaseConfig(_Section):
    postgres_version: str = Field(pattern=r"^\d+\.\d+$")
    instance_type: str = Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+$")
    allocated_storage_gib: int = Field(ge=20)
    max_allocated_storage_gib: int
    multi_az: bool
    backup_retention_days: int = Field(ge=1, le=35)  # at least 1: point-in-time restore needs backups
    deletion_protection: bool
    max_connections: int = Field(ge=20)

    @property
    def major_version(self) -> str:
        return self.postgres_version.split(".")[0]


class FunctionConfig(_Section):
    """What issue 5's flag function receives; the TTLs become its settings (CONTRACT.md section 4)."""

    memory_mb: int = Field(ge=128, le=10240)
    timeout_seconds: int = Field(ge=1, le=900)
    reserved_concurrency: int = Field(ge=1)
    redis_max_connections: int = Field(ge=1, le=1000)
    cache_ttl_seconds: int = Field(ge=1)
    stale_max_age_seconds: int = Field(ge=1)
    negative_ttl_seconds: int = Field(ge=1)
    l1_max_age_ms: int = Field(ge=0)
    # RDS Proxy between the function and the database, for more concurrency than max_connections allows.
    rds_proxy: bool = False


class ApiConfig(_Section):
    """API Gateway throttling: the stage's ceiling for everyone and each API key's share of it."""

    throttle_rate_per_second: int = Field(ge=1)
    throttle_burst: int = Field(ge=1)
    key_throttle_rate_per_second: int = Field(ge=1)
    key_throttle_burst: int = Field(ge=1)

    @model_validator(mode="after")
    def _a_key_fits_the_stage(self) -> ApiConfig:
        if self.key_throttle_rate_per_second > self.throttle_rate_per_second:
            raise ValueError("api.keyThrottleRatePerSecond exceeds api.throttleRatePerSecond")
        if self.key_throttle_burst > self.throttle_burst:
            raise ValueError("api.keyThrottleBurst exceeds api.throttleBurst")
        return self


class AlarmConfig(_Section):
    actions_enabled: bool
    hit_rate_min_percent: float = Field(gt=0, le=100)
    latency_p95_max_ms: float = Field(gt=0)
    pool_in_use_max: int = Field(ge=1)
    redis_memory_max_percent: float = Field(gt=0, le=100)
    stale_served_max_per_minute: int = Field(ge=0)
    bypass_max_per_minute: int = Field(ge=0)
    outbox_pending_max: int = Field(ge=0)
    cache_budget_usd_per_month: float = Field(gt=0)
    # Commands in the cache's slow log (each slower than cache.slowlogMicroseconds) per 5 minutes.
    slow_commands_max_per_5_minutes: int = Field(ge=0)
    # The canary's own alarms: Lambda Duration p95 of the new version while it takes 10 % of traffic.
    canary_duration_p95_max_ms: float = Field(gt=0)
    # An SNS notification for every kill-switch write (a metric filter on the audit log line).
    kill_switch_notifications: bool = False


SCHEDULE_EXPRESSION = r"^(cron\((\S+ ){5}\S+\)|rate\(\d+ (minute|hour|day)s?\))$"


class RightsizingConfig(_Section):
    """The cache right-sizing function (issue 19): when EventBridge Scheduler runs it, and the window it reads."""

    # EventBridge Scheduler's syntax (six cron fields, or a rate); the default is quarterly: 08:00 UTC on
    # 1 January, April, July and October.
    schedule: str = Field(default="cron(0 8 1 1,4,7,10 ? *)", pattern=SCHEDULE_EXPRESSION)
    # CloudWatch keeps hourly data 455 days; the rule needs 14 days of it (rightsizing/rule.py).
    lookback_days: int = Field(default=90, ge=14, le=455)


class EnvironmentConfig(_Section):
    """Everything that differs between dev, staging and prod."""

    name: Literal["dev", "staging", "prod"]
    termination_protection: bool
    removal_policy: Literal["destroy", "snapshot", "retain"]
    log_retention_days: int
    network: NetworkConfig
    cache: CacheConfig
    # The cache being replaced, kept (with its own settings) until the service no longer uses it.
    previous_cache: CacheConfig | None = None
    # A blue/green move to the next generation in its own stack (absent: one cache per environment).
    cache_move: CacheMoveConfig | None = None
    database: DatabaseConfig
    function: FunctionConfig
    api: ApiConfig
    alarms: AlarmConfig
    rightsizing: RightsizingConfig = RightsizingConfig()

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, days: int) -> int:
        if days not in _RETENTION_BY_DAYS:
            raise ValueError(f"CloudWatch Logs has no retention of {days} days")
        return days

    @model_validator(mode="after")
    def _a_previous_cache_is_another_generation(self) -> EnvironmentConfig:
        if self.previous_cache is not None and self.previous_cache.generation == self.cache.generation:
            raise ValueError("previousCache.generation must differ from cache.generation")
        return self

    @model_validator(mode="after")
    def _one_replacement_at_a_time(self) -> EnvironmentConfig:
        if self.cache_move is not None and self.previous_cache is not None:
            raise ValueError("cacheMove and previousCache cannot be set together: finish one replacement first")
        try:
            self.next_cache  # noqa: B018 - validated at synth: a misspelt change fails here, not at deploy
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"cacheMove.changes: {where}: {first['msg']}") from None
        return self

    @property
    def next_cache(self) -> CacheConfig | None:
        """The cache a move builds: the current one's settings with the move's changes, one generation later."""
        if self.cache_move is None:
            return None
        settings = self.cache.model_dump(by_alias=True) | self.cache_move.changes
        return CacheConfig.model_validate(settings | {"generation": self.cache.generation + 1, "ownStack": True})

    @property
    def caches(self) -> list[CacheConfig]:
        """The active cache first, then the one being replaced (if any), then the one a move builds (if any)."""
        following = [cache for cache in (self.previous_cache, self.next_cache) if cache is not None]
        return [self.cache, *following]

    @model_validator(mode="after")
    def _connections_fit_the_database(self) -> EnvironmentConfig:
        """DESIGN.md: worst-case connections stay under half of max_connections (one pool slot per container).

        Without a proxy every container may hold one connection, so the reserved concurrency counts; with
        RDS Proxy, the proxy's pool (PROXY_MAX_CONNECTIONS_PERCENT of max_connections) is the ceiling.
        """
        if self.function.rds_proxy:
            pool = self.database.max_connections * PROXY_MAX_CONNECTIONS_PERCENT // 100
            source = f"the RDS Proxy pool ({PROXY_MAX_CONNECTIONS_PERCENT} % = {pool})"
        else:
            pool = self.function.reserved_concurrency
            source = f"reservedConcurrency {pool}"
        if (pool + OTHER_DATABASE_CONNECTIONS) * 2 > self.database.max_connections:
            raise ValueError(
                f"{source} + {OTHER_DATABASE_CONNECTIONS} other connections exceed half of "
                f"database.maxConnections {self.database.max_connections}"
            )
        return self

    @cached_property
    def data_removal_policy(self) -> cdk.RemovalPolicy:
        """What happens to the database when its stack is deleted."""
        return _REMOVAL[self.removal_policy]

    @cached_property
    def resource_removal_policy(self) -> cdk.RemovalPolicy:
        """For logs and secrets (which cannot be snapshotted): kept only where the data is kept."""
        return cdk.RemovalPolicy.RETAIN if self.removal_policy == "retain" else cdk.RemovalPolicy.DESTROY

    @cached_property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION_BY_DAYS[self.log_retention_days]

    @property
    def cost_tags(self) -> dict[str, str]:
        return {"Feature": "FeatureFlags", "CostCenter": "Platform", "Environment": self.name}


_REMOVAL = {
    "destroy": cdk.RemovalPolicy.DESTROY,
    "snapshot": cdk.RemovalPolicy.SNAPSHOT,
    "retain": cdk.RemovalPolicy.RETAIN,
}
_RETENTION_BY_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def read_cdk_json(path: Path = CDK_JSON) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def cdk_context(document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `context` of cdk.json (feature flags included), for apps run without the CLI."""
    return dict((document or read_cdk_json())["context"])


def parse_environments(document: dict[str, Any]) -> dict[str, EnvironmentConfig]:
    """Every environment of cdk.json, validated; exactly dev, staging and prod, in that order."""
    raw = document.get("context", {}).get(ENVIRONMENTS_KEY)
    if not isinstance(raw, dict) or tuple(sorted(raw)) != tuple(sorted(ENVIRONMENT_NAMES)):
        raise ConfigError(f"cdk.json context {ENVIRONMENTS_KEY!r} must define exactly {', '.join(ENVIRONMENT_NAMES)}")
    configs = {}
    for name in ENVIRONMENT_NAMES:
        try:
            configs[name] = EnvironmentConfig.model_validate({"name": name, **raw[name]})
        except ValueError as exc:
            raise ConfigError(f"cdk.json environment {name!r}: {exc}") from None
    return configs


def load_environments(path: Path = CDK_JSON) -> dict[str, EnvironmentConfig]:
    return parse_environments(read_cdk_json(path))
