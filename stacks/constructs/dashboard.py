"""The dashboard on-call opens first: what DESIGN.md (Observability) lists, four rows of graphs and the alarms."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks.constructs.service_metrics import (
    FIVE_MINUTES,
    HIT_LATENCY_METRIC,
    LOOKUP_LATENCY_METRIC,
    MINUTE,
    OUTCOMES,
    POOL_PEAK_METRIC,
    ServiceMetrics,
)

Row = list[cloudwatch.IWidget]


def graph(title: str, metrics: Sequence[cloudwatch.IMetric], **options: object) -> cloudwatch.GraphWidget:
    """A third of a row."""
    return cloudwatch.GraphWidget(title=title, left=list(metrics), width=8, height=6, **options)  # type: ignore[arg-type]


class FlagDashboard(Construct):
    """`flagservice-<env>`: cache outcomes and latency, the Redis pool and stores, the function and API, alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        metrics: ServiceMetrics,
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self._metrics = metrics
        rows = [
            self._lookups(),
            self._pool_and_stores(),
            self._cache_nodes(),
            self._function_and_api(),
            [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)],
        ]
        # "Default" keeps the dashboard's logical id what it was when Monitoring built it directly.
        self.dashboard = cloudwatch.Dashboard(
            self, "Default", dashboard_name=f"flagservice-{environment}", widgets=rows
        )

    def _lookups(self) -> Row:
        m = self._metrics.service
        latency = [m(LOOKUP_LATENCY_METRIC, p, FIVE_MINUTES).with_(label=p) for p in ("p50", "p95", "p99")]
        latency.append(m(HIT_LATENCY_METRIC, "p95", FIVE_MINUTES).with_(label="HIT p95"))
        order = ("hit", "miss", "bypass", "stale")
        outcomes = [m(OUTCOMES[key], "Sum").with_(label=OUTCOMES[key]) for key in order]
        percent = cloudwatch.YAxisProps(min=0, max=100)
        return [
            graph("Hit rate (%)", [self._metrics.hit_rate(FIVE_MINUTES)], left_y_axis=percent),
            graph("Lookup latency (ms)", latency),
            graph("Lookups by outcome", outcomes, stacked=True),
        ]

    def _pool_and_stores(self) -> Row:
        m = self._metrics.service
        pool = [m(POOL_PEAK_METRIC, "Maximum"), m("RedisPoolExhausted", "Sum"), m("RedisConnectionErrors", "Sum")]
        health = [m("CacheBreakerOpen", "Maximum"), m("OutboxPending", "Maximum"), m("CacheError", "Sum")]
        connections = self._metrics.database.metric_database_connections(statistic="Maximum", period=MINUTE)
        return [
            graph("Redis pool per container", pool),
            graph("Breaker, outbox, cache errors, slow commands", [*health, self._metrics.slow_commands()]),
            graph("Database connections", [connections]),
        ]

    def _cache_nodes(self) -> Row:
        nodes = self._metrics.cache.metric_per_node
        return [
            graph("Redis engine CPU (%)", nodes("EngineCPUUtilization", "Average")),
            graph("Redis memory (%)", nodes("DatabaseMemoryUsagePercentage", "Maximum")),
            graph(
                "Redis evictions and connections",
                [*nodes("Evictions", "Sum"), *nodes("CurrConnections", "Maximum")],
            ),
        ]

    def _function_and_api(self) -> Row:
        function, stage = self._metrics.function, self._metrics.stage
        calls = [
            function.metric_invocations(period=MINUTE),
            function.metric_errors(period=MINUTE),
            function.metric_throttles(period=MINUTE),
            function.metric("ConcurrentExecutions", statistic="Maximum", period=MINUTE),
        ]
        requests = [
            stage.metric_count(statistic="Sum", period=MINUTE),
            stage.metric_client_error(period=MINUTE),
            stage.metric_server_error(period=MINUTE),
        ]
        latency = [
            stage.metric_latency(statistic="p95", period=MINUTE),
            stage.metric_integration_latency(statistic="p95", period=MINUTE),
        ]
        return [
            graph("Function", calls),
            graph("API requests and errors; 5xx answers per version", [*requests, self._metrics.errors_per_version()]),
            graph("API latency p95 (ms)", latency),
        ]
