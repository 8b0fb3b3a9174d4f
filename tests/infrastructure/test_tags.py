"""Cost tags on every resource that can carry tags, whichever construct created it.

"Can carry tags" comes from the CloudFormation resource schemas that cfn-lint ships, not from CDK,
so a resource CDK forgets to tag (a custom resource provider's role, say) is caught.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis

SCHEMA_REGION = "us-east-1"


@cache
def takes_tags(resource_type: str) -> bool:
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return False
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type).schema
    return "Tags" in schema.get("properties", {})


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    tags = resource.get("Properties", {}).get("Tags", [])
    if isinstance(tags, dict):  # a few types take a plain map
        return dict(tags)
    return {tag["Key"]: tag["Value"] for tag in tags}


def test_every_taggable_resource_carries_the_cost_tags(
    any_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    expected = {"Feature": "FeatureFlags", "CostCenter": "Platform", "Environment": config.name}
    taggable = {key: r for key, r in any_template_json["Resources"].items() if takes_tags(r["Type"])}

    assert len(taggable) > 20  # the schema lookup really found the resources
    untagged = {key: r["Type"] for key, r in taggable.items() if expected.items() - _tags(r).items()}
    assert untagged == {}


def test_the_stacks_themselves_are_tagged_for_cloudformation_to_propagate(
    synthesis: Synthesis, environment: str
) -> None:
    for stack in synthesis.environments[environment].all:
        assert stack.tags.tag_values() == {
            "Feature": "FeatureFlags",
            "CostCenter": "Platform",
            "Environment": environment,
        }
