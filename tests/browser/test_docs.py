"""/docs in a real browser: Swagger UI renders the operations list from files served by slicewise itself.

Every request the page makes is recorded; any that leaves 127.0.0.1 fails the test (and is aborted, so
the test does not wait on a network). Runs on an empty workspace: it needs the web build and Chromium,
not the shared datasets."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from .conftest import CHROMIUM, ROOT, LiveServer, _free_port, shot

pytestmark = pytest.mark.browser

SWAGGER = ROOT / "src" / "slicewise" / "server" / "static" / "swagger" / "swagger-ui-bundle.js"
LOCAL_SCHEMES = ("data", "blob", "about")


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory):
    from pathlib import Path

    from slicewise.server import create_app

    if not SWAGGER.exists():
        pytest.skip("the web build has no Swagger UI files (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    with LiveServer(create_app(tmp_path_factory.mktemp("docs") / "empty.duckdb"), _free_port()) as srv:
        yield srv


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.scheme in ("http", "https", "ws", "wss")
                                             and parts.hostname == "127.0.0.1")


def test_docs_render_offline_from_local_files(docs_server, browser):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    seen: list[str] = []
    outside: list[str] = []

    def guard(route):  # every request passes here first: anything not on 127.0.0.1 is refused
        if is_local(route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ctx.route("**/*", guard)
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: seen.append(r.url))
    try:
        page.goto(docs_server.url + "/docs")
        want = sum(len(ops) for ops in docs_server.app.openapi()["paths"].values())
        rendered = True
        try:
            page.wait_for_function("n => document.querySelectorAll('.opblock').length === n", arg=want)
        except PlaywrightTimeout:
            rendered = False
        shot(page, "docs", full_page=False)
        titles = page.locator(".opblock-summary-path").all_inner_texts() if rendered else []
    finally:
        ctx.close()

    leaving = sorted({u for u in seen if not is_local(u)} | set(outside))
    assert not leaving, f"/docs requested files from outside 127.0.0.1: {leaving}"
    assert rendered, f"Swagger UI did not render the {want} operations (requests: {seen})"
    assert any(f"{docs_server.url}/swagger/" in u for u in seen)  # the bundle came from slicewise
    assert any(u.endswith("/openapi.json") for u in seen)
    assert any("/api/rows" in t for t in titles)
    assert not errors, f"JavaScript errors in the page: {errors}"
