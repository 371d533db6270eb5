"""``slicewise mistakes`` / ``slicewise verdict`` and the label-mistake API, against the library's own
reading of the same workspace and hand-counted verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from slicewise.cli import app

runner = CliRunner()


def _cli(*args):
    """(exit code, output); slicewise's own errors as `main` prints them (exit 2, the message)."""
    from slicewise.errors import SlicewiseError

    res = runner.invoke(app, list(args))
    if isinstance(res.exception, SlicewiseError):
        return 2, str(res.exception)
    return res.exit_code, res.output


def test_cli(built):
    import slicewise
    from slicewise import mistakes

    path, (ids, *_rest) = built
    with slicewise.open(path) as ws:
        flagged = mistakes.scores(ws, "m/v1", "cleanlab")
        fl_keys = [ws.data_rows(ids=[int(i)])[0].global_key for i in flagged.ids[flagged.flagged]]
        top = flagged.top(3)
    code, out = _cli("mistakes", "m/v1", "-w", str(path), "--json")
    assert code == 0, out
    got = {d["detector"]: d for d in json.loads(out)["detectors"]}
    assert got["cleanlab"]["flagged"] == len(fl_keys) and got["cleanlab"]["precision"] is None
    assert json.loads(out)["space"] == "vec" and set(got) == {"cleanlab", "knn", "combined"}
    code, out = _cli("verdict", "confirmed", fl_keys[0], fl_keys[1], "-w", str(path))
    assert code == 0 and "confirmed: 2 data row(s)" in out
    code, out = _cli("verdict", "rejected", fl_keys[2], "-w", str(path))
    assert code == 0
    code, out = _cli("mistakes", "m/v1", "-w", str(path), "--json")
    got = {d["detector"]: d for d in json.loads(out)["detectors"]}
    assert (got["cleanlab"]["confirmed"], got["cleanlab"]["rejected"]) == (2, 1)
    assert got["cleanlab"]["precision"] == pytest.approx(2 / 3)
    code, out = _cli("mistakes", "m/v1", "-w", str(path))
    assert code == 0 and "cleanlab" in out and "0.667" in out and "3 rows reviewed" in out
    code, out = _cli("mistakes", "m/v1", "--detector", "cleanlab", "--top", "3", "-w", str(path), "--json")
    rows = json.loads(out)["rows"]
    assert [r["score"] for r in rows] == [round(v, 6) for _, v in top] and all(r["flagged"] for r in rows)
    code, out = _cli("mistakes", "m/v1", "--detector", "oracle", "-w", str(path))
    assert code == 2 and "no label-mistake detector 'oracle'" in out
    code, out = _cli("verdict", "maybe", fl_keys[0], "-w", str(path))
    assert code == 2 and "unknown verdict" in out
    code, out = _cli("verdict", "confirmed", "no-such-row", "-w", str(path))
    assert code == 2
    code, out = _cli("verdict", "clear", *fl_keys[:3], "-w", str(path))
    assert code == 0


def test_api(built):
    from fastapi.testclient import TestClient

    import slicewise
    from slicewise.server import create_app

    path, (ids, *_rest) = built
    with TestClient(create_app(path)) as c:
        ws = c.app.state.sw.ws
        run = ws.run("m/v1")
        from slicewise import mistakes

        knn = mistakes.scores(ws, run, "knn")
        s = c.get(f"/api/runs/{run.id}/mistakes").json()
        assert {d["detector"]: d["flagged"] for d in s["detectors"]}["knn"] == int(knn.flagged.sum())
        rows = c.get(f"/api/runs/{run.id}/mistakes/knn", params={"top": 5, "all": True}).json()["rows"]
        np.testing.assert_allclose([r["score"] for r in rows], np.sort(knn.score)[::-1][:5])
        first = rows[0]["id"]
        r = c.post("/api/mistakes/verdicts", json={"ids": [first], "verdict": "confirmed"})
        assert r.status_code == 200 and r.json()["tags"] == {"mistake-confirmed": 1}
        one = c.get(f"/api/runs/{run.id}/rows/{first}/mistakes").json()
        k = int(np.searchsorted(knn.ids, first))
        assert one["scores"]["knn"] == pytest.approx(knn.score[k]) and one["verdict"] == "confirmed"
        s = c.get(f"/api/runs/{run.id}/mistakes").json()
        d = {d["detector"]: d for d in s["detectors"]}["knn"]
        assert (d["confirmed"], d["precision"]) == ((1, 1.0) if knn.flagged[k] else (0, None))
        assert c.post("/api/mistakes/verdicts", json={"ids": [10**9], "verdict": "rejected"}).status_code == 404
        assert c.post("/api/mistakes/verdicts", json={"ids": [first], "verdict": "maybe"}).status_code == 422
        assert c.get(f"/api/runs/{run.id}/mistakes/oracle").status_code == 422
        q = c.get("/api/rows", params={"run": run.id, "q": "mistake.knn.flagged = 1", "limit": 500}).json()
        assert q["total"] == int(knn.flagged.sum())
        c.post("/api/mistakes/verdicts", json={"ids": [first], "verdict": "clear"})
    with slicewise.open(path) as ws:
        assert ws.tags() == {}
