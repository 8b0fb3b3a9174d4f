"""One snapshot per stack, so any change to a template is a reviewed diff.

Asset hashes (and the Lambda version ids derived from them) change whenever runtime/ or
requirements.txt changes; they are masked so that only infrastructure changes show up here.
`make test` never updates snapshots: regenerate them deliberately with
`.venv/bin/python -m pytest tests/infrastructure/test_snapshots.py --snapshot-update` and review the diff.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# "<Function>CurrentVersion" + 8 hex of the construct path (stable) + 32 hex of the configuration and code.
LAMBDA_VERSION_HASH = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}")


def mask_asset_hashes(template: dict[str, Any]) -> Any:
    text = json.dumps(template, sort_keys=True)
    text = ASSET_HASH.sub("<asset-hash>", text)
    text = LAMBDA_VERSION_HASH.sub(r"\1<code-hash>", text)
    return json.loads(text)


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_stack_template_matches_its_snapshot(template_json: dict[str, Any], snapshot_json: SnapshotAssertion) -> None:
    assert mask_asset_hashes(template_json) == snapshot_json


def test_service_stack_template_matches_its_snapshot(
    service_template_json: dict[str, Any], snapshot_json: SnapshotAssertion
) -> None:
    assert mask_asset_hashes(service_template_json) == snapshot_json


def test_masking_removes_every_asset_derived_hash(any_template_json: dict[str, Any]) -> None:
    text = json.dumps(mask_asset_hashes(any_template_json))

    assert ASSET_HASH.search(text) is None and LAMBDA_VERSION_HASH.search(text) is None
    assert "<asset-hash>" in text and "<code-hash>" in text
