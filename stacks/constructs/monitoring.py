"""What on-call sees: the dashboard, the alarms and where they go, the cache budget, the saved queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import AlarmConfig, EnvironmentConfig

MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
HOUR = cdk.Duration.hours(1)
KILL_SWITCH_METRIC = "KillSwitchWrites"
REDIS_CPU_MAX_PERCENT = 80  # t4g nodes run unlimited: sustained CPU above baseline is billed
API_5XX_PER_MINUTE = 5
FUNCTION_ERRORS_PER_MINUTE = 5  # every version through the alias: pages people, never blocks a deployment
# The runtime's names (runtime/flagservice/telemetry.py) and the slow log filter's (cache.py);
# tests/infrastructure/test_alarm_metrics.py checks each alarm against what is really emitted.
POOL_PEAK_METRIC = "RedisPoolPeakInUse"
LOOKUP_LATENCY_METRIC = "LookupLatency"
HIT_LATENCY_METRIC = "LookupLatencyHit"
SLOW_COMMANDS_METRIC = "CacheSlowCommands"
CACHE_SERVICE = "Amazon ElastiCache"  # the Cost Explorer SERVICE dimension of the cache's charges
HIT_RATE_QUERY = logs.QueryString(
    fields=["flag", "cache", 'strcontains(cache, "HIT") + strcontains(cache, "STALE") as hit'],
    filter_statements=["ispresent(flag) and ispresent(cache)"],
    stats_statements=["count(*) as lookups, sum(hit) as hits, 100 * sum(hit) / count(*) as hitRatePercent by flag"],
    sort="lookups desc",
    limit=200,
)
KILL_SWITCH_QUERY = logs.QueryString(
    fields=["@timestamp", "flag", "actor", "action", "version"],
    filter_statements=['message = "flag audit" and kill_switch = 1'],
    sort="@timestamp desc",
    limit=200,
)


@dataclass(frozen=True)
class MonitoredResources:
    """Names and ids of what the dashboard and alarms watch (tokens from both stacks)."""

    namespace: str
    service_name: str
    function_name: str
    function_log_group: logs.ILogGroup
    api_name: str
    api_stage: str
    cache_node_ids: Sequence[str]
    database_instance_id: str


class Monitoring(Construct):
    """Per environment: dashboard, alarms to an SNS topic, kill-switch notifications, budget, saved queries.

    The service's own metrics (EMF, DESIGN.md Observability) carry one dimension, Powertools' `service`
    (the 5xx counts per version, which add `FunctionVersion`, are the canary's: canary.py). The cache's
    slow log is counted by a metric filter in the stateful stack (CacheSlowCommands, no dimension).
    Hit rate is metric math: (CacheHit + StaleServed) / all lookups, the definition `/admin/cache/stats`
    uses (a BYPASS is a miss). The kill-switch notification needs no route from the function to SNS: a
    metric filter counts the audit log lines that leave a flag disabled, and an alarm on that count
    notifies its own topic (one notification per minute that has any; the saved query lists them all).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        resources: MonitoredResources,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._resources = resources
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Flag service notifications ({config.name}): SNS encryption",
            enable_key_rotation=True,
            removal_policy=config.resource_removal_policy,
        )
        self.alarm_topic = self._topic("AlarmTopic", f"Flag service alarms ({config.name})")
        self.alarms = self._service_alarms(config.alarms)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(actions.SnsAction(self.alarm_topic))
            alarm.add_ok_action(actions.SnsAction(self.alarm_topic))
        self.kill_switch_topic, self.kill_switch_alarm = self._kill_switch(config)
        self.budget = self._cache_budget(config)
        self.queries = self._queries(config.name)
        self.dashboard = self._dashboard(config.name)

    # -- metrics -------------------------------------------------------------------------------
    def service_metric(self, name: str, statistic: str, period: cdk.Duration = MINUTE) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._resources.namespace,
            metric_name=name,
            dimensions_map={"service": self._resources.service_name},
            statistic=statistic,
            period=period,
        )

    def hit_rate(self, period: cdk.Duration) -> cloudwatch.MathExpression:
        names = {"hit": "CacheHit", "stale": "StaleServed", "miss": "CacheMiss", "bypass": "CacheBypass"}
        using = {key: self.service_metric(name, "Sum", period) for key, name in names.items()}
        filled = {key: f"FILL({key}, 0)" for key in names}
        hits = f"{filled['hit']} + {filled['stale']}"
        return cloudwatch.MathExpression(
            expression=f"100 * ({hits}) / ({hits} + {filled['miss']} + {filled['bypass']})",
            using_metrics=using,
            label="Hit rate (%)",
            period=period,
        )

    def cache_metric(self, name: str, statistic: str, period: cdk.Duration = FIVE_MINUTES) -> cloudwatch.IMetric:
        """The worst node of the replication group (after a failover the primary is another node)."""
        nodes = {
            f"n{i}": cloudwatch.Metric(
                namespace="AWS/ElastiCache",
                metric_name=name,
                dimensions_map={"CacheClusterId": node},
                statistic=statistic,
                period=period,
            )
            for i, node in enumerate(self._resources.cache_node_ids)
        }
        if len(nodes) == 1:
            return next(iter(nodes.values()))
        return cloudwatch.MathExpression(
            expression=f"MAX([{', '.join(nodes)}])", using_metrics=nodes, label=f"{name} (max over nodes)"
        )

    def _cache_node_metrics(self, name: str, statistic: str) -> list[cloudwatch.IMetric]:
        return [
            cloudwatch.Metric(
                namespace="AWS/ElastiCache",
                metric_name=name,
                dimensions_map={"CacheClusterId": node},
                statistic=statistic,
                period=FIVE_MINUTES,
                label=f"{name} node {i + 1}",
            )
            for i, node in enumerate(self._resources.cache_node_ids)
        ]

    def slow_commands(self) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._resources.namespace, metric_name=SLOW_COMMANDS_METRIC, statistic="Sum", period=FIVE_MINUTES
        )

    def _errors_per_version(self) -> cloudwatch.MathExpression:
        """One line per function version that answered 5xx (the canary's own metric, found by SEARCH)."""
        schema = f"{{{self._resources.namespace},FunctionVersion,service}}"
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{schema} MetricName=\"ServerErrorAnswers\"', 'Sum', 60)",
            using_metrics={},
            label="5xx answers, version",
            period=MINUTE,
        )

    def _lambda_metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map={"FunctionName": self._resources.function_name},
            statistic=statistic,
            period=MINUTE,
        )

    def _api_metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name=name,
            dimensions_map={"ApiName": self._resources.api_name, "Stage": self._resources.api_stage},
            statistic=statistic,
            period=MINUTE,
        )

    # -- alarms --------------------------------------------------------------------------------
    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        above: bool = True,
        description: str,
    ) -> cloudwatch.Alarm:
        operator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
            if above
            else cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
        )
        return cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"flagservice-{self._config.name}-{name}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=operator,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            actions_enabled=self._config.alarms.actions_enabled,
            alarm_description=description,
        )

    def _service_alarms(self, limits: AlarmConfig) -> dict[str, cloudwatch.Alarm]:
        m = self.service_metric
        return {
            "HitRateLow": self._alarm(
                "HitRateLow",
                self.hit_rate(HOUR),
                threshold=limits.hit_rate_min_percent,
                periods=1,
                above=False,
                description=f"Cache hit rate below {limits.hit_rate_min_percent:g} % over an hour",
            ),
            "PoolInUseHigh": self._alarm(
                "PoolInUseHigh",
                m(POOL_PEAK_METRIC, "Maximum"),
                threshold=limits.pool_in_use_max,
                periods=5,
                description=f"More than {limits.pool_in_use_max} Redis connections in use at once during requests, "
                "every minute for 5 min",
            ),
            "PoolExhausted": self._alarm(
                "PoolExhausted",
                m("RedisPoolExhausted", "Sum"),
                threshold=0,
                periods=1,
                description="A Redis connection pool ran out of connections",
            ),
            "HitLatencyP95High": self._alarm(
                "HitLatencyP95High",
                m(HIT_LATENCY_METRIC, "p95", FIVE_MINUTES),
                threshold=limits.latency_p95_max_ms,
                periods=2,
                description=f"Cached (HIT) lookup p95 above {limits.latency_p95_max_ms:g} ms for 10 min",
            ),
            "LookupLatencyP95High": self._alarm(
                "LookupLatencyP95High",
                m(LOOKUP_LATENCY_METRIC, "p95", FIVE_MINUTES),
                threshold=limits.latency_p95_max_ms,
                periods=2,
                description=f"Flag lookup p95 (every outcome) above {limits.latency_p95_max_ms:g} ms for 10 min",
            ),
            "CacheSlowCommands": self._alarm(
                "CacheSlowCommands",
                self.slow_commands(),
                threshold=limits.slow_commands_max_per_5_minutes,
                periods=1,
                description=f"More than {limits.slow_commands_max_per_5_minutes} commands in the cache's slow log "
                "in 5 min (see its SlowLog group)",
            ),
            "RedisMemoryHigh": self._alarm(
                "RedisMemoryHigh",
                self.cache_metric("DatabaseMemoryUsagePercentage", "Maximum"),
                threshold=limits.redis_memory_max_percent,
                periods=2,
                description=f"Cache memory above {limits.redis_memory_max_percent:g} % for 10 min",
            ),
            "RedisCpuHigh": self._alarm(
                "RedisCpuHigh",
                self.cache_metric("EngineCPUUtilization", "Average"),
                threshold=REDIS_CPU_MAX_PERCENT,
                periods=3,
                description=f"Cache engine CPU above {REDIS_CPU_MAX_PERCENT} % for 15 min (burst credits are billed)",
            ),
            "BreakerOpen": self._alarm(
                "BreakerOpen",
                m("CacheBreakerOpen", "Maximum"),
                threshold=0,
                periods=2,
                description="The Redis circuit breaker is open in some container for 2 min: reads bypass the cache",
            ),
            "StaleServedHigh": self._alarm(
                "StaleServedHigh",
                m("StaleServed", "Sum"),
                threshold=limits.stale_served_max_per_minute,
                periods=3,
                description=f"More than {limits.stale_served_max_per_minute} stale answers a minute for 3 min: "
                "PostgreSQL is failing",
            ),
            "BypassHigh": self._alarm(
                "BypassHigh",
                m("CacheBypass", "Sum"),
                threshold=limits.bypass_max_per_minute,
                periods=3,
                description=f"More than {limits.bypass_max_per_minute} cache bypasses a minute for 3 min: "
                "Redis is failing",
            ),
            "OutboxPending": self._alarm(
                "OutboxPending",
                m("OutboxPending", "Maximum"),
                threshold=limits.outbox_pending_max,
                periods=5,
                description="Cache invalidations waiting in the outbox for 5 min: writes may not be visible",
            ),
            "FunctionErrors": self._alarm(
                "FunctionErrors",
                self._lambda_metric("Errors", "Sum"),
                threshold=FUNCTION_ERRORS_PER_MINUTE,
                periods=2,
                description=f"More than {FUNCTION_ERRORS_PER_MINUTE} function errors a minute for 2 min (any version)",
            ),
            "FunctionThrottles": self._alarm(
                "FunctionThrottles",
                self._lambda_metric("Throttles", "Sum"),
                threshold=0,
                periods=3,
                description="The flag function hit its reserved concurrency for 3 min",
            ),
            "Api5xx": self._alarm(
                "Api5xx",
                self._api_metric("5XXError", "Sum"),
                threshold=API_5XX_PER_MINUTE,
                periods=3,
                description=f"More than {API_5XX_PER_MINUTE} server errors a minute for 3 min",
            ),
        }

    def _kill_switch(self, config: EnvironmentConfig) -> tuple[sns.Topic | None, cloudwatch.Alarm | None]:
        """Count kill-switch writes from the audit log; notify a topic of its own where configured."""
        logs.MetricFilter(
            self,
            "KillSwitchWrites",
            log_group=self._resources.function_log_group,
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.message", "=", "flag audit"),
                logs.FilterPattern.boolean_value("$.kill_switch", True),
            ),
            metric_namespace=self._resources.namespace,
            metric_name=KILL_SWITCH_METRIC,
            metric_value="1",
            unit=cloudwatch.Unit.COUNT,
        )
        if not config.alarms.kill_switch_notifications:
            return None, None
        topic = self._topic("KillSwitchTopic", f"Flag kill switches ({config.name})")
        alarm = cloudwatch.Alarm(
            self,
            "KillSwitchAlarm",
            alarm_name=f"flagservice-{config.name}-KillSwitch",
            metric=cloudwatch.Metric(
                namespace=self._resources.namespace, metric_name=KILL_SWITCH_METRIC, statistic="Sum", period=MINUTE
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            actions_enabled=config.alarms.actions_enabled,
            alarm_description="A flag was switched off (kill switch): see the saved query kill-switch-writes",
        )
        alarm.add_alarm_action(actions.SnsAction(topic))
        return topic, alarm

    def _topic(self, construct_id: str, display_name: str) -> sns.Topic:
        topic = sns.Topic(self, construct_id, display_name=display_name, master_key=self.key, enforce_ssl=True)
        # CloudWatch alarms and AWS Budgets publish as services: they need the key to encrypt messages.
        for service in ("cloudwatch.amazonaws.com", "budgets.amazonaws.com"):
            self.key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")
        return topic

    # -- budget and queries --------------------------------------------------------------------
    def _cache_budget(self, config: EnvironmentConfig) -> budgets.CfnBudget:
        """Monthly cost of this environment's cache, by the cost allocation tags (activate them once)."""
        self.alarm_topic.grant_publish(iam.ServicePrincipal("budgets.amazonaws.com"))
        expression = budgets.CfnBudget.ExpressionProperty
        filters = [
            expression(
                dimensions=budgets.CfnBudget.ExpressionDimensionValuesProperty(key="SERVICE", values=[CACHE_SERVICE])
            ),
            expression(tags=budgets.CfnBudget.TagValuesProperty(key="Feature", values=["FeatureFlags"])),
            expression(tags=budgets.CfnBudget.TagValuesProperty(key="Environment", values=[config.name])),
        ]
        notify = [("ACTUAL", 80), ("FORECASTED", 100)]
        return budgets.CfnBudget(
            self,
            "CacheBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"flagservice-{config.name}-cache",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(
                    amount=config.alarms.cache_budget_usd_per_month, unit="USD"
                ),
                filter_expression=expression(and_=filters),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(
                            subscription_type="SNS", address=self.alarm_topic.topic_arn
                        )
                    ],
                )
                for kind, percent in notify
            ],
            resource_tags=[
                budgets.CfnBudget.ResourceTagProperty(key=key, value=value) for key, value in config.cost_tags.items()
            ],
        )

    def _queries(self, environment: str) -> dict[str, logs.QueryDefinition]:
        groups = [self._resources.function_log_group]
        return {
            "hit-rate-per-flag": logs.QueryDefinition(
                self,
                "HitRatePerFlag",
                query_definition_name=f"flagservice-{environment}/hit-rate-per-flag",
                query_string=HIT_RATE_QUERY,
                log_groups=groups,
            ),
            "kill-switch-writes": logs.QueryDefinition(
                self,
                "KillSwitchWritesQuery",
                query_definition_name=f"flagservice-{environment}/kill-switch-writes",
                query_string=KILL_SWITCH_QUERY,
                log_groups=groups,
            ),
        }

    # -- dashboard -----------------------------------------------------------------------------
    def _dashboard(self, environment: str) -> cloudwatch.Dashboard:
        m = self.service_metric

        def graph(title: str, metrics: list[cloudwatch.IMetric], **options: object) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=8, height=6, **options)  # type: ignore[arg-type]

        latency = [m(LOOKUP_LATENCY_METRIC, p, FIVE_MINUTES).with_(label=p) for p in ("p50", "p95", "p99")]
        latency.append(m(HIT_LATENCY_METRIC, "p95", FIVE_MINUTES).with_(label="HIT p95"))
        outcomes = [
            m(name, "Sum").with_(label=name) for name in ("CacheHit", "CacheMiss", "CacheBypass", "StaleServed")
        ]
        pool = [m(POOL_PEAK_METRIC, "Maximum"), m("RedisPoolExhausted", "Sum"), m("RedisConnectionErrors", "Sum")]
        rds = cloudwatch.Metric(
            namespace="AWS/RDS",
            metric_name="DatabaseConnections",
            dimensions_map={"DBInstanceIdentifier": self._resources.database_instance_id},
            statistic="Maximum",
            period=MINUTE,
        )
        rows: list[list[cloudwatch.IWidget]] = [
            [
                graph("Hit rate (%)", [self.hit_rate(FIVE_MINUTES)], left_y_axis=cloudwatch.YAxisProps(min=0, max=100)),
                graph("Lookup latency (ms)", list(latency)),
                graph("Lookups by outcome", list(outcomes), stacked=True),
            ],
            [
                graph("Redis pool per container", list(pool)),
                graph(
                    "Breaker, outbox, cache errors, slow commands",
                    [
                        m("CacheBreakerOpen", "Maximum"),
                        m("OutboxPending", "Maximum"),
                        m("CacheError", "Sum"),
                        self.slow_commands(),
                    ],
                ),
                graph("Database connections", [rds]),
            ],
            [
                graph("Redis engine CPU (%)", self._cache_node_metrics("EngineCPUUtilization", "Average")),
                graph("Redis memory (%)", self._cache_node_metrics("DatabaseMemoryUsagePercentage", "Maximum")),
                graph(
                    "Redis evictions and connections",
                    [
                        *self._cache_node_metrics("Evictions", "Sum"),
                        *self._cache_node_metrics("CurrConnections", "Maximum"),
                    ],
                ),
            ],
            [
                graph(
                    "Function",
                    [
                        self._lambda_metric(name, stat)
                        for name, stat in (
                            ("Invocations", "Sum"),
                            ("Errors", "Sum"),
                            ("Throttles", "Sum"),
                            ("ConcurrentExecutions", "Maximum"),
                        )
                    ],
                ),
                graph(
                    "API requests and errors; 5xx answers per version",
                    [
                        *[self._api_metric(name, "Sum") for name in ("Count", "4XXError", "5XXError")],
                        self._errors_per_version(),
                    ],
                ),
                graph(
                    "API latency p95 (ms)",
                    [self._api_metric("Latency", "p95"), self._api_metric("IntegrationLatency", "p95")],
                ),
            ],
            [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4)],
        ]
        return cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"flagservice-{environment}", widgets=rows)
