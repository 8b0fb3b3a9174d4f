"""The Lambda asset: `runtime/` (without `local/`) plus requirements.txt built for arm64 and CPython 3.12.

No Docker: pip downloads the wheels for Lambda's platform (`--platform ... --only-binary=:all:`), which
works from any machine that reaches the package registry. The installed dependencies are cached outside
the checkout, keyed by a hash of requirements.txt and the pip arguments, so only the first synth on a
machine pays for the install; each synth then copies (hard-links where it can) the cache and the current
runtime sources into the asset folder through CDK's local bundling.

The asset hash is computed here from the same inputs (CUSTOM hash), so CDK never fingerprints the 70 MB
output and a change in either requirements.txt or runtime/ produces a new asset.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from stacks.bytecode import bytecode_tag, compile_for_lambda

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = ROOT / "runtime"
REQUIREMENTS = ROOT / "requirements.txt"
# Left out of the asset: the local server, and anything a local run leaves behind.
EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
EXCLUDED_PATHS = frozenset({Path("flagservice/local")})  # a guard: the local server lives in local/, outside runtime/
EXCLUDED_SUFFIXES = (".pyc", ".pyo")

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34). manylinux2014 (glibc 2.17) covers most
# wheels; psycopg-binary 3.3 publishes its aarch64 wheels only as manylinux_2_28, which that glibc runs.
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
PIP_TARGET_ARGS = (
    *(arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)),
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
)
CACHE_FORMAT = "1"  # bump to invalidate every cached dependency folder


class BundlingError(RuntimeError):
    """The Lambda dependencies could not be installed for the target platform."""


def cache_root() -> Path:
    """Where installed dependencies are kept between synths (FLAGS_BUNDLE_CACHE overrides)."""
    configured = os.environ.get("FLAGS_BUNDLE_CACHE")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flagservice" / "lambda-deps"


def dependencies_key(requirements: Path = REQUIREMENTS) -> str:
    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, bytecode_tag() or "no-bytecode", *PIP_TARGET_ARGS):
        digest.update(part.encode() + b"\0")
    digest.update(requirements.read_bytes())
    return digest.hexdigest()[:24]


def install_dependencies(requirements: Path = REQUIREMENTS, *, cache: Path | None = None) -> Path:
    """The folder of installed dependencies for Lambda's platform, installing it once per requirements hash.

    pip installs into a private temporary folder that is renamed into place, so two synths running at
    once (tests and `make synth`) never see a half-installed folder; the loser of the rename discards its
    copy. pip's own byte-compilation is kept (never --no-compile), then bytecode for Lambda's CPython 3.12
    is added when such an interpreter is available (stacks/bytecode.py).
    """
    cache = cache or cache_root()
    final = cache / dependencies_key(requirements)
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=cache))
    try:
        print(f"Installing {requirements.name} for Lambda (arm64, CPython 3.12) into {final}", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += [*PIP_TARGET_ARGS, "--target", str(staging), "-r", str(requirements)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BundlingError(f"pip could not install {requirements} for Lambda:\n{result.stderr[-4000:]}")
        compile_for_lambda(staging)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def runtime_files(runtime_dir: Path = RUNTIME_DIR) -> Iterator[Path]:
    """Files of runtime/ that belong in the asset, relative to runtime/, in a stable order."""
    for folder, dirs, files in os.walk(runtime_dir):
        relative = Path(folder).relative_to(runtime_dir)
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and relative / d not in EXCLUDED_PATHS)
        for name in sorted(files):
            if not name.endswith(EXCLUDED_SUFFIXES):
                yield relative / name


def asset_hash(runtime_dir: Path = RUNTIME_DIR, requirements: Path = REQUIREMENTS) -> str:
    digest = hashlib.sha256(dependencies_key(requirements).encode())
    for relative in runtime_files(runtime_dir):
        digest.update(relative.as_posix().encode() + b"\0" + (runtime_dir / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_bundle(output_dir: Path, *, runtime_dir: Path = RUNTIME_DIR, requirements: Path = REQUIREMENTS) -> None:
    """Fill output_dir with the dependencies and the runtime sources, as Lambda will see /var/task."""
    shutil.copytree(install_dependencies(requirements), output_dir, dirs_exist_ok=True, copy_function=_link_or_copy)
    for relative in runtime_files(runtime_dir):
        target = output_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(runtime_dir / relative, target)
    compile_for_lambda(output_dir, only=[output_dir / top for top in _top_level_names(runtime_dir)])


def _top_level_names(runtime_dir: Path) -> list[str]:
    return sorted({relative.parts[0] for relative in runtime_files(runtime_dir) if relative.suffix == ".py"})


@jsii.implements(cdk.ILocalBundling)
class LocalRuntimeBundler:
    """CDK's local bundling hook: builds the asset on this machine, so no Docker image is ever run."""

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: object) -> bool:
        write_bundle(Path(output_dir))
        return True


def runtime_code() -> lambda_.Code:
    """The code of every function of the service (one asset per stack, the same hash everywhere)."""
    return lambda_.Code.from_asset(
        str(RUNTIME_DIR),
        asset_hash=asset_hash(),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(image=LAMBDA_RUNTIME.bundling_image, local=LocalRuntimeBundler()),
    )
