"""A real browser on the local flag service (issue 16): the harness of tests/browser and browser_propagation.py.

- The page (tests/browser/page/) runs OpenFeature's web SDK with the OFREP web provider, polling off. Both are
  pinned in tests/browser/package.json and its lock file, installed with `npm ci` and bundled into one file with
  esbuild at run time. It records, with Date.now(), every change of one flag's value (`window.probe.changes`).
- A tiny static server gives the page an origin of its own (another port than the service), so every call of
  the provider is cross-origin and CORS is exercised as a real deployment would.
- Headless Chromium is Debian's (/usr/bin/chromium), driven by Playwright with that executable (never
  `playwright install`: browser downloads fail on these machines).
- The service is `python -m local.server`, what `make dev` runs, event stream included, on a
  Redis and a PostgreSQL the caller gives. It keeps its PORT and EVENTS_PORT across a restart, so the page's
  provider finds it where it was. A second server on the same stores writes while the first one is down.

Delays are measured from the wall clock after a write's 2xx was received here to the page's Date.now() at the
change: one clock, the machine's.

Modules: site.py (the page built and served from its own origin), probe.py (the page in a browser context),
headless.py (Chromium), service.py (one local server), stack.py (both servers, the site and the browser).
"""

from bench.consistency.browser.errors import HarnessError
from bench.consistency.browser.headless import chromium
from bench.consistency.browser.probe import Change, ProbePage
from bench.consistency.browser.service import LocalService, set_enabled
from bench.consistency.browser.site import PAGE_PACKAGE, StaticSite, build_page, installed_versions
from bench.consistency.browser.stack import Stack, running_stack

__all__ = [
    "PAGE_PACKAGE", "Change", "HarnessError", "LocalService", "ProbePage", "Stack", "StaticSite", "build_page",
    "chromium", "installed_versions", "running_stack", "set_enabled",
]  # fmt: skip
