"""/docs served from the static build (never a CDN), and the OpenAPI schema written without a server."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from slicewise.server import create_app
from slicewise.server import openapi as openapi_mod
from slicewise.server.docs import ASSETS, FILES


@pytest.fixture
def empty_ws(tmp_path):
    return tmp_path / "ws.duckdb"


def test_docs_without_a_build_says_to_run_make_web(empty_ws, tmp_path):
    with TestClient(create_app(empty_ws, static_dir=tmp_path / "nothing-built")) as c:
        r = c.get("/docs")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("text/html")
        assert "make web" in r.text and "/openapi.json" in r.text
        assert c.get("/openapi.json").status_code == 200  # the schema itself needs no build


def test_docs_loads_swagger_ui_from_the_static_folder(empty_ws, tmp_path):
    static = tmp_path / "static"
    (static / ASSETS).mkdir(parents=True)
    for f in FILES:
        (static / ASSETS / f).write_bytes(b"/* test */")
    with TestClient(create_app(empty_ws, static_dir=static)) as c:
        r = c.get("/docs")
        assert r.status_code == 200
        for f in FILES:
            assert f"/{ASSETS}/{f}" in r.text
        assert "http://" not in r.text and "https://" not in r.text  # nothing from a CDN
        assert '"validatorUrl": null' in r.text
        # the files themselves come from the static folder through the web app's route
        assert c.get(f"/{ASSETS}/swagger-ui-bundle.js").content == b"/* test */"
        red = c.get("/redoc", follow_redirects=False)
        assert red.status_code in (302, 307) and red.headers["location"] == "/docs"
        # neither page is an API operation
        assert not {"/docs", "/redoc"} & set(c.get("/openapi.json").json()["paths"])


def test_openapi_module_writes_the_apps_schema_and_only_rewrites_on_change(empty_ws, tmp_path):
    out = tmp_path / "out" / "openapi.json"
    assert openapi_mod.main([str(out)]) == 0
    written = json.loads(out.read_text())
    with TestClient(create_app(empty_ws, static_dir=tmp_path / "static")) as c:
        assert written == c.get("/openapi.json").json()
    assert "/api/rows" in written["paths"] and "/api/runs/{run_id}" in written["paths"]
    mtime = out.stat().st_mtime_ns
    assert openapi_mod.write(out) is False
    assert out.stat().st_mtime_ns == mtime
    out.write_text("{}")
    assert openapi_mod.write(out) is True
    assert json.loads(out.read_text()) == written


def test_openapi_module_usage(capsys):
    assert openapi_mod.main([]) == 2
    assert "usage" in capsys.readouterr().err
