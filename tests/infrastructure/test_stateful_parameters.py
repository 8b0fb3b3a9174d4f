"""The hand-over between the stacks through SSM parameters, and a cache replaced beside the current one.

No export joins the stacks (test_app.py), so the stateful stack can replace its cache: the service stack
reads every value it needs from a parameter the stateful stack of its environment writes, resolved on
each service deployment, and a new value publishes a new function version (through the canary).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint_file

import app as app_module
from stacks.config import ENVIRONMENTS_KEY, ConfigError, parse_environments, read_cdk_json
from stacks.constructs import stateful_parameters as keys
from tests.infrastructure.conftest import Synthesis, only_resource, published, resources_of_type
from tests.infrastructure.test_flag_function import flag_function, variables


def test_every_parameter_of_the_service_stack_is_one_its_stateful_stack_writes(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    parameters = {name for name in service_template_json["Parameters"] if name != "BootstrapVersion"}

    for name in parameters:
        published(synthesis, environment, {"Ref": name})  # asserts the type and that it is written
    names = {service_template_json["Parameters"][name]["Default"] for name in parameters}
    assert names == {f"/flagservice/{environment}/{key}" for key in keys.KEYS}


def test_the_stateful_stack_writes_plain_string_parameters_under_its_environment(
    template_json: dict[str, Any], environment: str
) -> None:
    written = [p["Properties"] for p in resources_of_type(template_json, "AWS::SSM::Parameter").values()]

    assert sorted(p["Name"] for p in written) == sorted(f"/flagservice/{environment}/{key}" for key in keys.KEYS)
    assert {p["Type"] for p in written} == {"String"}


def test_a_new_cache_or_database_publishes_a_new_version_through_the_canary(
    service_template_json: dict[str, Any],
) -> None:
    """CDK cannot see SSM values when it names the version; CloudFormation replaces a version whose
    description changed, and the description names the cache and the database read from SSM."""
    _, alias = only_resource(service_template_json, "AWS::Lambda::Alias")
    version = service_template_json["Resources"][alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]]
    parts = version["Properties"]["Description"]["Fn::Join"][1]
    defaults = [service_template_json["Parameters"][p["Ref"]]["Default"] for p in parts if isinstance(p, dict)]

    assert [d.split("/", 3)[-1] for d in defaults] == [keys.CACHE_NAME, keys.DATABASE_INSTANCE]


def replacing_document() -> dict[str, Any]:
    """dev in the middle of a cache replacement: generation 2 (another node type) beside generation 1."""
    document = copy.deepcopy(read_cdk_json())
    dev = document["context"][ENVIRONMENTS_KEY]["dev"]
    dev["previousCache"] = copy.deepcopy(dev["cache"])
    dev["cache"] = {**dev["cache"], "generation": 2, "nodeType": "cache.t4g.small"}
    return document


@pytest.fixture(scope="module")
def replacing() -> Iterator[tuple[dict[str, Any], dict[str, Any], Path, app_module.EnvironmentStacks]]:
    config = parse_environments(replacing_document())["dev"]
    outdir = Path(tempfile.mkdtemp(prefix="cdk-replace-"))
    app = app_module.create_app(str(outdir), builtin_cloud_formation_validation=False)
    app.node.set_context("aws:cdk:bundling-stacks", [])
    stacks = app_module.build_environment(app, config, None)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    stateful = json.loads((outdir / f"{stacks.stateful.artifact_id}.template.json").read_text())
    service = json.loads((outdir / f"{stacks.service.artifact_id}.template.json").read_text())
    yield stateful, service, outdir, stacks


def test_a_replacement_cache_is_built_beside_the_current_one_which_keeps_its_settings(
    replacing: tuple[dict[str, Any], dict[str, Any], Path, app_module.EnvironmentStacks], synthesis: Synthesis
) -> None:
    stateful, _, _, _ = replacing
    groups = resources_of_type(stateful, "AWS::ElastiCache::ReplicationGroup")
    today, _ = only_resource(synthesis.template_json("dev"), "AWS::ElastiCache::ReplicationGroup")
    by_id = {g["Properties"]["ReplicationGroupId"]: (key, g["Properties"]) for key, g in groups.items()}
    user_group, _ = only_resource(stateful, "AWS::ElastiCache::UserGroup")

    assert set(by_id) == {"flags-dev-cache-1", "flags-dev-cache-2"}
    assert by_id["flags-dev-cache-1"][0] == today  # the cache in use is untouched: same logical id ...
    assert by_id["flags-dev-cache-1"][1]["CacheNodeType"] == "cache.t4g.micro"  # ... and same settings
    assert by_id["flags-dev-cache-2"][1]["CacheNodeType"] == "cache.t4g.small"
    assert all(props["UserGroupIds"] == [{"Ref": user_group}] for _, props in by_id.values())


def test_the_parameters_point_at_the_new_generation(
    replacing: tuple[dict[str, Any], dict[str, Any], Path, app_module.EnvironmentStacks],
) -> None:
    stateful, _, _, _ = replacing
    groups = resources_of_type(stateful, "AWS::ElastiCache::ReplicationGroup")
    (new,) = [key for key, g in groups.items() if g["Properties"]["ReplicationGroupId"] == "flags-dev-cache-2"]
    values = {
        p["Properties"]["Name"]: p["Properties"]["Value"]
        for p in resources_of_type(stateful, "AWS::SSM::Parameter").values()
    }

    assert values["/flagservice/dev/cache/endpoint"] == {"Fn::GetAtt": [new, "PrimaryEndPoint.Address"]}
    assert values["/flagservice/dev/cache/name"] == {"Ref": new}


def test_the_function_may_sign_in_to_both_generations_while_the_old_one_exists(
    replacing: tuple[dict[str, Any], dict[str, Any], Path, app_module.EnvironmentStacks],
) -> None:
    """During the canary the previous version, on the old cache, runs with the same role."""
    _, service, _, _ = replacing
    _, function = flag_function(service)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (connect,) = [
        statement
        for policy in resources_of_type(service, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "elasticache:Connect"
    ]

    assert sorted(r["Fn::Join"][1][-1] for r in connect["Resource"]) == [
        ":replicationgroup:flags-dev-cache-1",
        ":replicationgroup:flags-dev-cache-2",
        ":user:flags-dev-service",
    ]
    assert variables(service)["REDIS_URL"]["Fn::Join"][1][0] == "rediss://"


def test_the_replacing_stacks_pass_cfn_lint(
    replacing: tuple[dict[str, Any], dict[str, Any], Path, app_module.EnvironmentStacks],
) -> None:
    _, _, outdir, stacks = replacing
    for stack in stacks.all:
        matches = lint_file(outdir / f"{stack.artifact_id}.template.json", ManualArgs(regions=["us-east-1"]))
        assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []


def test_a_previous_cache_of_the_same_generation_is_refused() -> None:
    document = replacing_document()
    document["context"][ENVIRONMENTS_KEY]["dev"]["cache"]["generation"] = 1

    with pytest.raises(ConfigError, match="previousCache.generation"):
        parse_environments(document)
