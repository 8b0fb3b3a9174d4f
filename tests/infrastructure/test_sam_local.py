"""`sam local invoke -t cdk.out/<stack>.template.json` against `make dev`'s servers (docs/operations.md).

SAM finds a function's code only through its `aws:asset:path` metadata, which CDK writes when the
context `aws:cdk:enable-asset-metadata` is true (cdk.json sets it, so `make synth` keeps it too). Its
`--env-vars` file can only override variables the template already defines on that function (keyed by
its logical id): events/sam/env.json points those at local servers, and blanks (unsets) the deployed-only
ones, without any local-only variable in the deployed function.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Capture, Match, Template

from flagservice.settings import load_settings
from tests.infrastructure.conftest import Synthesis
from tests.infrastructure.test_flag_function import FLAG_HANDLER, flag_function, variables

ENV_JSON = Path(__file__).resolve().parents[2] / "events" / "sam" / "env.json"  # not events/*.json: those are events


def test_every_function_names_its_code_folder_for_sam(synthesis: Synthesis, any_template: Template) -> None:
    """The context `aws:cdk:enable-asset-metadata` (cdk.json) at work: each function says where its code is."""
    functions = any_template.find_resources("AWS::Lambda::Function")

    assert functions
    any_template.all_resources(
        "AWS::Lambda::Function", {"Metadata": {"aws:asset:property": "Code", "aws:asset:path": Match.any_value()}}
    )
    for function in functions.values():
        assert (synthesis.outdir / function["Metadata"]["aws:asset:path"]).is_dir()


def test_the_flag_function_folder_is_the_runtime_bundle(synthesis: Synthesis) -> None:
    folder = Capture()
    dev = synthesis.template("dev", "service")
    dev.has_resource(
        "AWS::Lambda::Function", {"Properties": {"Handler": FLAG_HANDLER}, "Metadata": {"aws:asset:path": folder}}
    )

    assert (synthesis.outdir / folder.as_string() / "flagservice" / "handler.py").is_file()


def test_env_json_is_keyed_by_the_flag_function_logical_id_and_overrides_only_what_it_defines(
    synthesis: Synthesis,
) -> None:
    dev = synthesis.template("dev", "service")
    overrides = json.loads(ENV_JSON.read_text())

    assert list(overrides) == [flag_function(dev)]
    assert set(overrides[flag_function(dev)]) <= set(variables(dev))


def test_env_json_points_at_local_servers_and_unsets_the_deployed_credentials(synthesis: Synthesis) -> None:
    dev = synthesis.template("dev", "service")
    defined = {k: v for k, v in variables(dev).items() if isinstance(v, str)}
    overrides = json.loads(ENV_JSON.read_text())[flag_function(dev)]

    settings = load_settings({**defined, **overrides})  # empty values count as unset

    assert settings.REDIS_URL.startswith("redis://127.0.0.1:") and settings.DB_HOST == "127.0.0.1"
    assert settings.REDIS_IAM_USER is None and settings.DB_SECRET_ARN is None and settings.DATABASE_URL is None
    assert settings.ADMIN_TOKEN is None  # never in a deployed function, so SAM cannot set it either
