"""The page in a fresh browser context, showing one flag; every change of its value as the page saw it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from bench.consistency.browser.errors import HarnessError

PAGE_READY_SECONDS = 15.0


@dataclass(frozen=True)
class Change:
    at: float  # the page's Date.now(), in seconds
    value: Any  # true, false, or "error:<code>" when the provider had no value (a flag missing from its answer)
    source: str  # what made the page look: a provider event's name, "ready", or "timer"


@dataclass
class ProbePage:
    """The page in a fresh browser context (its own storage), showing one flag."""

    page: Page

    @classmethod
    def open(cls, browser: Browser, site_url: str, service_url: str, flag: str) -> ProbePage:
        page = browser.new_context().new_page()
        page.goto(f"{site_url}/index.html?{urlencode({'service': service_url, 'flag': flag})}")
        page.wait_for_function("window.probe && (window.probe.ready || window.probe.failure)",
                               timeout=PAGE_READY_SECONDS * 1000)  # fmt: skip
        failure = page.evaluate("window.probe.failure")
        if failure:
            page.context.close()
            raise HarnessError(f"the OFREP web provider did not get ready: {failure}")
        return cls(page)

    def changes(self) -> list[Change]:
        return [Change(c["at"] / 1000, c["value"], c["source"]) for c in self.page.evaluate("window.probe.changes")]

    def events(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("window.probe.events"))

    def wait_for_value(self, value: Any, after: int, timeout: float) -> Change | None:
        """The first change past the first `after` ones that shows `value`, or None if none did within `timeout`."""
        script = "([n, v]) => window.probe.changes.slice(n).some((c) => c.value === v)"
        try:
            self.page.wait_for_function(script, arg=[after, value], timeout=timeout * 1000, polling=10)
        except PlaywrightTimeoutError:
            return None
        return next(change for change in self.changes()[after:] if change.value == value)

    def close(self) -> None:
        self.page.context.close()
