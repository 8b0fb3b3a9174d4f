"""Debian's headless Chromium (/usr/bin/chromium) through Playwright, never `playwright install`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from bench.consistency.browser.errors import HarnessError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright; closed (with its processes) at the end."""
    if not CHROMIUM.exists():
        raise HarnessError(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
