"""Confidence calibration: expected and maximum calibration error (ECE, MCE) with reliability diagrams,
per run, per predicted class and over any rows (a slice, a filter).

The predictions are those kept at confidence c; a prediction is *correct* when it is a TP at (c, t)
(matched, IoU above t, to a label of its class; a class confusion or an unmatched prediction is not).
Bins are ``n_bins`` equal widths of [0, 1]: prediction with confidence p goes to bin
``min(floor(p * n_bins), n_bins - 1)`` (so 1.0 is in the last bin). With n_b predictions in bin b, mean
confidence conf_b and share correct acc_b, over N predictions:

    ECE = sum_b (n_b / N) |acc_b - conf_b|        MCE = max over non-empty bins of |acc_b - conf_b|

A perfectly calibrated model has ECE 0: among its 0.8-confident predictions, 80% are right. Note that
predictions below c are not counted (they are dropped at c): use the lowest grid confidence for the
calibration of every prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from slicewise.errors import MetricsError
from slicewise.metrics import records
from slicewise.metrics.engine import RunRef, check_iou, conf_index
from slicewise.metrics.records import Rows
from slicewise.metrics.results import Calibration, CalibrationBin, CalibrationRow

if TYPE_CHECKING:
    from slicewise.workspace import Workspace


def calibration_row(name: str, conf: np.ndarray, correct: np.ndarray, n_bins: int) -> CalibrationRow:
    """ECE, MCE and the bins of one group of predictions (see the module docstring)."""
    idx = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    sc = np.bincount(idx, weights=conf, minlength=n_bins)
    sa = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    bins = []
    gaps = []
    for b in range(n_bins):
        mc: float | None
        acc: float | None
        if n[b]:
            mc, acc = float(sc[b] / n[b]), float(sa[b] / n[b])
            gaps.append((int(n[b]), abs(acc - mc)))
        else:
            mc = acc = None
        bins.append(CalibrationBin(b / n_bins, (b + 1) / n_bins, int(n[b]), mc, acc))
    N = len(conf)
    ece = float(sum(k * g for k, g in gaps) / N) if N else None
    mce = float(max(g for _, g in gaps)) if gaps else None
    return CalibrationRow(name, N, ece, mce, tuple(bins))


def calibration(ws: Workspace, run: RunRef, confidence: float, iou: float, rows: Rows = None, *,
                n_bins: int = 10, warn: bool = True) -> Calibration:
    """ECE / MCE and reliability bins at (c, t) over ``rows``, for the run and per predicted class."""
    from slicewise.metrics.views import _ready

    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 1 <= n_bins <= 100:
        raise MetricsError(f"n_bins = {n_bins!r} is not a whole number from 1 to 100", where="n_bins",
                           fix="use e.g. 10 or 15")
    (r, s, _), job = _ready(ws, run, warn)
    k, t = conf_index(s, confidence, r.ref), check_iou(iou)
    cur = ws.store.cursor()
    p = records.scored_predictions(cur, r.id, k, t, rows)
    names = dict(records.classes(cur, r.id))
    overall = calibration_row("all", p["confidence"], p["correct"], n_bins)
    per = []
    for c in sorted(set(p["pred_class"].tolist()), key=lambda c: names.get(c, str(c))):
        m = p["pred_class"] == c
        per.append(calibration_row(names.get(c, str(c)), p["confidence"][m], p["correct"][m], n_bins))
    return Calibration(overall, tuple(per), float(s.confidence[k]), t, n_bins, job)
