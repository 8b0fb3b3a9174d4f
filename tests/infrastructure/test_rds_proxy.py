"""RDS Proxy as a setting: off everywhere today, so this module synthesizes dev once with it on.

The build skips asset bundling (the tree is enough) and runs cdk-nag as the real app does; about 2 s.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Capture, Match, Template
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
from tests.infrastructure.conftest import captured, only_id
from tests.infrastructure.overrides import synthesize
from tests.infrastructure.test_flag_function import POWERTOOLS_VARIABLES, variables


def proxied_document(environment: str = "dev") -> dict[str, Any]:
    document = copy.deepcopy(read_cdk_json())
    document["context"][ENVIRONMENTS_KEY][environment]["function"]["rdsProxy"] = True
    return document


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Path, app_module.EnvironmentStacks]]:
    synthesized = synthesize(proxied_document())
    yield synthesized.outdir, synthesized.environments["dev"]


def _template(outdir: Path, stack: cdk.Stack) -> Template:
    return Template.from_json(json.loads((outdir / f"{stack.artifact_id}.template.json").read_text()))


@pytest.fixture(scope="module")
def service(proxied: tuple[Path, app_module.EnvironmentStacks]) -> Template:
    outdir, stacks = proxied
    return _template(outdir, stacks.service)


@pytest.fixture(scope="module")
def stateful(proxied: tuple[Path, app_module.EnvironmentStacks]) -> Template:
    outdir, stacks = proxied
    return _template(outdir, stacks.stateful)


def published(service: Template, stateful: Template, reference: Any) -> Any:
    """The value the stateful stack writes into the SSM parameter a service template references (else as is)."""
    if not (isinstance(reference, dict) and service.find_parameters(reference.get("Ref", "-"))):
        return reference
    name, value = Capture(), Capture()
    service.has_parameter(reference["Ref"], {"Default": name})
    stateful.has_resource_properties("AWS::SSM::Parameter", {"Name": name.as_string(), "Value": value})
    return captured(value)


def test_the_proxy_requires_tls_and_caps_its_pool(service: Template, stateful: Template) -> None:
    instance = Capture()
    service.resource_count_is("AWS::RDS::DBProxy", 1)
    service.has_resource_properties("AWS::RDS::DBProxy", {"RequireTLS": True, "EngineFamily": "POSTGRESQL"})
    service.resource_count_is("AWS::RDS::DBProxyTargetGroup", 1)
    service.has_resource_properties(
        "AWS::RDS::DBProxyTargetGroup",
        {
            "ConnectionPoolConfigurationInfo": {"MaxConnectionsPercent": PROXY_MAX_CONNECTIONS_PERCENT},
            "DBInstanceIdentifiers": [instance],
        },
    )

    assert published(service, stateful, instance.as_object()) == {"Ref": only_id(stateful, "AWS::RDS::DBInstance")}


def test_function_and_proxy_sign_in_with_the_database_own_rotated_secret(service: Template, stateful: Template) -> None:
    # Given the proxy, the database's RDS-managed secret and the secret the proxy signs in with
    proxy = only_id(service, "AWS::RDS::DBProxy")
    managed = {"Fn::GetAtt": [only_id(stateful, "AWS::RDS::DBInstance"), "MasterUserSecret.SecretArn"]}
    proxy_secret = Capture()
    service.has_resource_properties("AWS::RDS::DBProxy", {"Auth": [Match.object_like({"SecretArn": proxy_secret})]})

    # When the function's settings are read
    env = variables(service)

    # Then the function connects to the proxy, and both sign in with the managed secret (no copy to fall behind)
    assert env["DB_HOST"] == {"Fn::GetAtt": [proxy, "Endpoint"]}
    assert published(service, stateful, env["DB_SECRET_ARN"]) == managed
    assert published(service, stateful, proxy_secret.as_object()) == managed
    # The service stack's one secret is the push channel's token key, never a copy of a database secret
    (secret,) = service.find_resources("AWS::SecretsManager::Secret").values()
    assert "push channel" in secret["Properties"]["Description"]


def test_behind_the_proxy_the_function_turns_prepared_statements_off(service: Template) -> None:
    env = variables(service)

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


def test_traffic_runs_function_to_proxy_to_database_on_5432(service: Template, stateful: Template) -> None:
    # Given the proxy's security group and the database's
    proxy_group, database_group = Capture(), Capture()
    service.has_resource_properties("AWS::RDS::DBProxy", {"VpcSecurityGroupIds": [proxy_group]})
    stateful.has_resource_properties("AWS::RDS::DBInstance", {"VPCSecurityGroups": [database_group]})
    proxy, database = proxy_group.as_object(), database_group.as_object()

    # When every rule of the service stack is read, its groups followed through the published parameters
    def imported(value: Any) -> str:
        return json.dumps(published(service, stateful, value))

    ingress = [r["Properties"] for r in service.find_resources("AWS::EC2::SecurityGroupIngress").values()]
    egress = [r["Properties"] for r in service.find_resources("AWS::EC2::SecurityGroupEgress").values()]
    into_proxy = [r for r in ingress if r["GroupId"] == proxy]
    into_database = [r for r in ingress if imported(r["GroupId"]) == json.dumps(database)]
    routes = {(imported(r["GroupId"]), imported(r["DestinationSecurityGroupId"])) for r in egress}

    # Then the function reaches the proxy, and the proxy the database, on 5432 and nothing else
    assert len(into_proxy) == 1 and into_proxy[0]["FromPort"] == into_proxy[0]["ToPort"] == 5432
    assert len(into_database) == 1 and into_database[0]["SourceSecurityGroupId"] == proxy
    function_group = into_proxy[0]["SourceSecurityGroupId"]
    assert routes == {(imported(function_group), json.dumps(proxy)), (json.dumps(proxy), json.dumps(database))}


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
