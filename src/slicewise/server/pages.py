"""The JSON of the gallery page and of a row's detail, assembled from library calls (no SQL here)."""

from __future__ import annotations

import contextlib
from typing import Any

from slicewise import metrics
from slicewise.errors import MetricsError, QueryError
from slicewise.query import Cond, search
from slicewise.types.domain import DataRow, ModelRun
from slicewise.view import ResolvedView
from slicewise.workspace import Workspace

TEXT_PREVIEW = 4000
ROW_METRICS = ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "iou", "confidence.min", "confidence.max",
               "confidence.mean", "annotation.count", "prediction.count")


def thresholds(v: ResolvedView) -> dict[str, Any]:
    return {"confidence": v.confidence, "iou": v.iou, "source": v.source}


def rows_page(v: ResolvedView, *, limit: int, offset: int, overlays: bool, error_types: bool = False) -> dict[str, Any]:
    """A page of the view's rows with each row's metadata, tags and (with ``overlays``) objects, each with
    its outcome at the view's (c, t) and (with ``error_types``, asked for by the overlays that colour by
    it) its TIDE error type."""
    ws = v.ws
    page = v.page(limit, offset)
    ids = [r.data_row_id for r in page.rows]
    keys = [r.global_key for r in page.rows]
    sort_values = {r.data_row_id: r.sort_value for r in page.rows}
    scores = {r.data_row_id: r.similarity for r in page.rows}
    rows = {r.id: r for r in ws.data_rows(ids=ids)} if ids else {}
    anns: dict[str, list[dict[str, Any]]] = {}
    preds: dict[str, list[dict[str, Any]]] = {}
    base: dict[str, list[dict[str, Any]]] | None = None
    if overlays and keys:
        for o in ws.annotations(keys):
            anns.setdefault(o["data_row"], []).append(slim(o))
        if v.run is not None:
            for o in ws.predictions(v.run, keys):
                preds.setdefault(o["data_row"], []).append(slim(o))
            _outcomes(v, ids, anns, preds, error_types)
        if v.baseline is not None:
            base = baseline_predictions(v, ids, keys)
    return {"total": page.total, "offset": offset, "limit": limit, "run": v.run.id if v.run else None,
            "confidence": v.confidence, "iou": v.iou, "thresholds": thresholds(v), "filter": v.text,
            "sort": v.sort_text,
            "similar": v.query.similar.model_dump() if v.query.similar is not None else None,
            "baseline": v.baseline.id if v.baseline is not None else None,
            "rows": [{**row_json(rows[i]), "sort_value": sort_values.get(i), "similarity": scores.get(i),
                      "annotations": anns.get(rows[i].global_key, []),
                      "predictions": preds.get(rows[i].global_key, []),
                      **({"baseline_predictions": base.get(rows[i].global_key, [])} if base is not None else {})}
                     for i in ids if i in rows]}


def baseline_predictions(v: ResolvedView, ids: list[int], keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The baseline run's predictions of some rows, each with its outcome at the view's (c, t) in that run."""
    assert v.baseline is not None
    out: dict[str, list[dict[str, Any]]] = {}
    for o in v.ws.predictions(v.baseline, keys):
        out.setdefault(o["data_row"], []).append(slim(o))
    if v.confidence is not None and v.iou is not None:
        try:
            got = metrics.rows_outcomes(v.ws, v.baseline, ids, v.confidence, v.iou)
        except MetricsError:
            got = {}
        for lst in out.values():
            for o in lst:
                o["outcome"] = got.get(("prediction", int(o["id"])))
    return out


def _outcomes(v: ResolvedView, ids: list[int], anns: dict[str, list[dict[str, Any]]],
              preds: dict[str, list[dict[str, Any]]], error_types: bool) -> None:
    """Each object's outcome at the view's (c, t) (TP, FP, FN, confusion, dropped) and, with
    ``error_types``, its TIDE error type, from the library; left out when the run's metrics are not
    computed. (The error types are opt-in: their first use at a (c, t) classifies the whole run.)"""
    if v.run is None or v.confidence is None or v.iou is None:
        return
    try:
        got = metrics.rows_outcomes(v.ws, v.run, ids, v.confidence, v.iou)
    except MetricsError:
        got = {}
    errors: dict[tuple[str, int], str] = {}
    if error_types:  # TIDE's error type of each box / polygon / mask error (from the objects: needs no job)
        with contextlib.suppress(MetricsError):
            errors = metrics.object_errors(v.ws, v.run, ids, v.confidence, v.iou)
    if not got and not errors:
        return
    for source, objs in (("label", anns), ("prediction", preds)):
        for lst in objs.values():
            for o in lst:
                o["outcome"] = got.get((source, int(o["id"])))
                o["error"] = errors.get((source, int(o["id"])))


def row_detail(ws: Workspace, row: DataRow, v: ResolvedView) -> dict[str, Any]:
    """One row with its objects; with a run, each object's match and outcome at the view's (c, t)
    (``matches_error`` says why not, e.g. metrics not computed) and the row's metrics."""
    run, c, t = v.run, v.confidence, v.iou
    out: dict[str, Any] = {**row_json(row, full_text=True),
                           "annotations": [slim(o) for o in ws.annotations(row.global_key)], "predictions": [],
                           "matches": None, "matches_error": None, "metrics": None, "confidence": c, "iou": t}
    if run is not None and c is not None and t is not None:
        out["predictions"] = [slim(o) for o in ws.predictions(run, row.global_key)]
        try:
            out["matches"] = metrics.row_matches(ws, run, row.id, c, t)
        except MetricsError as exc:
            out["matches_error"] = str(exc)
        out["metrics"] = row_metrics(ws, run, row.global_key, c, t)
        try:
            errors = metrics.object_errors(ws, run, [row.id], c, t)
        except MetricsError:
            errors = {}
        for source, objs in (("label", out["annotations"]), ("prediction", out["predictions"])):
            for o in objs:
                o["error"] = errors.get((source, int(o["id"])))
    return out


def row_metrics(ws: Workspace, run: ModelRun, key: str, c: float, t: float) -> dict[str, Any] | None:
    """The row's metrics at (c, t), read through the query engine's sort keys (None when not computed)."""
    try:
        page = search(ws, run, Cond(field="global_key", op="=", value=key), c, t, limit=1, sort=", ".join(ROW_METRICS))
    except QueryError:
        return None
    if not page.rows:
        return None
    return dict(zip(ROW_METRICS, page.rows[0].sort_values, strict=False))


def row_json(r: DataRow, *, full_text: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"id": r.id, "global_key": r.global_key, "dataset": r.dataset, "media_type": r.media_type,
                         "width": r.width, "height": r.height, "split": r.split, "metadata": r.metadata,
                         "tags": r.tags}
    if r.media_type == "text":
        d["text"] = r.row_data if full_text else r.row_data[:TEXT_PREVIEW]
    return d


def slim(o: dict[str, Any]) -> dict[str, Any]:
    """An object as the web app draws it (without bookkeeping fields or long probability vectors)."""
    o = {k: v for k, v in o.items() if k not in ("data_row", "source", "external_id")}
    if "probabilities" in o and o["probabilities"] is not None and len(o["probabilities"]) > 50:
        o.pop("probabilities")
    return o
