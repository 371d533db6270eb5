"""TIDE error types (Bolya et al. 2020, "TIDE: A General Toolbox for Identifying Object Detection Errors"):
every false positive and false negative of a run's detections at confidence c, sorted into six types,
with the AP each type costs (dAP: the AP gained when TIDE's oracle fixes every error of that type).

**Objects.** The run's box, polygon and mask predictions kept at c (confidence >= c; at most 100 per
data row and class, the best-scored, as COCO keeps them) and every box, polygon and mask label of the
run's rows. IoU is slicewise's kernel per kind (:func:`slicewise.metrics.matching.comparable_pairs`:
boxes by area as pycocotools, polygons with shapely, masks with pycocotools' RLE).

**Matching (COCO, per class).** On each data row and for each class, predictions in decreasing
confidence each take the unmatched label of their class with the highest IoU >= t_f (the foreground
threshold: the view's IoU t, 0.5 by default). Matched predictions are TPs. Each other prediction is
an error, tested in TIDE's order (first that holds), where *same* is its highest IoU with a label of its
class and *cross* its highest IoU with a label of another class (on its row):

=================  ================================================================================
localization       t_b <= same <= t_f (right class, box off)
classification     cross >= t_f (right place, wrong class)
duplicate          a label of its class with IoU >= t_f is already matched by a better-scored TP
background         cross <= t_b (and same < t_b): overlaps nothing
both               otherwise: wrong class and box off (t_b < cross < t_f)
missed             a label no prediction matched and no localization / classification error targets
                   (the target of a localization error is its *same* label, of a classification error
                   its *cross* label)
=================  ================================================================================

with t_b the background threshold (0.1). **dAP** of a type is, per class with labels, the COCO AP at t_f
(101-point interpolated precision over the predictions ranked by confidence) after TIDE's oracle fix of
every error of that type minus the AP before, averaged over those classes (as mAP is). The fixes:

- localization / classification: the error becomes a TP of its target label, moved to the target's class
  (a classification error leaves its predicted class), when that label is unmatched and the error is the
  best-scored localization or classification error targeting it; otherwise the fix removes it
  (tidecv's ``BestGTMatch``);
- duplicate, background, both: the prediction is removed;
- missed: the label is removed from its class's labels.

Counts of prediction errors go to the predicted class, missed labels to their class.

This is TIDE as ``tidecv`` computes it and as hotcoco 1.3 (``COCOeval.tide_errors``) reproduces it:
the tests check counts and dAP against hotcoco on generated data. Differences: hotcoco snaps t_f to the
nearest of COCO's ten IoU thresholds (0.5, 0.55, ...), slicewise takes t_f as given; hotcoco ignores
crowd labels and the predictions matched to them, slicewise treats a crowd label as any other; equal
confidences rank by data row then id (COCO: by image, then file order).

**How this maps onto the reference product's matching.** slicewise's metrics follow Labelbox's
protocol (:mod:`slicewise.metrics.matching`): one class-agnostic greedy pass per confidence threshold,
pairs visited by decreasing IoU, a pair counting at t when IoU > t; a pair of different classes is a
confusion (an FP of the predicted class and an FN of the true one). TIDE needs the COCO reading instead
(per class, by confidence, IoU >= t), so it is computed here from the labels and predictions, not from
the match records, and its counts need not add up to the row metrics' fp / fn: a Labelbox confusion is
a TIDE *classification* error when its IoU is >= t_f (or *both* when lower); a prediction the greedy
pass leaves unmatched because its label went to a higher-IoU prediction is a TIDE *duplicate* (or a
*localization* error when its IoU is below t_f); an unmatched prediction overlapping nothing is
*background*; an FN whose label no error targets is *missed*. Classifications, points, lines and
text spans have no TIDE reading and are left out.

**Per row** (:func:`error_rows_table`, used by the query language): the number of errors of each type
whose prediction (or, for missed, label) is on the row, and ``overconfident``: the highest confidence
among the row's predictions that are errors at (c, t_f) (0 when it has none), a score for "the model is
sure and wrong here" to filter and sort by (``overconfident > 0.9``, ``-overconfident``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from slicewise.errors import MetricsError
from slicewise.metrics.records import Rows, rows_clause

if TYPE_CHECKING:
    from slicewise.metrics.engine import RunRef
    from slicewise.metrics.objects import Objects
    from slicewise.metrics.results import JobStatus
    from slicewise.workspace import Workspace

#: the six error types, in TIDE's report order (the first five are prediction errors)
ERROR_TYPES = ("classification", "localization", "both", "duplicate", "background", "missed")
FP_TYPES = ERROR_TYPES[:5]
#: TIDE's (and hotcoco's) short names
SHORT = {"classification": "Cls", "localization": "Loc", "both": "Both", "duplicate": "Dupe", "background": "Bkg",
         "missed": "Miss"}
KINDS = ("bbox", "polygon", "mask")
MAX_DETS = 100
BACKGROUND_IOU = 0.1
#: what the per-run object arrays are built from
TOPICS = ("rows", "run_rows", "labels", "predictions", "features")
_CLS, _LOC, _BOTH, _DUPE, _BKG = range(5)
_REC_THRS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class ErrorCounts:
    """Counts and dAP of the six types for the run or one class; ``ap`` the COCO AP at t_f before any fix
    (None for a class without labels in the rows, or when no class has one)."""

    name: str
    n_labels: int
    n_predictions: int
    ap: float | None
    counts: Mapping[str, int]
    dap: Mapping[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_labels": self.n_labels, "n_predictions": self.n_predictions, "ap": self.ap,
                "counts": dict(self.counts), "dap": dict(self.dap)}


@dataclass(frozen=True)
class ErrorTypes:
    """TIDE error types at (confidence, iou) over a view's rows: the run (``overall``) and each class."""

    overall: ErrorCounts
    classes: tuple[ErrorCounts, ...]
    confidence: float
    iou: float
    background_iou: float
    n_rows: int
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "iou": self.iou, "background_iou": self.background_iou,
                "n_rows": self.n_rows, "types": list(ERROR_TYPES), "overall": self.overall.to_dict(),
                "classes": [c.to_dict() for c in self.classes], "job": self.job.to_dict()}


# -- the objects ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detections:
    """A run's detection objects (predictions ``d_*``, labels ``g_*``) and their class-agnostic pairs on the
    same row with IoU > 0, as arrays."""

    d_id: np.ndarray
    d_row: np.ndarray
    d_class: np.ndarray
    d_score: np.ndarray
    g_id: np.ndarray
    g_row: np.ndarray
    g_class: np.ndarray
    pair_d: np.ndarray
    pair_g: np.ndarray
    pair_iou: np.ndarray
    rows: np.ndarray  # the run's data row ids, sorted


def _take(o: Objects, keep: np.ndarray) -> Objects:
    from slicewise.metrics.objects import Objects

    return Objects(id=o.id[keep], row=o.row[keep], feature=o.feature[keep], kind=o.kind[keep], answer=o.answer[keep],
                   box=o.box[keep], geometry=o.geometry[keep], mask=o.mask[keep], span=o.span[keep],
                   size=o.size[keep], confidence=o.confidence[keep])


def load_detections(ws: Workspace, run_id: int) -> Detections:
    """The run's box / polygon / mask predictions and labels with their pair IoUs (remembered by the
    workspace until labels, predictions or the run's rows change)."""
    def make() -> Detections:
        from slicewise.metrics.matching import comparable_pairs
        from slicewise.metrics.objects import load_row_objects
        from slicewise.metrics.records import run_rows

        cur = ws.store.cursor()
        rows = run_rows(cur, run_id)
        P, G = load_row_objects(cur, run_id, rows)
        P, G = _take(P, np.isin(P.kind, KINDS)), _take(G, np.isin(G.kind, KINDS))
        pi, gi, iou = comparable_pairs(P, G, within_class=False, radius=1.0)
        pos = iou > 0
        return Detections(P.id, P.row, P.feature, P.confidence, G.id, G.row, G.feature,
                          pi[pos], gi[pos], iou[pos], rows)

    return ws.state.memo(("tide-objects", run_id), TOPICS, make)


# -- classification --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Classified:
    """Each prediction's outcome (``d_type``: -2 not evaluated (below c or past the 100 per row and
    class), -1 TP, else the index of its type in FP_TYPES) and each label's (``g_missed``, ``g_matched``)."""

    d_type: np.ndarray
    d_target: np.ndarray  # the label a classification / localization error targets (-1 for the others)
    d_fixed: np.ndarray  # whether TIDE's fix makes that error a TP (its target is free and it is the first to claim it)
    g_matched: np.ndarray
    g_missed: np.ndarray


@numba.njit(cache=True)
def _coco_match(pd: np.ndarray, pg: np.ndarray, piou: np.ndarray, n_det: int, n_gt: int,
                thr: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover (compiled)
    """COCO's greedy matching: pairs grouped by prediction in processing order (decreasing confidence),
    each prediction takes the free label with the highest IoU >= thr (the last of equal ones, as
    pycocotools)."""
    det_gt = np.full(n_det, -1, np.int64)
    gt_det = np.full(n_gt, -1, np.int64)
    best0 = min(thr, 1 - 1e-10)
    q = 0
    n = len(pd)
    while q < n:
        d = pd[q]
        best = best0
        m = -1
        while q < n and pd[q] == d:
            g = pg[q]
            if gt_det[g] < 0 and piou[q] >= best:
                best = piou[q]
                m = g
            q += 1
        if m >= 0:
            det_gt[d] = m
            gt_det[m] = d
    return det_gt, gt_det


def _best(d: np.ndarray, g: np.ndarray, iou: np.ndarray, n_det: int) -> tuple[np.ndarray, np.ndarray]:
    """For every prediction, its highest IoU among the pairs given (0 without one) and that label (-1):
    the first label in id order among equal IoUs."""
    best = np.zeros(n_det)
    arg = np.full(n_det, -1, np.int64)
    if len(d):
        o = np.lexsort((g, -iou, d))
        first = np.r_[True, d[o][1:] != d[o][:-1]]
        sel = o[first]
        best[d[sel]] = iou[sel]
        arg[d[sel]] = g[sel]
    return best, arg


def classify(det: Detections, confidence: float, iou: float, background_iou: float = BACKGROUND_IOU) -> Classified:
    """TIDE's reading of every prediction and label at (confidence, t_f = iou, t_b = background_iou)."""
    nd, ng = len(det.d_id), len(det.g_id)
    kept = np.flatnonzero(det.d_score >= confidence)
    # at most MAX_DETS per (row, class), the best-scored (ties: lower id), as COCOeval keeps them
    o = kept[np.lexsort((det.d_id[kept], -det.d_score[kept], det.d_class[kept], det.d_row[kept]))]
    if len(o):
        key = np.stack([det.d_row[o], det.d_class[o]], 1)
        start = np.r_[True, np.any(key[1:] != key[:-1], axis=1)]
        first = np.flatnonzero(start)
        rank = np.arange(len(o)) - np.repeat(first, np.diff(np.r_[first, len(o)]))
        o = o[rank < MAX_DETS]
    live = np.zeros(nd, bool)
    live[o] = True
    # processing order: decreasing confidence, then id
    order = np.full(nd, nd, np.int64)
    ranked = o[np.lexsort((det.d_id[o], -det.d_score[o]))]
    order[ranked] = np.arange(len(ranked))
    pm = live[det.pair_d]
    pd, pg, piou = det.pair_d[pm], det.pair_g[pm], det.pair_iou[pm]
    same = det.d_class[pd] == det.g_class[pg]
    sd, sg, siou = pd[same], pg[same], piou[same]
    s = np.lexsort((sg, order[sd]))
    det_gt, gt_det = _coco_match(sd[s], sg[s], siou[s], nd, ng, float(iou))
    ms, arg_s = _best(sd, sg, siou, nd)
    mc, arg_c = _best(pd[~same], pg[~same], piou[~same], nd)
    dupe = np.zeros(nd, bool)
    taken = (siou >= iou) & (gt_det[sg] >= 0)
    dupe[sd[taken]] = True
    fp = live & (det_gt < 0)
    loc = fp & (ms >= background_iou) & (ms <= iou)
    cls = fp & ~loc & (mc >= iou)
    dup = fp & ~loc & ~cls & dupe
    bkg = fp & ~loc & ~cls & ~dup & (mc <= background_iou)
    both = fp & ~loc & ~cls & ~dup & ~bkg
    d_type = np.full(nd, -2, np.int8)
    d_type[live] = -1
    for code, m in ((_CLS, cls), (_LOC, loc), (_BOTH, both), (_DUPE, dup), (_BKG, bkg)):
        d_type[m] = code
    target = np.full(nd, -1, np.int64)
    target[loc] = arg_s[loc]
    target[cls] = arg_c[cls]
    matched = gt_det >= 0
    covered = np.zeros(ng, bool)
    covered[target[loc | cls]] = True
    # an error's fix makes it a TP of its target when that label is unmatched and the error is the
    # best-scored of the localization and classification errors targeting it; otherwise the fix removes
    # it (tidecv's BestGTMatch, which hotcoco follows)
    fixed = np.zeros(nd, bool)
    e = np.flatnonzero((loc | cls) & (target >= 0))
    e = e[~matched[target[e]]]
    e = e[np.lexsort((order[e], target[e]))]
    if len(e):
        fixed[e[np.r_[True, target[e][1:] != target[e][:-1]]]] = True
    return Classified(d_type, target, fixed, matched, ~matched & ~covered)


def _check(confidence: float, iou: float, background_iou: float) -> tuple[float, float, float]:
    from slicewise.metrics.engine import check_iou

    c = float(confidence)
    if not (math.isfinite(c) and 0.0 <= c <= 1.0):
        raise MetricsError(f"confidence {confidence} is outside [0, 1]", where="confidence",
                           fix="use a value between 0 and 1")
    t, b = check_iou(iou), float(background_iou)
    if not (math.isfinite(b) and 0.0 < b < t):
        raise MetricsError(f"background IoU {background_iou} is not between 0 and the foreground IoU {t}",
                           where="background_iou", fix="use e.g. 0.1 (TIDE's default) with the IoU 0.5")
    return c, t, b


def _classified(ws: Workspace, run_id: int, c: float, t: float, b: float) -> tuple[Detections, Classified]:
    det = load_detections(ws, run_id)
    return det, ws.state.memo(("tide", run_id, c, t, b), TOPICS, lambda: classify(det, c, t, b))


# -- AP and its fixes ----------------------------------------------------------------------------------------
def average_precision(tp: np.ndarray, n_labels: int) -> float:
    """COCO's AP (101-point interpolated precision, as pycocotools' accumulate) of predictions ranked by
    decreasing confidence (``tp``: whether each is a TP) against ``n_labels`` labels.

    >>> round(average_precision(np.array([True, False, True]), 2), 4)
    0.835
    """
    tps = np.cumsum(tp, dtype=np.float64)
    fps = np.cumsum(~tp, dtype=np.float64)
    rc = tps / n_labels
    pr = tps / (fps + tps + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
    inds = np.searchsorted(rc, _REC_THRS, side="left")
    q = np.zeros(len(_REC_THRS))
    ok = inds < len(pr)
    q[ok] = pr[inds[ok]]
    return float(q.mean())


def _fixed_ap(tp: np.ndarray, n_labels: int) -> float:
    return average_precision(tp, n_labels) if n_labels > 0 else 0.0


def _class_deltas(f: int, cls: np.ndarray, types: np.ndarray, fixed: np.ndarray, target_cls: np.ndarray,
                  n_labels: int, n_missed: int) -> tuple[float, dict[str, float]]:
    """(AP, dAP per type) of class ``f``, given the predictions on the rows in ranking order (their class,
    type (-1 TP), whether the fix makes them a TP, and the class of their target)."""
    mine = cls == f
    tp = types[mine] == -1
    base = average_precision(tp, n_labels)
    out: dict[str, float] = {}
    for code, name in enumerate(FP_TYPES):
        if code == _CLS:  # every Cls error leaves its class; a fixed one joins its target's class as a TP
            hit = types == _CLS
            keep = (mine & ~hit) | (hit & fixed & (target_cls == f))
            ap = average_precision((types == -1)[keep] | hit[keep], n_labels)
        elif code == _LOC:  # a fixed Loc error is a TP; the others are removed
            t_m, f_m = types[mine], fixed[mine]
            keep = (t_m != _LOC) | f_m
            ap = average_precision((tp | ((t_m == _LOC) & f_m))[keep], n_labels)
        else:
            ap = average_precision(tp[types[mine] != code], n_labels)
        out[name] = ap - base
    # a missed label is dropped from the labels (TIDE's fix; hotcoco's too)
    out["missed"] = (_fixed_ap(tp, n_labels - n_missed) - base) if n_missed else 0.0
    return base, out


def summarise(det: Detections, cl: Classified, names: Mapping[int, str], rows: np.ndarray | None = None
              ) -> tuple[ErrorCounts, tuple[ErrorCounts, ...]]:
    """Counts and dAP over the predictions and labels on ``rows`` (every row when None)."""
    dm = (cl.d_type > -2) & (np.isin(det.d_row, rows) if rows is not None else True)
    gm = np.isin(det.g_row, rows) if rows is not None else np.ones(len(det.g_id), bool)
    d_idx = np.flatnonzero(dm)
    d_idx = d_idx[np.lexsort((det.d_id[d_idx], det.d_row[d_idx], -det.d_score[d_idx]))]  # ranking order
    dcls, dtype, dfix = det.d_class[d_idx], cl.d_type[d_idx], cl.d_fixed[d_idx]
    tcls = np.where(cl.d_target[d_idx] >= 0, det.g_class[np.maximum(cl.d_target[d_idx], 0)], -1)
    gcls, gmiss = det.g_class[gm], cl.g_missed[gm]
    classes = sorted(set(dcls.tolist()) | set(gcls.tolist()), key=lambda f: (names.get(f, str(f)), f))
    per: list[ErrorCounts] = []
    aps: list[float] = []
    daps: dict[str, list[float]] = {t: [] for t in ERROR_TYPES}
    for f in classes:
        types = dtype[dcls == f]
        n_lab = int(np.count_nonzero(gcls == f))
        n_miss = int(np.count_nonzero(gmiss & (gcls == f)))
        counts = {t: int(np.count_nonzero(types == i)) for i, t in enumerate(FP_TYPES)} | {"missed": n_miss}
        dap: dict[str, float | None] = {t: None for t in ERROR_TYPES}
        ap: float | None = None
        if n_lab:
            ap, d = _class_deltas(f, dcls, dtype, dfix, tcls, n_lab, n_miss)
            aps.append(ap)
            for t in ERROR_TYPES:
                daps[t].append(d[t])
            dap = dict(d)
        per.append(ErrorCounts(names.get(f, str(f)), n_lab, len(types), ap, counts, dap))
    total = {t: int(np.count_nonzero(dtype == i)) for i, t in enumerate(FP_TYPES)} | \
        {"missed": int(np.count_nonzero(gmiss))}
    overall = ErrorCounts("all", int(len(gcls)), int(len(d_idx)), float(np.mean(aps)) if aps else None, total,
                          {t: (float(np.mean(daps[t])) if aps else None) for t in ERROR_TYPES})
    return overall, tuple(per)


def _row_ids(ws: Workspace, rows: Rows) -> np.ndarray | None:
    if rows is None:
        return None
    clause, params = rows_clause(rows, "id")
    got = ws.store.cursor().execute(f"SELECT id FROM data_rows WHERE TRUE {clause}", params).fetchnumpy()
    return np.asarray(got["id"], np.int64)


def error_types(ws: Workspace, run: RunRef, confidence: float, iou: float = 0.5, rows: Rows = None, *,
                background_iou: float = BACKGROUND_IOU) -> ErrorTypes:
    """TIDE's six error types at (confidence, t_f = iou, t_b = background_iou) over ``rows`` (a view's
    ``rows_sql()``; every row of the run when None): counts and dAP for the run and per class.

    Computed from the run's labels and predictions as they are now (not from the match records), so it
    needs no metrics job; ``job`` tells the state of the run's other metrics."""
    from slicewise.metrics.engine import get_run, job_of

    r = get_run(ws, run)
    c, t, b = _check(confidence, iou, background_iou)
    det, cl = _classified(ws, r.id, c, t, b)
    ids = _row_ids(ws, rows)
    ids = det.rows if ids is None else np.intersect1d(ids, det.rows)
    names = dict(ws.store.cursor().execute("SELECT id, name FROM features").fetchall())
    overall, per = summarise(det, cl, names, None if rows is None else ids)
    return ErrorTypes(overall, per, c, t, b, int(len(ids)), job_of(ws, r))


def object_errors(ws: Workspace, run: RunRef, data_row_ids: Sequence[int], confidence: float, iou: float = 0.5, *,
                  background_iou: float = BACKGROUND_IOU) -> dict[tuple[str, int], str]:
    """The error type of each object on the given rows at (confidence, t_f = iou, t_b): ``("prediction", id)``
    -> one of the five prediction error types, ``("label", id)`` -> ``"missed"``. Objects that are not errors
    (true positives, predictions below c, labels matched or covered by a prediction's error) are absent,
    e.g. ``{("prediction", 7): "localization", ("label", 3): "missed"}``."""
    from slicewise.metrics.engine import get_run

    r = get_run(ws, run)
    c, t, b = _check(confidence, iou, background_iou)
    det, cl = _classified(ws, r.id, c, t, b)
    want = np.asarray(list(data_row_ids), np.int64)
    out: dict[tuple[str, int], str] = {}
    sel = np.flatnonzero(np.isin(det.d_row, want) & (cl.d_type >= 0))
    for i in sel:
        out[("prediction", int(det.d_id[i]))] = FP_TYPES[int(cl.d_type[i])]
    for i in np.flatnonzero(np.isin(det.g_row, want) & cl.g_missed):
        out[("label", int(det.g_id[i]))] = "missed"
    return out


def row_columns(det: Detections, cl: Classified) -> dict[str, np.ndarray]:
    """Per row of the run (in ``det.rows`` order): the count of each error type on it and ``overconfident``."""
    nr = len(det.rows)
    dpos = np.searchsorted(det.rows, det.d_row)
    gpos = np.searchsorted(det.rows, det.g_row)
    out: dict[str, np.ndarray] = {"data_row_id": det.rows}
    for i, t in enumerate(FP_TYPES):
        out[t] = np.bincount(dpos[cl.d_type == i], minlength=nr).astype(np.int32)
    out["missed"] = np.bincount(gpos[cl.g_missed], minlength=nr).astype(np.int32)
    out["errors"] = sum((out[t] for t in ERROR_TYPES), np.zeros(nr, np.int32)).astype(np.int32)
    over = np.zeros(nr)
    err = cl.d_type >= 0
    np.maximum.at(over, dpos[err], det.d_score[err])
    out["overconfident"] = over
    return out


def error_rows_table(ws: Workspace, run_id: int, confidence: float, iou: float,
                     background_iou: float = BACKGROUND_IOU) -> str:
    """Name of a cache table with one line per data row of the run: ``data_row_id``, the count of each
    error type (``classification`` ... ``missed``, ``errors`` their sum) and ``overconfident`` at (c, t)."""
    from slicewise.metrics.records import cache_table

    c, t, b = _check(confidence, iou, background_iou)

    def build(name: str) -> None:
        det, cl = _classified(ws, run_id, c, t, b)
        cache_table(ws.state.cursor(), name, row_columns(det, cl))

    key = f"r{run_id}_c{round(c * 1e9)}_t{round(t * 1e9)}_b{round(b * 1e9)}"
    return ws.state.table("tide-rows", key, TOPICS, build)
