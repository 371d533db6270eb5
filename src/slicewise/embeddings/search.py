"""Similarity search: the rows nearest to 1 to 20 anchor rows in a space, optionally among a view's rows.

>>> import tempfile, os, numpy as np, slicewise
>>> from slicewise import embeddings
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "split": "train" if i < 2 else "valid"}
...                            for i in range(4)])
>>> _ = embeddings.add_vectors(ws, "s", ["k0", "k1", "k2", "k3"], [[1, 0], [1, 0.1], [0, 1], [0.9, 0.3]])
>>> [(i, round(s, 3)) for i, s in embeddings.similar(ws, "s", [1], k=3)]
[(1, 1.0), (2, 0.995), (4, 0.949)]
>>> from slicewise.view import View
>>> [i for i, _ in embeddings.similar(ws, "s", [1], k=2, view=View(filter="split = valid"))]
[4, 3]

With several anchors the query is the mean of their (unit) vectors. Cosine spaces score by cosine
similarity, ``ip`` spaces by inner product. Results are ordered by decreasing score, ties by data
row id, exactly as a brute-force NumPy top-k would order them (below :data:`index.ANN_MIN_ROWS`
rows, and for selective filters, the search is exact; above, an IVF index answers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.embeddings import index as _index
from slicewise.embeddings.store import SpaceInfo, load, space
from slicewise.errors import LimitError, NotFoundError, QueryError

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

MAX_ANCHORS = 20
MAX_K = 10_000


def index_for(ws: Workspace, info: SpaceInfo | str) -> _index.SpaceIndex:
    """The space's search index at the current version (kept in ``ws.state``); above
    :data:`index.ANN_MIN_ROWS` rows its IVF index is built (or extended) in a background thread, and above
    :data:`index.QUANT_MIN_ROWS` the int8 codes of its exact scan."""
    info = space(ws, info)
    st = ws.state
    key = ("embedding-index", info.id)
    version = st.version(["embeddings"])
    with st.key_lock(key):
        found = st.entry(key)
        if found is not None and found[0] == version:
            return found[1]  # type: ignore[no-any-return]
        ids, vecs = load(ws, info)
        idx = _index.SpaceIndex(ids, _index.normalise(vecs) if info.metric == "cosine" else vecs, info.metric)
        idx.start_background(found[1] if found is not None else None)
        if st.usable():
            st.set_entry(key, (version, idx))
        return idx


def wait_for_index(ws: Workspace, space_name: str, timeout: float | None = None) -> bool:
    """Block until the space's IVF index is built (True), or there is none to build (False)."""
    import time

    idx = index_for(ws, space_name)
    if idx.n < _index.ANN_MIN_ROWS:
        return False
    deadline = None if timeout is None else time.monotonic() + timeout
    while idx.ann is None:
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def check_anchors(ws: Workspace, idx: _index.SpaceIndex, space_name: str, anchors: Sequence[Any] | int) -> np.ndarray:
    """The anchors as data row ids, each with a vector in the space (else a clear error)."""
    if isinstance(anchors, int | str):
        anchors = [anchors]
    anchors = list(anchors)
    if not 1 <= len(anchors) <= MAX_ANCHORS:
        raise LimitError(f"{len(anchors)} anchor rows; similarity search takes 1 to {MAX_ANCHORS}", where="anchors",
                         fix=f"select between 1 and {MAX_ANCHORS} rows")
    try:
        ids = np.asarray([int(a) for a in anchors], np.int64)
    except (TypeError, ValueError):
        raise QueryError(f"anchors {anchors!r} are not data row ids", where="anchors",
                         fix="give data row ids (whole numbers)") from None
    have = idx.positions(ids)
    if len(have) != len(np.unique(ids)):
        missing = sorted(set(ids.tolist()) - set(idx.ids[have].tolist()))
        raise NotFoundError(f"data row(s) {missing[:5]} have no vector in space {space_name!r}", where="anchors",
                            fix=f"pick rows with a vector in {space_name!r}, or compute it with `slicewise embed`")
    return np.unique(ids)


def similar(ws: Workspace, space_name: str, anchors: Sequence[int] | int, k: int = 50, view: Any = None,
            *, exact: bool = False) -> list[tuple[int, float]]:
    """The ``k`` rows nearest to the anchors, as (data row id, score) by decreasing score; with ``view``
    (a :class:`slicewise.view.View` or a resolved one) only among the view's rows."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise LimitError(f"k = {k!r} is not between 1 and {MAX_K}", where="k", fix=f"ask for 1 to {MAX_K} rows")
    info = space(ws, space_name)
    idx = index_for(ws, info)
    a = check_anchors(ws, idx, info.name, anchors)
    q = idx.query_vector(a)
    allowed = None
    if view is not None:
        rv = view.resolve(ws) if hasattr(view, "resolve") else view
        allowed = _view_positions(ws, idx, rv)
    ids, scores = idx.search(q, k, allowed, exact=exact)
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]


def _view_positions(ws: Workspace, idx: _index.SpaceIndex, rv: Any) -> np.ndarray | None:
    """Positions (in the index) of the resolved view's rows; None when the view keeps every row."""
    if rv.run is None and rv.query.filter is None and getattr(rv.query, "similar", None) is None:
        return None
    sql = rv.rows_sql()
    if sql is None:
        from slicewise.query import row_ids_sql

        sql = row_ids_sql(ws, rv.run, None, rv.confidence, rv.iou, similar=getattr(rv.query, "similar", None))
    tbl = ws.store.cursor().execute(sql[0], sql[1]).arrow()
    if hasattr(tbl, "read_all"):
        tbl = tbl.read_all()
    ids = np.sort(tbl.column(0).to_numpy().astype(np.int64))
    return idx.positions(ids)


# -- the query language's side: every row's score, as a table the SQL joins -----------------------
def scores_relation(ws: Workspace, space_name: str, anchors: Sequence[int]) -> tuple[str, list[Any]]:
    """(SQL relation with columns ``id``, ``score``, its params): every row of the space with its exact
    similarity to the anchors. A cache table of the workspace (built once per space and anchors, until
    the space changes); a parameter list when the workspace has no cache database."""
    info = space(ws, space_name)
    idx = index_for(ws, info)
    a = check_anchors(ws, idx, info.name, anchors)

    def build(name: str) -> None:
        q = idx.query_vector(a)
        data = pa.table({"id": pa.array(idx.ids, pa.int64()), "score": pa.array(idx.scores(q), pa.float32())})
        cur = ws.state.cursor()
        cur.register("_sw_scores", data)
        try:
            cur.execute(f"CREATE TABLE {name} AS SELECT id, score FROM _sw_scores")
        finally:
            cur.unregister("_sw_scores")

    key = json.dumps([info.id, a.tolist()])
    try:
        table = ws.state.table("similarity", key, ["embeddings"], build, limit=32)
        return table, []
    except RuntimeError:  # no cache database (a read-only workspace)
        q = idx.query_vector(a)
        return ("(SELECT unnest(?::BIGINT[]) AS id, unnest(?::FLOAT[]) AS score)",
                [idx.ids.tolist(), idx.scores(q).tolist()])
