"""Per-object outcomes of one data row at (c, t), read from the stored match records (no re-matching).

At confidence c (a value of the run's grid) the records of the pass at c hold one record per kept
prediction (with the label it was paired with, if any, and their IoU) and one per label left unpaired.
At IoU threshold t a recorded pair is a match when its IoU is above t (equal is not a match), as
everywhere in the metrics engine:

- a matched pair of the same class: both objects are ``TP``;
- a matched pair of different classes: both are ``confusion`` (it counts as an FP of the predicted
  class and an FN of the true class; ``match_class`` names the other side's class);
- any other kept prediction is ``FP``, any other label ``FN``; a prediction below c is ``dropped``.

So per row, ``tp`` of :func:`~slicewise.metrics.row_metrics_table` is the number of TP predictions,
``fp`` the number of FP + confusion predictions and ``fn`` the number of FN + confusion labels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.errors import NotFoundError
from slicewise.metrics import records
from slicewise.metrics.engine import RunRef, check_iou, conf_index, require_ready

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

OUTCOMES = ("TP", "FP", "FN", "confusion", "dropped")
_COUNTS_AS = {"TP": "TP", "FP": "FP", "FN": "FN"}


def _objects(cur: Any, table: str, run_id: int | None, row_id: int) -> list[dict[str, Any]]:
    cond = "o.run_id = ? AND " if table == "predictions" else ""
    conf = "o.confidence" if table == "predictions" else "NULL::DOUBLE"
    params = ([run_id] if table == "predictions" else []) + [row_id]
    rows = cur.execute(f"""SELECT o.id, o.feature_id, f.name, o.kind, o.answer, {conf}
                           FROM {table} o JOIN features f ON f.id = o.feature_id
                           WHERE {cond} o.data_row_id = ? ORDER BY o.id""", params).fetchall()
    source = "prediction" if table == "predictions" else "label"
    out = []
    for oid, fid, name, kind, answer, c in rows:
        cls = name + (f": {answer}" if kind in ("radio", "checklist") and answer is not None else "")
        out.append({"object_id": int(oid), "source": source, "feature": name, "feature_id": int(fid), "kind": kind,
                    "answer": answer if kind in ("radio", "checklist") else None, "class": cls,
                    "confidence": None if c is None or (isinstance(c, float) and math.isnan(c)) else float(c)})
    return out


def _pairs(ws: Workspace, run_id: int, row_id: int, within_class: bool, radius: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(prediction id, label id, prediction confidence, IoU) of every comparable pair of the row."""
    from slicewise.metrics.matching import comparable_pairs
    from slicewise.metrics.objects import load_row_objects

    P, G = load_row_objects(ws.store.cursor(), run_id, np.array([row_id], np.int64))
    pi, gi, iou = comparable_pairs(P, G, within_class, radius, by_row=False)
    return P.id[pi], G.id[gi], P.confidence[pi], iou


def _best(ids_other: np.ndarray, iou: np.ndarray) -> tuple[int | None, float | None]:
    if not len(iou) or not iou.max() > 0:
        return None, None
    j = int(np.argmax(iou))  # ties: the lowest id (pairs come sorted by ids)
    return int(ids_other[j]), float(iou[j])


def row_matches(ws: Workspace, run: RunRef, data_row_id: int, confidence: float, iou: float,
                *, best_iou: bool = True) -> list[dict[str, Any]]:
    """The objects of one data row (labels, then the run's predictions, each by id) with their outcome at
    (c, t). ``confidence`` must be a value of the run's confidence grid; ``iou`` may be any value in [0, 1].

    Each dict: ``object_id``, ``source`` ("label" | "prediction"), ``feature``, ``feature_id``, ``kind``,
    ``answer`` (radio / checklist), ``class`` (the confusion-matrix class name, "feature: answer" for
    classifications), ``confidence`` and ``kept`` (confidence >= c; None for labels), ``match_id`` (the
    other side's object matched at (c, t), else None), ``match_class`` (its class), ``iou`` and ``iou_with``
    (the IoU of the pair recorded by the greedy pass at c and the other object's id, whether or not it is
    above t; for an object the pass left unpaired, its best IoU with any comparable object of the other
    side (kept predictions for labels), None when none overlaps it or ``best_iou=False``), ``outcome`` ("TP",
    "FP", "FN", "confusion", "dropped", or None for an object the stored records do not cover: the row
    is not in the run, or the metrics are stale and the object is newer), and ``counts_as`` ("TP", "FP"
    or "FN": how the object counts in row_metrics_table; None for dropped or uncovered objects)."""
    r, s, _ = require_ready(ws, run)
    k = conf_index(s, confidence, r.ref)
    c, t = float(s.confidence[k]), check_iou(iou)
    cur = ws.store.cursor()
    if not cur.execute("SELECT 1 FROM data_rows WHERE id = ?", [int(data_row_id)]).fetchone():
        raise NotFoundError(f"no data row with id {data_row_id}", where="data_row_id",
                            fix="take ids from ws.data_rows() or the gallery")
    labels = _objects(cur, "annotations", None, int(data_row_id))
    preds = _objects(cur, "predictions", r.id, int(data_row_id))
    classes = dict(records.classes(cur, r.id))
    recs = records.row_records(cur, r.id, k, int(data_row_id))
    by_pred = {int(p): (g, pc, tc, v) for p, g, pc, tc, v in recs if p is not None}
    by_gt = {int(g): (p, pc, tc, v) for p, g, pc, tc, v in recs if g is not None}
    label_ids = {o["object_id"] for o in labels}

    for o in preds:
        conf = 1.0 if o["confidence"] is None else o["confidence"]
        o["kept"] = conf >= c
        rec = by_pred.get(o["object_id"])
        o.update(match_id=None, match_class=None, iou=None, iou_with=None, outcome=None)
        if not o["kept"]:
            o["outcome"] = "dropped"
        elif rec is not None:
            g, pc, tc, v = rec
            if g is not None and int(g) in label_ids:
                o["iou"], o["iou_with"] = (None if v is None else float(v)), int(g)
            if g is not None and v is not None and v > t:
                o["match_id"], o["match_class"] = int(g), classes.get(tc)
                o["outcome"] = "TP" if pc == tc else "confusion"
            else:
                o["outcome"] = "FP"
    for o in labels:
        o.update(kept=None, match_id=None, match_class=None, iou=None, iou_with=None, outcome=None)
        rec = by_gt.get(o["object_id"])
        if rec is None:
            continue
        p, pc, tc, v = rec
        if p is not None:
            o["iou"], o["iou_with"] = (None if v is None else float(v)), int(p)
        if p is not None and v is not None and v > t:
            o["match_id"], o["match_class"] = int(p), classes.get(pc)
            o["outcome"] = "TP" if pc == tc else "confusion"
        else:
            o["outcome"] = "FN"
    out = labels + preds
    for o in out:
        oc = o["outcome"]
        o["counts_as"] = _COUNTS_AS.get(oc) if oc != "confusion" else ("FP" if o["source"] == "prediction" else "FN")
    if best_iou and any(o["iou_with"] is None for o in out):
        _fill_best(ws, r.id, int(data_row_id), s.mode == "within-class", s.radius, c, labels, preds)
    return out


def _pair_outcome(pc: Any, tc: Any, v: Any, other: Any, t: float, unpaired: str) -> str:
    """The outcome of an object whose record pairs it with ``other`` (None: unpaired) at IoU ``v``."""
    if other is not None and v is not None and v > t:
        return "TP" if pc == tc else "confusion"
    return unpaired


def rows_outcomes(ws: Workspace, run: RunRef, data_row_ids: list[int], confidence: float, iou: float
                  ) -> dict[tuple[str, int], str]:
    """The outcome at (c, t) of every object of some data rows, read from the stored match records in one
    query (what a gallery page colours its overlays by): ``{("label" | "prediction", object id): outcome}``
    with outcomes as :func:`row_matches` gives them ("TP", "FP", "FN", "confusion", "dropped"). Objects
    the records do not cover (the row is not in the run, or the metrics are stale) are left out.
    ``confidence`` must be a value of the run's confidence grid."""
    r, s, _ = require_ready(ws, run)
    k = conf_index(s, confidence, r.ref)
    c, t = float(s.confidence[k]), check_iou(iou)
    ids = [int(i) for i in data_row_ids]
    out: dict[tuple[str, int], str] = {}
    if not ids:
        return out
    cur = ws.store.cursor()
    for p, g, pc, tc, v in records.rows_records(cur, r.id, k, ids):
        if p is not None:
            out[("prediction", int(p))] = _pair_outcome(pc, tc, v, g, t, "FP")
        if g is not None:
            out[("label", int(g))] = _pair_outcome(pc, tc, v, p, t, "FN")
    for pid, conf in records.rows_prediction_confidences(cur, r.id, ids):
        if (1.0 if conf is None else conf) < c:
            out[("prediction", pid)] = "dropped"
    return out


def _fill_best(ws: Workspace, run_id: int, row_id: int, within_class: bool, radius: float, c: float,
               labels: list[dict[str, Any]], preds: list[dict[str, Any]]) -> None:
    """For objects left unpaired: the best IoU with any comparable object of the other side (computed for
    this row only; the matching itself is not redone)."""
    pid, gid, pconf, iou = _pairs(ws, run_id, row_id, within_class, radius)
    kept = pconf >= c
    for o in preds:
        if o["iou_with"] is None:
            sel = pid == o["object_id"]
            o["iou_with"], o["iou"] = _best(gid[sel], iou[sel])
    for o in labels:
        if o["iou_with"] is None:
            sel = (gid == o["object_id"]) & kept
            o["iou_with"], o["iou"] = _best(pid[sel], iou[sel])
