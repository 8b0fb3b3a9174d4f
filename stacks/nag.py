"""cdk-nag acknowledgements, written one way: a finding, on one construct, with the reason it is acceptable.

cdk-nag 3 has no suppression list: an unacknowledged error fails synth (app.py registers the checks).
Every construct that accepts a finding says so through `acknowledge`, next to the resource it is about.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept `finding` (an AwsSolutions id, with its `[...]` detail where nag names one) on `construct`."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def aws_managed_policy(name: str) -> str:
    """The IAM4 finding of an AWS-managed service-role policy attached to a role."""
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{name}]"


def logical_id(construct: IConstruct) -> str:
    """The logical id of a construct's CloudFormation resource, resolved: nag names it in wildcard findings."""
    resource = construct.node.default_child
    assert isinstance(resource, cdk.CfnElement)
    stack = cdk.Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(resource)))
