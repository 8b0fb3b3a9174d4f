"""Cost allocation tags on every taggable resource of a stack."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
import jsii
from constructs import IConstruct

# Types CDK's custom resource providers (Trigger, default security group) emit as plain CfnResources.
RAW_TAGGABLE_TYPES = frozenset({"AWS::IAM::Role", "AWS::Lambda::Function"})


@jsii.implements(cdk.IAspect)
class _TagPlainResources:
    """`Tags.of` reaches only L1/L2 resources with a tag manager; these get the same tags by override."""

    def __init__(self, tags: Mapping[str, str]) -> None:
        self._tags = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]

    def visit(self, node: IConstruct) -> None:
        if (
            cdk.CfnResource.is_cfn_resource(node)
            and not cdk.TagManager.is_taggable(node)
            and node.cfn_resource_type in RAW_TAGGABLE_TYPES
        ):
            node.add_property_override("Tags", self._tags)


def apply_cost_tags(stack: cdk.Stack, tags: Mapping[str, str]) -> None:
    """Tag every resource in the template, so that the tags are visible in it and tested.

    With the `explicitStackTags` feature flag, `Tags.of(stack)` reaches the resources but not the stack;
    the stack's own tags come from its `tags` property (CloudFormation propagates those too at deploy).
    """
    for key, value in tags.items():
        cdk.Tags.of(stack).add(key, value)
    cdk.Aspects.of(stack).add(_TagPlainResources(tags))
