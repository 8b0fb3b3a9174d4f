"""Synthesizing a cdk.json other than the committed one (a move, a replacement, cluster mode, RDS Proxy).

The session synth (conftest.py) covers the committed cdk.json; a test of a setting that is off there
builds its own document from it and synthesizes only the environments it needs, as app.py does, with
cdk-nag (an unacknowledged finding fails the synth) and no bundling.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

import app as app_module
from stacks.config import parse_environments


@dataclass
class Synthesized:
    outdir: Path
    environments: dict[str, app_module.EnvironmentStacks]

    def template(self, stack: cdk.Stack) -> Template:
        return Template.from_json(json.loads((self.outdir / f"{stack.artifact_id}.template.json").read_text()))

    def service(self, environment: str) -> Template:
        return self.template(self.environments[environment].service)

    def stateful(self, environment: str) -> Template:
        return self.template(self.environments[environment].stateful)

    def cache(self, environment: str) -> Template:
        (stack,) = self.environments[environment].caches
        return self.template(stack)


def synthesize(document: dict[str, Any], names: tuple[str, ...] = ("dev",)) -> Synthesized:
    """The environments `names` of `document`, synthesized as app.py does, with cdk-nag (no bundling)."""
    configs = parse_environments(document)
    outdir = Path(tempfile.mkdtemp(prefix="cdk-override-"))
    app = app_module.create_app(str(outdir), builtin_cloud_formation_validation=False)
    app.node.set_context("aws:cdk:bundling-stacks", [])
    environments = {name: app_module.build_environment(app, configs[name], None) for name in names}
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    return Synthesized(outdir, environments)
