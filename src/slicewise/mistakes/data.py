"""What the detectors read from a workspace: a run's classification probabilities, its boxes, and the
vectors of an embedding space (the only module here that knows the stored tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassificationSet:
    """The rows of a run with a radio label of ``feature`` and a prediction of it with probabilities."""

    feature: str
    options: list[str]
    ids: np.ndarray  # data row ids, ascending
    labels: np.ndarray  # option index of the label
    probs: np.ndarray  # (n, len(options)), the run's stored probabilities


@dataclass(frozen=True)
class BoxSet:
    """The labelled rows of a run with their boxes, in cleanlab's object-detection format."""

    classes: list[str]  # box features, index = class number
    ids: np.ndarray
    labels: list[dict[str, np.ndarray]]
    predictions: list[list[np.ndarray]]


def _arrow(cur: Any, sql: str, params: list[Any]) -> Any:
    tbl = cur.execute(sql, params).arrow()
    return tbl.read_all() if hasattr(tbl, "read_all") else tbl


def classification_sets(ws: Any, run_id: int) -> list[ClassificationSet]:
    """One set per radio feature the run predicts with probability vectors (rows labelled with an
    answer that is not an option, or whose vector has the wrong length, are left out)."""
    cur = ws.store.cursor()
    feats = cur.execute("""
        SELECT DISTINCT f.id, f.name, f.options FROM predictions p JOIN features f ON f.id = p.feature_id
        WHERE p.run_id = ? AND p.kind = 'radio' AND p.probabilities IS NOT NULL ORDER BY f.id""", [run_id]).fetchall()
    out = []
    for fid, name, options in feats:
        options = list(options or [])
        if len(options) < 2:
            continue
        t = _arrow(cur, """
            WITH lab AS (SELECT data_row_id, arg_min(answer, id) AS answer FROM annotations
                         WHERE feature_id = ? AND kind = 'radio' GROUP BY 1),
                 pred AS (SELECT data_row_id, arg_max(probabilities, confidence) AS probs FROM predictions
                          WHERE run_id = ? AND feature_id = ? AND probabilities IS NOT NULL GROUP BY 1)
            SELECT l.data_row_id, l.answer, p.probs FROM lab l JOIN pred p USING (data_row_id)
            WHERE l.data_row_id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?)
            ORDER BY l.data_row_id""", [fid, run_id, fid, run_id])
        index = {o: i for i, o in enumerate(options)}
        ids, labels, probs = [], [], []
        for i, a, p in zip(t.column(0).to_pylist(), t.column(1).to_pylist(), t.column(2).to_pylist(), strict=True):
            if a in index and p is not None and len(p) == len(options):
                ids.append(i)
                labels.append(index[a])
                probs.append(p)
        if ids:
            pr = np.asarray(probs, np.float64)
            pr = pr / np.maximum(pr.sum(axis=1, keepdims=True), 1e-12)  # stored vectors may not sum to exactly 1
            out.append(ClassificationSet(name, options, np.asarray(ids, np.int64), np.asarray(labels, np.int64), pr))
    return out


def box_set(ws: Any, run_id: int) -> BoxSet | None:
    """The run's rows that have ground truth, with their box labels and the run's box predictions
    (None when the run has no box predictions)."""
    cur = ws.store.cursor()
    feats = [r[0] for r in cur.execute("""
        SELECT name FROM features WHERE kind = 'bbox' AND id IN (
          SELECT feature_id FROM predictions WHERE run_id = ? AND kind = 'bbox'
          UNION SELECT feature_id FROM annotations WHERE kind = 'bbox' AND data_row_id IN
            (SELECT data_row_id FROM run_rows WHERE run_id = ?)) ORDER BY id""", [run_id, run_id]).fetchall()]
    has_pred = cur.execute("SELECT count(*) FROM predictions WHERE run_id = ? AND kind = 'bbox'", [run_id]).fetchone()
    if not feats or not has_pred or not has_pred[0]:
        return None
    ids = np.asarray([r[0] for r in cur.execute("""
        SELECT DISTINCT data_row_id FROM annotations WHERE data_row_id IN
          (SELECT data_row_id FROM run_rows WHERE run_id = ?) ORDER BY 1""", [run_id]).fetchall()], np.int64)
    cls = {n: i for i, n in enumerate(feats)}
    pos = {int(i): k for k, i in enumerate(ids)}
    n_cls = len(feats)
    gt_b: list[list[list[float]]] = [[] for _ in ids]
    gt_c: list[list[int]] = [[] for _ in ids]
    pr: list[list[list[list[float]]]] = [[[] for _ in range(n_cls)] for _ in ids]
    sql = """SELECT o.data_row_id, f.name, o.x, o.y, o.w, o.h{conf} FROM {table} o JOIN features f ON f.id = o.feature_id
             WHERE o.kind = 'bbox' AND o.data_row_id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?){run}"""
    for row in cur.execute(sql.format(conf="", table="annotations", run=""), [run_id]).fetchall():
        k = pos.get(int(row[0]))
        if k is not None:
            gt_b[k].append([row[2], row[3], row[2] + row[4], row[3] + row[5]])
            gt_c[k].append(cls[row[1]])
    for row in cur.execute(sql.format(conf=", o.confidence", table="predictions", run=" AND o.run_id = ?"),
                           [run_id, run_id]).fetchall():
        k = pos.get(int(row[0]))
        if k is not None:
            pr[k][cls[row[1]]].append([row[2], row[3], row[2] + row[4], row[3] + row[5], row[6]])
    labels = [{"bboxes": np.asarray(b, np.float64).reshape(-1, 4), "labels": np.asarray(c, np.int64)}
              for b, c in zip(gt_b, gt_c, strict=True)]
    preds = [[np.asarray(p, np.float64).reshape(-1, 5) for p in per] for per in pr]
    return BoxSet(feats, ids, labels, preds)


def space_vectors(ws: Any, space: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(mask of ``ids`` that have a vector, their vectors in that order, the metric to compare them)."""
    from slicewise.embeddings.store import load
    from slicewise.embeddings.store import space as space_info

    info = space_info(ws, space)
    sids, vecs = load(ws, info)
    where = np.searchsorted(sids, ids)
    where = np.minimum(where, max(len(sids) - 1, 0))
    has = (sids[where] == ids) if len(sids) else np.zeros(len(ids), bool)
    return has, vecs[where[has]], ("cosine" if info.metric == "cosine" else "ip")


def row_class_codes(ws: Any, ids: np.ndarray) -> np.ndarray:
    """The class of each row (its most frequent ground-truth class, as Islands reads it) as a small integer."""
    from slicewise.embeddings.islands import row_classes

    names = row_classes(ws, ids)
    _, codes = np.unique(names.astype(str), return_inverse=True)
    return np.asarray(codes, np.int64)
