"""`GET /console` and its assets over HTTP: no credentials, nothing from elsewhere, revalidation, and the bundle."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from flagservice.console import routes
from stacks import bundling
from tests.console.stack import ConsoleServer

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]
ASSETS = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}


def test_the_page_needs_no_credentials_and_allows_only_its_own_origin_and_the_event_stream(
    server: ConsoleServer,
) -> None:
    answer = requests.get(server.console_url, timeout=10)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'data-action="token"' not in answer.text  # the sign-in form is built by the script, not served
    policy = answer.headers["Content-Security-Policy"]
    stream = urlsplit(re.search(r"events:\s+(\S+)", server.log.read_text()).group(1))  # type: ignore[union-attr]
    assert f"connect-src 'self' http://{stream.netloc};" in policy
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("name", "content_type"), ASSETS.items())
def test_each_asset_is_served_with_its_type_and_revalidates_with_its_etag(
    server: ConsoleServer, name: str, content_type: str
) -> None:
    answer = requests.get(f"{server.console_url}/{name}", timeout=10)
    again = requests.get(f"{server.console_url}/{name}", headers={"If-None-Match": answer.headers["ETag"]}, timeout=10)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith(content_type)
    assert answer.content == (routes.STATIC_DIR / name).read_bytes()
    assert (again.status_code, again.content) == (304, b"")


def test_every_asset_comes_from_the_service_itself() -> None:
    """No CDN: no file names another host (the page works offline)."""
    for path in routes.STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")

        assert (
            re.findall(r"""(?:https?:)?//[\w.-]+\.\w+[/"']""", text.replace("http://www.w3.org/2000/svg", "")) == []
        ), path
        assert re.findall(r"""\bimport\b[^;]*?from\s+["'](?!\./)""", text) == [], path


def test_unknown_assets_and_other_files_are_not_found(server: ConsoleServer) -> None:
    for name in ("nothing.js", "index.html", "..%2Froutes.py", "routes.py", "__init__.py"):
        answer = requests.get(f"{server.console_url}/{name}", timeout=10)

        assert answer.status_code == 404, name
        assert answer.json()["errorCode"] == "NOT_FOUND"


def test_the_local_server_prints_where_the_console_is(server: ConsoleServer) -> None:
    printed = re.search(r"^  console: (\S+)", server.log.read_text(), re.MULTILINE)

    assert printed is not None and printed.group(1) == server.console_url
    assert "<title>Flags console</title>" in requests.get(printed.group(1), timeout=10).text


def test_the_page_with_a_trailing_slash_redirects_to_the_page(server: ConsoleServer) -> None:
    answer = requests.get(server.console_url + "/", timeout=10)

    assert answer.status_code == 200
    assert answer.url == server.console_url
    assert [step.status_code for step in answer.history] == [308]


def test_the_lambda_bundle_carries_every_console_file() -> None:
    bundled = set(bundling.runtime_files())

    for path in routes.STATIC_DIR.iterdir():
        assert Path("flagservice/console/static") / path.name in bundled
    assert Path("flagservice/console/routes.py") in bundled


def test_the_readme_shows_every_console_screenshot_and_each_one_exists() -> None:
    repo = Path(__file__).resolve().parents[2]
    shown = set(re.findall(r"docs/console/[\w-]+\.png", (repo / "README.md").read_text()))
    drawn = {path.relative_to(repo).as_posix() for path in (repo / "docs" / "console").glob("*.png")}

    assert shown == drawn and len(drawn) >= 4
