"""The page (tests/browser/page/): built with `npm ci` and esbuild, served from an origin of its own."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import REPO
from bench.consistency.browser.errors import HarnessError

PAGE_PACKAGE = REPO / "tests" / "browser"


def _run(argv: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{' '.join(argv[:2])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def build_page(out_dir: Path) -> Path:
    """`npm ci` from the committed lock file, then esbuild: `out_dir` gets index.html and bundle.js."""
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not installed: the browser page needs Node 20+ and npm")
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], PAGE_PACKAGE, timeout=240)
    esbuild = PAGE_PACKAGE / "node_modules" / ".bin" / "esbuild"
    bundle = ["--bundle", "--format=esm", "--platform=browser", "--log-level=warning"]
    _run([str(esbuild), "page/main.js", *bundle, f"--outfile={out_dir / 'bundle.js'}"], PAGE_PACKAGE, timeout=120)
    shutil.copy(PAGE_PACKAGE / "page" / "index.html", out_dir / "index.html")
    return out_dir


def installed_versions() -> dict[str, str]:
    """The versions npm installed for the page (the pinned ones, as the lock file says)."""
    names = ("@openfeature/web-sdk", "@openfeature/ofrep-web-provider", "@openfeature/ofrep-core", "esbuild")
    found = {}
    for name in names:
        manifest = PAGE_PACKAGE / "node_modules" / name / "package.json"
        found[name] = json.loads(manifest.read_text())["version"]
    return found


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class StaticSite:
    """The page's own origin: a threaded static file server on a free port of 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
