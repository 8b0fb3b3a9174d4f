"""The metrics on-call reads, defined once for the alarms (monitoring.py) and the dashboard (dashboard.py).

The service's own metrics (EMF, DESIGN.md Observability) carry one dimension, Powertools' `service`
(the 5xx counts per version, which add `FunctionVersion`, are the canary's: canary.py). The cache's
slow log is counted by a metric filter in the stateful stack (CacheSlowCommands, no dimension). The
function, the API stage and the database give their own metrics through CDK's `metric_*()` methods;
the cache's nodes through `CacheNodes` (cache.py), since CDK has no replication group construct.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds

from stacks.constructs.cache import SLOW_COMMANDS_METRIC, CacheNodes
from stacks.constructs.canary import SERVER_ERRORS_METRIC

MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
HOUR = cdk.Duration.hours(1)
# The runtime's names (runtime/flagservice/telemetry.py); tests/infrastructure/test_alarm_metrics.py checks
# each alarm against what is really emitted.
POOL_PEAK_METRIC = "RedisPoolPeakInUse"
LOOKUP_LATENCY_METRIC = "LookupLatency"
HIT_LATENCY_METRIC = "LookupLatencyHit"
# Hit rate is (CacheHit + StaleServed) / all lookups, the definition `/admin/cache/stats` uses (a BYPASS is a miss).
OUTCOMES = {"hit": "CacheHit", "stale": "StaleServed", "miss": "CacheMiss", "bypass": "CacheBypass"}


class ServiceMetrics:
    """Our metrics by name, and the watched constructs (`function`, `stage`, `cache`, `database`) for theirs."""

    def __init__(
        self,
        *,
        namespace: str,
        service_name: str,
        function: lambda_.IFunction,
        stage: apigateway.Stage,
        cache: CacheNodes,
        database: rds.IDatabaseInstance,
    ) -> None:
        self.namespace = namespace
        self.service_name = service_name
        self.function = function
        self.stage = stage
        self.cache = cache
        self.database = database

    def service(self, name: str, statistic: str, period: cdk.Duration = MINUTE) -> cloudwatch.Metric:
        """One of the handler's EMF metrics."""
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map={"service": self.service_name},
            statistic=statistic,
            period=period,
        )

    def hit_rate(self, period: cdk.Duration) -> cloudwatch.MathExpression:
        using = {key: self.service(name, "Sum", period) for key, name in OUTCOMES.items()}
        filled = {key: f"FILL({key}, 0)" for key in OUTCOMES}
        hits = f"{filled['hit']} + {filled['stale']}"
        return cloudwatch.MathExpression(
            expression=f"100 * ({hits}) / ({hits} + {filled['miss']} + {filled['bypass']})",
            using_metrics=using,
            label="Hit rate (%)",
            period=period,
        )

    def slow_commands(self) -> cloudwatch.Metric:
        """Commands in the cache's slow log, counted by the stateful stack's metric filter."""
        return cloudwatch.Metric(
            namespace=self.namespace, metric_name=SLOW_COMMANDS_METRIC, statistic="Sum", period=FIVE_MINUTES
        )

    def errors_per_version(self) -> cloudwatch.MathExpression:
        """One line per function version that answered 5xx (the canary's own metric, found by SEARCH)."""
        schema = f"{{{self.namespace},FunctionVersion,service}}"
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{schema} MetricName=\"{SERVER_ERRORS_METRIC}\"', 'Sum', 60)",
            using_metrics={},
            label="5xx answers, version",
            period=MINUTE,
        )
