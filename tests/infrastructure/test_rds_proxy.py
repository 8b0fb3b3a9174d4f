"""RDS Proxy as a setting: off everywhere today, so this module synthesizes dev once with it on.

The build skips asset bundling (the tree is enough) and runs cdk-nag as the real app does; about 2 s.
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
from flagservice.settings import Settings
from stacks.config import (
    ENVIRONMENTS_KEY,
    PROXY_MAX_CONNECTIONS_PERCENT,
    ConfigError,
    parse_environments,
    read_cdk_json,
)
from tests.infrastructure.conftest import only_resource, resources_of_type
from tests.infrastructure.test_flag_function import POWERTOOLS_VARIABLES, variables


def proxied_document(environment: str = "dev") -> dict[str, Any]:
    document = copy.deepcopy(read_cdk_json())
    document["context"][ENVIRONMENTS_KEY][environment]["function"]["rdsProxy"] = True
    return document


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Path, app_module.EnvironmentStacks]]:
    config = parse_environments(proxied_document())["dev"]
    outdir = Path(tempfile.mkdtemp(prefix="cdk-proxy-"))
    app = app_module.create_app(str(outdir), builtin_cloud_formation_validation=False)
    app.node.set_context("aws:cdk:bundling-stacks", [])
    stacks = app_module.build_environment(app, config, None)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    yield outdir, stacks


@pytest.fixture(scope="module")
def service_json(proxied: tuple[Path, app_module.EnvironmentStacks]) -> dict[str, Any]:
    outdir, stacks = proxied
    document: dict[str, Any] = json.loads((outdir / f"{stacks.service.artifact_id}.template.json").read_text())
    return document


@pytest.fixture(scope="module")
def stateful_json(proxied: tuple[Path, app_module.EnvironmentStacks]) -> dict[str, Any]:
    outdir, stacks = proxied
    document: dict[str, Any] = json.loads((outdir / f"{stacks.stateful.artifact_id}.template.json").read_text())
    return document


def published(service_json: dict[str, Any], stateful_json: dict[str, Any], reference: Any) -> Any:
    """The value the stateful stack writes into the SSM parameter that a service template references."""
    if not (isinstance(reference, dict) and "Ref" in reference and reference["Ref"] in service_json["Parameters"]):
        return reference
    name = service_json["Parameters"][reference["Ref"]]["Default"]
    (value,) = [
        parameter["Properties"]["Value"]
        for parameter in resources_of_type(stateful_json, "AWS::SSM::Parameter").values()
        if parameter["Properties"]["Name"] == name
    ]
    return value


def test_the_proxy_requires_tls_and_caps_its_pool(service_json: dict[str, Any], stateful_json: dict[str, Any]) -> None:
    _, proxy = only_resource(service_json, "AWS::RDS::DBProxy")
    _, target = only_resource(service_json, "AWS::RDS::DBProxyTargetGroup")
    instance_id, _ = only_resource(stateful_json, "AWS::RDS::DBInstance")

    assert proxy["Properties"]["RequireTLS"] is True and proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    pool = target["Properties"]["ConnectionPoolConfigurationInfo"]
    assert pool["MaxConnectionsPercent"] == PROXY_MAX_CONNECTIONS_PERCENT
    (instance,) = target["Properties"]["DBInstanceIdentifiers"]
    assert published(service_json, stateful_json, instance) == {"Ref": instance_id}


def test_function_and_proxy_sign_in_with_the_database_own_rotated_secret(
    service_json: dict[str, Any], stateful_json: dict[str, Any]
) -> None:
    proxy_id, proxy = only_resource(service_json, "AWS::RDS::DBProxy")
    instance_id, _ = only_resource(stateful_json, "AWS::RDS::DBInstance")
    env = variables(service_json)
    (auth,) = proxy["Properties"]["Auth"]

    assert env["DB_HOST"] == {"Fn::GetAtt": [proxy_id, "Endpoint"]}  # the function connects to the proxy
    managed = {"Fn::GetAtt": [instance_id, "MasterUserSecret.SecretArn"]}
    assert published(service_json, stateful_json, env["DB_SECRET_ARN"]) == managed
    assert published(service_json, stateful_json, auth["SecretArn"]) == managed
    assert not resources_of_type(service_json, "AWS::SecretsManager::Secret")  # no copy to fall out of date


def test_behind_the_proxy_the_function_turns_prepared_statements_off(service_json: dict[str, Any]) -> None:
    env = variables(service_json)

    assert env["DB_PREPARED_STATEMENTS"] == "false"
    assert set(env) - set(Settings.model_fields) <= POWERTOOLS_VARIABLES
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    assert (
        Settings.model_validate(
            {
                **plain,
                "REDIS_URL": "rediss://h:6379",
                "REDIS_IAM_USER": "u",
                "REDIS_CACHE_NAME": "c",
                "DB_SECRET_ARN": "arn",
                "DB_HOST": "proxy",
            }
        ).DB_PREPARED_STATEMENTS
        is False
    )


def test_traffic_runs_function_to_proxy_to_database_on_5432(
    service_json: dict[str, Any], stateful_json: dict[str, Any]
) -> None:
    _, proxy = only_resource(service_json, "AWS::RDS::DBProxy")
    (proxy_group,) = proxy["Properties"]["VpcSecurityGroupIds"]
    _, instance = only_resource(stateful_json, "AWS::RDS::DBInstance")
    (database_group,) = instance["Properties"]["VPCSecurityGroups"]
    ingress = [r["Properties"] for r in resources_of_type(service_json, "AWS::EC2::SecurityGroupIngress").values()]
    egress = [r["Properties"] for r in resources_of_type(service_json, "AWS::EC2::SecurityGroupEgress").values()]

    def imported(value: Any) -> Any:
        return published(service_json, stateful_json, value)

    into_proxy = [r for r in ingress if r["GroupId"] == proxy_group]
    into_database = [r for r in ingress if imported(r["GroupId"]) == database_group]
    assert len(into_proxy) == 1 and into_proxy[0]["FromPort"] == into_proxy[0]["ToPort"] == 5432
    assert len(into_database) == 1 and into_database[0]["SourceSecurityGroupId"] == proxy_group
    routes = {
        (json.dumps(imported(r["GroupId"])), json.dumps(imported(r["DestinationSecurityGroupId"]))) for r in egress
    }
    function_group = next(r["SourceSecurityGroupId"] for r in into_proxy)
    assert routes == {
        (json.dumps(imported(function_group)), json.dumps(proxy_group)),
        (json.dumps(proxy_group), json.dumps(database_group)),
    }


def test_the_proxied_stacks_pass_cfn_lint(proxied: tuple[Path, app_module.EnvironmentStacks]) -> None:
    outdir, stacks = proxied
    matches = lint_file(outdir / f"{stacks.service.artifact_id}.template.json", ManualArgs(regions=["us-east-1"]))

    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")] == []


def test_with_a_proxy_the_proxy_pool_not_the_concurrency_must_fit_the_database() -> None:
    document = proxied_document("dev")
    dev = document["context"][ENVIRONMENTS_KEY]["dev"]
    dev["function"]["reservedConcurrency"] = 500  # fine behind the proxy: it holds 40 % of 80

    assert parse_environments(document)["dev"].function.reserved_concurrency == 500
    dev["database"]["maxConnections"] = 20  # 40 % of 20 = 8, + 3 others > 10
    with pytest.raises(ConfigError, match="RDS Proxy pool"):
        parse_environments(document)
