"""One synth of the whole app per session, shared by every infrastructure test.

Each environment has two stacks: the stateful one (`template`, `template_json`, `synthesis.stacks`) and
the service one (`service_template`, `service_template_json`, `synthesis.services`).

The app is built exactly as `app.py` builds it (same function, same cdk.json context), into a temporary
cloud assembly. CDK's own template validation is off here (cfn-lint runs instead, see test_cfn_lint.py);
cdk-nag runs on synth. A synth that nag fails still writes its templates, so the other tests can report
on them while test_nag.py shows the findings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

import app as app_module  # noqa: E402
from stacks.config import ENVIRONMENT_NAMES, EnvironmentConfig  # noqa: E402
from stacks.service_stack import ServiceStack  # noqa: E402
from stacks.stateful_stack import StatefulStack  # noqa: E402

STACK_KINDS = ("stateful", "service")

# Variables that would make the synth depend on the machine it runs on.
_MACHINE_VARIABLES = ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CONTEXT_JSON", "CDK_OUTDIR")


@dataclass
class Synthesis:
    outdir: Path
    environments: dict[str, app_module.EnvironmentStacks]
    validation_error: str | None
    _templates: dict[tuple[str, str], Template] = field(default_factory=dict)

    @property
    def stacks(self) -> dict[str, StatefulStack]:
        """The stateful stack of each environment."""
        return {name: stacks.stateful for name, stacks in self.environments.items()}

    @property
    def services(self) -> dict[str, ServiceStack]:
        return {name: stacks.service for name, stacks in self.environments.items()}

    @property
    def all_stacks(self) -> list[cdk.Stack]:
        return [stack for stacks in self.environments.values() for stack in stacks.all]

    @property
    def configs(self) -> dict[str, EnvironmentConfig]:
        return {name: stack.config for name, stack in self.stacks.items()}

    def stack(self, environment: str, kind: str = "stateful") -> cdk.Stack:
        stacks = self.environments[environment]
        return stacks.stateful if kind == "stateful" else stacks.service

    def template_json(self, environment: str, kind: str = "stateful") -> dict[str, Any]:
        artifact = self.stack(environment, kind).artifact_id
        with (self.outdir / f"{artifact}.template.json").open(encoding="utf-8") as handle:
            document: dict[str, Any] = json.load(handle)
        return document

    def template(self, environment: str, kind: str = "stateful") -> Template:
        """An assertions Template, built once per stack."""
        if (environment, kind) not in self._templates:
            self._templates[(environment, kind)] = Template.from_json(self.template_json(environment, kind))
        return self._templates[(environment, kind)]

    def read_json(self, name: str) -> Any:
        with (self.outdir / name).open(encoding="utf-8") as handle:
            return json.load(handle)


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesis]:
    saved = {name: os.environ.pop(name) for name in _MACHINE_VARIABLES if name in os.environ}
    # Any attempt to run Docker fails loudly instead of silently working on a machine that has it.
    saved_docker = os.environ.get("CDK_DOCKER")
    os.environ["CDK_DOCKER"] = "/bin/false"
    try:
        outdir = tmp_path_factory.mktemp("cdk.out")
        app = app_module.create_app(str(outdir), builtin_cloud_formation_validation=False)
        environments = app_module.build(app)
        error = None
        try:
            app.synth()
        except RuntimeError as exc:  # nag or another validation failed; the templates are written
            if "ValidationFailed" not in str(exc):
                raise
            error = str(exc)
        yield Synthesis(outdir=outdir, environments=environments, validation_error=error)
    finally:
        os.environ.update(saved)
        if saved_docker is None:
            os.environ.pop("CDK_DOCKER", None)
        else:
            os.environ["CDK_DOCKER"] = saved_docker


@pytest.fixture(params=ENVIRONMENT_NAMES)
def environment(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def config(synthesis: Synthesis, environment: str) -> EnvironmentConfig:
    return synthesis.configs[environment]


@pytest.fixture
def template(synthesis: Synthesis, environment: str) -> Template:
    return synthesis.template(environment)


@pytest.fixture
def template_json(synthesis: Synthesis, environment: str) -> dict[str, Any]:
    return synthesis.template_json(environment)


@pytest.fixture
def service(synthesis: Synthesis, environment: str) -> ServiceStack:
    return synthesis.services[environment]


@pytest.fixture
def service_template(synthesis: Synthesis, environment: str) -> Template:
    return synthesis.template(environment, "service")


@pytest.fixture
def service_template_json(synthesis: Synthesis, environment: str) -> dict[str, Any]:
    return synthesis.template_json(environment, "service")


@pytest.fixture(params=STACK_KINDS)
def any_template_json(request: pytest.FixtureRequest, synthesis: Synthesis, environment: str) -> dict[str, Any]:
    """Each stack of each environment in turn (for checks that hold for every template)."""
    return synthesis.template_json(environment, str(request.param))


def resources_of_type(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Resources by logical id (used only to follow references, never asserted on)."""
    return {key: value for key, value in template_json["Resources"].items() if value["Type"] == resource_type}


def only_resource(template_json: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources_of_type(template_json, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return next(iter(found.items()))


def published(synthesis: Synthesis, environment: str, reference: Any) -> Any:
    """What the stateful stack writes into the SSM parameter a service template `{"Ref": ...}`s.

    The service stack reads each value as a parameter of type `AWS::SSM::Parameter::Value<String>`
    whose default is the parameter's name; the stateful stack of the same environment writes it.
    """
    service = synthesis.template_json(environment, "service")
    declared = service["Parameters"][reference["Ref"]]
    assert declared["Type"] == "AWS::SSM::Parameter::Value<String>", declared
    written = [
        parameter["Properties"]
        for parameter in resources_of_type(synthesis.template_json(environment), "AWS::SSM::Parameter").values()
        if parameter["Properties"]["Name"] == declared["Default"]
    ]
    assert len(written) == 1, f"the stateful stack writes no parameter {declared['Default']}"
    return written[0]["Value"]
