"""API fuzzing with schemathesis (issue 14, item 8): requests generated from the server's own ``/openapi.json``
(valid and invalid values of every parameter and body) against the app on a small real workspace (rows with
metadata and tags, three features, a run with computed metrics, slices), every operation. Every response must
be a non-5xx answer that matches the schema (documented status code, content type and body).

CI tries ``SW_FUZZ_EXAMPLES`` cases per operation (default 8); ``benchmarks/fuzz_api.py`` is the larger run
(same code: this test imports it).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis")

EXAMPLES = int(os.environ.get("SW_FUZZ_EXAMPLES", "8"))
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_api.py"


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("sw_fuzz_api", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod


def test_every_operation_answers_without_5xx_and_within_its_schema(tmp_path):
    from slicewise.server import create_app

    fz = _fuzz_module()
    app = create_app(fz.build_workspace(tmp_path / "fuzz.duckdb"))
    try:
        report = fz.fuzz(app, EXAMPLES)
    finally:
        app.state.sw.ws.close()
    fuzzed = {o.label for o in report.operations}
    documented = {f"{m.upper()} {p}" for p, ops in app.openapi()["paths"].items() for m in ops}
    assert fuzzed == documented  # every operation
    assert all(o.cases >= 1 for o in report.operations)
    assert report.cases >= 100
    assert report.server_errors == 0, "\n\n".join(report.failures())
    assert report.mismatches == 0, "\n\n".join(report.failures())


def test_the_checks_can_fail():
    """The fuzzer notices a 5xx and an answer outside the schema (a route that breaks both on purpose)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    class Out(BaseModel):
        n: int

    app = FastAPI()

    @app.get("/boom", response_model=Out)
    def boom(x: int = 0) -> JSONResponse:
        if x % 2:
            raise RuntimeError("boom")
        return JSONResponse({"n": "not a number"})

    report = _fuzz_module().fuzz(app, 20)
    assert report.server_errors > 0 and report.mismatches > 0


def test_what_the_fuzzer_and_the_issue_found_is_refused_cleanly(tmp_path):
    """Regressions: ids that ``str.isdigit`` accepts but ``int`` refuses, huge ids, and the hostile queries
    of issue 14 answer 404 / 422 with slicewise's error body, never 500."""
    import json

    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    with TestClient(create_app(tmp_path / "empty.duckdb"), raise_server_exceptions=False) as c:
        for url in ("/api/runs/²", "/api/runs/99999999999999999999999", "/api/slices/²",
                    "/api/slices/99999999999999999999999", "/api/runs/²/metrics/features"):
            r = c.get(url)
            assert r.status_code == 404, (url, r.status_code, r.text)
            assert r.json()["error"] == "NotFoundError"
        r = c.get("/api/query/parse", params={"text": "not " * 1000 + "iou < 0.5"})
        assert r.status_code == 422 and "at most 100" in r.json()["detail"]
        cond = json.dumps({"type": "cond", "field": "split", "op": "=", "value": "x"})
        # 500 levels: slicewise's limit; 100,000: deeper than Python's json reads (FastAPI answers 400)
        for depth, codes, want in ((500, (422,), "500 levels deep"), (100_000, (400, 422), "")):
            body = '{"type": "not", "of": ' * depth + cond + "}" * depth
            r = c.post("/api/query/text", content=body, headers={"content-type": "application/json"})
            assert r.status_code in codes, (depth, r.status_code, r.text[:300])
            assert want in r.text
        nan = '{"type": "cond", "field": "split", "op": "=", "value": NaN}'
        r = c.post("/api/query/text", content=nan, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "not a finite number" in r.json()["detail"]
        r = c.get("/api/rows", params={"q": "metadata.x < 1e999"})
        assert r.status_code == 422
