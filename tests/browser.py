"""A real browser for the journeys: Playwright for Python driving the machine's Chromium.

Loaded by ``tests/conftest.py`` (``pytest_plugins``). It gives:

- ``browser``: Chromium, started once per test module (see the fixture for why not once per session);
- ``journey``: per test, a ``Journey`` whose ``step(name)`` saves a viewport screenshot as
  ``test-artifacts/<test>/NN-<name>.png``; it signs members in, each in a browser context of
  their own, and records every page's console messages and uncaught errors;
- a ``pytest_runtest_makereport`` hook: when a journey's test fails, the page it was on is saved as
  ``failure.png``, every page's console as ``console.log`` and the end of the hub's log as
  ``hub.log``, beside the step screenshots.

Playwright cannot download its own browser build here: it drives Debian's ``chromium`` (installed by
``tests/start-services.sh``), or the executable in ``LEVA_CHROMIUM``. Without one the journeys are
skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.hubtools import DEMO_PASSWORD, PROJECT

ARTIFACTS = PROJECT / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 60_000  # each action and expectation; slow steps (spawning, kernels, grading) pass their own


def chromium_executable() -> str | None:
    """The Chromium to drive: ``LEVA_CHROMIUM``, else the first of the usual names on the PATH."""
    explicit = os.environ.get("LEVA_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable(reason: str):
    """Skip the journeys on a developer's machine; fail them in CI, where a skip would hide them."""
    if os.environ.get("CI"):
        pytest.fail(f"browser journeys cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Chromium under Playwright, for the tests of one module.

    Not session-wide on purpose: while Playwright's synchronous API is alive it keeps its asyncio
    loop marked as running in the main thread, so later tests calling ``asyncio.run`` (nbclient,
    the graders) would fail. The journeys all live in one module, so they share one browser.
    """
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as e:
        unavailable(f"Playwright is not installed ({e}); `make install` installs the test extras")
    executable = chromium_executable()
    if not executable:
        unavailable("no Chromium found (`chromium` on the PATH or LEVA_CHROMIUM); "
                    "tests/start-services.sh installs Debian's as root")
    expect.set_options(timeout=TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()[:80] or "step"


class Journey:
    """One test's walk through the platform: members' browser contexts, steps and their screenshots."""

    def __init__(self, browser, folder: Path):
        self.browser = browser
        self.folder = folder
        self.contexts = []
        self.pages = []  # (label, page)
        self.console: list[str] = []
        self.page = None  # the page the member is looking at: what step() and a failure save
        self.hubs = []  # the hubs signed in to: a failure keeps the end of their logs
        self.steps = 0
        self.started = time.monotonic()
        self.log: list[str] = []

    # pages

    def context(self, label: str):
        context = self.browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", lambda page: self.watch(page, label))
        self.contexts.append(context)
        return context

    def watch(self, page, label: str) -> None:
        """Record the page's console; dismiss JupyterLab's "official Jupyter news?" question if it gets in the way."""
        if any(p is page for _, p in self.pages):
            return
        name = f"{label}#{len(self.pages) + 1}"
        self.pages.append((name, page))
        self.console.append(f"[{self._clock()}] {name}: opened")
        page.on("console", lambda m: self.console.append(f"[{self._clock()}] {name} {m.type}: {m.text}  ({page.url})"))
        page.on("pageerror", lambda e: self.console.append(f"[{self._clock()}] {name} uncaught: {e}  ({page.url})"))
        page.on("framenavigated", lambda f: f == page.main_frame and self.console.append(
            f"[{self._clock()}] {name} navigated: {f.url}"))
        news = page.locator(".Toastify__toast", has_text="official Jupyter news")
        page.add_locator_handler(news, lambda: news.get_by_role("button", name="No", exact=True).click())
        self.page = page

    def sign_in(self, hub, username: str, password: str = DEMO_PASSWORD, next_url: str | None = None,
                expect_url: str | None = None):
        """A new browser (context) for the member, signed in through the hub's login form.

        ``next_url`` is where the member was going (a hub path, e.g. ``/hub/admin``). Returns the
        page once the hub has sent it on; ``expect_url`` is the glob it should land on (default:
        ``next_url``, else the member's JupyterLab).
        """
        if hub not in self.hubs:
            self.hubs.append(hub)
        context = self.context(username)
        page = context.new_page()
        page.goto(f"{hub.url}/hub/login" + (f"?next={quote(next_url)}" if next_url else ""))
        page.locator("#username_input").fill(username)
        page.locator("#password_input").fill(password)
        page.locator("#login_submit").click()
        # the first sign-in spawns the member's server: allow for a slow machine
        page.wait_for_url(expect_url or (f"**{next_url}" if next_url else f"**/user/{username}/lab**"), timeout=180_000)
        return page

    def use(self, page):
        """The member switched to this page (a tab): steps and a failure show it."""
        page.bring_to_front()
        self.page = page
        return page

    # steps

    def _clock(self) -> str:
        return f"{time.monotonic() - self.started:7.1f}s"

    def step(self, name: str, focus=None, page=None) -> Path:
        """Screenshot (viewport only) of the current page as NN-<name>.png; ``focus`` is scrolled into view first."""
        if page is not None:
            self.use(page)
        if focus is not None:
            focus.scroll_into_view_if_needed()
        self.steps += 1
        path = self.folder / f"{self.steps:02d}-{_slug(name)}.png"
        self.page.screenshot(path=path, timeout=TIMEOUT_MS)
        self.log.append(f"{self._clock()}  {path.name}")
        return path

    # endings

    def save_failure(self) -> None:
        """The page the member was on when the test failed, the console of every page, the hub's log."""
        if self.page is not None and not self.page.is_closed():
            try:
                self.page.screenshot(path=self.folder / "failure.png", timeout=15_000)
            except Exception as e:  # a crashed page must not hide the test's own error
                self.console.append(f"[{self._clock()}] could not take the failure screenshot: {e}")
        (self.folder / "console.log").write_text("\n".join(self.console) + "\n")
        for i, hub in enumerate(self.hubs):
            try:
                (self.folder / f"hub{i + 1 if i else ''}.log").write_text(hub.log()[-200_000:])
            except OSError:
                pass

    def close(self) -> None:
        self.log.append(f"{self._clock()}  end")
        (self.folder / "steps.log").write_text("\n".join(self.log) + "\n")
        for context in self.contexts:
            try:
                context.close()
            except Exception:
                pass


@pytest.fixture
def journey(browser, request):
    folder = ARTIFACTS / _slug(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    walk = Journey(browser, folder)
    yield walk
    walk.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when in ("setup", "call"):
        walk = getattr(item, "funcargs", {}).get("journey")
        if isinstance(walk, Journey):
            walk.save_failure()
    return report
