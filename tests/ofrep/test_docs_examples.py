"""docs/openfeature.md's local examples, run as written (only the base URL is the test server's).

Each example prints a result and says in a comment what it prints; the test checks both agree with the
server, so the page cannot drift from what the providers really do.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from pathlib import Path

import pytest
from openfeature import api

from tests.ofrep.conftest import LocalServer, required_tool

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]
DOC = Path(__file__).resolve().parents[2] / "docs" / "openfeature.md"
DOC_URL = "http://127.0.0.1:3000"


def example(language: str) -> str:
    """The first code block of `language` in the section named after it (## Python, ## JavaScript ...)."""
    text = DOC.read_text()
    section = text[text.index(f"\n## {language}") :]
    return re.search(rf"```{language.lower()}\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


def promised_output(code: str) -> str:
    """What the example's last print says it prints: its trailing `# ...` or `// ...` comment."""
    return re.findall(r"(?:#|//) prints: (.*)$", code, re.MULTILINE)[-1].strip()


def test_the_python_example_prints_what_it_promises(ofrep_server: LocalServer) -> None:
    code = example("Python")
    assert DOC_URL in code
    printed = io.StringIO()

    with contextlib.redirect_stdout(printed):
        try:
            exec(code.replace(DOC_URL, ofrep_server.url), {})  # noqa: S102 - the documented example itself
        finally:
            api.clear_providers()

    assert printed.getvalue().strip() == promised_output(code) == "modern modern TARGETING_MATCH"


def test_the_javascript_example_prints_what_it_promises(node_package: Path, ofrep_server: LocalServer) -> None:
    code = example("JavaScript")
    assert DOC_URL in code

    done = subprocess.run(
        [required_tool("node"), "--input-type=module", "-e", code.replace(DOC_URL, ofrep_server.url)],
        cwd=node_package, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == promised_output(code) == "modern modern TARGETING_MATCH"
