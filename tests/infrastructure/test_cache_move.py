"""A blue/green cache move (cdk.json `cacheMove`): the next generation in a stack of its own, the phase in the settings.

The committed cdk.json has no move (the session synth: one cache per environment, no cache stack). The
move is synthesized once, from a config override, with one phase per environment so that one synth
shows all three: dev `dual-write`, staging `switch-reads`, prod `finish`, each a move from today's
standalone cache to a cluster-mode one (dev's also to a larger node type; the settings of the other
directions, which differ only in two variables, are checked without a synth). A
second, smaller synth shows dev after the move is closed (the new generation is `cache`, in its own
stack; the stateful stack no longer holds a cache). cdk-nag runs on both synths (an unacknowledged
finding fails them) and cfn-lint on the templates a move changes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template
from cfnlint.api import ManualArgs, lint_file

from flagservice.settings import Settings
from stacks.cache_move import CacheInUse, cache_settings
from stacks.config import ENVIRONMENT_NAMES, ENVIRONMENTS_KEY, ConfigError, parse_environments, read_cdk_json
from tests.infrastructure.conftest import Synthesis, only_id
from tests.infrastructure.overrides import Synthesized, synthesize
from tests.infrastructure.test_flag_function import FLAG_HANDLER

GROUP = "AWS::ElastiCache::ReplicationGroup"
PARAMETER = "AWS::SSM::Parameter"
PHASES = {"dev": "dual-write", "staging": "switch-reads", "prod": "finish"}
TO_CLUSTER = {"clusterMode": True, "shards": 2, "replicas": 1}  # dev has no replica today: a cluster needs one


def moving_document(phases: dict[str, str]) -> dict[str, Any]:
    document = copy.deepcopy(read_cdk_json())
    for environment, phase in phases.items():
        move: dict[str, Any] = {"phase": phase, "changes": dict(TO_CLUSTER)}
        if environment == "dev":
            move["changes"]["nodeType"] = "cache.t4g.small"
        document["context"][ENVIRONMENTS_KEY][environment]["cacheMove"] = move
    return document


def closed_document() -> dict[str, Any]:
    """dev after the move: the new generation is the cache, in its own stack."""
    document = copy.deepcopy(read_cdk_json())
    cache = document["context"][ENVIRONMENTS_KEY]["dev"]["cache"]
    cache.update(generation=2, ownStack=True, nodeType="cache.t4g.small")
    return document


@pytest.fixture(scope="module")
def moved() -> Iterator[Synthesized]:
    yield synthesize(moving_document(PHASES), ENVIRONMENT_NAMES)


@pytest.fixture(scope="module")
def closed() -> Iterator[Synthesized]:
    yield synthesize(closed_document(), ("dev",))


def variables(template: Template) -> dict[str, Any]:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": FLAG_HANDLER}})
    (function,) = found.values()
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def parameter_named(template: Template, reference: Any) -> str:
    """The SSM parameter name behind a `{"Ref": ...}` of the service template (or inside a URL join)."""
    if isinstance(reference, dict) and "Fn::Join" in reference:
        (reference,) = [part for part in reference["Fn::Join"][1] if isinstance(part, dict)]
    name: str = template.to_json()["Parameters"][reference["Ref"]]["Default"]
    return name


def test_the_committed_cdk_json_has_one_cache_per_environment_and_no_cache_stack(
    synthesis: Synthesis, environment: str, config: Any
) -> None:
    assert config.cache_move is None and synthesis.environments[environment].caches == ()
    synthesis.template(environment).resource_count_is(GROUP, 1)
    assert "REDIS_SECONDARY_URL" not in variables(synthesis.template(environment, "service"))


def test_the_next_generation_is_its_own_stack_beside_an_untouched_current_cache(
    moved: Synthesized, synthesis: Synthesis
) -> None:
    # Given dev mid-move and dev today
    today = synthesis.template("dev")

    # Then the stateful stack still holds generation 1 exactly as today, and the cache stack generation 2
    moved.stateful("dev").resource_count_is(GROUP, 1)
    assert moved.stateful("dev").find_resources(GROUP) == today.find_resources(GROUP)
    cache = moved.cache("dev")
    cache.resource_count_is(GROUP, 1)
    cache.has_resource_properties(
        GROUP,
        {"ReplicationGroupId": "flags-dev-cache-2", "CacheNodeType": "cache.t4g.small",
         "UserGroupIds": ["flags-dev-users"], "TransitEncryptionMode": "required",
         "ClusterMode": "enabled", "NumNodeGroups": 2, "ReplicasPerNodeGroup": 1, "NumCacheClusters": Match.absent()},
    )  # fmt: skip
    cache.has_resource_properties(
        "AWS::ElastiCache::ParameterGroup", {"Properties": Match.object_like({"cluster-enabled": "yes"})}
    )
    assert moved.environments["dev"].caches[0].stack_name == "FlagsCache-dev-2"


def test_the_cache_stack_joins_the_network_through_parameters_and_publishes_its_own(moved: Synthesized) -> None:
    cache = moved.cache("dev")
    group = only_id(cache, GROUP)
    security_group = Capture()
    cache.has_resource_properties(GROUP, {"SecurityGroupIds": [{"Ref": security_group}]})
    cache.has_parameter(security_group.as_string(), {"Default": "/flagservice/dev/network/cache-security-group-id"})
    moved.stateful("dev").has_resource_properties(
        PARAMETER,
        {"Name": "/flagservice/dev/network/cache-security-group-id", "Value": {"Fn::GetAtt": Match.any_value()}},
    )
    cache.has_resource_properties(
        PARAMETER,
        {
            "Name": "/flagservice/dev/cache/2/endpoint",
            "Value": {"Fn::GetAtt": [group, "ConfigurationEndPoint.Address"]},
        },
    )
    cache.has_resource_properties(PARAMETER, {"Name": "/flagservice/dev/cache/2/name", "Value": {"Ref": group}})


@pytest.mark.parametrize(
    ("environment", "primary", "secondary", "reads_from"),
    [
        ("dev", "cache/endpoint", "cache/2/endpoint", "primary"),
        ("staging", "cache/endpoint", "cache/2/endpoint", "secondary"),
        ("prod", "cache/2/endpoint", None, None),
    ],
)
def test_the_phase_sets_which_cache_the_function_writes_and_reads(
    moved: Synthesized, environment: str, primary: str, secondary: str | None, reads_from: str | None
) -> None:
    service = moved.service(environment)
    settings = variables(service)

    assert parameter_named(service, settings["REDIS_URL"]) == f"/flagservice/{environment}/{primary}"
    assert settings.get("REDIS_READ_FROM") == reads_from
    # Each cache's own cluster mode: today's is standalone, the next generation a cluster
    assert settings.get("REDIS_CLUSTER_MODE") == ("true" if secondary is None else None)
    assert settings.get("REDIS_SECONDARY_CLUSTER_MODE") == (None if secondary is None else "true")
    if secondary is None:
        assert "REDIS_SECONDARY_URL" not in settings and "REDIS_SECONDARY_CACHE_NAME" not in settings
        assert parameter_named(service, settings["REDIS_CACHE_NAME"]) == f"/flagservice/{environment}/cache/2/name"
    else:
        assert parameter_named(service, settings["REDIS_SECONDARY_URL"]) == f"/flagservice/{environment}/{secondary}"
        assert settings["REDIS_SECONDARY_URL"]["Fn::Join"][1][0] == "rediss://"
        assert parameter_named(service, settings["REDIS_SECONDARY_CACHE_NAME"]).endswith("/cache/2/name")


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_the_moving_settings_are_valid_runtime_settings(moved: Synthesized, environment: str) -> None:
    settings = variables(moved.service(environment))
    tokens = {"REDIS_URL": "rediss://a.example:6379", "REDIS_CACHE_NAME": "flags-x-cache-1",
              "REDIS_IAM_USER": "flags-x-service", "DB_SECRET_ARN": "arn:secret", "DB_HOST": "db.example"}  # fmt: skip
    if "REDIS_SECONDARY_URL" in settings:
        tokens |= {"REDIS_SECONDARY_URL": "rediss://b.example:6379", "REDIS_SECONDARY_CACHE_NAME": "flags-x-cache-2"}
    plain = {name: value for name, value in settings.items() if isinstance(value, str)}

    runtime = Settings.model_validate(plain | tokens)
    reads = runtime.secondary() if runtime.REDIS_READ_FROM == "secondary" else runtime

    assert settings.get("REDIS_READ_FROM", "primary") == runtime.REDIS_READ_FROM
    assert reads is not None and reads.REDIS_CLUSTER_MODE is (environment != "dev")  # reads from the cluster


@pytest.mark.parametrize("phase", [None, "dual-write", "switch-reads", "finish"])
@pytest.mark.parametrize(("today", "after"), [(False, True), (True, False), (False, False), (True, True)])
def test_each_phase_gives_each_cache_its_own_cluster_mode(phase: str | None, today: bool, after: bool) -> None:
    """Every direction of every phase without a synth (the synth above shows standalone to cluster)."""
    # Given staging (one replica: either shape is valid) moving from today's cache to `after`'s shape
    document = copy.deepcopy(read_cdk_json())
    staging = document["context"][ENVIRONMENTS_KEY]["staging"]
    staging["cache"]["clusterMode"] = today
    if phase is not None:
        staging["cacheMove"] = {"phase": phase, "changes": {"clusterMode": after}}
    config = parse_environments(document)["staging"]

    # When the phase's cache settings are made
    current = CacheInUse("current.example", "flags-staging-cache-1", config.cache)
    caches = cache_settings(config, current, lambda key: key.replace("/", "-"))

    # Then REDIS_URL's cache has its own mode, the secondary (while there is one) its own, and the runtime agrees
    primary_cluster = after if phase == "finish" else today
    secondary_cluster = after and phase in ("dual-write", "switch-reads")
    expected = {"REDIS_CLUSTER_MODE": "true" if primary_cluster else None,
                "REDIS_SECONDARY_CLUSTER_MODE": "true" if secondary_cluster else None}  # fmt: skip
    assert {name: caches.environment.get(name) for name in expected} == expected
    assert caches.primary.config.cluster_mode is primary_cluster
    tokens = {"REDIS_URL": f"rediss://{caches.primary.endpoint}:6379", "DB_HOST": "db.example"}
    runtime = Settings.model_validate(caches.environment | tokens)
    secondary = runtime.secondary()
    assert runtime.REDIS_CLUSTER_MODE is primary_cluster
    assert (secondary is not None) is (phase in ("dual-write", "switch-reads"))
    assert secondary is None or secondary.REDIS_CLUSTER_MODE is after


@pytest.mark.parametrize("environment", ENVIRONMENT_NAMES)
def test_the_function_may_sign_in_to_both_generations_in_every_phase(moved: Synthesized, environment: str) -> None:
    connect = Capture()
    moved.service(environment).has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({"Action": "elasticache:Connect",
                                                                               "Resource": connect})])}},
    )  # fmt: skip

    assert sorted(resource["Fn::Join"][1][-1] for resource in connect.as_array()) == [
        f":replicationgroup:flags-{environment}-cache-1",
        f":replicationgroup:flags-{environment}-cache-2",
        f":user:flags-{environment}-service",
    ]


def test_the_cache_stack_comes_after_the_stateful_stack_and_before_the_service(moved: Synthesized) -> None:
    stacks = moved.environments["dev"]
    (cache,) = stacks.caches

    assert stacks.stateful in cache.dependencies and cache in stacks.service.dependencies
    for stack in stacks.all:
        assert all("Export" not in output for output in moved.template(stack).to_json().get("Outputs", {}).values())


def test_the_templates_a_move_changes_pass_cfn_lint(moved: Synthesized, closed: Synthesized) -> None:
    """The new cache stack, the service in two phases and the stateful stack without a cache (the session's
    cfn-lint test covers the committed templates; the other phases differ only in the settings' values)."""
    dev, prod, after = moved.environments["dev"], moved.environments["prod"], closed.environments["dev"]
    for synth, stack in ((moved, dev.caches[0]), (moved, dev.service), (moved, prod.service), (closed, after.stateful)):
        matches = lint_file(synth.outdir / f"{stack.artifact_id}.template.json", ManualArgs(regions=["us-east-1"]))
        assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []


def test_a_closed_move_leaves_the_new_cache_in_its_stack_and_none_in_the_stateful_one(closed: Synthesized) -> None:
    # Given dev after the move was closed in cdk.json
    stateful, service = closed.stateful("dev"), closed.service("dev")

    # Then the old cache is gone from the stateful stack, with its parameters, and the service reads generation 2
    stateful.resource_count_is(GROUP, 0)
    for key in ("cache/endpoint", "cache/name"):
        stateful.resource_properties_count_is(PARAMETER, {"Name": f"/flagservice/dev/{key}"}, 0)
    closed.cache("dev").resource_count_is(GROUP, 1)
    settings = variables(service)
    assert parameter_named(service, settings["REDIS_URL"]) == "/flagservice/dev/cache/2/endpoint"
    assert "REDIS_SECONDARY_URL" not in settings


@pytest.mark.parametrize(
    ("move", "message"),
    [
        ({"phase": "dual-write", "changes": {"generation": 5}}, "cannot set generation"),
        ({"phase": "dual-write", "changes": {"nodeTyp": "cache.t4g.small"}}, "nodeTyp"),
        ({"phase": "dual-write", "changes": {"replicas": 0, "multiAz": True}}, "multiAz needs"),
        ({"phase": "switch"}, "phase"),
    ],
)
def test_a_wrong_move_fails_at_synth(move: dict[str, Any], message: str) -> None:
    document = copy.deepcopy(read_cdk_json())
    document["context"][ENVIRONMENTS_KEY]["dev"]["cacheMove"] = move

    with pytest.raises(ConfigError, match=message):
        parse_environments(document)


def test_a_move_and_a_previous_cache_are_not_set_together() -> None:
    document = moving_document({"dev": "dual-write"})
    dev = document["context"][ENVIRONMENTS_KEY]["dev"]
    dev["previousCache"] = {**dev["cache"], "generation": 7}

    with pytest.raises(ConfigError, match="cacheMove and previousCache"):
        parse_environments(document)
