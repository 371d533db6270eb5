"""Per-class metrics: every class of the confusion matrix (an object feature, each answer of a radio
question, each option of a checklist) with TP / FP / FN, precision, recall and F1, and an overall row
(micro and macro).

For a class k of the confusion matrix ``M`` [true][pred] at (c, t) (``None`` last): TP = M[k][k], FP = the
rest of column k (other true classes and None: predictions of k that match no label of k), FN = the rest
of row k. For object features this is exactly :func:`slicewise.metrics.feature_metrics`'s counts. For a
radio question each data row has (at most) one labelled and one predicted answer, compared with each
other, so the counts are those of multi-class classification: per answer they equal scikit-learn's
``precision_recall_fscore_support(y_true, y_pred, labels=answers, average=None)`` with a missing answer
(nothing labelled, or no prediction kept at c) as a label outside ``answers``. Checklist options are
compared only with the same option: multi-label classification, one indicator column per option.

Macro averages are means over the classes where the value is defined (scikit-learn's
``zero_division=np.nan``); micro values come from the summed counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from slicewise.metrics import reduce
from slicewise.metrics.engine import RunRef
from slicewise.metrics.records import Rows
from slicewise.metrics.results import ClassMetrics, ClassRow, Overall

if TYPE_CHECKING:
    from slicewise.workspace import Workspace


def overall(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> Overall:
    """The micro and macro summary of per-class counts."""
    T, F, N = int(tp.sum()), int(fp.sum()), int(fn.sum())
    mp, mr, mf = reduce.prf(T, F, N)

    def mean(v: np.ndarray) -> float | None:
        v = v[~np.isnan(v)]
        return float(v.mean()) if len(v) else None

    tpf, fpf, fnf = (np.asarray(x, np.float64) for x in (tp, fp, fn))
    return Overall(T, F, N, mp, mr, mf, mean(reduce.precision(tpf, fpf)), mean(reduce.recall(tpf, fnf)),
                   mean(reduce.f1(tpf, fpf, fnf)))


def class_metrics(ws: Workspace, run: RunRef, confidence: float, iou: float, rows: Rows = None, *,
                  warn: bool = True) -> ClassMetrics:
    """Per-class metrics at (c, t) over ``rows`` (see the module docstring)."""
    from slicewise.metrics.views import confusion_matrix

    cm = confusion_matrix(ws, run, confidence, iou, rows, warn=warn)
    counts = np.asarray(cm.counts, np.int64)
    C = len(cm.classes) - 1
    diag = np.diag(counts)[:C]
    tp, fp, fn = diag, counts[:, :C].sum(axis=0) - diag, counts[:C, :].sum(axis=1) - diag
    cur = ws.store.cursor()
    run_id = cm.job.run_id
    info = {int(c): (int(f), a, str(n), str(k)) for c, f, a, n, k in cur.execute(
        """SELECT m.class_id, m.feature_id, m.answer, f.name, f.kind FROM metric_classes m
           JOIN features f ON f.id = m.feature_id WHERE m.run_id = ?""", [run_id]).fetchall()}
    keep = (tp + fp + fn) > 0
    out = []
    for i in np.flatnonzero(keep):
        cid = int(cm.class_ids[i])  # type: ignore[arg-type]
        fid, ans, fname, kind = info[cid]
        p, r, f1 = reduce.prf(int(tp[i]), int(fp[i]), int(fn[i]))
        out.append(ClassRow(cid, cm.classes[i], fid, fname, ans, kind, int(tp[i]), int(fp[i]), int(fn[i]), p, r, f1))
    return ClassMetrics(tuple(out), overall(tp[keep], fp[keep], fn[keep]), cm.confidence, cm.iou, cm.job)
