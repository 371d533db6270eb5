"""The browser shows what a CLI command wrote through the server, after a reload and without a restart:
a real ``slicewise serve`` subprocess, the gallery in Chromium, and ``slicewise import`` in a subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from served_workspace import ServerProcess, cli, write_coco, write_pngs

from .conftest import CHROMIUM, STATIC, open_page, shot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    folder = tmp_path_factory.mktemp("served-gallery")
    keys = [f"b{i}" for i in range(6)]
    write_pngs(folder, keys)
    write_coco(folder, "base.json", keys)
    res = cli("import", "coco", "base.json", "-w", "ws.duckdb", cwd=folder)
    assert res.returncode == 0, res.stderr
    server = ServerProcess(folder / "ws.duckdb")
    yield folder, server
    server.stop()


def total(page) -> int:
    return int(re.sub(r"\D", "", page.get_by_test_id("total").inner_text()) or 0)


def test_a_cli_import_shows_in_the_gallery_after_a_reload(served, browser):
    folder, server = served
    pages = open_page(browser)
    page = next(pages)
    try:
        page.goto(server.url + "/data")
        page.locator('.tile[data-key="b0.png"]').wait_for()
        assert total(page) == 6
        more = [f"m{i}" for i in range(4)]
        write_pngs(folder, more)
        write_coco(folder, "more.json", more)
        res = cli("import", "coco", "more.json", "-w", "ws.duckdb", cwd=folder, env={"SLICEWISE_WAIT": "0"})
        assert res.returncode == 0 and res.stdout.startswith("imported 4 data rows"), res.stderr
        page.reload()
        page.wait_for_function("() => (document.querySelector('[data-testid=total]')?.innerText || '')"
                               ".replace(/\\D/g, '') === '10'")
        new = page.locator('.tile[data-key="m3.png"]')
        new.wait_for()
        page.wait_for_function("() => { const i = document.querySelector('.tile[data-key=\"m3.png\"] img');"
                               " return i && i.complete && i.naturalWidth > 0 }")  # its thumbnail, from the same server
        shot(page, "gallery-after-cli-import")
    finally:
        next(pages, None)
