"""A real browser for widget tests: Debian's chromium driven by Playwright, and a guard that keeps pages offline.

Playwright's own browser download is never used (`playwright install` would fetch one from
the internet); it drives /usr/bin/chromium with the flags this machine needs, in a fresh
profile that Playwright creates for each launch. Every request a page makes is recorded; any that leaves file://, data:, blob: or
loopback is aborted, so a test can assert that a page needed no network at all.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import BrowserContext, Page, Route, WebSocketRoute, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from polling import SLOWDOWN  # every browser wait is scaled by it

CHROMIUM = "/usr/bin/chromium"
# Under QEMU's TCG with its `max` CPU (AVX2 emulated) Chromium's GPU process now and then died of SIGSEGV (exit
# code 11), and after a few restarts Chromium gave up and closed the browser mid-test ("GPU process isn't usable.
# Goodbye"). ./kit vm-test now emulates a CPU without AVX (scripts/vm/lib.sh); should the GPU process still die,
# without that limit Chromium starts it again and the page carries on.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-gpu-process-crash-limit",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic"]
LOCAL_SCHEMES = ("file", "data", "blob", "about")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PAGE_TIMEOUT_MS = 30_000 * SLOWDOWN
SCREENSHOT_ATTEMPTS = 3


def is_local(url: str) -> bool:
    """Whether `url` stays on this machine: a local scheme, or http(s)/ws(s) to a loopback address."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOOPBACK_HOSTS


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM of a local page after its scripts ran, from `chromium --dump-dom` with a fresh profile."""
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--allow-file-access-from-files",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120 * SLOWDOWN, check=True).stdout


@dataclass
class OfflineGuard:
    """Every URL pages asked for, and the ones refused because they would have left the machine."""

    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        """Record every request of `context` and abort those that are not local."""
        context.on("request", lambda request: self.requested.append(request.url))
        context.route("**/*", self._route)
        context.route_web_socket(lambda url: not is_local(url), self._refuse_web_socket)

    def _route(self, route: Route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort("blockedbyclient")

    def _refuse_web_socket(self, socket: WebSocketRoute) -> None:
        self.refused.append(socket.url)
        socket.close()

    @property
    def remote(self) -> list[str]:
        """Requests that tried to leave the machine (refused, or seen without passing the route)."""
        return sorted({url for url in self.requested + self.refused if not is_local(url)})


@dataclass
class Browser:
    """A chromium context with its offline guard; `page()` opens a tab whose errors are recorded."""

    context: BrowserContext
    guard: OfflineGuard
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def page(self) -> Page:
        """A new tab; uncaught script errors land in `errors`, requests that failed (missing files too) in `failed`."""
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("requestfailed", lambda request: self.failed.append(f"{request.url}: {request.failure}"))
        return page


@pytest.fixture(scope="module")
def chromium() -> Iterator[PlaywrightBrowser]:
    """Debian's chromium, headless, for one test module (Playwright gives it a fresh profile directory)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser(chromium: PlaywrightBrowser) -> Iterator[Browser]:
    """A fresh browser context for one test, every request it makes watched by its own guard."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    guard = OfflineGuard()
    guard.watch(context)
    try:
        yield Browser(context, guard)
    finally:
        context.close()


def screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    """Save a full-page screenshot as test-artifacts/<name>.png (kept by CI, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    for attempt in range(SCREENSHOT_ATTEMPTS):
        try:
            page.screenshot(path=str(path), full_page=full_page, animations="disabled")
            return path
        except PlaywrightError as error:  # under TCG Chromium sometimes has no frame to give yet (the slide deck)
            if "Unable to capture screenshot" not in str(error) or attempt == SCREENSHOT_ATTEMPTS - 1:
                raise
            page.wait_for_timeout(2000 * SLOWDOWN)
    return path
