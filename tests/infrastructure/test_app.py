"""The app: every environment in one assembly, offline, and what the service stack will consume."""

from __future__ import annotations

import json
import re

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


def test_the_stacks_share_nothing_through_exports(synthesis: Synthesis) -> None:
    """An export in use cannot change: the cache could never be replaced (test_stateful_parameters.py)."""
    for name in ENVIRONMENT_NAMES:
        stateful = synthesis.template_json(name)
        service = synthesis.template_json(name, "service")

        assert not [o for o in stateful.get("Outputs", {}).values() if "Export" in o]
        assert "Fn::ImportValue" not in json.dumps(service)
