"""cdk-nag (AwsSolutions): no unacknowledged finding, and every acknowledgement is on its resource.

The session synth ran the checks with the acknowledgements in place. To prove that none of them is stale
or too broad, the app is built once more with `acknowledge` disabled (no synth, about 2 s) and its raw
findings are matched one to one against the acknowledgements recorded in the assembly.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

import app as app_module
from tests.infrastructure.conftest import Synthesis

PACK_PREFIX = "AwsSolutions-"
ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
Finding = tuple[str, str]  # (rule id, path of the resource's construct, without the leading slash)


def _acknowledgements(synthesis: Synthesis) -> dict[Finding, str]:
    """Every AwsSolutions acknowledgement in the assembly, with its reason."""
    found: dict[Finding, str] = {}
    for stack in synthesis.all_stacks:
        metadata: dict[str, list[dict[str, Any]]] = synthesis.read_json(f"{stack.artifact_id}.metadata.json")
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] != ACKNOWLEDGED:
                    continue
                for rule, reason in entry["data"].items():
                    rule_id = rule.split("::", 1)[1]
                    if rule_id.startswith(PACK_PREFIX):
                        found[(rule_id, path.lstrip("/"))] = reason
    return found


@pytest.fixture(scope="module")
def raw_findings(synthesis: Synthesis) -> Iterator[set[Finding]]:
    """What AwsSolutions reports when nothing is acknowledged."""
    original = cdk.Validations.acknowledge
    cdk.Validations.acknowledge = lambda self, *rules: None  # type: ignore[method-assign]
    try:
        app = app_module.create_app(tempfile.mkdtemp(prefix="nag-"))
        app.node.set_context("aws:cdk:bundling-stacks", [])  # the tree is enough: skip staging the asset
        environments = app_module.build(app)
    finally:
        cdk.Validations.acknowledge = original  # type: ignore[method-assign]
    findings: set[Finding] = set()
    for stack in (stack for stacks in environments.values() for stack in stacks.all):
        for violation in AwsSolutionsChecks().validate_scope(stack).violations:
            findings |= {(violation.rule_name, r.construct_path) for r in violation.violating_resources}
    yield findings


def _resource_path(acknowledged_path: str, findings: set[Finding], rule: str) -> str | None:
    """The finding an acknowledgement covers: on the construct itself or on its default resource."""
    for candidate in (acknowledged_path, f"{acknowledged_path}/Resource"):
        if (rule, candidate) in findings:
            return candidate
    return None


def test_synth_reports_no_unacknowledged_finding(synthesis: Synthesis) -> None:
    report = synthesis.read_json("validation-report.json")
    violations = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]

    assert violations == []
    assert synthesis.validation_error is None


def test_every_acknowledgement_gives_a_reason(synthesis: Synthesis) -> None:
    for finding, reason in _acknowledgements(synthesis).items():
        assert len(reason.split()) >= 8, finding


def test_every_acknowledgement_covers_a_real_finding_on_its_own_resource(
    synthesis: Synthesis, raw_findings: set[Finding]
) -> None:
    stale = [
        (rule, path)
        for (rule, path) in _acknowledgements(synthesis)
        if _resource_path(path, raw_findings, rule) is None
    ]

    assert stale == []


def test_every_finding_is_acknowledged_one_by_one(synthesis: Synthesis, raw_findings: set[Finding]) -> None:
    covered = {(rule, _resource_path(path, raw_findings, rule)) for (rule, path) in _acknowledgements(synthesis)}

    assert raw_findings - covered == set()


def test_no_acknowledgement_sits_on_a_whole_stack(synthesis: Synthesis) -> None:
    stack_paths = {stack.artifact_id for stack in synthesis.all_stacks}

    assert [f for f in _acknowledgements(synthesis) if f[1] in stack_paths] == []
