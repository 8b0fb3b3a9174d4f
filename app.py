#!/usr/bin/env python3
"""CDK entry point: every environment of cdk.json, synthesized into one cloud assembly.

Composition only. The stacks are environment-agnostic (no region, so no lookups and no credentials):
CloudFormation resolves the AZs at deploy time, and `cdk deploy` targets the account and region of the
caller's credentials. An account is pinned only when the CLI provides one (CDK_DEFAULT_ACCOUNT).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.cache_stack import CacheStack, cache_stack_id
from stacks.config import EnvironmentConfig, cdk_context, load_environments
from stacks.service_stack import ServiceStack
from stacks.stateful_stack import StatefulStack


def stateful_stack_id(environment: str) -> str:
    return f"FlagsStateful-{environment}"


def service_stack_id(environment: str) -> str:
    return f"FlagsService-{environment}"


@dataclass(frozen=True)
class EnvironmentStacks:
    stateful: StatefulStack
    service: ServiceStack
    caches: tuple[CacheStack, ...] = ()  # caches in stacks of their own (a blue/green move's)

    @property
    def all(self) -> tuple[cdk.Stack, ...]:
        return (self.stateful, *self.caches, self.service)


def build_environment(app: cdk.App, config: EnvironmentConfig, env: cdk.Environment | None) -> EnvironmentStacks:
    """One environment: the stateful stack, any cache stack of a blue/green move, and the service stack that reads
    their SSM parameters.

    No cross-stack reference joins them (so no export); the dependency only orders `cdk deploy --all`.
    """
    stateful = StatefulStack(app, stateful_stack_id(config.name), config=config, env=env)
    caches = tuple(
        CacheStack(app, cache_stack_id(config.name, cache.generation), config=config, cache=cache, env=env)
        for cache in config.caches
        if cache.own_stack
    )
    service = ServiceStack(app, service_stack_id(config.name), config=config, env=env)
    service.add_stack_dependency(stateful, "reads the SSM parameters the stateful stack writes")
    for cache in caches:
        cache.add_stack_dependency(stateful, "reads the network's SSM parameters")
        service.add_stack_dependency(cache, "reads the SSM parameters of the cache stack")
    return EnvironmentStacks(stateful=stateful, service=service, caches=caches)


def build(app: cdk.App) -> dict[str, EnvironmentStacks]:
    """Every environment's stacks, with cdk-nag's AwsSolutions checks run on synth."""
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    env = cdk.Environment(account=account) if account else None
    environments = {name: build_environment(app, config, env) for name, config in load_environments().items()}
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return environments


def create_app(outdir: str, **options: Any) -> cdk.App:
    """An App configured as the CLI configures it: cdk.json's context (feature flags) and no CDKMetadata."""
    return cdk.App(outdir=outdir, context=cdk_context(), analytics_reporting=False, **options)


def main() -> None:
    app = create_app(os.environ.get("CDK_OUTDIR", "cdk.out"))
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
