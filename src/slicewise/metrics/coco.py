"""The COCO detection protocol, computed exactly as pycocotools' ``COCOeval`` does it.

Images are the run's data rows (in id order), categories the box/polygon/mask features seen on them
(in id order). For each (image, category): detections sorted by decreasing score (stable) and cut to
the largest max-detections; greedy matching per IoU threshold in 0.50:0.05:0.95 with crowd regions
and area ranges as ignore rules; then precision at 101 recall thresholds (interpolated) and recall.
Box IoU is computed in Numba with pycocotools' formula; mask IoU with pycocotools' mask API.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numba
import numpy as np

from slicewise.errors import MetricsError
from slicewise.metrics.cocokernels import accumulate, box_ious, match_images, sort_within_groups
from slicewise.metrics.engine import RunRef, get_run, job_of
from slicewise.metrics.results import CocoResult, JobStatus, frozen_array, frozen_mapping
from slicewise.types.ids import ascii_int

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

_PARALLEL_LOCK = threading.Lock()
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
MAX_DETS = (1, 10, 100)


def iou_thresholds() -> np.ndarray:
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def recall_thresholds() -> np.ndarray:
    return np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def coco_eval(ws: Workspace, run: RunRef, iou_type: str = "bbox") -> CocoResult:
    """The COCO stats, per-class AP and precision array of a run (``iou_type`` "bbox" or "segm").

    Computed from the run's labels and predictions as they are now, not from the match records: the
    result carries the metrics job's state (``job``) like the other views, but is never stale, so it
    does not warn."""
    if iou_type not in ("bbox", "segm"):
        raise MetricsError(f"unknown iou_type {iou_type!r}", where="iou_type", fix="use bbox or segm")
    r = get_run(ws, run)
    d = _load(ws, r.id, iou_type)
    return evaluate(d, iou_type, job_of(ws, r))


@dataclass
class CocoData:
    classes: list[str]
    # detections, sorted by (category, image, -score stable, id) and cut to MAX_DETS[-1] per group
    det_group: np.ndarray
    det_score: np.ndarray
    det_area: np.ndarray
    det_box: np.ndarray
    det_rle: list[Any] | None
    # ground truth, sorted by (category, image, id)
    gt_group: np.ndarray
    gt_area: np.ndarray
    gt_crowd: np.ndarray
    gt_box: np.ndarray
    gt_rle: list[Any] | None
    group_cat: np.ndarray  # category index of each group (groups sorted by category then image)
    n_classes: int


def _load(ws: Workspace, run_id: int, iou_type: str) -> CocoData:
    cur = ws.store.cursor()
    kinds = ["bbox", "polygon", "mask"]
    segm = iou_type == "segm"
    # only what the protocol reads: boxes and areas (and, for segm, the shapes at their image's size)
    cols = "o.id, o.data_row_id, o.feature_id, o.x, o.y, o.w, o.h, o.area"
    cols += ", o.kind, o.geometry, o.mask_rle, d.height, d.width" if segm else ""
    frm = " JOIN data_rows d ON d.id = o.data_row_id" if segm else ""

    def fetch(sql: str, params: list[Any]) -> dict[str, Any]:
        t = cur.execute(sql, params).to_arrow_table()
        out: dict[str, Any] = {}
        for name in t.column_names:
            col = t.column(name)
            if name in ("geometry", "mask_rle", "kind"):
                out[name] = np.array(col.to_pylist(), dtype=object)
            else:
                out[name] = col.to_numpy(zero_copy_only=False)
        return out

    gt = fetch(f"""SELECT {cols}, o.iscrowd FROM annotations o{frm}
        WHERE o.data_row_id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?) AND list_contains(?, o.kind)""",
               [run_id, kinds])
    dt = fetch(f"""SELECT {cols}, o.confidence, CASE WHEN o.kind = 'bbox' THEN o.w * o.h END AS box_area
        FROM predictions o{frm} WHERE o.run_id = ? AND list_contains(?, o.kind)""", [run_id, kinds])
    # images in COCO id order when imported from COCO (metadata coco_image_id), else in data row order:
    # the order decides how equal scores of different images rank, as in COCOeval
    img = cur.execute("""SELECT rr.data_row_id, m.value_number FROM run_rows rr LEFT JOIN row_metadata m
                         ON m.data_row_id = rr.data_row_id AND m.field = 'coco_image_id' WHERE rr.run_id = ?
                         """, [run_id]).to_arrow_table()
    rows = img.column(0).to_numpy().astype(np.int64)
    if not len(rows):
        raise MetricsError(f"run {run_id} has no data rows", where=f"run {run_id}", fix="add predictions first")
    coco_ids = img.column(1)
    rows = rows[np.lexsort((rows, coco_ids.to_numpy(zero_copy_only=False)))] if coco_ids.null_count == 0 \
        else np.sort(rows)
    # categories: every box/polygon/mask feature of the ontology (as COCOeval takes every category), in
    # COCO category id order when every one has a numeric external id, else in feature id order
    fx = cur.execute("SELECT id, name, external_id FROM features WHERE list_contains(?, kind) ORDER BY id",
                     [kinds]).fetchall()
    names = {int(i): n for i, n, _ in fx}
    if fx and all(ascii_int(e, negative=True) is not None for _, _, e in fx):
        fx.sort(key=lambda f: (int(f[2]), f[0]))
    order = [int(f[0]) for f in fx]
    used = set(np.unique(np.r_[np.asarray(gt["feature_id"], np.int64), np.asarray(dt["feature_id"], np.int64)]).tolist())
    feats = np.array(order + sorted(used - set(order)), np.int64)
    n_img = len(rows)
    # dense id -> position tables (ids are small integers from the store's sequences)
    img_of = np.full(int(rows.max()) + 1, -1, np.int64)
    img_of[rows] = np.arange(n_img)
    cat_of = np.full(int(feats.max(initial=0)) + 1, -1, np.int64)
    cat_of[feats] = np.arange(len(feats))

    def group(o: dict[str, Any]) -> np.ndarray:
        r = np.asarray(o["data_row_id"], np.int64)
        img = np.where(r < len(img_of), img_of[np.minimum(r, len(img_of) - 1)], -1)
        return np.where(img >= 0, cat_of[np.asarray(o["feature_id"], np.int64)] * n_img + img, -1)

    def f64(o: dict[str, Any], c: str) -> np.ndarray:
        v = o[c]
        if isinstance(v, np.ma.MaskedArray):
            return v.filled(np.nan).astype(np.float64)
        return np.asarray(v, np.float64)

    def boxes(o: dict[str, Any]) -> np.ndarray:
        return np.column_stack([f64(o, c) for c in "xywh"]) if len(o["id"]) else np.zeros((0, 4))

    g_group = group(gt)
    g_box = boxes(gt)
    g_rle = _rles(gt, "gt") if segm else None
    g_area = f64(gt, "area")
    miss = np.isnan(g_area)
    if miss.any():
        if segm:
            from pycocotools import mask as mask_utils
            g_area[miss] = [float(mask_utils.area(g_rle[i])) for i in np.flatnonzero(miss)]  # type: ignore[index]
        else:
            g_area[miss] = g_box[miss, 2] * g_box[miss, 3]
    g_crowd = np.asarray(gt["iscrowd"], bool)
    go = _group_order(g_group, np.zeros(len(g_group)), np.asarray(gt["id"], np.int64))

    # predictions on rows outside the run are not the run's images (COCOeval evaluates its imgIds only)
    d_group = group(dt)
    d_score = f64(dt, "confidence")
    d_box = boxes(dt)
    d_rle = _rles(dt, "dt") if segm else None
    if segm:
        from pycocotools import mask as mask_utils
        d_area = np.array([float(mask_utils.area(m)) for m in d_rle or []], np.float64)
    else:
        box_area = f64(dt, "box_area")  # w * h for boxes (as loadRes), the stored area for the rest
        d_area = np.where(np.isnan(box_area), f64(dt, "area"), box_area)
    # stable sort by score within a group (ids ascending = the results file order), keep MAX_DETS[-1]
    do = _group_order(d_group, -d_score, np.asarray(dt["id"], np.int64))
    do = do[d_group[do] >= 0]
    sg = d_group[do]
    first = np.r_[0, np.flatnonzero(sg[1:] != sg[:-1]) + 1] if len(sg) else np.zeros(0, np.int64)
    rank = np.arange(len(sg)) - np.repeat(first, np.diff(np.r_[first, len(sg)]))
    do = do[rank < MAX_DETS[-1]]

    # the non-empty (category, image) groups, in order: a merge of the two sorted group columns
    sd, sgt = d_group[do], g_group[go]
    both = np.concatenate([sd, sgt])
    both.sort(kind="stable")
    groups = both[np.r_[True, both[1:] != both[:-1]]] if len(both) else both
    gi = np.searchsorted(groups, sgt)
    di = np.searchsorted(groups, sd)
    return CocoData(
        classes=[str(names.get(int(f), f)) for f in feats],
        det_group=di.astype(np.int64), det_score=d_score[do], det_area=d_area[do], det_box=d_box[do],
        det_rle=[d_rle[i] for i in do] if d_rle is not None else None,
        gt_group=gi.astype(np.int64), gt_area=g_area[go], gt_crowd=g_crowd[go], gt_box=g_box[go],
        gt_rle=[g_rle[i] for i in go] if g_rle is not None else None,
        group_cat=(groups // n_img).astype(np.int64), n_classes=len(feats))


def _group_order(group: np.ndarray, neg_score: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``np.lexsort((ids, neg_score, group))``, faster: a stable sort by group, then each group's few."""
    order = np.argsort(group, kind="stable")
    neg = np.nan_to_num(np.asarray(neg_score, np.float64), nan=np.inf)  # no score: last, as lexsort puts NaN
    sort_within_groups(order, group, neg, ids)
    return order


def _rles(o: dict[str, Any], what: str) -> list[Any]:
    """Each object as a COCO RLE at its image size (polygons rasterised as pycocotools' annToRLE does)."""
    from slicewise.metrics.objects import rle_of

    return [rle_of(o["kind"][i], int(o["height"][i]), int(o["width"][i]), o["mask_rle"][i], o["geometry"][i],
                   tuple(float(o[c][i]) for c in "xywh")) for i in range(len(o["id"]))]


def _offsets(group: np.ndarray, n_groups: int) -> np.ndarray:
    return np.r_[0, np.cumsum(np.bincount(group, minlength=n_groups))].astype(np.int64)


def evaluate(d: CocoData, iou_type: str, job: JobStatus) -> CocoResult:
    n_groups = len(d.group_cat)
    d0, g0 = _offsets(d.det_group, n_groups), _offsets(d.gt_group, n_groups)
    sizes = np.diff(d0) * np.diff(g0)
    off = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    if iou_type == "bbox":
        ious = box_ious(d.det_box, d.gt_box, d.gt_crowd, d0, g0, off)
    else:
        from pycocotools import mask as mask_utils

        ious = np.zeros(off[-1])
        assert d.det_rle is not None and d.gt_rle is not None
        for q in np.flatnonzero(sizes):
            dr, gr = d.det_rle[d0[q]:d0[q + 1]], d.gt_rle[g0[q]:g0[q + 1]]
            m = np.asarray(mask_utils.iou(dr, gr, [int(c) for c in d.gt_crowd[g0[q]:g0[q + 1]]]), np.float64)
            ious[off[q]:off[q + 1]] = m.reshape(-1)
    area_rng = np.array(list(AREA_RANGES.values()), np.float64)
    thrs = iou_thresholds()
    # numba's default (workqueue) threading layer must not run parallel kernels from two threads at once
    with _PARALLEL_LOCK:
        dtm, dtig, gtig = match_images(ious, off, d0, g0, d.det_area, d.gt_area, d.gt_crowd, area_rng, thrs,
                                       numba.get_num_threads())
        precision, recall = accumulate(d.group_cat, d0, g0, d.det_score, dtm, dtig, gtig, d.n_classes,
                                        np.array(MAX_DETS, np.int64), recall_thresholds())
    stats = summarize(precision, recall)
    per_class: dict[str, float | None] = {}
    for k, name in enumerate(d.classes):
        s = precision[:, :, k, 0, -1]
        per_class[name] = float(np.mean(s[s > -1])) if (s > -1).any() else None
    return CocoResult(iou_type, tuple(stats), frozen_mapping(per_class), frozen_array(precision),
                      frozen_array(recall), tuple(d.classes), job)


def summarize(precision: np.ndarray, recall: np.ndarray) -> list[float]:
    """COCOeval.summarize's 12 numbers from the accumulated arrays (same slicing, same means)."""
    thrs = iou_thresholds()
    labels = list(AREA_RANGES)

    def one(ap: int, iou: float | None = None, area: str = "all", max_dets: int = 100) -> float:
        aind = [labels.index(area)]
        mind = [MAX_DETS.index(max_dets)]
        if ap == 1:
            s = precision
            if iou is not None:
                s = s[np.where(iou == thrs)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = recall
            if iou is not None:
                s = s[np.where(iou == thrs)[0]]
            s = s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    return [one(1), one(1, 0.5, max_dets=100), one(1, 0.75, max_dets=100), one(1, area="small"),
            one(1, area="medium"), one(1, area="large"), one(0, max_dets=1), one(0, max_dets=10),
            one(0, max_dets=100), one(0, area="small"), one(0, area="medium"), one(0, area="large")]


#: what the COCO numbers of a run depend on (labels, predictions, the run's rows, the ontology, image ids)
AP_TOPICS = ("labels", "predictions", "run_rows", "rows", "features", "metadata")


@dataclass(frozen=True)
class FeatureAP:
    """COCO AP@[.5:.95], AP50, AP75 and AR (100 detections, all areas) of one feature, or of the run
    (``feature`` None: the mean over the features with ground truth, which is COCOeval's mAP / mAR when
    the run has one IoU type). ``iou_type``: "bbox" for box features, "segm" for polygons and masks."""

    feature: str | None
    iou_type: str
    ap: float | None
    ap50: float | None
    ap75: float | None
    ar: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "iou_type": self.iou_type, "ap": self.ap, "ap50": self.ap50,
                "ap75": self.ap75, "ar": self.ar}


def _mean(a: np.ndarray) -> float | None:
    return float(np.mean(a[a > -1])) if (a > -1).any() else None


def _per_class(res: CocoResult, k: int) -> tuple[float | None, ...]:
    p, r, thrs = np.asarray(res.precision), np.asarray(res.recall), iou_thresholds()
    at = [int(np.argmin(np.abs(thrs - v))) for v in (0.5, 0.75)]
    m = MAX_DETS.index(100)
    return (_mean(p[:, :, k, 0, m]), _mean(p[at[0], :, k, 0, m]), _mean(p[at[1], :, k, 0, m]), _mean(r[:, k, 0, m]))


@overload
def feature_ap(ws: Workspace, run: RunRef, *, wait: Literal[True] = True) -> tuple[dict[str, FeatureAP], FeatureAP | None]: ...
@overload
def feature_ap(ws: Workspace, run: RunRef, *, wait: bool) -> tuple[dict[str, FeatureAP], FeatureAP | None] | None: ...
def feature_ap(ws: Workspace, run: RunRef, *, wait: bool = True) -> tuple[dict[str, FeatureAP], FeatureAP | None] | None:
    """Per spatial feature of a run (box: bbox IoU; polygon, mask: segm IoU), the COCO AP / AP50 / AP75 / AR
    over all the run's rows, and the run's means (None without ground truth). Computed once per run and
    kept in the workspace's state until its labels, predictions, rows or ontology change.

    ``wait=False``: the result when it is already kept, else None, and it is computed in a background
    thread (the first COCO evaluation of a fresh install compiles its kernels: tens of seconds)."""
    r = get_run(ws, run)
    name, topics = ("coco-feature-ap", r.id), [*AP_TOPICS, f"runs:{r.id}"]
    if not wait:
        have, value = ws.state.remembered(name, topics)
        if have:
            return value  # type: ignore[no-any-return]
        lock = ws.state.key_lock(("coco-feature-ap-job", r.id))
        if lock.acquire(blocking=False):
            def work() -> None:
                try:
                    with contextlib.suppress(Exception):  # (a failure shows as AP still pending; the CLI says why)
                        feature_ap(ws, r.id)
                finally:
                    lock.release()

            threading.Thread(target=work, name=f"coco-ap-{r.id}", daemon=True).start()
        return None

    def compute() -> tuple[dict[str, FeatureAP], FeatureAP | None]:
        cur = ws.store.cursor()
        kinds = dict(cur.execute("""SELECT DISTINCT f.name, f.kind FROM features f WHERE f.id IN (
            SELECT feature_id FROM predictions WHERE run_id = ? UNION SELECT a.feature_id FROM annotations a
            JOIN run_rows rr ON rr.data_row_id = a.data_row_id AND rr.run_id = ?)""", [r.id, r.id]).fetchall())
        want = {"bbox": [n for n, k in kinds.items() if k == "bbox"],
                "segm": [n for n, k in kinds.items() if k in ("polygon", "mask")]}
        out: dict[str, FeatureAP] = {}
        for iou_type, names in want.items():
            if not names:
                continue
            res = evaluate(_load(ws, r.id, iou_type), iou_type, job_of(ws, r))
            for k, name in enumerate(res.classes):
                if name in names:
                    out[name] = FeatureAP(name, iou_type, *_per_class(res, k))
        with_gt = [f for f in out.values() if f.ap is not None]
        if not with_gt:
            return out, None
        types = sorted({f.iou_type for f in with_gt})
        mean = {k: float(np.mean([getattr(f, k) for f in with_gt if getattr(f, k) is not None] or [np.nan]))
                for k in ("ap", "ap50", "ap75", "ar")}
        return out, FeatureAP(None, "+".join(types), **{k: (None if np.isnan(v) else v) for k, v in mean.items()})

    return ws.state.memo(name, topics, compute)
