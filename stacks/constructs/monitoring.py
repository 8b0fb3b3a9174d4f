"""What on-call is told: the alarms (a table) and where they go, kill-switch notices, the cache budget, saved queries.

The dashboard is its own construct (dashboard.py); both read the metrics of service_metrics.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import AlarmConfig, EnvironmentConfig
from stacks.constructs.api import FlagApi
from stacks.constructs.cache import CacheNodes
from stacks.constructs.dashboard import FlagDashboard
from stacks.constructs.flag_function import FlagFunction
from stacks.constructs.service_metrics import (
    FIVE_MINUTES,
    HIT_LATENCY_METRIC,
    HOUR,
    LOOKUP_LATENCY_METRIC,
    MINUTE,
    POOL_PEAK_METRIC,
    ServiceMetrics,
)
from stacks.naming import SERVICE_NAME, metrics_namespace

KILL_SWITCH_METRIC = "KillSwitchWrites"
REDIS_CPU_MAX_PERCENT = 80  # t4g nodes run unlimited: sustained CPU above baseline is billed
API_5XX_PER_MINUTE = 5
FUNCTION_ERRORS_PER_MINUTE = 5  # every version through the alias: pages people, never blocks a deployment
CACHE_SERVICE = "Amazon ElastiCache"  # the Cost Explorer SERVICE dimension of the cache's charges
ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
BELOW = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
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
class AlarmSpec:
    """One alarm: `name` is its construct id and ends its alarm name (`flagservice-<env>-<name>`).

    It alarms after `periods` consecutive periods beyond `threshold`; a period with no data is not a breach.
    """

    name: str
    metric: cloudwatch.IMetric
    threshold: float
    periods: int
    description: str
    comparison: cloudwatch.ComparisonOperator = ABOVE


def alarm_table(m: ServiceMetrics, limits: AlarmConfig) -> tuple[AlarmSpec, ...]:
    """Every alarm that pages on-call, in the order the dashboard lists them (the canary's are in canary.py).

    A row: name, metric, threshold, consecutive periods; then the description (and BELOW where low is bad).
    """
    hit_rate, latency, pool = limits.hit_rate_min_percent, limits.latency_p95_max_ms, limits.pool_in_use_max
    memory, slow = limits.redis_memory_max_percent, limits.slow_commands_max_per_5_minutes
    stale, bypass = limits.stale_served_max_per_minute, limits.bypass_max_per_minute
    cpu, worst = REDIS_CPU_MAX_PERCENT, m.cache.metric_worst_node
    return (
        AlarmSpec("HitRateLow", m.hit_rate(HOUR), hit_rate, 1,
                  f"Cache hit rate below {hit_rate:g} % over an hour", BELOW),
        AlarmSpec("PoolInUseHigh", m.service(POOL_PEAK_METRIC, "Maximum"), pool, 5,
                  f"More than {pool} Redis connections in use at once during requests, every minute for 5 min"),
        AlarmSpec("PoolExhausted", m.service("RedisPoolExhausted", "Sum"), 0, 1,
                  "A Redis connection pool ran out of connections"),
        AlarmSpec("HitLatencyP95High", m.service(HIT_LATENCY_METRIC, "p95", FIVE_MINUTES), latency, 2,
                  f"Cached (HIT) lookup p95 above {latency:g} ms for 10 min"),
        AlarmSpec("LookupLatencyP95High", m.service(LOOKUP_LATENCY_METRIC, "p95", FIVE_MINUTES), latency, 2,
                  f"Flag lookup p95 (every outcome) above {latency:g} ms for 10 min"),
        AlarmSpec("CacheSlowCommands", m.slow_commands(), slow, 1,
                  f"More than {slow} commands in the cache's slow log in 5 min (see its SlowLog group)"),
        AlarmSpec("RedisMemoryHigh", worst("DatabaseMemoryUsagePercentage", "Maximum"), memory, 2,
                  f"Cache memory above {memory:g} % for 10 min"),
        AlarmSpec("RedisCpuHigh", worst("EngineCPUUtilization", "Average"), cpu, 3,
                  f"Cache engine CPU above {cpu} % for 15 min (burst credits are billed)"),
        AlarmSpec("BreakerOpen", m.service("CacheBreakerOpen", "Maximum"), 0, 2,
                  "The Redis circuit breaker is open in some container for 2 min: reads bypass the cache"),
        AlarmSpec("StaleServedHigh", m.service("StaleServed", "Sum"), stale, 3,
                  f"More than {stale} stale answers a minute for 3 min: PostgreSQL is failing"),
        AlarmSpec("BypassHigh", m.service("CacheBypass", "Sum"), bypass, 3,
                  f"More than {bypass} cache bypasses a minute for 3 min: Redis is failing"),
        AlarmSpec("OutboxPending", m.service("OutboxPending", "Maximum"), limits.outbox_pending_max, 5,
                  "Cache invalidations waiting in the outbox for 5 min: writes may not be visible"),
        AlarmSpec("FunctionErrors", m.function.metric_errors(period=MINUTE), FUNCTION_ERRORS_PER_MINUTE, 2,
                  f"More than {FUNCTION_ERRORS_PER_MINUTE} function errors a minute for 2 min (any version)"),
        AlarmSpec("FunctionThrottles", m.function.metric_throttles(period=MINUTE), 0, 3,
                  "The flag function hit its reserved concurrency for 3 min"),
        AlarmSpec("Api5xx", m.stage.metric_server_error(period=MINUTE), API_5XX_PER_MINUTE, 3,
                  f"More than {API_5XX_PER_MINUTE} server errors a minute for 3 min"),
    )  # fmt: skip


class Monitoring(Construct):
    """Per environment: alarms to an SNS topic, kill-switch notifications, budget, saved queries, the dashboard.

    It takes the constructs it watches: the flag function (and its log group), the API (its stage's
    metrics), the cache's nodes and the database. The kill-switch notification needs no route from the
    function to SNS: a metric filter counts the audit log lines that leave a flag disabled, and an alarm
    on that count notifies its own topic (one notification per minute that has any; the saved query lists
    them all).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        function: FlagFunction,
        api: FlagApi,
        cache: CacheNodes,
        database: rds.IDatabaseInstance,
        more_alarms: Sequence[AlarmSpec] = (),
    ) -> None:
        """`more_alarms`: rows from the units that own their metrics (the push channel's)."""
        super().__init__(scope, construct_id)
        self._config = config
        self._logs = function.log_group
        self.metrics = ServiceMetrics(
            namespace=metrics_namespace(config.name),
            service_name=SERVICE_NAME,
            function=function.function,
            stage=api.stage,
            cache=cache,
            database=database,
        )
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Flag service notifications ({config.name}): SNS encryption",
            enable_key_rotation=True,
            removal_policy=config.resource_removal_policy,
        )
        self.alarm_topic = self._topic("AlarmTopic", f"Flag service alarms ({config.name})")
        rows = (*alarm_table(self.metrics, config.alarms), *more_alarms)
        self.alarms = {spec.name: self._alarm(spec) for spec in rows}
        self.kill_switch_topic, self.kill_switch_alarm = self._kill_switch(config)
        self.budget = self._cache_budget(config)
        self.queries = self._queries(config.name)
        self.dashboard = FlagDashboard(
            self, "Dashboard", environment=config.name, metrics=self.metrics, alarms=list(self.alarms.values())
        )

    def _alarm(self, spec: AlarmSpec) -> cloudwatch.Alarm:
        """A row of the table, notifying the alarm topic when it fires and when it clears."""
        alarm = cloudwatch.Alarm(
            self,
            spec.name,
            alarm_name=f"flagservice-{self._config.name}-{spec.name}",
            metric=spec.metric,
            threshold=spec.threshold,
            evaluation_periods=spec.periods,
            datapoints_to_alarm=spec.periods,
            comparison_operator=spec.comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            actions_enabled=self._config.alarms.actions_enabled,
            alarm_description=spec.description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.alarm_topic))
        alarm.add_ok_action(actions.SnsAction(self.alarm_topic))
        return alarm

    def _kill_switch(self, config: EnvironmentConfig) -> tuple[sns.Topic | None, cloudwatch.Alarm | None]:
        """Count kill-switch writes from the audit log; notify a topic of its own where configured."""
        logs.MetricFilter(
            self,
            "KillSwitchWrites",
            log_group=self._logs,
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.message", "=", "flag audit"),
                logs.FilterPattern.boolean_value("$.kill_switch", True),
            ),
            metric_namespace=self.metrics.namespace,
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
                namespace=self.metrics.namespace, metric_name=KILL_SWITCH_METRIC, statistic="Sum", period=MINUTE
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
        groups = [self._logs]
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
