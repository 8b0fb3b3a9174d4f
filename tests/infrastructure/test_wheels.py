"""Every requirement (and everything it pulls in) has a wheel for Lambda: aarch64, CPython 3.12.

pip resolves requirements.txt for the function's platform without installing anything (`--dry-run`),
asking the package registry; a requirement with only an sdist or only x86 wheels fails here, long
before a deployment would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_wheel_filename

from stacks.bundling import PIP_PLATFORMS, PIP_TARGET_ARGS, REQUIREMENTS


def _lambda_tags() -> set[Tag]:
    """Tags a wheel may carry to run on Lambda's Python 3.12 arm64 (glibc 2.34, so manylinux_2_17.._2_28)."""
    platforms = {"any", *PIP_PLATFORMS, *(f"manylinux_2_{minor}_aarch64" for minor in range(17, 29))}
    interpreters = {("cp312", "cp312"), ("cp312", "abi3"), ("cp312", "none"), ("py3", "none"), ("py2.py3", "none")}
    return {Tag(i, a, p) for i, a in interpreters for p in platforms} | {
        Tag(f"cp3{minor}", "abi3", p) for minor in range(2, 13) for p in platforms
    }


def _requirement_names(path: Path) -> set[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


@pytest.fixture(scope="module")
def resolution(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    report = tmp_path_factory.mktemp("pip") / "report.json"
    target = tmp_path_factory.mktemp("target")
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed"]
    command += [*PIP_TARGET_ARGS, "--target", str(target), "--report", str(report), "-r", str(REQUIREMENTS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    installs: list[dict[str, Any]] = json.loads(report.read_text())["install"]
    return installs


def test_every_requirement_resolves_for_lambda(resolution: list[dict[str, Any]]) -> None:
    resolved = {canonicalize_name(item["metadata"]["name"]) for item in resolution}

    assert _requirement_names(REQUIREMENTS) - resolved == set()


def test_every_resolved_distribution_is_a_wheel_lambda_can_load(resolution: list[dict[str, Any]]) -> None:
    allowed = _lambda_tags()
    unfit = []
    for item in resolution:
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        if not filename.endswith(".whl") or not set(parse_wheel_filename(filename)[3]) & allowed:
            unfit.append(filename)

    assert unfit == []


def test_native_requirements_ship_aarch64_cpython_312_wheels(resolution: list[dict[str, Any]]) -> None:
    native = {
        canonicalize_name(item["metadata"]["name"]): item["download_info"]["url"].rsplit("/", 1)[-1]
        for item in resolution
        if "aarch64" in item["download_info"]["url"]
    }

    assert {"mmh3", "psycopg-binary", "pydantic-core"} <= set(native)
    assert all("cp312" in filename for filename in native.values())
