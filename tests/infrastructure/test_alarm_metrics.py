"""Alarms that can fire: each alarm on a metric of ours names exactly what the code emits.

An alarm that synthesizes but reads a metric nobody sends (a wrong name, namespace or dimension set:
CloudWatch matches all three exactly) stays OK forever, which is the trap. So the handler itself runs,
in a process configured with the flag function's environment from the synthesized template
(emf_probe.py), and its EMF output is compared with every alarm that reads a FeatureFlags metric:
the canary's 5xx-per-version alarm (dimension: the version being deployed) and the monitoring alarms
(HIT latency, pool peak, ...). The slow-log alarm is compared with the stateful stack's metric filter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Capture, Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis
from tests.infrastructure.emf_probe import VERSION
from tests.infrastructure.test_flag_function import variables

ROOT = Path(__file__).resolve().parents[2]
ALARM = "AWS::CloudWatch::Alarm"


@cache
def emitted(environment_json: str) -> tuple[tuple[str, str, frozenset[tuple[str, str]]], ...]:
    """(namespace, metric, dimensions with their values) of every metric the probe's requests emit."""
    settings = {k: v for k, v in json.loads(environment_json).items() if isinstance(v, str)}
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{ROOT / 'runtime'}:{ROOT}",
        "PYTHONDONTWRITEBYTECODE": "1",
        **settings,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.infrastructure.emf_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert '"status": 500' in done.stderr, done.stderr  # the first request really was a 5xx
    found = set()
    for line in done.stdout.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for names in directive["Dimensions"]:
                dimensions = frozenset((name, str(record[name])) for name in names)
                for metric in directive["Metrics"]:
                    found.add((directive["Namespace"], metric["Name"], dimensions))
    return tuple(sorted(found))


def metrics_of(synthesis: Synthesis, environment: str) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    return set(emitted(json.dumps(variables(synthesis.template(environment, "service")), sort_keys=True)))


def alarm_metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    props = alarm["Properties"]
    return props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}


def our_alarms(template: Template, properties: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every single-metric alarm on a FeatureFlags/<env> metric (with those properties), by logical id."""
    ours = {"Namespace": Match.string_like_regexp("^FeatureFlags/"), **(properties or {})}
    found: dict[str, dict[str, Any]] = template.find_resources(ALARM, {"Properties": ours})
    return found


def test_the_canary_alarm_reads_exactly_what_the_handler_emits_for_a_5xx_of_the_deployed_version(
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    # Given the rollback alarm of ours, on the version the deployment publishes and the alias moves to
    rollback, version = Capture(), Capture()
    service_template.has_resource_properties(
        "AWS::CodeDeploy::DeploymentGroup", {"AlarmConfiguration": {"Alarms": rollback}}
    )
    service_template.has_resource_properties("AWS::Lambda::Alias", {"FunctionVersion": version})
    on_the_version = {"Dimensions": Match.array_with([{"Name": "FunctionVersion", "Value": version.as_object()}])}
    rolls_back = {alarm["Name"]["Ref"] for alarm in rollback.as_array()}
    (alarm,) = [a for key, a in our_alarms(service_template, on_the_version).items() if key in rolls_back]
    namespace, name, dimensions = alarm_metric(alarm)

    # Then, deployed, Lambda's context says that same version ("42" here): the rest must match exactly
    expected = frozenset({**dimensions, "FunctionVersion": VERSION}.items())
    assert (namespace, name, expected) in metrics_of(synthesis, environment)


def test_the_degraded_deploy_alarm_metric_is_emitted_for_a_500_too(synthesis: Synthesis, environment: str) -> None:
    emitted_names = {(ns, name, dims) for ns, name, dims in metrics_of(synthesis, environment)}
    server = [dims for ns, name, dims in emitted_names if name == "ServerErrorAnswers"]
    internal = [dims for ns, name, dims in emitted_names if name == "InternalErrorAnswers"]

    assert server and internal == server  # same namespace and dimensions as the alarm that reads the other


def test_every_monitoring_alarm_on_a_service_metric_reads_a_metric_the_handler_emits(
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    """Each metric the probe's requests produce: 5xx, MISS, HIT (latency), pool peak."""
    # Given what the probe's requests emitted, and our alarms but the canary's and the metric filters' (below)
    sent = metrics_of(synthesis, environment)
    skipped = Match.string_like_regexp("^(?!(ServerErrorAnswers|KillSwitchWrites|CacheSlowCommands)$)")
    checked = set()

    # Then each alarm with a sample reads exactly the emitted dimensions
    for alarm in our_alarms(service_template, {"MetricName": skipped}).values():
        namespace, name, dimensions = alarm_metric(alarm)
        emitted_dimensions = [dict(dims) for ns, metric, dims in sent if (ns, metric) == (namespace, name)]
        if emitted_dimensions:
            assert dimensions in emitted_dimensions, (name, dimensions, emitted_dimensions)
            checked.add(name)

    # And the alarms issue 14 fixed are among those proven, not skipped for lack of a sample
    assert {"LookupLatencyHit", "LookupLatency", "RedisPoolPeakInUse"} <= checked


def test_the_hit_latency_alarm_reads_cached_reads_only(synthesis: Synthesis, environment: str) -> None:
    names = {name for _, name, _ in metrics_of(synthesis, environment)}

    assert {"LookupLatency", "LookupLatencyHit", "CacheHit"} <= names


def test_the_slow_log_alarm_reads_what_the_stateful_stack_metric_filter_counts(
    synthesis: Synthesis, environment: str, service_template: Template, config: EnvironmentConfig
) -> None:
    # Given the slow log's group in the stateful stack, and the namespace its metric filter counts into
    stateful = synthesis.template(environment)
    slow_log, namespace = Capture(), Capture()
    stateful.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "LogDeliveryConfigurations": [
                Match.object_like(
                    {"LogFormat": "json", "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": slow_log}}}
                )
            ]
        },
    )
    counted = {"MetricName": "CacheSlowCommands", "MetricNamespace": namespace, "MetricValue": "1"}
    slow_commands = {"MetricTransformations": [Match.object_like({"MetricName": "CacheSlowCommands"})]}
    stateful.resource_properties_count_is("AWS::Logs::MetricFilter", slow_commands, 1)
    stateful.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "LogGroupName": slow_log.as_object(),
            # Every JSON slow log entry names its node (ElastiCache's documented fields), so each counts once.
            "FilterPattern": '{ $.CacheNodeId = "*" }',
            "MetricTransformations": [Match.object_like({**counted, "Dimensions": Match.absent()})],
        },
    )

    # Then the one alarm on it reads that metric, with no dimension either, at the configured threshold
    reads_it = {"MetricName": "CacheSlowCommands", "Namespace": namespace.as_string(), "Dimensions": Match.absent()}
    threshold = {"Threshold": config.alarms.slow_commands_max_per_5_minutes}
    service_template.resource_properties_count_is(ALARM, {"MetricName": "CacheSlowCommands"}, 1)
    service_template.has_resource_properties(ALARM, {**reads_it, **threshold})
