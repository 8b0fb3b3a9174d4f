"""cfn-lint on every synthesized template: no error, and no warning beyond CDK's habitual W3005."""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infrastructure.conftest import STACK_KINDS, Synthesis

# The stacks are region-agnostic: lint against two regions the service may be deployed to.
REGIONS = ["us-east-1", "eu-central-1"]
# W3005: CDK adds DependsOn next to a GetAtt on the same resource; harmless and not ours to change.
TOLERATED_WARNINGS = {"W3005"}


@pytest.fixture(scope="module")
def lint_results(synthesis: Synthesis) -> dict[str, list[str]]:
    """`RULE message (path)` for each match, linted once per template."""
    results = {}
    for stack in synthesis.all_stacks:
        template = synthesis.outdir / f"{stack.artifact_id}.template.json"
        matches = lint_file(template, ManualArgs(regions=REGIONS))
        results[stack.artifact_id] = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]
    return results


@pytest.fixture(params=STACK_KINDS)
def lint_of(
    request: pytest.FixtureRequest, synthesis: Synthesis, environment: str, lint_results: dict[str, list[str]]
) -> list[str]:
    return lint_results[synthesis.stack(environment, str(request.param)).artifact_id]


def test_templates_have_no_cfn_lint_errors(lint_of: list[str]) -> None:
    assert [m for m in lint_of if m.startswith("E")] == []


def test_templates_have_no_unexpected_cfn_lint_warnings(lint_of: list[str]) -> None:
    unexpected = [m for m in lint_of if m.startswith("W") and m.split()[0] not in TOLERATED_WARNINGS]

    assert unexpected == []
