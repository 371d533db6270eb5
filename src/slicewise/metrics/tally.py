"""From greedy passes to what is stored, as NumPy arrays: the match records and the summaries that make a
new (c, t) a count (pure: :mod:`slicewise.metrics.records` packs these arrays into the stored tables).

For every confidence index k of the grid:

- :class:`RecordArrays`: one record per kept prediction (with the label it was paired with, if any, and
  their IoU) and one per label left unpaired, as *spans*: a record that is the same at consecutive conf
  indexes ``k_lo <= k < k_hi`` is one span (a prediction is kept at a prefix of the grid, and keeps its
  match at most levels); within a conf index, the predictions' records come in the predictions' order,
  then the unpaired labels' in the labels' order;
- :class:`LineArrays`: one line per (data row, feature) present at k, in (row, feature) order: prediction
  and label counts, confidence stats and the overlap quality ``iou``, as spans ``k_lo <= k < k_hi`` of
  the conf indexes where the line is present with the same values (``Matched.n_lines``: how many lines are
  present at each k; a line's number ``line`` within k is its position among them);
- :class:`PairArrays`: the IoU of every same-class pair of the pass, by line (a TP at t when above t);
- :class:`RowArrays`: per data row, what does not depend on t (counts, means over features, confidences).

Missing values are NaN in float arrays; ``has_pred`` / ``has_gt`` say which records have each side.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from slicewise.metrics import reduce
from slicewise.metrics.objects import Objects, as_rles


@dataclass(frozen=True)
class Pass:
    """Greedy passes at every confidence threshold over visited pairs (``p``, ``g``, ``iou``, in visiting
    order): ``match[k, i]`` is the pair that matched prediction i at threshold k, or -1."""

    p: np.ndarray
    g: np.ndarray
    iou: np.ndarray
    match: np.ndarray


@dataclass(frozen=True)
class RecordArrays:
    k_lo: np.ndarray
    k_hi: np.ndarray
    data_row_id: np.ndarray
    pred_id: np.ndarray
    gt_id: np.ndarray
    pred_class: np.ndarray
    true_class: np.ndarray
    pred_feature: np.ndarray
    true_feature: np.ndarray
    iou: np.ndarray
    confidence: np.ndarray
    has_pred: np.ndarray
    has_gt: np.ndarray


@dataclass(frozen=True)
class LineArrays:
    k_lo: np.ndarray
    k_hi: np.ndarray
    data_row_id: np.ndarray
    feature_id: np.ndarray
    n_pred: np.ndarray
    n_gt: np.ndarray
    conf_min: np.ndarray
    conf_max: np.ndarray
    conf_sum: np.ndarray
    iou: np.ndarray


@dataclass(frozen=True)
class PairArrays:
    conf_idx: np.ndarray
    line: np.ndarray
    iou: np.ndarray


@dataclass(frozen=True)
class RowArrays:
    conf_idx: np.ndarray
    data_row_id: np.ndarray
    n_pred: np.ndarray
    n_gt: np.ndarray
    n_feat: np.ndarray  # features on the row (predicted or labelled)
    n_p: np.ndarray  # features with a prediction (where precision is defined)
    n_r: np.ndarray  # features with a label (where recall is defined)
    n_f: np.ndarray  # features where F1 is defined
    iou: np.ndarray
    conf_min: np.ndarray
    conf_max: np.ndarray
    conf_mean: np.ndarray


@dataclass(frozen=True)
class Matched:
    records: RecordArrays
    lines: LineArrays
    pairs: PairArrays
    rows: RowArrays
    n_lines: np.ndarray  # lines present at each conf index


def _concat(cls: Any, parts: list[dict[str, np.ndarray]]) -> Any:
    names = [f.name for f in fields(cls)]
    return cls(**{n: np.concatenate([p[n] for p in parts]) if parts else np.zeros(0) for n in names})


class _Lines:
    """The (data row, feature) lines of a batch: which line each object is on."""

    def __init__(self, P: Objects, G: Objects) -> None:
        # (row, feature) as one key (features are ids >= 0): its sorted distinct values are the lines in
        # (row, feature) order
        mult = int(max(P.feature.max(initial=0), G.feature.max(initial=0))) + 1
        key = np.unique(np.concatenate([P.row * mult + P.feature, G.row * mult + G.feature]).astype(np.int64))
        rf = np.stack([key // mult, key % mult], 1)
        self.rf, self.n = rf, len(rf)
        self.of_p = np.searchsorted(key, P.row * mult + P.feature)
        self.of_g = np.searchsorted(key, G.row * mult + G.feature)
        kind = np.empty(self.n, dtype=object)
        kind[self.of_g] = G.kind
        kind[self.of_p] = P.kind
        self.checklist = kind == "checklist"
        self.masks = np.flatnonzero(kind == "mask")
        self.n_gt = np.bincount(self.of_g, minlength=self.n).astype(np.float64)


def tally(P: Objects, G: Objects, thresholds: np.ndarray, protocol: Pass, quality: Pass, pclass: np.ndarray,
          gclass: np.ndarray) -> Matched:
    """The arrays of every confidence index, from the protocol's passes and the per-feature (quality) ones."""
    lines = _Lines(P, G)
    # sentinels: "no match" indexes one past the end of these
    ext = {"g": np.append(protocol.g, len(G)), "iou": np.append(protocol.iou, np.nan), "gid": np.append(G.id, 0),
           "gcls": np.append(gclass, 0), "gfeat": np.append(G.feature, 0)}
    mask_cache: dict[tuple[int, tuple[int, ...]], float] = {}
    lns, prs, rows = [], [], []
    for k in range(len(thresholds)):
        kept = np.flatnonzero(P.confidence >= thresholds[k])
        q = protocol.match[k, kept]
        has = q >= 0
        q = np.where(has, q, len(protocol.g))  # index of the sentinel
        g = ext["g"][q]
        ln = _lines(k, P, G, lines, kept, quality, mask_cache)
        lns.append(ln)
        if len(ln["line"]):
            rows.append(_rows(k, ln))
        same = has & (pclass[kept] == ext["gcls"][g])
        ordmap = np.full(lines.n, -1, np.int64)
        ordmap[ln["index"]] = ln["line"]
        prs.append({"conf_idx": np.full(int(same.sum()), k, np.int16), "line": ordmap[lines.of_p[kept[same]]],
                    "iou": ext["iou"][q[same]]})
    spans, n_lines = _line_spans(lines, lns)
    return Matched(_concat(RecordArrays, [_records(P, G, thresholds, protocol, ext, pclass, gclass)]),
                   _concat(LineArrays, [spans]), _concat(PairArrays, prs), _concat(RowArrays, rows), n_lines)


_LINE_VALUES = ("n_pred", "n_gt", "conf_min", "conf_max", "conf_sum", "iou")


def _line_spans(lines: _Lines, lns: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The lines of every conf index as spans of conf indexes where a line is present with the same values
    (NaN equal to NaN), in (row, feature) order; and the number of lines present at each conf index."""
    n, K = lines.n, len(lns)
    present = np.zeros((n, K), bool)
    vals = {c: np.full((n, K), np.nan) for c in _LINE_VALUES}
    for k, ln in enumerate(lns):
        present[ln["index"], k] = True
        for c in _LINE_VALUES:
            vals[c][ln["index"], k] = ln[c]
    same = np.ones((n, max(K - 1, 0)), bool)
    for c in _LINE_VALUES:
        a, b = vals[c][:, 1:], vals[c][:, :-1]
        same &= (a == b) | (np.isnan(a) & np.isnan(b))
    li, lo, hi = _runs(present, same)
    out = {"k_lo": lo.astype(np.int16), "k_hi": hi.astype(np.int16), "data_row_id": lines.rf[li, 0],
           "feature_id": lines.rf[li, 1], **{c: vals[c][li, lo] for c in _LINE_VALUES}}
    return out, present.sum(axis=0)


def _runs(on: np.ndarray, same: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of ``on`` along each line of a (n, K) array, broken where ``same[:, k - 1]`` (if given) is
    False, i.e. where the value at k differs from the value at k - 1: (line, first k, one past the last k)
    of each run, in (line, k) order."""
    n, K = on.shape
    start = on.copy()
    stop = on.copy()
    if K > 1:
        brk = ~on[:, :-1] if same is None else ~on[:, :-1] | ~same
        start[:, 1:] &= brk
        brk = ~on[:, 1:] if same is None else ~on[:, 1:] | ~same
        stop[:, :-1] &= brk
    s, e = np.flatnonzero(start.ravel()), np.flatnonzero(stop.ravel())
    return s // K, s % K, e % K + 1


def _records(P: Objects, G: Objects, thresholds: np.ndarray, protocol: Pass, ext: dict[str, np.ndarray],
             pclass: np.ndarray, gclass: np.ndarray) -> dict[str, np.ndarray]:
    """The records of every conf index as spans of conf indexes (see :class:`RecordArrays`)."""
    K = len(thresholds)
    kept = P.confidence[:, None] >= thresholds[None, :]  # (n, K): a prefix of the grid
    match = protocol.match.T  # (n, K): the pair each prediction matched at k, -1 none
    pi, klo, khi = _runs(kept, match[:, 1:] == match[:, :-1])
    q = match[pi, klo]
    has = q >= 0
    q = np.where(has, q, len(protocol.g))  # index of the sentinel
    g = ext["g"][q]
    ks, ps = np.nonzero(protocol.match >= 0)
    paired = np.zeros((len(G), K), bool)
    paired[protocol.g[protocol.match[ks, ps]], ks] = True
    un, ulo, uhi = _runs(~paired)
    n1, n2 = len(pi), len(un)
    return {"k_lo": np.concatenate([klo, ulo]).astype(np.int16), "k_hi": np.concatenate([khi, uhi]).astype(np.int16),
            "data_row_id": np.concatenate([P.row[pi], G.row[un]]),
            "pred_id": np.concatenate([P.id[pi], np.zeros(n2, np.int64)]),
            "has_pred": np.concatenate([np.ones(n1, bool), np.zeros(n2, bool)]),
            "gt_id": np.concatenate([ext["gid"][g], G.id[un]]), "has_gt": np.concatenate([has, np.ones(n2, bool)]),
            "pred_class": np.concatenate([pclass[pi], np.zeros(n2, np.int64)]),
            "true_class": np.concatenate([ext["gcls"][g], gclass[un]]),
            "pred_feature": np.concatenate([P.feature[pi], np.zeros(n2, np.int64)]),
            "true_feature": np.concatenate([ext["gfeat"][g], G.feature[un]]),
            "iou": np.concatenate([ext["iou"][q], np.full(n2, np.nan)]),
            "confidence": np.concatenate([P.confidence[pi], np.full(n2, np.nan)])}


def _lines(k: int, P: Objects, G: Objects, lines: _Lines, kept: np.ndarray, quality: Pass,
           mask_cache: dict[tuple[int, tuple[int, ...]], float]) -> dict[str, np.ndarray]:
    """The lines present at conf index k (with ``index``, their position among the batch's lines)."""
    n, of_p = lines.n, lines.of_p
    npk = np.bincount(of_p[kept], minlength=n).astype(np.float64)
    qq = quality.match[k, kept]
    qh = qq >= 0
    s = np.bincount(of_p[kept[qh]], weights=quality.iou[qq[qh]], minlength=n)
    present = (npk + lines.n_gt) > 0
    val = reduce.overlap_iou(s, npk, lines.n_gt, lines.checklist)
    for j in lines.masks:  # masks: the pixel IoU of the unions
        if present[j]:
            pk = kept[of_p[kept] == j]
            key = (int(j), tuple(int(i) for i in pk))
            if key not in mask_cache:
                mask_cache[key] = union_mask_iou(P, G, pk, np.flatnonzero(lines.of_g == j))
            val[j] = mask_cache[key]
    idx = np.flatnonzero(present)
    ck = P.confidence[kept]
    cmin = np.full(n, np.inf)
    np.minimum.at(cmin, of_p[kept], ck)
    cmax = np.full(n, -np.inf)
    np.maximum.at(cmax, of_p[kept], ck)
    csum = np.bincount(of_p[kept], weights=ck, minlength=n).astype(np.float64)
    none = npk == 0
    cmin[none], cmax[none], csum[none] = np.nan, np.nan, np.nan
    return {"index": idx, "conf_idx": np.full(len(idx), k, np.int16), "line": np.arange(len(idx), dtype=np.int64),
            "data_row_id": lines.rf[idx, 0], "feature_id": lines.rf[idx, 1], "n_pred": npk[idx],
            "n_gt": lines.n_gt[idx], "conf_min": cmin[idx], "conf_max": cmax[idx], "conf_sum": csum[idx],
            "iou": val[idx]}


def _rows(k: int, ln: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per data row of the lines (which are in row order): what does not depend on t."""
    r_ids = ln["data_row_id"]
    starts = np.r_[0, np.flatnonzero(r_ids[1:] != r_ids[:-1]) + 1]
    ends = np.r_[starts[1:], len(r_ids)]
    grp = np.repeat(np.arange(len(starts)), ends - starts)
    nrow = len(starts)

    def tot(v: np.ndarray) -> np.ndarray:
        return np.bincount(grp, weights=v, minlength=nrow)

    a_np, a_ng = ln["n_pred"], ln["n_gt"]
    npred_r = tot(a_np)
    return {"conf_idx": np.full(nrow, k, np.int16), "data_row_id": r_ids[starts], "n_pred": npred_r,
            "n_gt": tot(a_ng), "n_feat": (ends - starts).astype(np.float64), "n_p": tot((a_np > 0).astype(np.float64)),
            "n_r": tot((a_ng > 0).astype(np.float64)), "n_f": tot((a_np + a_ng > 0).astype(np.float64)),
            "iou": reduce.round_ratio(reduce.group_mean(grp, ln["iou"], nrow)),
            "conf_min": np.fmin.reduceat(ln["conf_min"], starts), "conf_max": np.fmax.reduceat(ln["conf_max"], starts),
            "conf_mean": reduce.safe_divide(tot(np.nan_to_num(ln["conf_sum"])), npred_r)}


def union_mask_iou(P: Objects, G: Objects, pk: np.ndarray, gk: np.ndarray) -> float:
    """Pixel IoU of the union of some predicted masks with the union of some labelled masks (0 when a side
    has none)."""
    from pycocotools import mask as mask_utils

    if not len(pk) or not len(gk):
        return 0.0
    up = mask_utils.merge(as_rles(P, pk), intersect=0)
    ug = mask_utils.merge(as_rles(G, gk), intersect=0)
    return reduce.round_ratio(float(np.asarray(mask_utils.iou([up], [ug], [0])).reshape(-1)[0]))
