"""The web UI in a real browser, as a person uses it: Playwright drives Debian's Chromium
(``/usr/bin/chromium``, headless; no browser is ever downloaded) against a real
``dockyard serve``. Every test saves screenshots of what it saw under
``test-artifacts/ui/`` and runs axe-core (from ``web/node_modules``, installed by
``scripts/setup.sh test``) on each screen: no serious or critical violations allowed.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.support.identity import ADMIN, ADMIN_PASSWORD, Api, start_token_dockyard
from tests.support.servers import RunningRegistry

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
# Generous: on a loaded 2-core machine a first page load can take seconds. Assertions wait
# for what the user would see, up to this long; they never sleep.
expect.set_options(timeout=20_000)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _require(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(f"{what} is missing ({path}): run scripts/setup.sh test", pytrace=False)


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """One Dockyard for the UI tests (token mode, SQLite: the UI does not depend on the DB)."""
    server = start_token_dockyard("sqlite", tmp_path_factory.mktemp("ui-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin_api(ui_server: RunningRegistry) -> Iterator[Api]:
    with Api.connect(ui_server, ADMIN, ADMIN_PASSWORD) as api:
        yield api


# Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running while it
# is open, and the asyncio tests that run after tests/ui could not start theirs. Each UI module
# starts the driver and the browser, and stops them when its last test ends.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    _require(CHROMIUM, "Debian's Chromium (package chromium)")
    found = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield found
    found.close()


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)


@pytest.fixture
def page(browser: Browser, ui_server: RunningRegistry) -> Iterator[Page]:
    context = browser.new_context(base_url=ui_server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    found = context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda error: errors.append(str(error)))
    found.on("console", lambda message: _console(message.type, message.text, errors))
    yield found
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def _console(kind: str, text: str, errors: list[str]) -> None:
    if kind == "error" and not _expected(text):
        errors.append(text)


def _expected(text: str) -> bool:
    """Console errors that are the browser reporting an HTTP answer the test asked for."""
    return "Failed to load resource" in text


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Docker Repository")).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    """Save what the user sees now as ``test-artifacts/ui/<name>.png``.

    The whole page when Chromium can capture it, else the window. A screenshot is a record
    for people, not an assertion (the ``expect`` calls are): when Chromium cannot produce one
    at all (its compositor misses the capture deadline on a loaded machine, seen once in CI
    with a 5,000-line build log on the page), the reason is saved beside it and reported as a
    note (``<name>.failed.txt``) instead of failing a test whose checks have all passed.
    """
    path = ARTIFACTS / f"{name}.png"
    errors: list[str] = []
    for full_page in (True, False, False):
        try:
            page.screenshot(path=str(path), full_page=full_page)
        except PlaywrightError as exc:
            # Chromium cannot capture some pages whole (past its texture limit) and sometimes
            # misses a capture under load: the window next, then the window once more.
            errors.append(str(exc).splitlines()[0])
            continue
        return path
    failed = path.with_suffix(".failed.txt")
    failed.write_text("\n".join(errors) + "\n")
    print(f"no screenshot {path.name}: {errors[-1]}")
    return failed


def check_accessibility(page: Page, screen: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation of WCAG 2.1 A/AA;
    and the page fits its window's width (WCAG 1.4.10 reflow: no sideways scrolling of the
    page; wide tables and logs scroll inside their own boxes)."""
    wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], f"{screen}: the page is {wide[0]} px wide in a {wide[1]} px window"
    _require(AXE, "axe-core (web/node_modules)")
    page.evaluate(AXE.read_text())  # evaluated by the driver: the page's CSP allows no inline script
    result: dict[str, Any] = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"],
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    (ARTIFACTS / f"{screen}.axe.json").write_text(json.dumps(result["violations"], indent=1))
    assert not bad, f"{screen}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in bad
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
