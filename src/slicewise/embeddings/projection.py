"""2D and 3D projections of an embedding space for the Projector, and the colours of its points.

``project(ws, space, method, dims)`` gives every vector of the space a position: ``"pca"`` (principal
components: randomized SVD above :data:`EXACT_PCA_LIMIT` rows, so a million 512-d vectors take seconds) or
``"umap"`` (umap-learn; above :data:`UMAP_FIT_LIMIT` rows it is fitted on a random sample and the
rest is transformed). A projection is kept in the workspace's cache database (``ws.state.table``),
registered with the stored version of the embeddings, so it is computed once per space, method and
dimension count, survives a restart, and is computed afresh once vectors are added or replaced.

``colors(ws, ids, by, ...)`` says, for the points of a projection, the value each is coloured by: its
ground-truth class, its predicted class (a run's predictions at a confidence), a metric or a metadata
field (any field of the query language), membership of a slice or a tag; as category codes with a
legend, or as numbers with their range.

>>> import tempfile, os, numpy as np, slicewise
>>> from slicewise import embeddings
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(40)])
>>> vecs = np.random.default_rng(0).normal(size=(40, 8)).astype("float32")
>>> _ = embeddings.add_vectors(ws, "clip", [f"k{i}" for i in range(40)], vecs)
>>> p = project(ws, "clip", "pca", 2)
>>> p.coords.shape, p.coords.dtype.name, len(p.ids)
((40, 2), 'float32', 40)
>>> project(ws, "clip", "pca", 2).coords is p.coords  # computed once, then remembered
True
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.errors import QueryError

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

__all__ = ["METHODS", "Colors", "Projection", "ProjectionJob", "cached", "colors", "project", "start_job"]

METHODS = ("pca", "umap")
POWER_ITERATIONS = 2  # of the randomized range finder (top components of clustered 1M x 512 agree to |corr| 1.0 with 4)
EXACT_PCA_LIMIT = 20_000  # rows up to which PCA is an exact (full) SVD; randomized above
UMAP_FIT_LIMIT = 200_000  # rows above which UMAP is fitted on a sample of this size and transforms the rest
UMAP_CHUNK = 50_000  # rows per transform step (one progress step each)
KNN_DIMS = 64  # UMAP's neighbours are searched among the rows' first principal components
KNN_EXACT_LIMIT = 5_000  # rows up to which they are exact (FAISS flat, exact PCA); an HNSW graph above
KNN_EF = 64  # HNSW's candidate lists, building and searching
MAX_CATEGORIES = 30  # categories with their own colour; the rest share "other"
TOPICS = ("embeddings",)  # the change topic of embedding vectors (see slicewise.state)

Progress = Callable[[int, int, str], None]  # (done, total, stage)


@dataclass(frozen=True)
class Projection:
    """The points of one space in ``dims`` dimensions: ``ids`` (int64, ascending data row ids) and
    ``coords`` (float32, shape (n, dims)), aligned."""

    space: str
    method: str
    dims: int
    ids: np.ndarray = field(repr=False)
    coords: np.ndarray = field(repr=False)
    seconds: float = 0.0  # how long computing it took (0 when it came from the cache)

    def __len__(self) -> int:
        return len(self.ids)


def _check(method: str, dims: int) -> None:
    if method not in METHODS:
        raise QueryError(f"unknown projection method {method!r}", where="method", fix=f"use one of {', '.join(METHODS)}")
    if dims not in (2, 3):
        raise QueryError(f"a projection has 2 or 3 dimensions, not {dims!r}", where="dims", fix="use 2 or 3")


def _space(ws: Workspace, space: str) -> Any:
    from slicewise import embeddings

    return embeddings.space(ws, space)  # a NotFoundError naming the spaces there are


def _key(space: str, method: str, dims: int) -> str:
    return f"{space}|{method}|{dims}"


def project(ws: Workspace, space: str, method: str = "pca", dims: int = 2, *,
            progress: Progress | None = None) -> Projection:
    """The projection of ``space`` by ``method`` into ``dims`` dimensions, computed once and cached in the
    workspace (until the space's vectors change)."""
    _check(method, dims)
    _space(ws, space)
    took: list[float] = []

    def build(name: str) -> None:
        t0 = time.perf_counter()
        ids, coords = _compute(ws, space, method, dims, progress)
        took.append(time.perf_counter() - t0)
        _write(ws, name, ids, coords)

    table = ws.state.table("projection", _key(space, method, dims), TOPICS, build, limit=32)
    ids, coords = ws.state.lru("projection", table, lambda: _read(ws, table, dims), limit=6)
    return Projection(space, method, dims, ids, coords, took[0] if took else 0.0)


def cached(ws: Workspace, space: str, method: str = "pca", dims: int = 2) -> Projection | None:
    """The projection if it is computed and up to date, else None (nothing is computed)."""
    _check(method, dims)
    found = ws.state.lookup("projection", _key(space, method, dims))
    if found is None or found[1] != ws.state.snapshot(TOPICS)[0]:
        return None
    return project(ws, space, method, dims)


def _compute(ws: Workspace, space: str, method: str, dims: int,
             progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    from slicewise import embeddings

    ids, vecs = embeddings.vectors(ws, space)
    ids = np.asarray(ids, dtype=np.int64)
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    coords = pca(vecs, dims) if method == "pca" else umap(vecs, dims, progress=progress)
    return ids, np.ascontiguousarray(coords, dtype=np.float32)


def pca(vecs: np.ndarray, dims: int, *, seed: int = 0, exact_limit: int | None = None) -> np.ndarray:
    """The first ``dims`` principal components' scores (n, dims), each component's sign fixed so that its
    largest-magnitude loading is positive (the result is then deterministic); too few rows or
    dimensions leave the missing components at 0."""
    n, d = vecs.shape
    out = np.zeros((n, dims), dtype=np.float32)
    k = min(dims, n - 1 if n > 1 else 0, d)
    if k <= 0:
        return out
    mean = vecs.mean(axis=0, dtype=np.float64).astype(np.float32)
    if n <= (EXACT_PCA_LIMIT if exact_limit is None else exact_limit):
        x = vecs - mean
        _, _, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        comps = vt[:k].astype(np.float32)
    else:
        comps = _randomized_components(vecs, mean, k, seed)
    signs = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
    signs[signs == 0] = 1
    comps = comps * signs[:, None]
    step = 262_144
    for i in range(0, n, step):  # centred in blocks: no second copy of a million vectors
        out[i:i + step, :k] = (vecs[i:i + step] - mean) @ comps.T
    return out


def _randomized_components(vecs: np.ndarray, mean: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Top-k right singular vectors of the centred matrix X - 1 mean^T by a randomized range finder
    (Halko, Martinsson and Tropp 2011, with power iterations), without materialising the centred matrix.
    The tall n x (k + 20) blocks are orthonormalised by :func:`_orthonormal` (a Householder QR of a
    million-row block costs more than the product that made it)."""
    n, d = vecs.shape
    rng = np.random.default_rng(seed)
    width = min(d, k + 20)

    def xm(m: np.ndarray) -> np.ndarray:  # (X - 1 mean^T) @ m
        m = m.astype(np.float32)
        return vecs @ m - (mean @ m)[None, :]

    def xtm(m: np.ndarray) -> np.ndarray:  # (X - 1 mean^T)^T @ m
        m = m.astype(np.float32)
        return vecs.T @ m - np.outer(mean, m.sum(axis=0))

    q = _orthonormal(xm(rng.normal(size=(d, width))))
    for _ in range(POWER_ITERATIONS):
        q = _orthonormal(xm(_orthonormal(xtm(q))))
    b = xtm(q).T.astype(np.float64)  # (l, d) = Q^T (X - 1 mean^T)
    _, _, vt = np.linalg.svd(b, full_matrices=False)
    return vt[:k].astype(np.float32)


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of a tall block, by CholeskyQR2 (twice: Y <- Y R^-1 with R the
    Cholesky factor of the float64 Gram matrix Y^T Y); Householder QR when the block is too ill-conditioned
    for it (the Cholesky factorisation fails)."""
    y = y.astype(np.float64)
    try:
        for _ in range(2):
            r = np.linalg.cholesky(y.T @ y).T
            y = y @ np.linalg.inv(r)
        if np.all(np.isfinite(y)):
            return y
    except np.linalg.LinAlgError:
        pass
    return np.linalg.qr(y)[0]


def knn_graph(vecs: np.ndarray, k: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(the points UMAP lays out, (indices, distances) of each one's k nearest, itself first) for the cosine
    metric: rows scaled to unit length (Euclidean distance between them is then sqrt(2 - 2 cos)), projected
    on their first :data:`KNN_DIMS` principal components (a projection keeps differences, hence Euclidean
    distances, nearly intact), and searched with FAISS: exact up to :data:`KNN_EXACT_LIMIT` rows, an HNSW
    graph above."""
    import faiss

    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    x: np.ndarray = np.ascontiguousarray(vecs / np.where(norms > 0, norms, 1), dtype=np.float32)
    if x.shape[1] > KNN_DIMS:
        x = pca(x, KNN_DIMS, exact_limit=KNN_EXACT_LIMIT)
    n, d = x.shape
    index: Any
    if n <= KNN_EXACT_LIMIT:
        index = faiss.IndexFlatL2(d)
    else:  # HNSW: recall@16 0.95 on clustered 100k x 64 in 13 s (IVF probing 16 of 1,264 lists: 0.68 in 4 s)
        index = faiss.IndexHNSWFlat(d, 16)
        index.hnsw.efConstruction = KNN_EF
    index.add(x)
    if n > KNN_EXACT_LIMIT:
        index.hnsw.efSearch = max(KNN_EF, k)
    dist, idx = index.search(x, k)
    # a point's own line first (duplicates can put an equal point there; missing neighbours are -1)
    own = idx[:, 0] != np.arange(n)
    if own.any():
        idx[own, 0], dist[own, 0] = np.flatnonzero(own), 0.0
    idx = np.where(idx < 0, np.arange(n)[:, None], idx)
    return x, (idx.astype(np.int64), np.sqrt(np.maximum(dist, 0)).astype(np.float32))


def umap(vecs: np.ndarray, dims: int, *, progress: Progress | None = None, seed: int = 0,
         fit_limit: int = UMAP_FIT_LIMIT) -> np.ndarray:
    """UMAP coordinates (n, dims). Above ``fit_limit`` rows the map is fitted on a random sample of that
    size and the other rows are transformed into it, in chunks (one progress step each)."""
    n = len(vecs)
    out = np.zeros((n, dims), dtype=np.float32)
    if n < 4:  # UMAP needs a few neighbours; so few points are placed by PCA
        return pca(vecs, dims)
    import warnings

    import umap as umap_learn

    steps = 1 + math.ceil(max(n - fit_limit, 0) / UMAP_CHUNK)
    if progress:
        progress(0, steps, "fitting")
    k = min(15, n - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns about n_jobs with random_state and about spectral init fallbacks
        if n <= fit_limit:  # the neighbours from FAISS (pynndescent compiles for minutes in every new process)
            x, knn = knn_graph(vecs, k + 1)
            # no random_state: the layout's epochs then run on every core (the picture varies slightly
            # between two computations; it is cached per space)
            model = umap_learn.UMAP(n_components=dims, n_neighbors=k + 1, metric="euclidean", precomputed_knn=knn,
                                    init="spectral" if n > dims + 1 else "random", n_jobs=-1, low_memory=True)
            out[:] = model.fit_transform(x)
            if progress:
                progress(1, 1, "done")
            return out
        model = umap_learn.UMAP(n_components=dims, n_neighbors=k, metric="cosine", random_state=seed, n_jobs=1,
                                low_memory=True)  # transform() needs pynndescent's own search index
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, fit_limit, replace=False))
        out[sample] = model.fit_transform(vecs[sample])
        rest = np.setdiff1d(np.arange(n), sample)
        for i, start in enumerate(range(0, len(rest), UMAP_CHUNK)):
            if progress:
                progress(1 + i, steps, "transforming")
            part = rest[start:start + UMAP_CHUNK]
            out[part] = model.transform(vecs[part])
    if progress:
        progress(steps, steps, "done")
    return out


def _write(ws: Workspace, name: str, ids: np.ndarray, coords: np.ndarray) -> None:
    import pyarrow as pa

    cols = {"id": pa.array(ids, pa.int64())}
    for j in range(coords.shape[1]):
        cols[f"c{j}"] = pa.array(coords[:, j], pa.float32())
    data = pa.table(cols)
    cur = ws.state.cursor()
    cur.register("sw_projection_in", data)
    try:
        cur.execute(f"CREATE TABLE {name} AS SELECT * FROM sw_projection_in ORDER BY id")
    finally:
        cur.unregister("sw_projection_in")


def _read(ws: Workspace, table: str, dims: int) -> tuple[np.ndarray, np.ndarray]:
    cols = ", ".join(f"c{j}" for j in range(dims))
    got = ws.state.cursor().execute(f"SELECT id, {cols} FROM {table} ORDER BY id").fetchnumpy()
    ids = np.asarray(got["id"], dtype=np.int64)
    coords = np.empty((len(ids), dims), dtype=np.float32)
    for j in range(dims):
        coords[:, j] = np.asarray(got[f"c{j}"], dtype=np.float32)
    ids.flags.writeable = False
    coords.flags.writeable = False
    return ids, coords


# -- background jobs (UMAP takes minutes on big spaces) ---------------------------------------------
@dataclass
class ProjectionJob:
    """A projection being computed in a background thread of the workspace."""

    space: str
    method: str
    dims: int
    state: str = "running"  # running | done | failed
    done: int = 0
    total: int = 1
    stage: str = "starting"
    error: str | None = None
    started: float = field(default_factory=time.time)
    seconds: float | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


def job(ws: Workspace, space: str, method: str, dims: int) -> ProjectionJob | None:
    """The latest job of this projection in this workspace (running or finished), if any."""
    got = ws.state.entry(("projection-job", _key(space, method, dims)))
    return got if isinstance(got, ProjectionJob) else None


def start_job(ws: Workspace, space: str, method: str = "umap", dims: int = 2) -> ProjectionJob:
    """Compute the projection in a background thread (one per projection at a time); its progress is in
    the returned job, which :func:`job` finds again."""
    _check(method, dims)
    _space(ws, space)
    key = ("projection-job", _key(space, method, dims))
    with ws.state.key_lock(key):
        running = job(ws, space, method, dims)
        if running is not None and running.state == "running":
            return running
        j = ProjectionJob(space, method, dims)

        def progress(done: int, total: int, stage: str) -> None:
            j.done, j.total, j.stage = done, total, stage

        def work() -> None:
            t0 = time.perf_counter()
            try:
                project(ws, space, method, dims, progress=progress)
                j.state, j.stage, j.done = "done", "done", j.total
            except Exception as e:  # noqa: BLE001 - the job reports what went wrong
                j.state, j.error = "failed", str(e) or type(e).__name__
            finally:
                j.seconds = time.perf_counter() - t0

        j.thread = threading.Thread(target=work, name=f"projection-{space}-{method}-{dims}", daemon=True)
        ws.state.set_entry(key, j, limit=16, group=1)
        j.thread.start()
        return j


# -- colours ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Colors:
    """What each point is coloured by, aligned with the ids asked for. Categorical (``codes``: int16, -1 for
    none, indexing ``legend``; ``counts`` per legend entry) or numeric (``values``: float32, NaN for
    none, with ``min`` / ``max``)."""

    by: str
    kind: str  # "category" | "number"
    codes: np.ndarray | None = None
    legend: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    values: np.ndarray | None = None
    min: float | None = None
    max: float | None = None


def colors(ws: Workspace, ids: Sequence[int] | np.ndarray, by: str, *, run: Any = None,
           confidence: float | None = None, iou: float | None = None) -> Colors:
    """The colour values of the rows ``ids`` by ``by``: ``gt`` (ground-truth class), ``pred`` (predicted
    class of ``run`` at its confidence), ``slice:ID``, ``tag:NAME``, ``metric:NAME`` or any field of the
    query language (``iou``, ``confidence.max``, ``metadata.camera``, ``split``, ``dataset`` ...).

    A row's class is the label of its objects (a classification's answer, else the feature's name); a
    row with objects of several classes takes the most frequent (ties: the higher confidence sum, then
    the name)."""
    from slicewise.view import View

    ids = np.asarray(ids, dtype=np.int64)
    by = (by or "").strip()
    if by in ("gt", "pred"):
        v = View(run=run or None, confidence=confidence, iou=iou).resolve(ws)
        if by == "pred" and v.run is None:
            raise QueryError("colouring by predicted class needs a model run", where="by", fix="give run=")
        return _categories(by, ids, _classes(ws, by, v.run.id if v.run else None, v.confidence))
    if by.startswith(("slice:", "tag:")):
        kind, _, ref = by.partition(":")
        if not ref:
            raise QueryError(f"{by!r} names no {kind}", where="by", fix=f"write {kind}:NAME")
        if kind == "slice":
            v = View(run=run or None, confidence=confidence, iou=iou, slice=ref).resolve(ws)
        else:
            import json

            v = View(run=run or None, confidence=confidence, iou=iou, filter=f"tag:{json.dumps(ref)}").resolve(ws)
        _, members, _ = v.ids(10_000_000)
        inside = np.isin(ids, np.asarray(members, dtype=np.int64))
        codes = np.where(inside, 0, 1).astype(np.int16)
        name = v.slice.name if kind == "slice" and v.slice is not None else ref
        return Colors(by, "category", codes=codes, legend=[f"in {name}", "other"],
                      counts=[int(inside.sum()), int((~inside).sum())])
    if not by:
        raise QueryError("nothing to colour by", where="by",
                         fix="use gt, pred, metric:NAME, metadata.FIELD, slice:ID or tag:NAME")
    field_name = by[len("metric:"):] if by.startswith("metric:") else by
    return _field(ws, ids, by, field_name, run, confidence, iou)


def _classes(ws: Workspace, by: str, run_id: int | None, confidence: float | None) -> dict[int, str]:
    label = "coalesce(o.answer, f.name)"
    if by == "gt":
        src, params = f"SELECT o.data_row_id, {label} AS c, 1.0 AS w FROM annotations o JOIN features f ON f.id = o.feature_id", []
    else:
        src = (f"SELECT o.data_row_id, {label} AS c, o.confidence AS w FROM predictions o "
               "JOIN features f ON f.id = o.feature_id WHERE o.run_id = ? AND o.confidence >= ?")
        params = [run_id, confidence if confidence is not None else 0.0]
    sql = (f"SELECT data_row_id, c FROM (SELECT data_row_id, c, count(*) AS n, sum(w) AS w FROM ({src}) GROUP BY ALL) "
           "QUALIFY row_number() OVER (PARTITION BY data_row_id ORDER BY n DESC, w DESC, c) = 1")
    got = ws.store.cursor().execute(sql, params).fetchnumpy()
    return dict(zip(got["data_row_id"].tolist(), got["c"].tolist(), strict=True))


def _categories(by: str, ids: np.ndarray, value_of: dict[int, Any]) -> Colors:
    vals = [value_of.get(int(i)) for i in ids]
    freq: dict[str, int] = {}
    for v in vals:
        if v is not None:
            freq[str(v)] = freq.get(str(v), 0) + 1
    ranked = sorted(freq, key=lambda k: (-freq[k], k))
    legend = ranked[:MAX_CATEGORIES]
    other = len(ranked) > MAX_CATEGORIES
    index = {k: i for i, k in enumerate(legend)}
    if other:
        legend = legend + ["other"]
    codes = np.array([-1 if v is None else index.get(str(v), len(legend) - 1) for v in vals], dtype=np.int16)
    counts = [int((codes == i).sum()) for i in range(len(legend))]
    return Colors(by, "category", codes=codes, legend=legend, counts=counts)


def _field(ws: Workspace, ids: np.ndarray, by: str, field_name: str, run: Any, confidence: float | None,
           iou: float | None) -> Colors:
    from slicewise.query import Sort, parse_sort
    from slicewise.query.search import compiler_for
    from slicewise.view import View

    v = View(run=run or None, confidence=confidence, iou=iou).resolve(ws)
    keys: list[Sort] = parse_sort(field_name)
    if len(keys) != 1:
        raise QueryError(f"colour by one field, not {field_name!r}", where="by")
    comp = compiler_for(ws, v.run, v.confidence, v.iou)
    join, expr, jparams = comp.sort_expr(keys[0].model_copy(update={"desc": False}), 0)
    where, params = comp.where(None)
    got = ws.store.cursor().execute(f"SELECT r.id, {expr} AS v FROM {comp.from_table()} r {join} WHERE {where}",
                                    jparams + params).fetchall()
    value_of = {int(i): x for i, x in got if x is not None}
    numeric = bool(value_of) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value_of.values())
    if not numeric:
        return _categories(by, ids, value_of)
    values = np.array([value_of.get(int(i), np.nan) for i in ids], dtype=np.float32)
    finite = values[np.isfinite(values)]
    return Colors(by, "number", values=values, min=float(finite.min()) if len(finite) else None,
                  max=float(finite.max()) if len(finite) else None)
