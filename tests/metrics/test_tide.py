"""TIDE error types: each type on a hand-built case with its classification and dAP worked out by hand,
the query language's ``error:<type>`` and ``overconfident`` on them, and agreement with hotcoco's
``COCOeval.tide_errors`` (the oracle, computed in the test) on generated COCO-like data."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from cocoref import build
from typer.testing import CliRunner

import slicewise
from slicewise import metrics, query
from slicewise.errors import MetricsError, QueryError
from slicewise.metrics.tide import ERROR_TYPES, SHORT, error_types
from slicewise.view import View

# a 10 x 10 box at x, shifted by dx: IoU with the unshifted one = (10 - dx) / (10 + dx)
A = [0.0, 0.0, 10.0, 10.0]
FAR = [100.0, 100.0, 10.0, 10.0]


def shift(dx: float, box: list[float] = A) -> list[float]:
    return [box[0] + dx, box[1], box[2], box[3]]


# dx = 5: IoU 1/3 (in [0.1, 0.5]: localization territory); dx = 2: IoU 2/3 (a match at 0.5)
# COCO AP with n labels: 101 recall thresholds, the interpolated precision at each
R = 101

CASES: dict[str, dict[str, Any]] = {
    # a "b" box exactly on an "a" label: classification; its fix moves it to "a" as a TP: AP(a) 0 -> 1
    "classification": dict(labels=[("a", A)], preds=[("b", A, 0.9)], counts={"classification": 1},
                           ap=0.0, dap={"classification": 1.0}, over=0.9),
    # an "a" box at IoU 1/3 ranked above the TP on the same label: localization; the label is already
    # matched, so the fix removes it: AP [FP, TP] / 1 label = 0.5 -> 1
    "localization": dict(labels=[("a", A)], preds=[("a", shift(5), 0.9), ("a", A, 0.8)],
                         counts={"localization": 1}, ap=0.5, dap={"localization": 0.5}, over=0.9),
    # a "b" box at IoU 1/3 with an "a" label (and none of b there): both; b's AP [FP, TP] = 0.5 -> 1 when
    # it is removed, a's AP stays 1: mean dAP 0.25
    "both": dict(labels=[("a", A), ("b", FAR)], preds=[("b", shift(5), 0.9), ("b", FAR, 0.8), ("a", A, 0.7)],
                 counts={"both": 1}, ap=0.75, dap={"both": 0.25}, over=0.9),
    # a second "a" box on a matched label at IoU 2/3: duplicate. [TP, FP, TP] / 2 labels: precision 1 up
    # to recall 0.5 (51 thresholds), 2/3 above (50): AP (51 + 50 * 2/3) / 101 -> 1 when removed
    "duplicate": dict(labels=[("a", A), ("a", FAR)], preds=[("a", A, 0.9), ("a", shift(2), 0.8), ("a", FAR, 0.7)],
                      counts={"duplicate": 1}, ap=(51 + 50 * 2 / 3) / R, dap={"duplicate": 1 - (51 + 50 * 2 / 3) / R},
                      over=0.8),
    # an "a" box overlapping nothing ranked above a TP: background: 0.5 -> 1
    "background": dict(labels=[("a", A)], preds=[("a", FAR, 0.9), ("a", A, 0.8)], counts={"background": 1},
                       ap=0.5, dap={"background": 0.5}, over=0.9),
    # a label nothing overlaps: missed; [TP] / 2 labels: AP 51 / 101 -> 1 with the label dropped
    "missed": dict(labels=[("a", A), ("a", FAR)], preds=[("a", A, 0.9)], counts={"missed": 1},
                   ap=51 / R, dap={"missed": 50 / R}, over=0.0),
}


def _workspace(path: Any, rows: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    ws = slicewise.open(path)
    ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.jpg", "width": 200, "height": 200} for k in rows])
    for f in ("a", "b"):
        ws.create_feature(f, "bbox")
    ws.add_annotations([{"data_row": k, "feature": f, "bbox": list(b)} for k, c in rows.items() for f, b in c["labels"]])
    run = ws.create_run("det", "v1")
    ws.add_predictions(run, [{"data_row": k, "feature": f, "bbox": list(b), "confidence": s}
                             for k, c in rows.items() for f, b, s in c["preds"]])
    ws.add_run_rows(run, list(rows))
    return ws, run


@pytest.mark.parametrize("name", list(CASES))
def test_each_error_type_by_hand(tmp_path, name):
    case = CASES[name]
    ws, run = _workspace(tmp_path / "ws.duckdb", {name: case})
    try:
        res = error_types(ws, run, 0.0, 0.5)
        want = {t: case["counts"].get(t, 0) for t in ERROR_TYPES}
        assert dict(res.overall.counts) == want
        assert res.overall.ap == pytest.approx(case["ap"], abs=1e-9)
        for t in ERROR_TYPES:
            assert res.overall.dap[t] == pytest.approx(case["dap"].get(t, 0.0), abs=1e-9), t
        # the classes: prediction errors count for the predicted class; a class without labels has no AP
        if name == "classification":
            by = {c.name: c for c in res.classes}
            assert by["b"].counts["classification"] == 1 and by["b"].ap is None and by["b"].dap["classification"] is None
            assert by["a"].n_labels == 1 and by["a"].dap["classification"] == pytest.approx(1.0)
    finally:
        ws.close()


def test_thresholds_move_the_types(tmp_path):
    ws, run = _workspace(tmp_path / "ws.duckdb", {"loc": CASES["localization"], "dup": CASES["duplicate"]})
    try:
        # at t_f = 0.3 the IoU-1/3 box (ranked first, 0.9) takes the label, and the exact box (0.8) becomes a
        # duplicate of it
        res = error_types(ws, run, 0.0, 0.3)
        assert res.overall.counts["localization"] == 0 and res.overall.counts["duplicate"] == 2
        # at t_f = 0.7 the IoU-2/3 duplicate is a localization error instead
        res = error_types(ws, run, 0.0, 0.7)
        assert res.overall.counts["duplicate"] == 0 and res.overall.counts["localization"] == 2
        # predictions below c are not seen: at c = 0.85 only the 0.9 boxes are kept
        res = error_types(ws, run, 0.85, 0.5)
        assert res.overall.n_predictions == 2 and res.overall.counts["localization"] == 1
        assert res.overall.counts["missed"] == 1  # dup's FAR label; loc's label is covered by its Loc error
        with pytest.raises(MetricsError, match="background IoU"):
            error_types(ws, run, 0.0, 0.05)
    finally:
        ws.close()


def test_error_filters_and_overconfident(tmp_path):
    rows = dict(CASES)
    rows["clean"] = dict(labels=[("a", A)], preds=[("a", A, 0.95)])
    ws, run = _workspace(tmp_path / "ws.duckdb", rows)
    try:
        for t in ERROR_TYPES:
            assert {r.global_key for r in View(run=run, filter=f"error:{t}", confidence=0.0, iou=0.5).resolve(ws)
                    .page(100).rows} == {t}, t
        assert {r.global_key for r in View(run=run, filter="error:any", confidence=0.0, iou=0.5).resolve(ws)
                .page(100).rows} == set(CASES)
        assert query.count(ws, run, "error:Loc or error:dupe", 0.0, 0.5) == 2
        assert query.count(ws, run, "not error:any", 0.0, 0.5) == 1
        page = View(run=run, filter="overconfident > 0", sort="-overconfident, global_key", confidence=0.0,
                    iou=0.5).resolve(ws).page(100)
        want = sorted(((-c["over"], k) for k, c in CASES.items() if c["over"] > 0))
        assert [r.global_key for r in page.rows] == [k for _, k in want]
        # the per-type counts over a view's rows: the localization row alone
        rows_sql = View(run=run, filter="error:localization", confidence=0.0, iou=0.5).resolve(ws).rows_sql()
        sub = error_types(ws, run, 0.0, 0.5, rows=rows_sql)
        assert sub.n_rows == 1 and sub.overall.counts["localization"] == 1 and sub.overall.ap == pytest.approx(0.5)
        with pytest.raises(QueryError, match="unknown error type"):
            query.count(ws, run, "error:typo", 0.0, 0.5)
        with pytest.raises(QueryError, match="needs a model run"):
            query.count(ws, None, "error:missed", 0.0, 0.5)
        f = query.parse("error:missed and not error:any")
        assert query.parse(query.to_text(f)) == f and query.to_text(f).startswith("error:missed and not error:")
    finally:
        ws.close()


def test_cli_and_api(tmp_path):
    from fastapi.testclient import TestClient

    from slicewise.cli import app
    from slicewise.server import create_app

    path = tmp_path / "ws.duckdb"
    ws, run = _workspace(path, dict(CASES))
    ws.close()
    r = CliRunner().invoke(app, ["metrics", "errors", "det/v1", "--workspace", str(path), "-c", "0.5", "-t", "0.5",
                                 "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["overall"]["counts"] == {t: 1 for t in ERROR_TYPES} and d["iou"] == 0.5 and d["confidence"] == 0.5
    r = CliRunner().invoke(app, ["metrics", "errors", "det/v1", "--workspace", str(path), "--class", "b"])
    assert r.exit_code == 0 and "classification" in r.output, r.output
    with TestClient(create_app(path)) as client:
        got = client.get(f"/api/runs/{run.id}/metrics/errors", params={"confidence": 0.5, "iou": 0.5,
                                                                       "q": "error:background"})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["n_rows"] == 1 and body["overall"]["counts"]["background"] == 1 and body["filter"] == "error:background"
        bad = client.get(f"/api/runs/{run.id}/metrics/errors", params={"iou": 0.05})
        assert bad.status_code == 409 and "background IoU" in bad.text, bad.text


# -- hotcoco as the oracle -------------------------------------------------------------------------------------
def _generated(seed: int, n_img: int = 40, n_cat: int = 4) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Labels and detections near them (jittered, some with the wrong class), plus stray boxes."""
    rng = random.Random(seed)
    images = [{"id": i + 1, "width": 200, "height": 160} for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cat)]
    anns: list[dict[str, Any]] = []
    for im in images:
        for _ in range(rng.randint(0, 6)):
            w, h = rng.uniform(5, 100), rng.uniform(5, 80)
            x, y = rng.uniform(0, 200 - w), rng.uniform(0, 160 - h)
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": rng.randint(1, n_cat),
                         "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": round(w * h, 2),
                         "iscrowd": 0})
    by: dict[int, list[dict[str, Any]]] = {}
    for a in anns:
        by.setdefault(a["image_id"], []).append(a)
    res = []
    for im in images:
        for _ in range(rng.randint(0, 10)):
            if by.get(im["id"]) and rng.random() < 0.7:
                a = rng.choice(by[im["id"]])
                x, y, w, h = a["bbox"]
                s = rng.choice([2, 8, 20])
                box = [max(x + rng.uniform(-s, s), 0), max(y + rng.uniform(-s, s), 0), max(w + rng.uniform(-s, s), 1),
                       max(h + rng.uniform(-s, s), 1)]
                cat = a["category_id"] if rng.random() < 0.75 else rng.randint(1, n_cat)
            else:
                w, h = rng.uniform(5, 90), rng.uniform(5, 90)
                box, cat = [rng.uniform(0, 200 - w), rng.uniform(0, 160 - h), w, h], rng.randint(1, n_cat)
            res.append({"image_id": im["id"], "category_id": cat, "bbox": [round(v, 2) for v in box],
                        "score": round(rng.random(), 6)})
    return {"images": images, "categories": cats, "annotations": anns}, res


def _hotcoco(gt: dict[str, Any], res: list[dict[str, Any]], pos: float) -> dict[str, Any]:
    hotcoco = pytest.importorskip("hotcoco")
    cg = hotcoco.COCO(copy.deepcopy(gt))
    e = hotcoco.COCOeval(cg, cg.load_res(copy.deepcopy(res)), "bbox")
    e.evaluate()
    return dict(e.tide_errors(pos_thr=pos, bg_thr=0.1))


def _assert_agree(ours: Any, ref: dict[str, Any]) -> None:
    assert {t: ours.counts[t] for t in ERROR_TYPES} == {t: ref["counts"][SHORT[t]] for t in ERROR_TYPES}
    assert ours.ap == pytest.approx(ref["ap_base"], abs=1e-9)
    for t in ERROR_TYPES:
        assert ours.dap[t] == pytest.approx(ref["delta_ap"][SHORT[t]], abs=1e-9), t


@pytest.mark.parametrize("seed,c,t", [(1, 0.0, 0.5), (2, 0.3, 0.5), (3, 0.0, 0.75)])
def test_agrees_with_hotcoco(ws, seed, c, t):
    gt, res = _generated(seed)
    run = build(ws, gt, res, "bbox")
    ours = error_types(ws, run, c, t)
    _assert_agree(ours.overall, _hotcoco(gt, [r for r in res if r["score"] >= c], t))
    assert sum(ours.overall.counts.values()) > 50  # every type is exercised
    assert all(ours.overall.counts[e] > 0 for e in ERROR_TYPES)
    # over a subset of the rows (a view's filter): hotcoco on those images alone
    keep = {str(i) for i in range(1, 41) if i % 3}
    rows_sql = View(run=run, filter=f"global_key in ({', '.join(sorted(keep))})").resolve(ws).rows_sql()
    sub = error_types(ws, run, c, t, rows=rows_sql)
    ids = {int(k) for k in keep}
    gsub = {**gt, "images": [im for im in gt["images"] if im["id"] in ids],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}
    _assert_agree(sub.overall, _hotcoco(gsub, [r for r in res if r["score"] >= c and r["image_id"] in ids], t))
    assert metrics.error_types is error_types


def test_each_object_gets_its_type_and_the_gallery_page_carries_it(tmp_path):
    """``object_errors``: the one erroneous object of each hand-built case carries its type (by hand: the
    classification/both/background case's first prediction, the localization case's shifted box, the
    duplicate's second box, the missed case's far label); the API's page and detail objects carry it."""
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    ws, run = _workspace(tmp_path / "ws.duckdb", CASES)
    try:
        ids = {r.global_key: r.id for r in ws.data_rows()}
        got = metrics.object_errors(ws, run, list(ids.values()), 0.0, 0.5)
        preds = {(p["data_row"], p["confidence"]): int(p["id"]) for k in CASES for p in ws.predictions(run, k)}
        labels = {(a["data_row"], tuple(a["bbox"])): int(a["id"]) for k in CASES for a in ws.annotations(k)}
        want = {("prediction", preds[("classification", 0.9)]): "classification",
                ("prediction", preds[("localization", 0.9)]): "localization",
                ("prediction", preds[("both", 0.9)]): "both",
                ("prediction", preds[("duplicate", 0.8)]): "duplicate",
                ("prediction", preds[("background", 0.9)]): "background",
                ("label", labels[("missed", tuple(FAR))]): "missed"}
        assert got == want
        assert metrics.object_errors(ws, run, [ids["missed"]], 0.0, 0.5) == {("label", labels[("missed", tuple(FAR))]): "missed"}
    finally:
        ws.close()
    with TestClient(create_app(tmp_path / "ws.duckdb")) as c:
        plain = c.get("/api/rows", params={"run": 1, "limit": 50, "confidence": 0.0, "iou": 0.5}).json()
        assert not [o for r in plain["rows"] for o in r["annotations"] + r["predictions"] if o.get("error")]
        page = c.get("/api/rows", params={"run": 1, "limit": 50, "confidence": 0.0, "iou": 0.5,
                                          "error_types": True}).json()
        seen = {(src, o["id"]): o.get("error") for r in page["rows"] for src, key in (("label", "annotations"),
                ("prediction", "predictions")) for o in r[key] if o.get("error")}
        assert seen == want
        detail = c.get(f"/api/rows/{ids['missed']}", params={"run": 1, "confidence": 0.0, "iou": 0.5}).json()
        assert [a["error"] for a in detail["annotations"] if a.get("error")] == ["missed"]
