"""Browser tests: the real server (uvicorn, in a thread) on a workspace built from ../shared/data/indoor-85,
driven by Playwright with Debian's Chromium. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from indoor_workspace import build_indoor  # noqa: F401 (make_screenshots imports it from here)

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "slicewise" / "server" / "static" / "index.html"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "artifacts" / "screenshots"


class LiveServer:
    def __init__(self, app, port: int) -> None:
        import uvicorn

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def ws(self):
        return self.app.state.sw.ws


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def browser_template(shared_data, tmp_path_factory) -> Path:
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    return build_indoor(tmp_path_factory.mktemp("indoor-browser") / "indoor.duckdb", shared_data)


@pytest.fixture(scope="module")
def live(browser_template, tmp_path_factory):
    from slicewise.server import create_app

    path = tmp_path_factory.mktemp("live") / "indoor.duckdb"
    shutil.copy(browser_template, path)
    with LiveServer(create_app(path), _free_port()) as srv:
        yield srv


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not STATIC.exists():  # (every page the tests open is the web app's)
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_page(browser):
    """A fresh 1440x900 page; fails the test afterwards if the page raised a JavaScript error."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def page(live, browser):
    yield from open_page(browser)


def shot(page, name: str, *, full_page: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / f"{name}.png"
    page.screenshot(path=str(out), full_page=full_page)
    return out


@pytest.fixture
def snap():
    """``snap(page, name)``: save a screenshot under artifacts/screenshots/."""
    return shot
