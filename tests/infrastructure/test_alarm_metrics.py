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

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis, only_resource, resources_of_type
from tests.infrastructure.emf_probe import VERSION
from tests.infrastructure.test_flag_function import variables

ROOT = Path(__file__).resolve().parents[2]


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
    return set(emitted(json.dumps(variables(synthesis.template_json(environment, "service")), sort_keys=True)))


def alarm_metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    props = alarm["Properties"]
    return props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}


def our_alarms(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every single-metric alarm on a FeatureFlags/<env> metric, by logical id."""
    return {
        key: alarm
        for key, alarm in resources_of_type(template_json, "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace", "").startswith("FeatureFlags/")
    }


def test_the_canary_alarm_reads_exactly_what_the_handler_emits_for_a_5xx_of_the_deployed_version(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    _, group = only_resource(service_template_json, "AWS::CodeDeploy::DeploymentGroup")
    _, alias = only_resource(service_template_json, "AWS::Lambda::Alias")
    rollback = {a["Name"]["Ref"] for a in group["Properties"]["AlarmConfiguration"]["Alarms"]}
    (alarm,) = [a for key, a in our_alarms(service_template_json).items() if key in rollback]
    namespace, name, dimensions = alarm_metric(alarm)

    # The alarm's version is the version the deployment publishes and the alias moves to.
    assert dimensions["FunctionVersion"] == alias["Properties"]["FunctionVersion"]
    # Deployed, Lambda's context says that same version ("42" here): the rest must match exactly.
    expected = frozenset({**dimensions, "FunctionVersion": VERSION}.items())
    assert (namespace, name, expected) in metrics_of(synthesis, environment)


def test_the_degraded_deploy_alarm_metric_is_emitted_for_a_500_too(synthesis: Synthesis, environment: str) -> None:
    emitted_names = {(ns, name, dims) for ns, name, dims in metrics_of(synthesis, environment)}
    server = [dims for ns, name, dims in emitted_names if name == "ServerErrorAnswers"]
    internal = [dims for ns, name, dims in emitted_names if name == "InternalErrorAnswers"]

    assert server and internal == server  # same namespace and dimensions as the alarm that reads the other


def test_every_monitoring_alarm_on_a_service_metric_reads_a_metric_the_handler_emits(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    """Each metric the probe's requests produce: 5xx, MISS, HIT (latency), pool peak."""
    sent = metrics_of(synthesis, environment)
    checked = set()
    for alarm in our_alarms(service_template_json).values():
        namespace, name, dimensions = alarm_metric(alarm)
        if name in {"ServerErrorAnswers", "KillSwitchWrites", "CacheSlowCommands"}:
            continue  # the canary's (above), and the two counted by metric filters (below, test_monitoring)
        emitted_dimensions = [dict(dims) for ns, metric, dims in sent if (ns, metric) == (namespace, name)]
        if emitted_dimensions:
            assert dimensions in emitted_dimensions, (name, dimensions, emitted_dimensions)
            checked.add(name)

    # The alarms issue 14 fixed must be among those proven, not skipped for lack of a sample.
    assert {"LookupLatencyHit", "LookupLatency", "RedisPoolPeakInUse"} <= checked


def test_the_hit_latency_alarm_reads_cached_reads_only(synthesis: Synthesis, environment: str) -> None:
    names = {name for _, name, _ in metrics_of(synthesis, environment)}

    assert {"LookupLatency", "LookupLatencyHit", "CacheHit"} <= names


def test_the_slow_log_alarm_reads_what_the_stateful_stack_metric_filter_counts(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    (alarm,) = [
        a for a in our_alarms(service_template_json).values() if a["Properties"]["MetricName"] == "CacheSlowCommands"
    ]
    _, slow_log = only_resource(synthesis.template_json(environment), "AWS::ElastiCache::ReplicationGroup")
    filters = resources_of_type(synthesis.template_json(environment), "AWS::Logs::MetricFilter").values()
    (counting,) = [
        f["Properties"]
        for f in filters
        if f["Properties"]["MetricTransformations"][0]["MetricName"] == "CacheSlowCommands"
    ]
    (transformation,) = counting["MetricTransformations"]
    delivery = slow_log["Properties"]["LogDeliveryConfigurations"][0]

    assert alarm_metric(alarm) == (transformation["MetricNamespace"], transformation["MetricName"], {})
    assert "Dimensions" not in transformation and transformation["MetricValue"] == "1"
    assert counting["LogGroupName"] == delivery["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"]
    # Every JSON slow log entry names its node (ElastiCache's documented fields), so each counts once.
    assert counting["FilterPattern"] == '{ $.CacheNodeId = "*" }' and delivery["LogFormat"] == "json"
    assert alarm["Properties"]["Threshold"] == config.alarms.slow_commands_max_per_5_minutes
