"""Cluster mode per environment (cdk.json `cache.clusterMode`, `shards`): off in the committed config.

Switched on through a config override (never by editing cdk.json), as the blue/green move builds it: dev
with a cluster-mode cache as generation 2 beside today's generation 1. Synthesized once for the module,
with cdk-nag (a finding fails the synth) and cfn-lint; the session's synth stands for the committed config.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template
from cfnlint.api import ManualArgs, lint_file

import app as app_module
from stacks.config import ENVIRONMENTS_KEY, ConfigError, parse_environments, read_cdk_json
from stacks.constructs.cache import CacheNodes
from tests.infrastructure.conftest import Synthesis, function_id
from tests.infrastructure.overrides import synthesize
from tests.infrastructure.test_flag_function import FLAG_HANDLER

GROUP = "AWS::ElastiCache::ReplicationGroup"
CLUSTER = {"clusterMode": True, "shards": 2, "replicas": 1, "multiAz": True}


def cluster_document(**cache: Any) -> dict[str, Any]:
    """dev moving to a cluster-mode cache: generation 2 (2 shards of a primary and a replica) beside generation 1."""
    document = copy.deepcopy(read_cdk_json())
    dev = document["context"][ENVIRONMENTS_KEY]["dev"]
    dev["previousCache"] = copy.deepcopy(dev["cache"])
    dev["cache"] = {**dev["cache"], "generation": 2, **CLUSTER, **cache}
    return document


@pytest.fixture(scope="module")
def clustered() -> Iterator[tuple[Template, Template, Path, app_module.EnvironmentStacks]]:
    synthesized = synthesize(cluster_document())
    yield synthesized.stateful("dev"), synthesized.service("dev"), synthesized.outdir, synthesized.environments["dev"]


Clustered = tuple[Template, Template, Path, app_module.EnvironmentStacks]


def test_the_committed_config_has_cluster_mode_off_everywhere(synthesis: Synthesis, environment: str) -> None:
    assert synthesis.configs[environment].cache.cluster_mode is False
    synthesis.template(environment).has_resource_properties(GROUP, {"NumCacheClusters": Match.any_value()})
    variables = Capture()
    synthesis.template(environment, "service").has_resource_properties(
        "AWS::Lambda::Function", {"Handler": FLAG_HANDLER, "Environment": {"Variables": variables}}
    )
    assert "REDIS_CLUSTER_MODE" not in variables.as_object()


def test_a_cluster_mode_cache_is_shards_of_a_primary_and_replicas_with_cluster_mode_parameters(
    clustered: Clustered,
) -> None:
    stateful, _, _, _ = clustered
    parameters = Capture()
    stateful.has_resource_properties(
        GROUP,
        {
            "ReplicationGroupId": "flags-dev-cache-2",
            "ClusterMode": "enabled",
            "NumNodeGroups": 2,
            "ReplicasPerNodeGroup": 1,
            "AutomaticFailoverEnabled": True,
            "MultiAZEnabled": True,
            "NumCacheClusters": Match.absent(),
            "TransitEncryptionMode": "required",
            "CacheParameterGroupName": {"Ref": parameters},
        },
    )
    stateful.has_resource_properties(
        "AWS::ElastiCache::ParameterGroup",
        {"CacheParameterGroupFamily": "valkey8", "Properties": Match.object_like({"cluster-enabled": "yes"})},
    )
    assert parameters.as_string() in stateful.find_resources(
        "AWS::ElastiCache::ParameterGroup", {"Properties": {"Properties": {"cluster-enabled": "yes"}}}
    )
    # And the cache in use until the move keeps its cluster-mode-disabled shape
    stateful.has_resource_properties(GROUP, {"ReplicationGroupId": "flags-dev-cache-1", "NumCacheClusters": 1})


def test_the_configuration_endpoint_is_published_and_the_function_runs_in_cluster_mode(clustered: Clustered) -> None:
    stateful, service, _, _ = clustered
    (group,) = stateful.find_resources(GROUP, {"Properties": {"ReplicationGroupId": "flags-dev-cache-2"}})
    stateful.has_resource_properties(
        "AWS::SSM::Parameter",
        {"Name": "/flagservice/dev/cache/endpoint", "Value": {"Fn::GetAtt": [group, "ConfigurationEndPoint.Address"]}},
    )
    service.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": FLAG_HANDLER, "Environment": {"Variables": Match.object_like({"REDIS_CLUSTER_MODE": "true"})}},
    )
    function_id(service, FLAG_HANDLER)


def test_the_monitoring_names_every_node_of_every_shard() -> None:
    config = parse_environments(cluster_document(shards=3))["dev"].cache
    nodes = CacheNodes.of("flags-dev-cache-2", config).node_ids
    assert nodes == [f"flags-dev-cache-2-{shard:04d}-{node:03d}" for shard in (1, 2, 3) for node in (1, 2)]


def test_the_cluster_mode_cache_passes_cfn_lint(clustered: Clustered) -> None:
    """The stateful template (the service one differs from the linted committed one by one variable)."""
    _, _, outdir, stacks = clustered
    matches = lint_file(outdir / f"{stacks.stateful.artifact_id}.template.json", ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        ({"clusterMode": False, "multiAz": False, "replicas": 0}, "cache.shards above 1 needs cache.clusterMode"),
        ({"replicas": 0, "multiAz": False}, "at least one replica per shard"),
        ({"shards": 0}, "shards"),
    ],
)
def test_an_inconsistent_cluster_setting_is_refused(cache: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_environments(cluster_document(**cache))


def test_the_rightsizing_function_is_told_the_shards_whose_nodes_it_reads(clustered: Clustered) -> None:
    _, service, _, _ = clustered
    service.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"CACHE_GROUP_ID": Match.any_value(), "CACHE_SHARDS": "2"})}},
    )
