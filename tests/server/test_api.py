"""Every endpoint of the API against the library it calls, on the indoor-85 workspace (real photos,
real detector output), including the refusals: unknown ids, bad filters, oversize pages, traversal."""

from __future__ import annotations

import json

import pytest

from slicewise import metrics, query
from slicewise.errors import QueryError


def test_workspace_overview(client, app_ws):
    body = client.get("/api/workspace").json()
    assert body["counts"] == app_ws.counts()
    assert [d["name"] for d in body["datasets"]] == ["indoor-85"]
    assert {f["name"] for f in body["features"]} == {f.name for f in app_ws.features()}
    assert body["metadata_fields"]["camera"]["kind"] == "string"
    assert client.get("/api/datasets").json()[0]["name"] == "indoor-85"
    assert len(client.get("/api/features").json()) == len(app_ws.features())
    assert client.get("/api/tags").json() == app_ws.tags()


def test_runs_list_and_detail(client, app_ws):
    runs = client.get("/api/runs").json()
    assert len(runs) == 1
    r = runs[0]
    assert r["ref"] == "detector/indoor-85"
    assert r["job"]["state"] == "ready" and r["job"]["total"] == r["job"]["done"] > 0
    assert r["grids"]["confidence"] == list(metrics.grids(app_ws, r["id"])[0])
    # the headline is the whole run at the viewed thresholds: the PR curve's grid point
    curve = metrics.pr_curve(app_ws, r["id"], iou=0.5)
    k = curve.confidence.index(0.5)
    assert r["headline"]["precision"] == pytest.approx(curve.precision[k])
    assert r["headline"]["recall"] == pytest.approx(curve.recall[k])
    assert client.get(f"/api/runs/{r['id']}").json()["ref"] == r["ref"]
    assert client.get("/api/runs/detector/indoor-85").status_code == 404  # refs with '/' go by id in paths
    assert client.get("/api/runs/99").status_code == 404
    assert client.get("/api/runs/99").json()["error"] == "NotFoundError"


def test_rows_page_matches_the_library(client, app_ws):
    body = client.get("/api/rows", params={"run": 1, "q": "iou < 0.5", "sort": "confidence.max", "limit": 10}).json()
    page = query.search(app_ws, 1, "iou < 0.5", limit=10, sort="confidence.max")
    assert body["total"] == page.total
    assert [r["global_key"] for r in body["rows"]] == [r.global_key for r in page.rows]
    assert [r["sort_value"] for r in body["rows"]] == [r.sort_value for r in page.rows]
    first = body["rows"][0]
    assert [a["id"] for a in first["annotations"]] == [a["id"] for a in app_ws.annotations(first["global_key"])]
    assert [p["id"] for p in first["predictions"]] == [p["id"] for p in app_ws.predictions(1, first["global_key"])]
    # the next page continues where this one stopped
    nxt = client.get("/api/rows", params={"run": 1, "q": "iou < 0.5", "sort": "confidence.max", "limit": 10,
                                          "offset": 10}).json()
    page2 = query.search(app_ws, 1, "iou < 0.5", limit=10, offset=10, sort="confidence.max")
    assert [r["global_key"] for r in nxt["rows"]] == [r.global_key for r in page2.rows]


def test_rows_without_run_and_by_dataset(client, app_ws):
    body = client.get("/api/rows", params={"limit": 500, "overlays": False}).json()
    assert body["total"] == app_ws.counts()["data_rows"]
    assert all(r["predictions"] == [] for r in body["rows"])
    ds = client.get("/api/rows", params={"dataset": "indoor-85", "q": 'metadata.camera = "cam-1"'}).json()
    assert ds["total"] == query.count(app_ws, None, 'metadata.camera = "cam-1"')
    ids = client.get("/api/rows/ids", params={"run": 1, "q": "fp > 0"}).json()
    assert ids["total"] == len(ids["ids"]) == query.count(app_ws, 1, "fp > 0")


def test_bad_filter_is_422_with_the_parsers_message(client):
    with pytest.raises(QueryError) as exc:
        query.parse("iou <")
    res = client.get("/api/rows", params={"run": 1, "q": "iou <"})
    assert res.status_code == 422
    assert res.json()["message"] == exc.value.message
    res = client.get("/api/query/parse", params={"text": "iou <"})
    assert res.status_code == 422 and res.json()["message"] == exc.value.message
    res = client.get("/api/rows", params={"run": 1, "q": "nosuchfield > 1"})
    assert res.status_code == 422 and "nosuchfield" in res.json()["detail"]
    assert client.get("/api/rows", params={"run": 1, "sort": "-nosuch"}).status_code == 422


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"limit": 10**9}, {"offset": -1},
                                    {"confidence": 1.5}, {"limit": "many"}])
def test_oversize_or_invalid_pages_are_refused(client, params):
    res = client.get("/api/rows", params={"run": 1, **params})
    assert res.status_code == 422


def test_row_detail(client, app_ws):
    row = app_ws.data_rows(limit=1)[0]
    body = client.get(f"/api/rows/{row.id}", params={"run": 1}).json()
    assert body["global_key"] == row.global_key
    assert [a["feature"] for a in body["annotations"]] == [a["feature"] for a in app_ws.annotations(row.global_key)]
    assert [p["confidence"] for p in body["predictions"]] == [p["confidence"] for p in app_ws.predictions(1, row.global_key)]
    page = query.search(app_ws, 1, f'global_key = "{row.global_key}"', sort="tp, fp, fn")
    assert [body["metrics"][k] for k in ("tp", "fp", "fn")] == page.rows[0].sort_values
    assert client.get("/api/rows/999999").status_code == 404
    assert client.get("/api/rows/abc").status_code == 422


def test_tags_add_and_remove(client, app_ws):
    rows = app_ws.data_rows(limit=3)
    res = client.post("/api/tags", json={"ids": [r.id for r in rows], "tags": ["re-label"]})
    assert res.status_code == 200 and res.json()["added"] == 3
    assert app_ws.tags()["re-label"] == 3
    assert client.get("/api/rows", params={"q": "tag:re-label"}).json()["total"] == 3
    res = client.post("/api/tags/remove", json={"keys": [rows[0].global_key], "tags": ["re-label"]})
    assert res.json()["removed"] == 1 and app_ws.tags()["re-label"] == 2
    assert client.post("/api/tags", json={"ids": [999999], "tags": ["x"]}).status_code == 404
    assert client.post("/api/tags", json={"ids": [rows[0].id], "tags": []}).status_code == 422


def test_facets(client, app_ws):
    body = client.get("/api/facets", params={"run": 1, "q": "fp > 0"}).json()
    ref = query.facets(app_ws, 1, "fp > 0")
    assert body["total"] == ref.total and body["split"] == ref.split
    assert body["histograms"]["iou"]["counts"] == ref.histograms["iou"].counts


def test_metrics_views_match_the_library(client, app_ws):
    body = client.get("/api/runs/1/metrics/features", params={"confidence": 0.3, "iou": 0.5}).json()
    coco = ("ap", "ap50", "ap75", "ar")  # the COCO columns: tests/server/test_row_matches_api.py
    assert [{k: v for k, v in f.items() if k not in coco} for f in body["features"]] == \
        json.loads(json.dumps(metrics.feature_metrics(app_ws, 1, 0.3, 0.5).to_dict()["features"]))
    cm = client.get("/api/runs/1/metrics/confusion", params={"confidence": 0.3, "iou": 0.5}).json()["matrix"]
    ref = metrics.confusion_matrix(app_ws, 1, 0.3, 0.5).to_dict()
    assert cm["classes"] == ref["classes"] and cm["classes"][-1] == "None" and cm["counts"] == ref["counts"]
    pr = client.get("/api/runs/1/metrics/pr", params={"feature": "chair"}).json()["curve"]
    ref_pr = metrics.pr_curve(app_ws, 1, feature="chair", iou=0.5)
    assert pr["precision"] == list(ref_pr.precision) and pr["best_confidence"] == ref_pr.best_confidence
    # restricted to a filter: the library's rows= with the query's row_ids_sql
    sub = client.get("/api/runs/1/metrics/features", params={"q": 'split = "valid"'}).json()["features"]
    ref_sub = metrics.feature_metrics(app_ws, 1, 0.5, 0.5, rows=query.row_ids_sql(app_ws, 1, 'split = "valid"'))
    assert [{k: v for k, v in f.items() if k not in coco} for f in sub] == json.loads(json.dumps(ref_sub.to_dict()["features"]))
    assert client.get("/api/runs/1/metrics/pr", params={"feature": "nosuch"}).status_code == 404
    assert client.get("/api/runs/1/metrics/features", params={"confidence": 0.55}).status_code in (409, 422)


def test_confusion_cell_rows(client, app_ws):
    ref = metrics.confusion_matrix(app_ws, 1, 0.5, 0.5)
    i = ref.classes.index("chair")
    cell = json.dumps(["chair", "None"])
    body = client.get("/api/rows", params={"run": 1, "cell": cell, "limit": 500, "overlays": False}).json()
    sql, params = metrics.confusion_cell_rows(app_ws, 1, 0.5, 0.5, "chair", "None")
    want = {r[0] for r in app_ws.sql(sql, params).fetchall()}
    assert ref.counts[i][-1] > 0
    assert {r["id"] for r in body["rows"]} == want and body["total"] == len(want)
    assert client.get("/api/rows", params={"run": 1, "cell": "chair"}).status_code == 422
    assert client.get("/api/rows", params={"run": 1, "cell": '["nosuch", "None"]'}).status_code == 404


def test_query_parse_and_print(client):
    body = client.get("/api/query/parse", params={"text": "iou<0.5 AND has:chair"}).json()
    assert body["text"] == "iou < 0.5 and has:chair" and body["clauses"] == ["iou < 0.5", "has:chair"]
    assert client.post("/api/query/text", json=body["ast"]).json()["text"] == body["text"]
    assert client.get("/api/query/sort", params={"text": "-iou"}).json()["sort"][0]["desc"] is True


def test_slices_crud_and_auto(client, app_ws):
    from slicewise import slices

    res = client.post("/api/slices", json={"name": "low iou", "filter": "iou < 0.3", "description": "d"})
    assert res.status_code == 201
    s = res.json()
    listed = client.get("/api/slices", params={"run": 1}).json()
    assert [x["name"] for x in listed] == ["low iou"]
    assert listed[0]["count"] == query.count(app_ws, 1, "iou < 0.3")
    assert client.post("/api/slices", json={"name": "LOW IOU", "filter": ""}).status_code == 409
    assert client.post("/api/slices", json={"name": "ab", "filter": ""}).status_code == 422
    assert client.post("/api/slices", json={"name": "x" * 31, "filter": ""}).status_code == 422
    assert client.post("/api/slices", json={"name": "broken", "filter": "iou <"}).status_code == 422
    up = client.patch(f"/api/slices/{s['id']}", json={"filter": "iou < 0.2", "description": "lower"}).json()
    assert up["filter"] == "iou < 0.2" and slices.get_slice(app_ws, s["id"]).description == "lower"
    assert client.get(f"/api/slices/{s['id']}").json()["name"] == "low iou"
    # the gallery of an open slice (no q) uses the slice's filter
    rows = client.get("/api/rows", params={"run": 1, "slice": s["id"], "overlays": False}).json()
    assert rows["total"] == query.count(app_ws, 1, "iou < 0.2")
    assert client.delete(f"/api/slices/{s['id']}").status_code == 200
    assert client.get(f"/api/slices/{s['id']}").status_code == 404
    auto = client.get("/api/runs/1/auto-slices").json()
    ref = slices.auto_slices(app_ws, 1)
    assert [(a["name"], a["count"]) for a in auto] == [(a.name, a.count) for a in ref]
    assert client.get("/api/runs/42/auto-slices").status_code == 404


def test_media_and_thumbnails(client, app_ws):
    row = app_ws.data_rows(limit=1)[0]
    res = client.get(f"/api/media/{row.id}")
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    with open(row.row_data, "rb") as f:
        assert res.content == f.read()
    th = client.get(f"/api/thumbs/{row.id}", params={"size": 128})
    assert th.status_code == 200 and th.headers["content-type"] == "image/jpeg"
    from io import BytesIO

    from PIL import Image

    im = Image.open(BytesIO(th.content))
    assert max(im.size) == 128
    cache = client.app.state.sw.thumbs.cache_dir
    assert len(list(cache.rglob(f"{row.id}-128-*.jpg"))) == 1
    assert client.get(f"/api/thumbs/{row.id}", params={"size": 128}).content == th.content  # served from the cache
    assert client.get(f"/api/thumbs/{row.id}", params={"size": 999}).status_code == 422
    assert client.get("/api/media/999999").status_code == 404
    assert client.get("/api/thumbs/999999").status_code == 404


@pytest.mark.parametrize("url", [
    "/api/media/..%2F..%2F..%2Fetc%2Fpasswd", "/api/media/%2Fetc%2Fpasswd", "/api/thumbs/..%2F..%2Fetc%2Fpasswd",
    "/api/media/1%2F..%2F..%2Fetc%2Fpasswd", "/api/media/..%252F..%252Fetc%252Fpasswd",
])
def test_path_traversal_on_media_is_refused(client, url):
    res = client.get(url)
    assert res.status_code in (404, 422) and b"root:" not in res.content


@pytest.mark.parametrize("url", [
    "/api/media/../../etc/passwd", "/api/media/1/../../../../etc/passwd", "/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/static/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
])
def test_path_traversal_elsewhere_never_leaves_the_app(client, url):
    res = client.get(url)  # the path is normalised or falls back to the app's index.html; never a file outside
    assert b"root:" not in res.content
    assert res.status_code in (200, 404)


def test_unregistered_or_non_image_media_is_refused(client, app_ws, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    app_ws.add_data_rows("other", [{"global_key": "sneaky", "row_data": str(secret)},
                                   {"global_key": "note", "row_data": "hello world", "media_type": "text"}])
    for key in ("sneaky", "note"):
        rid = app_ws.data_row(key).id
        res = client.get(f"/api/media/{rid}")
        assert res.status_code == 404 and b"root:" not in res.content
        assert client.get(f"/api/thumbs/{rid}").status_code == 404


def test_unknown_api_path_and_spa_fallback(client):
    assert client.get("/api/nothing/here").status_code == 404
    res = client.get("/runs/1/gallery?q=iou%20%3C%200.5")
    assert res.status_code == 200 and "text/html" in res.headers["content-type"]
    assert client.get("/openapi.json").json()["info"]["title"] == "slicewise"
