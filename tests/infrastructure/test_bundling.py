"""The Lambda bundle: runtime/ without local/, dependencies for arm64 and CPython 3.12, built without Docker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Capture

from stacks import bundling
from stacks.bytecode import bytecode_python
from tests.conftest import unavailable_here
from tests.infrastructure.conftest import Synthesis

MIGRATION_HANDLER = "flagservice.migrate_function.lambda_handler"


@pytest.fixture(scope="module")
def asset_dir(synthesis: Synthesis) -> Path:
    """The folder CDK staged for the migration function (the same asset every function uses)."""
    key = Capture()
    synthesis.template("dev").has_resource_properties(
        "AWS::Lambda::Function", {"Handler": MIGRATION_HANDLER, "Code": {"S3Key": key}}
    )
    return synthesis.outdir / f"asset.{key.as_string().removesuffix('.zip')}"


@pytest.fixture
def runtime_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A small runtime folder and requirements file to hash."""
    runtime = tmp_path / "runtime"
    (runtime / "flagservice" / "local").mkdir(parents=True)
    (runtime / "flagservice" / "__init__.py").write_text("")
    (runtime / "flagservice" / "local" / "server.py").write_text("print('local')\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("mmh3==5.3.1\n")
    return runtime, requirements


def test_the_asset_holds_the_runtime_package_without_the_local_server(asset_dir: Path) -> None:
    assert (asset_dir / "flagservice" / "migrate_function.py").is_file()
    assert (asset_dir / "flagservice" / "settings.py").is_file()
    assert not (asset_dir / "flagservice" / "local").exists()


def test_the_asset_holds_the_requirements_built_for_arm64_and_python_312(asset_dir: Path) -> None:
    extensions = [path.name for path in asset_dir.rglob("*.so")]

    for package in ("pydantic_core", "psycopg_binary", "aws_lambda_powertools", "redis", "psycopg_pool"):
        assert (asset_dir / package).is_dir(), package
    assert any(name.startswith("mmh3.cpython-312-aarch64") for name in extensions)
    assert [name for name in extensions if "x86_64" in name] == []


def test_the_asset_carries_bytecode_for_lambda_python_when_one_is_available(asset_dir: Path) -> None:
    if bytecode_python() is None:
        unavailable_here("no CPython 3.12 on this machine: the bundle is source-only (still correct)")

    assert (asset_dir / "flagservice" / "__pycache__" / "settings.cpython-312.pyc").is_file()
    assert list((asset_dir / "pydantic" / "__pycache__").glob("*.cpython-312.pyc"))


def test_the_asset_hash_follows_requirements_and_runtime_but_not_the_local_server(
    runtime_copy: tuple[Path, Path],
) -> None:
    # Given a runtime folder and its hash
    runtime, requirements = runtime_copy
    original = bundling.asset_hash(runtime, requirements)

    # When only the local server and bytecode change, the hash does not
    (runtime / "flagservice" / "local" / "server.py").write_text("print('changed')\n")
    (runtime / "flagservice" / "__pycache__").mkdir()
    (runtime / "flagservice" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert bundling.asset_hash(runtime, requirements) == original

    # Then a change to the runtime, then to the requirements, each give another hash
    (runtime / "flagservice" / "__init__.py").write_text("VERSION = 2\n")
    changed_code = bundling.asset_hash(runtime, requirements)
    requirements.write_text("mmh3==5.3.0\n")
    assert len({original, changed_code, bundling.asset_hash(runtime, requirements)}) == 3


def test_installed_dependencies_are_reused_without_running_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    first = bundling.install_dependencies()  # the session synth already installed them

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran again")

    monkeypatch.setattr(bundling.subprocess, "run", no_pip)
    assert bundling.install_dependencies() == first


def test_pip_targets_lambda_platform_and_keeps_byte_compilation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, runtime_copy: tuple[Path, Path]
) -> None:
    # Given pip recorded instead of run
    _, requirements = runtime_copy
    commands: list[list[str]] = []
    real_run = subprocess.run

    def record(command: list[str], **kwargs: Any) -> Any:
        if "pip" not in command:
            return real_run(command, **kwargs)
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    # When the dependencies are installed
    monkeypatch.setattr(bundling.subprocess, "run", record)
    installed = bundling.install_dependencies(requirements, cache=tmp_path / "cache")

    # Then one pip command targets Lambda's platform and Python, and compiles bytecode
    (command,) = commands
    assert installed.is_dir() and installed.parent == tmp_path / "cache"
    assert "--no-compile" not in command
    assert {"manylinux2014_aarch64", "--only-binary=:all:", "3.12", "cp", str(requirements)} <= set(command)


def test_bundle_writing_leaves_the_local_server_out(tmp_path: Path, runtime_copy: tuple[Path, Path]) -> None:
    runtime, _ = runtime_copy
    output = tmp_path / "bundle"
    output.mkdir()

    bundling.write_bundle(output, runtime_dir=runtime)

    assert (output / "flagservice" / "__init__.py").is_file()
    assert not (output / "flagservice" / "local").exists()
    shutil.rmtree(output)
