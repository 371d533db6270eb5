"""``slicewise select`` and ``POST /api/select``: the same selection as the library, and a batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from slicewise.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    """8 rows, k0..k2 labelled; a 2-class radio run with probabilities; p(cat) of k_i is P[i]."""
    import slicewise

    p = tmp_path_factory.mktemp("sel") / "ws.duckdb"
    with slicewise.open(p) as ws:
        ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(8)])
        ws.create_feature("pet", "radio", ["cat", "dog"])
        ws.add_annotations([{"data_row": f"k{i}", "feature": "pet", "answer": "cat"} for i in range(3)])
        run = ws.create_run("clf", "v1")
        ws.add_predictions(run, [{"data_row": f"k{i}", "feature": "pet", "answer": "cat" if c >= 0.5 else "dog",
                                  "confidence": max(c, 1 - c), "probabilities": [c, 1 - c]}
                                 for i, c in enumerate(P)])
    return p


P = [0.5, 0.9, 0.6, 0.97, 0.52, 0.3, 0.8, 0.45]
# unlabelled k3..k7; least confidence 1 - max(c, 1 - c): k3 0.03, k4 0.48, k5 0.3, k6 0.2, k7 0.45
WANT = ["k4", "k7", "k5"]


def test_cli_select_prints_and_makes_a_batch(path):
    res = runner.invoke(app, ["select", "clf/v1", "--pool", "annotation is none", "--n", "3", "--strategy",
                              "least-confidence", "--batch", "next up", "-w", str(path)])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if any(k in ln for k in WANT)]
    assert [next(k for k in WANT if k in ln) for ln in lines] == WANT
    assert "0.48" in lines[0] and "batch next up: 3 rows" in res.output
    res = runner.invoke(app, ["select", "clf/v1", "-n", "2", "--strategy", "lc", "--json", "-w", str(path)])
    out = json.loads(res.output)
    assert [r["global_key"] for r in out["rows"]] == WANT[:2]
    assert [r["score"] for r in out["rows"]] == pytest.approx([0.48, 0.45])
    res = runner.invoke(app, ["select", "clf/v1", "--strategy", "entropie", "-w", str(path)])
    assert res.exit_code != 0 and "unknown strategy 'entropie'" in str(res.exception)
    assert "did you mean 'entropy'" in str(res.exception)


def test_api_select(path):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    with TestClient(create_app(path)) as c:
        r = c.post("/api/select", json={"run": "clf/v1", "n": 3, "strategy": "least_confidence"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["global_key"] for x in body["rows"]] == WANT and body["pool_size"] == 5
        assert [x["score"] for x in body["rows"]] == pytest.approx([0.48, 0.45, 0.3])
        # margin and entropy rank two classes the same way as least confidence
        for s in ("margin", "entropy"):
            assert [x["global_key"] for x in c.post("/api/select", json={"run": "clf/v1", "n": 3, "strategy": s})
                    .json()["rows"]] == WANT
        r = c.post("/api/select", json={"run": "clf/v1", "n": 2, "strategy": "margin", "batch": "api batch",
                                        "note": "from the API"})
        assert r.json()["batch"] == "api batch"
        ws = c.app.state.sw.ws
        from slicewise.curation.batches import batch_keys, get_batch

        assert batch_keys(ws, "api batch") == WANT[:2] and get_batch(ws, "api batch").note == "from the API"
        r = c.post("/api/select", json={"run": "clf/v1", "n": 2, "strategy": "diversity"})
        assert r.status_code == 404 and "embedding space" in r.text
        r = c.post("/api/select", json={"run": "clf/v1", "n": 0})
        assert r.status_code == 422
        r = c.post("/api/select", json={"run": "nope/v9", "n": 2})
        assert r.status_code == 404
    assert np.isclose(1 - max(P[4], 1 - P[4]), 0.48)
