"""Assemble the JSON the pages need from library calls (no SQL here): the gallery page and a row's detail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Query

from slicewise.errors import MetricsError
from slicewise.server import lib
from slicewise.types.domain import DataRow, ModelRun
from slicewise.workspace import Workspace

TEXT_PREVIEW = 4000


@dataclass
class Scope:
    """What a gallery view shows: run, filter text, sort, thresholds, slice, dataset, confusion cell."""

    run: str | None = None
    q: str = ""
    sort: str | None = None
    confidence: float | None = None
    iou: float | None = None
    slice: str | None = None
    dataset: str | None = None
    cell: str | None = None


def scope_params(run: str | None = Query(None, description="model run id or model/run reference"),
                 q: str = Query("", max_length=20_000, description="filter in the query language"),
                 sort: str | None = Query(None, max_length=500,
                                          description="sort keys, e.g. -iou or confidence.max, metadata.camera"),
                 confidence: float | None = Query(None, ge=0, le=1),
                 iou: float | None = Query(None, ge=0, le=1),
                 slice: str | None = Query(None, max_length=200,
                                           description="slice id or name (its filter applies when q is empty)"),
                 dataset: str | None = Query(None, max_length=200),
                 cell: str | None = Query(None, max_length=2000,
                                          description='a confusion-matrix cell: JSON [true class, predicted class]')
                 ) -> Scope:
    return Scope(run, q.strip(), (sort or "").strip() or None, confidence, iou, slice, dataset, cell)


def resolve_run(ws: Workspace, ref: str | None) -> ModelRun | None:
    from slicewise.server.deps import get_run

    return get_run(ws, ref) if ref else None


def page_rows(ws: Workspace, scope: Scope, *, limit: int, offset: int, overlays: bool,
              ids_only: bool = False) -> dict[str, Any]:
    from slicewise.server import querying

    run = resolve_run(ws, scope.run)
    if lib.has("query", "search"):
        c, t = querying.thresholds(ws, run, scope.confidence, scope.iou)
        total, ids, keys, sort_values = querying.search(ws, run, scope, c, t, limit, offset)
    else:
        if scope.q or scope.sort or scope.slice or scope.cell:
            raise HTTPException(501, "filters, sorts and slices need slicewise.query, which is not built yet")
        c, t = scope.confidence, scope.iou
        found = ws.data_rows(dataset=scope.dataset, limit=limit, offset=offset)
        total = ws.counts()["data_rows"] if scope.dataset is None else len(ws.data_rows(dataset=scope.dataset))
        ids, keys, sort_values = [r.id for r in found], [r.global_key for r in found], {}
    out: dict[str, Any] = {"total": total, "offset": offset, "limit": limit, "confidence": c, "iou": t,
                           "run": run.id if run else None}
    if ids_only:
        out["rows"] = [{"id": i, "global_key": k} for i, k in zip(ids, keys, strict=True)]
        return out
    rows = {r.id: r for r in ws.data_rows(ids=ids)} if ids else {}
    anns: dict[str, list[dict[str, Any]]] = {}
    preds: dict[str, list[dict[str, Any]]] = {}
    if overlays and keys:
        for o in ws.annotations(keys):
            anns.setdefault(o["data_row"], []).append(_slim(o))
        if run is not None:
            for o in ws.predictions(run, keys):
                preds.setdefault(o["data_row"], []).append(_slim(o))
    out["rows"] = [{**_row_json(rows[i]), "sort_value": sort_values.get(i),
                    "annotations": anns.get(rows[i].global_key, []),
                    "predictions": preds.get(rows[i].global_key, [])} for i in ids if i in rows]
    return out


def row_detail(ws: Workspace, row: DataRow, run: ModelRun | None, confidence: float | None,
               iou: float | None) -> dict[str, Any]:
    from slicewise.server import querying

    out = {**_row_json(row, full_text=True), "annotations": [_slim(o) for o in ws.annotations(row.global_key)],
           "predictions": [], "matches": None, "matches_error": None, "metrics": None, "confidence": confidence, "iou": iou}
    if run is not None:
        c, t = querying.thresholds(ws, run, confidence, iou) if lib.has("query") else (confidence, iou)
        out["confidence"], out["iou"] = c, t
        out["predictions"] = [_slim(o) for o in ws.predictions(run, row.global_key)]
        if lib.has("metrics", "row_matches") and c is not None and t is not None:
            try:  # per object: match, IoU and outcome at (c, t); None (with the reason) when not computed
                out["matches"] = lib.need("metrics").row_matches(ws, run, row.id, c, t)
            except MetricsError as exc:
                out["matches_error"] = str(exc)
        if lib.has("query", "search") and c is not None and t is not None:
            out["metrics"] = querying.row_metrics(ws, run, row.global_key, c, t)
    return out


def _row_json(r: DataRow, *, full_text: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"id": r.id, "global_key": r.global_key, "dataset": r.dataset, "media_type": r.media_type,
                         "width": r.width, "height": r.height, "split": r.split, "metadata": r.metadata,
                         "tags": r.tags}
    if r.media_type == "text":
        d["text"] = r.row_data if full_text else r.row_data[:TEXT_PREVIEW]
    return d


def _slim(o: dict[str, Any]) -> dict[str, Any]:
    o = {k: v for k, v in o.items() if k not in ("data_row", "source", "external_id")}
    if "probabilities" in o and o["probabilities"] is not None and len(o["probabilities"]) > 50:
        o.pop("probabilities")
    return o
