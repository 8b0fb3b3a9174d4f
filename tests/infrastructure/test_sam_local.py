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
from typing import Any

from flagservice.settings import load_settings
from stacks.config import cdk_context
from tests.infrastructure.conftest import Synthesis, resources_of_type
from tests.infrastructure.test_flag_function import flag_function

ENV_JSON = Path(__file__).resolve().parents[2] / "events" / "sam" / "env.json"  # not events/*.json: those are events


def test_the_app_keeps_asset_metadata_as_the_cdk_cli_does() -> None:
    assert cdk_context()["aws:cdk:enable-asset-metadata"] is True


def test_every_function_names_its_code_folder_for_sam(synthesis: Synthesis, any_template_json: dict[str, Any]) -> None:
    functions = resources_of_type(any_template_json, "AWS::Lambda::Function")

    assert functions
    for function in functions.values():
        metadata = function.get("Metadata", {})
        assert metadata.get("aws:asset:property") == "Code"
        assert (synthesis.outdir / metadata["aws:asset:path"]).is_dir()


def test_the_flag_function_folder_is_the_runtime_bundle(synthesis: Synthesis) -> None:
    _, function = flag_function(synthesis.template_json("dev", "service"))
    folder = synthesis.outdir / function["Metadata"]["aws:asset:path"]

    assert (folder / "flagservice" / "handler.py").is_file()
    assert function["Properties"]["Handler"] == "flagservice.handler.lambda_handler"


def test_env_json_is_keyed_by_the_flag_function_logical_id_and_overrides_only_what_it_defines(
    synthesis: Synthesis,
) -> None:
    logical_id, function = flag_function(synthesis.template_json("dev", "service"))
    overrides = json.loads(ENV_JSON.read_text())

    assert list(overrides) == [logical_id]
    assert set(overrides[logical_id]) <= set(function["Properties"]["Environment"]["Variables"])


def test_env_json_points_at_local_servers_and_unsets_the_deployed_credentials(synthesis: Synthesis) -> None:
    logical_id, function = flag_function(synthesis.template_json("dev", "service"))
    defined = {k: v for k, v in function["Properties"]["Environment"]["Variables"].items() if isinstance(v, str)}
    overrides = json.loads(ENV_JSON.read_text())[logical_id]

    settings = load_settings({**defined, **overrides})  # empty values count as unset

    assert settings.REDIS_URL.startswith("redis://127.0.0.1:") and settings.DB_HOST == "127.0.0.1"
    assert settings.REDIS_IAM_USER is None and settings.DB_SECRET_ARN is None and settings.DATABASE_URL is None
    assert settings.ADMIN_TOKEN is None  # never in a deployed function, so SAM cannot set it either
