"""The comparison over HTTP: /api/compare, /api/compare/flips and the gallery's baseline predictions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from slicewise.server import create_app


def test_compare_endpoints(pair_file):
    path, base_id, _ = pair_file
    with TestClient(create_app(path)) as c:
        q = {"baseline": "m/base", "run": "m/new", "confidence": 0.5, "iou": 0.5, "boot": 100}
        got = c.get("/api/compare", params=q).json()
        assert got["flips"] == {"tp->fn": 1, "fn->tp": 1, "fp-new": 2, "fp-gone": 1, "class": 1, "iou": 1}
        cat = next(g for g in got["classes"] if g["name"] == "cat")
        assert cat["metrics"]["recall"]["baseline"] == 0.8 and cat["metrics"]["recall"]["run"] == 0.6
        assert cat["filter"] == "has:cat or predicted:cat" and got["rows"] == 7
        fl = c.get("/api/compare/flips", params={**q, "flip": "class"}).json()
        assert [(f["global_key"], f["baseline"]["class"], f["run"]["class"]) for f in fl] == [("c", "cat", "dog")]
        # the gallery: rows with a flip, each with both runs' predictions
        page = c.get("/api/rows", params={"run": "m/new", "baseline": "m/base", "confidence": 0.5, "iou": 0.5,
                                          "q": "flip:tp->fn or flip:class"}).json()
        assert page["baseline"] == base_id
        by = {r["global_key"]: r for r in page["rows"]}
        assert set(by) == {"a", "c"}
        assert by["a"]["predictions"] == [] and [p["outcome"] for p in by["a"]["baseline_predictions"]] == ["TP"]
        assert [p["feature"] for p in by["c"]["predictions"]] == ["dog"]
        assert [(p["feature"], p["outcome"]) for p in by["c"]["baseline_predictions"]] == [("cat", "TP")]
        # without a baseline: no baseline predictions; a flip filter is a clear 4xx
        page = c.get("/api/rows", params={"run": "m/new"}).json()
        assert page["baseline"] is None and all(r.get("baseline_predictions") is None for r in page["rows"])
        r = c.get("/api/rows", params={"run": "m/new", "q": "flip:tp->fn"})
        assert r.status_code == 422 and "compare with" in r.text
        assert c.get("/api/compare", params={**q, "run": "m/nope"}).status_code == 404
