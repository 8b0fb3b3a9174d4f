"""What both stacks of an environment share: description, termination protection and cost tags from its config."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.cost_tags import apply_cost_tags


class EnvironmentStack(cdk.Stack):
    """A stack of one environment, described by what it holds (`holds`) and tagged for cost allocation."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, holds: str, **kwargs: object
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Feature flags ({config.name}): {holds}",
            termination_protection=config.termination_protection,
            tags=config.cost_tags,
            **kwargs,  # type: ignore[arg-type]
        )
        self.config = config
        apply_cost_tags(self, config.cost_tags)

    @property
    def lifecycle(self) -> dict[str, logs.RetentionDays | cdk.RemovalPolicy]:
        """Log retention and removal policy of the environment's replaceable resources (keyword arguments)."""
        return {"log_retention": self.config.log_retention, "removal_policy": self.config.resource_removal_policy}
