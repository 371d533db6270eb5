"""The row detail endpoint lists every object with its match, IoU and outcome, as slicewise.metrics.row_matches."""

from __future__ import annotations

from slicewise import metrics


def _rows_with_objects(app_ws, n=5):
    keys = {o["data_row"] for o in app_ws.predictions(1)}
    return [r for r in app_ws.data_rows() if r.global_key in keys][:n]


def test_detail_matches_are_the_library_ones(client, app_ws):
    seen: set[str] = set()
    for row in _rows_with_objects(app_ws):
        for c, t in ((0.5, 0.5), (0.0, 0.1), (0.9, 0.9)):
            body = client.get(f"/api/rows/{row.id}", params={"run": 1, "confidence": c, "iou": t}).json()
            want = metrics.row_matches(app_ws, 1, row.id, c, t)
            assert body["matches"] == want and body["matches_error"] is None
            assert len(body["matches"]) == len(body["annotations"]) + len(body["predictions"])
            seen |= {o["outcome"] for o in want}
            # the counts agree with the row's metrics shown beside them
            tp = sum(o["counts_as"] == "TP" and o["source"] == "prediction" for o in want)
            fp = sum(o["counts_as"] == "FP" for o in want)
            fn = sum(o["counts_as"] == "FN" for o in want)
            assert [body["metrics"][k] for k in ("tp", "fp", "fn")] == [tp, fp, fn]
    assert {"TP", "FP", "FN", "dropped"} <= seen


def test_detail_without_matches(client, app_ws):
    row = _rows_with_objects(app_ws, 1)[0]
    body = client.get(f"/api/rows/{row.id}").json()  # no run: no matches, no error
    assert body["matches"] is None and body["matches_error"] is None
    # a confidence off the run's grid: the objects still come, the matches say why they are missing
    body = client.get(f"/api/rows/{row.id}", params={"run": 1, "confidence": 0.55, "iou": 0.5}).json()
    assert body["matches"] is None and "confidence grid" in body["matches_error"]
    assert body["annotations"]


def test_gallery_page_outcomes_are_the_library_ones(client, app_ws):
    """The gallery's page carries each object's outcome at the page's (c, t), as row_matches gives it."""
    body = client.get("/api/rows", params={"run": 1, "confidence": 0.5, "iou": 0.5, "limit": 40}).json()
    seen = set()
    for row in body["rows"]:
        want = {(o["source"], o["object_id"]): o["outcome"] for o in metrics.row_matches(app_ws, 1, row["id"], 0.5, 0.5)}
        for source, key in (("label", "annotations"), ("prediction", "predictions")):
            for o in row[key]:
                assert o["outcome"] == want[(source, o["id"])]
                seen.add(o["outcome"])
    assert {"TP", "FP", "FN"} <= seen


def test_feature_table_has_the_coco_columns(client, app_ws):
    import time

    deadline = time.monotonic() + 120  # the first time, the COCO columns are computed in the background
    while (body := client.get("/api/runs/1/metrics/features", params={"confidence": 0.5, "iou": 0.5}).json())["ap_pending"]:
        assert time.monotonic() < deadline, "the COCO columns never came"
        time.sleep(0.2)
    per, mean = metrics.feature_ap(app_ws, 1)
    boxes = [f for f in body["features"] if f["kind"] == "bbox"]
    assert boxes and all(f["ap"] == per[f["feature"]].ap and f["ar"] == per[f["feature"]].ar for f in boxes)
    assert body["overall"]["map"] == mean.ap and body["overall"]["ap50"] == mean.ap50
