"""The hand-over between the stacks through SSM parameters, and a cache replaced beside the current one.

No export joins the stacks (test_app.py), so the stateful stack can replace its cache: the service stack
reads every value it needs from a parameter the stateful stack of its environment writes, resolved on
each service deployment, and a new value publishes a new function version (through the canary).
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
from stacks.constructs import stateful_parameters as keys
from tests.infrastructure.conftest import Synthesis, only_id, published
from tests.infrastructure.overrides import synthesize
from tests.infrastructure.test_flag_function import FLAG_HANDLER

PARAMETER = "AWS::SSM::Parameter"
GROUP = "AWS::ElastiCache::ReplicationGroup"


def test_every_parameter_of_the_service_stack_is_one_its_stateful_stack_writes(
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    parameters = {
        name: parameter
        for name, parameter in service_template.find_parameters("*").items()
        if name != "BootstrapVersion"
    }

    for name in parameters:
        published(synthesis, environment, {"Ref": name})  # asserts the type and that it is written
    names = {parameter["Default"] for parameter in parameters.values()}
    assert names == {f"/flagservice/{environment}/{key}" for key in keys.SERVICE_KEYS}


def test_the_stateful_stack_writes_plain_string_parameters_under_its_environment(
    template: Template, environment: str
) -> None:
    template.resource_count_is(PARAMETER, len(keys.KEYS))
    template.all_resources_properties(PARAMETER, {"Type": "String"})
    for key in keys.KEYS:
        template.resource_properties_count_is(PARAMETER, {"Name": f"/flagservice/{environment}/{key}"}, 1)


def test_a_new_cache_or_database_publishes_a_new_version_through_the_canary(
    service_template: Template, environment: str
) -> None:
    """CDK cannot see SSM values when it names the version; CloudFormation replaces a version whose
    description changed, and the description names the cache and the database read from SSM."""
    # Given the version the alias moves to, described by two references
    version, cache, database = Capture(), Capture(), Capture()
    service_template.has_resource_properties(
        "AWS::Lambda::Alias", {"FunctionVersion": {"Fn::GetAtt": [version, "Version"]}}
    )
    description = {"Fn::Join": [" ", ["cache", {"Ref": cache}, "database", {"Ref": database}]]}
    described = service_template.find_resources("AWS::Lambda::Version", {"Properties": {"Description": description}})

    # Then they are the parameters naming the cache and the database instance
    assert version.as_string() in described
    service_template.has_parameter(cache.as_string(), {"Default": f"/flagservice/{environment}/{keys.CACHE_NAME}"})
    service_template.has_parameter(
        database.as_string(), {"Default": f"/flagservice/{environment}/{keys.DATABASE_INSTANCE}"}
    )


def replacing_document() -> dict[str, Any]:
    """dev in the middle of a cache replacement: generation 2 (another node type) beside generation 1."""
    document = copy.deepcopy(read_cdk_json())
    dev = document["context"][ENVIRONMENTS_KEY]["dev"]
    dev["previousCache"] = copy.deepcopy(dev["cache"])
    dev["cache"] = {**dev["cache"], "generation": 2, "nodeType": "cache.t4g.small"}
    return document


@pytest.fixture(scope="module")
def replacing() -> Iterator[tuple[Template, Template, Path, app_module.EnvironmentStacks]]:
    synthesized = synthesize(replacing_document())
    yield synthesized.stateful("dev"), synthesized.service("dev"), synthesized.outdir, synthesized.environments["dev"]


Replacing = tuple[Template, Template, Path, app_module.EnvironmentStacks]


def cache_generation(template: Template, group_id: str, properties: dict[str, Any] | None = None) -> set[str]:
    """The logical ids of the replication groups with that id (and those properties)."""
    wanted = {"ReplicationGroupId": group_id, **(properties or {})}
    return set(template.find_resources(GROUP, {"Properties": wanted}))


def test_a_replacement_cache_is_built_beside_the_current_one_which_keeps_its_settings(
    replacing: Replacing, synthesis: Synthesis
) -> None:
    # Given the stateful stack mid-replacement, and today's
    stateful, _, _, _ = replacing
    today = only_id(synthesis.template("dev"), GROUP)
    users = {"UserGroupIds": [{"Ref": only_id(stateful, "AWS::ElastiCache::UserGroup")}]}

    # Then both generations exist, in the one user group; the cache in use is untouched: same logical id and settings
    stateful.resource_count_is(GROUP, 2)
    assert cache_generation(stateful, "flags-dev-cache-1", {"CacheNodeType": "cache.t4g.micro", **users}) == {today}
    assert len(cache_generation(stateful, "flags-dev-cache-2", {"CacheNodeType": "cache.t4g.small", **users})) == 1


def test_the_parameters_point_at_the_new_generation(replacing: Replacing) -> None:
    stateful, _, _, _ = replacing
    (new,) = cache_generation(stateful, "flags-dev-cache-2")

    stateful.has_resource_properties(
        PARAMETER,
        {"Name": "/flagservice/dev/cache/endpoint", "Value": {"Fn::GetAtt": [new, "PrimaryEndPoint.Address"]}},
    )
    stateful.has_resource_properties(PARAMETER, {"Name": "/flagservice/dev/cache/name", "Value": {"Ref": new}})


def test_the_function_may_sign_in_to_both_generations_while_the_old_one_exists(replacing: Replacing) -> None:
    """During the canary the previous version, on the old cache, runs with the same role."""
    # Given the flag function's role and what it may connect to
    _, service, _, _ = replacing
    role, connect_to = Capture(), Capture()
    service.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": FLAG_HANDLER,
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Environment": {"Variables": {"REDIS_URL": {"Fn::Join": ["", Match.array_with(["rediss://"])]}}},
        },
    )
    connect = Match.object_like({"Action": "elasticache:Connect", "Resource": connect_to})
    service.has_resource_properties(
        "AWS::IAM::Policy",
        {"Roles": [{"Ref": role.as_string()}], "PolicyDocument": {"Statement": Match.array_with([connect])}},
    )

    # Then it is both generations and the IAM user
    assert sorted(r["Fn::Join"][1][-1] for r in connect_to.as_array()) == [
        ":replicationgroup:flags-dev-cache-1",
        ":replicationgroup:flags-dev-cache-2",
        ":user:flags-dev-service",
    ]


def test_the_replacing_stacks_pass_cfn_lint(replacing: Replacing) -> None:
    _, _, outdir, stacks = replacing
    for stack in stacks.all:
        matches = lint_file(outdir / f"{stack.artifact_id}.template.json", ManualArgs(regions=["us-east-1"]))
        assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []


def test_a_previous_cache_of_the_same_generation_is_refused() -> None:
    document = replacing_document()
    document["context"][ENVIRONMENTS_KEY]["dev"]["cache"]["generation"] = 1

    with pytest.raises(ConfigError, match="previousCache.generation"):
        parse_environments(document)
