"""Islands: per row and space, the kNN label disagreement, i.e. the share of the row's k nearest
labelled neighbours (in the space, the row itself left out) whose ground-truth class differs from the
row's. A row deep inside another class's cluster scores near 1: a likely mislabel, or a confusing case.

A row's class is the most frequent class of its ground truth (``feature`` for objects,
``feature:answer`` for radio / checklist answers; ties to the smaller feature id, then answer);
rows without ground truth have none and get no score. The query language reads the score as
``island`` (or ``island.<space>``, alias ``knn_disagreement``), for filters, sorts and facets.

>>> import numpy as np
>>> labels = np.array([0, 0, 0, 1, 1, 1, 0])
>>> vecs = np.array([[0, 0], [0, 1], [1, 0], [9, 9], [9, 8], [8, 9], [9, 8.5]], float)
>>> knn_disagreement(vecs, labels, k=3, metric="l2").round(2).tolist()
[0.33, 0.33, 0.33, 0.33, 0.33, 0.33, 1.0]
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from slicewise.embeddings.index import normalise
from slicewise.embeddings.store import load, space

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

K = 10
BLOCK = 2048
TOPICS = ["embeddings", "labels", "features"]


def neighbours(vecs: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """The indices of each row's k nearest other rows (exact; ties by index), shape (n, min(k, n - 1))."""
    n = len(vecs)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64)
    v = normalise(vecs) if metric == "cosine" else np.asarray(vecs, np.float32)
    sq = (v * v).sum(axis=1) if metric == "l2" else None
    out = np.empty((n, k), np.int64)
    for start in range(0, n, BLOCK):
        block = v[start:start + BLOCK]
        if metric == "l2":
            assert sq is not None
            s = -(sq[start:start + BLOCK, None] - 2 * block @ v.T + sq[None, :])
        else:
            s = block @ v.T
        rows = np.arange(len(block))
        s[rows, start + rows] = -np.inf  # not its own neighbour
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.lexsort((part, -ps), axis=1)
        out[start:start + BLOCK] = np.take_along_axis(part, order, axis=1)
    return out


def knn_disagreement(vecs: np.ndarray, labels: np.ndarray, k: int = K, metric: str = "cosine") -> np.ndarray:
    """Per row, the share of its k nearest other rows whose label differs from its own."""
    if len(vecs) < 2:
        return np.zeros(len(vecs), np.float64)
    nb = neighbours(vecs, k, metric)
    return (labels[nb] != labels[:, None]).mean(axis=1)


def row_classes(ws: Workspace, ids: np.ndarray) -> np.ndarray:
    """The class (as a string; "" when the row has no ground truth) of each of the rows ``ids``."""
    tbl = ws.store.cursor().execute("""
        SELECT data_row_id, arg_max(cls, n) AS cls FROM (
          SELECT a.data_row_id, CASE WHEN a.answer IS NULL THEN f.name ELSE f.name || ':' || a.answer END AS cls,
                 count(*) * 1e6 - min(a.feature_id) AS n
          FROM annotations a JOIN features f ON f.id = a.feature_id GROUP BY 1, 2)
        GROUP BY 1""").arrow()
    if hasattr(tbl, "read_all"):
        tbl = tbl.read_all()
    got = dict(zip(tbl.column(0).to_pylist(), tbl.column(1).to_pylist(), strict=True))
    return np.asarray([got.get(int(i), "") for i in ids], dtype=object)


def islands(ws: Workspace, space_name: str, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """(data row ids, kNN disagreement) of the space's labelled rows (computed among them)."""
    info = space(ws, space_name)

    def compute() -> tuple[np.ndarray, np.ndarray]:
        ids, vecs = load(ws, info)
        cls = row_classes(ws, ids)
        keep = cls != ""
        if keep.sum() < 2:
            return ids[:0], np.zeros(0)
        metric = "cosine" if info.metric == "cosine" else "ip"
        return ids[keep], knn_disagreement(vecs[keep], cls[keep], k, metric)

    return ws.state.memo(("islands", info.id, k), TOPICS, compute)


def islands_relation(ws: Workspace, space_name: str, k: int = K) -> str:
    """A cache table (``data_row_id``, ``disagreement``) of the space's islands, for the query compiler."""
    info = space(ws, space_name)

    def build(name: str) -> None:
        ids, dis = islands(ws, space_name, k)
        cur = ws.state.cursor()
        cur.register("_sw_isl", pa.table({"data_row_id": pa.array(ids, pa.int64()),
                                          "disagreement": pa.array(dis, pa.float64())}))
        try:
            cur.execute(f"CREATE TABLE {name} AS SELECT * FROM _sw_isl")
        finally:
            cur.unregister("_sw_isl")

    return ws.state.table("islands", json.dumps([info.id, k]), TOPICS, build, limit=8)
