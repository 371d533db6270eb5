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
  the conf indexes where the line is present with the same values (a line's number ``rf_ord`` within k is
  its position among the lines present at k);
- :class:`RowArrays`: per data row, what does not depend on t (counts, means over features, confidences).

Missing values are NaN in float arrays; ``has_pred`` / ``has_gt`` say which records have each side.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numba
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
    rows: RowArrays


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
        # each line's kind (its objects'): as codes over the kinds of both sides
        (pk, pnames), (gk, gnames) = P.kind_codes(), G.kind_codes()
        names = sorted({*pnames, *gnames})
        kind = np.full(self.n, -1, np.int64)
        kind[self.of_g] = np.array([names.index(n) for n in gnames], np.int64)[gk] if len(gk) else gk
        kind[self.of_p] = np.array([names.index(n) for n in pnames], np.int64)[pk] if len(pk) else pk

        def lines_of(name: str) -> np.ndarray:
            return kind == names.index(name) if name in names else np.zeros(self.n, bool)

        self.checklist = lines_of("checklist")
        self.masks = np.flatnonzero(lines_of("mask"))
        self.n_gt = np.bincount(self.of_g, minlength=self.n).astype(np.float64)


def tally(P: Objects, G: Objects, thresholds: np.ndarray, protocol: Pass, quality: Pass, pclass: np.ndarray,
          gclass: np.ndarray) -> Matched:
    """The arrays of every confidence index, from the protocol's passes and the per-feature (quality) ones.

    Per line and conf index at once: (lines, K) arrays of what each line holds at each k (NaN where it is
    not present), summed in the predictions' order (as per-k ``bincount`` calls would: the same floats)."""
    lines = _Lines(P, G)
    vals = _line_values(P, G, lines, thresholds, quality)
    present = ~np.isnan(vals["n_gt"])
    spans = _line_spans(lines, vals, present)
    ext = {"g": np.append(protocol.g, len(G)), "iou": np.append(protocol.iou, np.nan), "gid": np.append(G.id, 0),
           "gcls": np.append(gclass, 0), "gfeat": np.append(G.feature, 0)}  # sentinels: "no match" indexes one past
    return Matched(_concat(RecordArrays, [_records(P, G, thresholds, protocol, ext, pclass, gclass)]),
                   _concat(LineArrays, [spans]), _row_arrays(lines, vals))


_LINE_VALUES = ("n_pred", "n_gt", "conf_min", "conf_max", "conf_sum", "iou")


@numba.njit(cache=True)
def _line_sums(of_p: np.ndarray, conf: np.ndarray, thresholds: np.ndarray, qmatch: np.ndarray, qiou: np.ndarray,
               n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per (line, k), over the predictions kept at k in their order: count, confidence sum / min / max, and
    the sum of the quality pass's IoU of those matched."""
    K = len(thresholds)
    npk = np.zeros((n, K))
    csum = np.zeros((n, K))
    cmin = np.full((n, K), np.inf)
    cmax = np.full((n, K), -np.inf)
    s = np.zeros((n, K))
    for k in range(K):
        c = thresholds[k]
        for p in range(len(of_p)):
            if conf[p] >= c:
                j = of_p[p]
                v = conf[p]
                npk[j, k] += 1.0
                csum[j, k] += v
                cmin[j, k] = min(cmin[j, k], v)
                cmax[j, k] = max(cmax[j, k], v)
                q = qmatch[k, p]
                if q >= 0:
                    s[j, k] += qiou[q]
    return npk, csum, cmin, cmax, s


def _line_values(P: Objects, G: Objects, lines: _Lines, thresholds: np.ndarray, quality: Pass
                 ) -> dict[str, np.ndarray]:
    """:data:`_LINE_VALUES` as (lines, K) arrays: what each line holds at each conf index, NaN where the line
    is not present (no prediction kept at k and no label); conf stats NaN where no prediction is kept."""
    n, K = lines.n, len(thresholds)
    npk, csum, cmin, cmax, s = _line_sums(lines.of_p, P.confidence.astype(np.float64), thresholds, quality.match,
                                          quality.iou, n)
    ngt = np.repeat(lines.n_gt[:, None], K, axis=1)
    present = (npk + ngt) > 0
    val = reduce.overlap_iou(s, npk, ngt, np.repeat(lines.checklist[:, None], K, axis=1))
    for j in lines.masks:  # masks: the pixel IoU of the unions (once per distinct set of kept predictions)
        on_j = np.flatnonzero(lines.of_p == j)
        gk = np.flatnonzero(lines.of_g == j)
        mask_cache: dict[tuple[int, ...], float] = {}
        for k in np.flatnonzero(present[j]):
            pk = on_j[P.confidence[on_j] >= thresholds[k]]
            key = tuple(int(i) for i in pk)
            if key not in mask_cache:
                mask_cache[key] = union_mask_iou(P, G, pk, gk)
            val[j, k] = mask_cache[key]
    none = npk == 0
    cmin[none], cmax[none], csum[none] = np.nan, np.nan, np.nan
    out = {"n_pred": npk, "n_gt": ngt, "conf_min": cmin, "conf_max": cmax, "conf_sum": csum, "iou": val}
    for v in out.values():
        v[~present] = np.nan
    return out


def _line_spans(lines: _Lines, vals: dict[str, np.ndarray], present: np.ndarray) -> dict[str, np.ndarray]:
    """The lines of every conf index as spans of conf indexes where a line is present with the same values
    (NaN equal to NaN), in (row, feature) order."""
    n, K = present.shape
    same = np.ones((n, max(K - 1, 0)), bool)
    for c in _LINE_VALUES:
        a, b = vals[c][:, 1:], vals[c][:, :-1]
        same &= (a == b) | (np.isnan(a) & np.isnan(b))
    li, lo, hi = _runs(present, same)
    out = {"k_lo": lo.astype(np.int16), "k_hi": hi.astype(np.int16), "data_row_id": lines.rf[li, 0],
           "feature_id": lines.rf[li, 1], **{c: vals[c][li, lo] for c in _LINE_VALUES}}
    return out


@numba.njit(cache=True)
def _row_sums(starts: np.ndarray, npk: np.ndarray, ngt: np.ndarray, iou: np.ndarray, csum: np.ndarray,
              cmin: np.ndarray, cmax: np.ndarray) -> np.ndarray:
    """Per (row, k) of lines grouped by row (``starts``; NaN where a line is absent), summed in the lines'
    order: [n_pred, n_gt, n_p, n_r, n_f, iou sum, iou count, conf sum, conf min, conf max]."""
    R, K = len(starts) - 1, npk.shape[1]
    out = np.zeros((10, R, K))
    for r in range(R):
        for k in range(K):
            a = np.zeros(8)
            lo, hi = np.inf, -np.inf
            for j in range(starts[r], starts[r + 1]):
                if np.isnan(ngt[j, k]):
                    continue
                a[0] += npk[j, k]
                a[1] += ngt[j, k]
                a[2] += 1.0 if npk[j, k] > 0 else 0.0
                a[3] += 1.0 if ngt[j, k] > 0 else 0.0
                a[4] += 1.0
                if not np.isnan(iou[j, k]):
                    a[5] += iou[j, k]
                    a[6] += 1.0
                if not np.isnan(csum[j, k]):
                    a[7] += csum[j, k]
                    lo = min(lo, cmin[j, k])
                    hi = max(hi, cmax[j, k])
            for i in range(8):
                out[i, r, k] = a[i]
            out[8, r, k] = lo if a[0] > 0 else np.nan
            out[9, r, k] = hi if a[0] > 0 else np.nan
    return out


def _row_arrays(lines: _Lines, vals: dict[str, np.ndarray]) -> RowArrays:
    """Per data row and conf index where the row has a line: what does not depend on t (k-major, rows in
    order)."""
    rid = lines.rf[:, 0]
    starts = np.r_[0, np.flatnonzero(rid[1:] != rid[:-1]) + 1, len(rid)].astype(np.int64) if len(rid) \
        else np.zeros(1, np.int64)
    t = _row_sums(starts, vals["n_pred"], vals["n_gt"], vals["iou"], vals["conf_sum"], vals["conf_min"],
                  vals["conf_max"])
    ks, ri = np.nonzero((t[4] > 0).T)  # (k, row) where the row has a line at k, k-major
    n_pred = t[0, ri, ks]
    return RowArrays(conf_idx=ks.astype(np.int16), data_row_id=rid[starts[:-1]][ri], n_pred=n_pred, n_gt=t[1, ri, ks],
                     n_feat=t[4, ri, ks], n_p=t[2, ri, ks], n_r=t[3, ri, ks], n_f=t[4, ri, ks],
                     iou=reduce.round_ratio(reduce.safe_divide(t[5, ri, ks], t[6, ri, ks])),
                     conf_min=t[8, ri, ks], conf_max=t[9, ri, ks],
                     conf_mean=reduce.safe_divide(t[7, ri, ks], n_pred))


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


def union_mask_iou(P: Objects, G: Objects, pk: np.ndarray, gk: np.ndarray) -> float:
    """Pixel IoU of the union of some predicted masks with the union of some labelled masks (0 when a side
    has none)."""
    from pycocotools import mask as mask_utils

    if not len(pk) or not len(gk):
        return 0.0
    up = mask_utils.merge(as_rles(P, pk), intersect=0)
    ug = mask_utils.merge(as_rles(G, gk), intersect=0)
    return reduce.round_ratio(float(np.asarray(mask_utils.iou([up], [ug], [0])).reshape(-1)[0]))
