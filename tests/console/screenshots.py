"""Redraw the console's screenshots in docs/console/ (README.md, section Console) from a real local server.

    python -m tests.console.screenshots [OUT_DIR]     # default docs/console; needs /usr/bin/chromium

The server runs on a throwaway PostgreSQL and Redis with `make dev`'s demo flags, plus a few writes so that
the flag page has a history and the cache has counted reads.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from bench.consistency.browser import chromium
from tests import servers
from tests.console.stack import DESKTOP, PHONE, ConsoleServer, open_console, running_server

OUT_DIR = Path(__file__).resolve().parents[2] / "docs" / "console"
FLAG = "checkout-theme"


def give_history(server: ConsoleServer) -> None:
    """A few writes and reads of the demo flags, as a day of use would leave them."""
    server.patch(FLAG, {"description": "Checkout look: modern for beta countries"})
    server.patch(FLAG, {"rollout": [{"variant": "modern", "weight": 20}, {"variant": "classic", "weight": 80}]})
    server.patch("new-search", {"enabled": False})
    for _ in range(40):
        server.read(FLAG)


def flag_page(page: Page) -> None:
    page.locator(f'[data-flag-key="{FLAG}"]').get_by_role("link", name=FLAG).click()
    expect(page.locator('[data-history-entry="3"]')).to_be_visible()
    expect(page.locator('[data-stat="hits"]')).not_to_have_text("0")


def shoot(browser: Browser, server: ConsoleServer, out_dir: Path) -> list[Path]:
    written = []
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = open_console(browser, server, viewport)
        page.locator('[data-action="search"]').blur()
        written.append(out_dir / f"list-{name}.png")
        page.screenshot(path=str(written[-1]))
        if viewport is PHONE:  # the dialog is drawn at phone width only: on a desktop it is the same box
            page.locator('[data-flag-key="payments-kill-switch"] [data-action="toggle"]').click()
            written.append(out_dir / f"confirm-{name}.png")
            page.screenshot(path=str(written[-1]))
            page.locator('dialog [data-action="cancel"]').click()
        flag_page(page)
        written.append(out_dir / f"flag-{name}.png")
        page.screenshot(path=str(written[-1]))
        page.context.close()
    return written


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    postgres = servers.postgres_for_tests()
    try:
        with running_server(postgres.url, Path(tempfile.mkdtemp())) as server, chromium() as browser:
            give_history(server)
            for path in shoot(browser, server, out_dir):
                print(f"wrote {path}")
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
