"""The app: every environment in one assembly, offline, and what the service stack will consume."""

from __future__ import annotations

import re

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager

from stacks.config import ENVIRONMENT_NAMES
from tests.infrastructure.conftest import Synthesis


def _stack_artifacts(synthesis: Synthesis) -> dict[str, dict[str, object]]:
    manifest = synthesis.read_json("manifest.json")
    artifacts: dict[str, dict[str, object]] = manifest["artifacts"]
    return {name: artifact for name, artifact in artifacts.items() if artifact["type"] == "aws:cloudformation:stack"}


def test_one_synth_writes_a_stack_for_every_environment(synthesis: Synthesis) -> None:
    artifacts = _stack_artifacts(synthesis)

    expected = [f"Flags{kind}-{name}" for name in ENVIRONMENT_NAMES for kind in ("Stateful", "Service")]

    assert sorted(artifacts) == sorted(expected)


def test_every_stack_id_names_its_environment(synthesis: Synthesis) -> None:
    for name in _stack_artifacts(synthesis):
        assert re.search(r"(^|-)(dev|staging|prod)($|-)", name), name


def test_stacks_are_environment_agnostic_so_synth_needs_no_account(synthesis: Synthesis) -> None:
    for artifact in _stack_artifacts(synthesis).values():
        assert artifact["environment"] == "aws://unknown-account/unknown-region"


def test_synth_performs_no_lookups(synthesis: Synthesis) -> None:
    manifest = synthesis.read_json("manifest.json")

    assert "missing" not in manifest


def test_the_prod_stacks_have_termination_protection(synthesis: Synthesis) -> None:
    assert synthesis.stacks["prod"].termination_protection and synthesis.services["prod"].termination_protection
    assert not synthesis.stacks["dev"].termination_protection and not synthesis.services["dev"].termination_protection


def test_each_service_stack_depends_only_on_its_own_environment(synthesis: Synthesis) -> None:
    manifest = synthesis.read_json("manifest.json")["artifacts"]

    for name in ENVIRONMENT_NAMES:
        dependencies = manifest[f"FlagsService-{name}"]["dependencies"]
        assert [d for d in dependencies if not d.endswith(".assets")] == [f"FlagsStateful-{name}"]
        assert not any(d.startswith("FlagsService") for d in manifest[f"FlagsStateful-{name}"].get("dependencies", []))


def test_the_stateful_stack_exports_what_the_service_stack_needs(synthesis: Synthesis) -> None:
    for stack in synthesis.stacks.values():
        assert isinstance(stack.vpc, ec2.Vpc)
        assert isinstance(stack.function_security_group, ec2.SecurityGroup)
        assert isinstance(stack.redis_auth_secret, secretsmanager.Secret)
        assert stack.database_secret.secret_arn and stack.redis_auth_secret.secret_arn
        assert stack.redis_port == 6379
        assert stack.redis_url.startswith("rediss://") and isinstance(stack.redis_endpoint, str)
