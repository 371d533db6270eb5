"""Active learning: pick the rows most worth labelling next from a pool, and put them in a batch.

The pool is any view: usually ``annotation is none`` in a run of the current model (the run's
predictions on rows nobody has labelled yet; a run may hold rows without ground truth). The
strategies (scores in :mod:`slicewise.curation.strategies`, higher = pick first):

- ``least_confidence``, ``margin``, ``entropy``: from each prediction's class-probability vector (stored in
  the feature's option order on radio predictions, e.g. by ``slicewise import table --probabilities``).
  An object without a vector (a box, or a radio prediction with only a confidence ``c``) counts as the
  two-class vector ``[c, 1 - c]``: sure of an object, or sure there is none, is certain; 0.5 is not.
  A row's score aggregates its objects' scores: least confidence takes the **max** (the row's least
  confident object: ``1 - min top confidence``), margin the **mean** over the objects (``1 - mean margin``),
  entropy the **sum** (a soft count of uncertain objects); ``aggregate="count"`` counts the objects whose
  normalised uncertainty is >= 0.5 (for a box: confidence in [0.25, 0.75] by least confidence). For a
  classification run (one radio object per row) every aggregate is the object's own score. A pool row
  without predictions scores 0.
- ``diversity``: k-center greedy on an embedding space (cosine spaces on unit vectors), starting from
  the labelled rows with a vector (at most :data:`MAX_REFERENCE` of them, drawn with ``seed``); a row's
  score is its distance to the nearest labelled or earlier chosen row (with no labelled row, the first
  pick is a row drawn with ``seed``, scored 1, with no distance).
- ``combined``: greedy by uncertainty (``uncertainty=``, default entropy) x distance to the nearest
  labelled or already chosen row.
- ``random``: the baseline.

``class_balance=True`` spreads the picks evenly over the predicted classes (the class of each row's most
uncertain object): each pick comes from the classes with the fewest picks so far.

>>> import tempfile, os, slicewise
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(3)])
>>> _ = ws.create_feature("digit", "radio", ["0", "1"])
>>> run = ws.create_run("clf", "v1")
>>> _ = ws.add_predictions(run, [{"data_row": f"k{i}", "feature": "digit", "answer": "0", "confidence": c,
...                              "probabilities": [c, 1 - c]} for i, c in enumerate([0.9, 0.55, 0.7])])
>>> sel = select_rows(ws, "annotation is none", 2, strategy="margin", run="clf/v1")
>>> sel.keys, [round(s, 2) for s in sel.scores]
(['k1', 'k2'], [0.9, 0.6])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.curation import strategies as st
from slicewise.errors import LimitError, NotFoundError, QueryError, did_you_mean
from slicewise.view import ResolvedView, View

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

__all__ = ["MAX_N", "MAX_POOL", "MAX_REFERENCE", "STRATEGIES", "SelectedRow", "Selection", "select_rows",
           "strategy_name"]

STRATEGIES = st.STRATEGIES
MAX_N = 10_000  # rows one selection may pick
MAX_POOL = 1_000_000  # rows a pool may hold
MAX_REFERENCE = 2_000  # labelled rows that seed k-center greedy (a random sample beyond)
_ALIASES = {"lc": "least_confidence", "least-confidence": "least_confidence", "leastconfidence": "least_confidence",
            "uncertainty": "entropy", "k-center": "diversity", "kcenter": "diversity", "coreset": "diversity",
            "uncertainty-diversity": "combined", "uncertainty_diversity": "combined"}


@dataclass(frozen=True)
class SelectedRow:
    data_row_id: int
    global_key: str
    score: float  # what the strategy ranked by when it took the row (higher first)
    uncertainty: float | None = None  # the row's aggregated uncertainty (uncertainty and combined strategies)
    distance: float | None = None  # distance to the nearest labelled / earlier chosen row (diversity, combined)
    predicted_class: str | None = None  # the class of the row's most uncertain prediction


@dataclass(frozen=True)
class Selection:
    """What :func:`select_rows` chose, in the order it chose them."""

    strategy: str
    run: str | None
    pool: str  # the pool's filter as text ("" = every row of the run / workspace)
    pool_size: int
    rows: list[SelectedRow]
    aggregate: str | None = None  # how object scores became row scores (uncertainty strategies)
    uncertainty: str | None = None  # the uncertainty measure of the combined strategy
    space: str | None = None  # the embedding space (diversity, combined)
    class_balance: bool = False
    seed: int = 0
    unscored: int = 0  # pool rows without a prediction (uncertainty 0)
    without_vector: int = 0  # pool rows left out for having no vector in the space
    reference: int = 0  # labelled rows that seeded the diversity
    batch: str | None = None  # the batch the rows were put in
    tag: str | None = None  # the tag they were given
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [r.data_row_id for r in self.rows]

    @property
    def keys(self) -> list[str]:
        return [r.global_key for r in self.rows]

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.rows]


def strategy_name(strategy: str) -> str:
    """The canonical name of a strategy (``least-confidence``, ``lc``... accepted), or a clear error."""
    s = str(strategy).strip().lower().replace(" ", "_")
    s = _ALIASES.get(s, s.replace("-", "_"))
    if s not in STRATEGIES:
        raise QueryError(f"unknown strategy {strategy!r}", where="strategy",
                         fix=did_you_mean(str(strategy), list(STRATEGIES)) or "use one of: " + ", ".join(STRATEGIES))
    return s


def select_rows(ws: Workspace, view_or_filter: View | ResolvedView | str | Any, n: int, strategy: str = "entropy",
                run: Any = None, space: str | None = None, class_balance: bool = False, seed: int = 0, *,
                aggregate: str | None = None, uncertainty: str = "entropy", batch: str | None = None,
                priority: int = 0, note: str = "", tag: str | None = None) -> Selection:
    """Pick ``n`` rows of the pool by ``strategy`` (see the module docstring). ``view_or_filter``: a
    :class:`View` (its run is used when ``run`` is not given), a resolved view, or a filter (text, AST).
    ``batch``: put the rows in a new batch of that name (``priority``, ``note``); ``tag``: tag them."""
    strategy = strategy_name(strategy)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= MAX_N:
        raise LimitError(f"n={n!r} is not between 1 and {MAX_N:,}", where="n", fix="ask for fewer rows")
    if aggregate is not None and aggregate not in st.AGGREGATES:
        raise QueryError(f"unknown aggregate {aggregate!r}", where="aggregate",
                         fix="use one of: " + ", ".join(st.AGGREGATES))
    unc = strategy_name(uncertainty)
    if unc not in st.UNCERTAINTY:
        raise QueryError(f"{uncertainty!r} is not an uncertainty measure", where="uncertainty",
                         fix="use one of: " + ", ".join(st.UNCERTAINTY))
    rv = _resolve(ws, view_or_filter, run)
    needs_run = strategy in st.UNCERTAINTY or strategy == "combined"
    if needs_run and rv.run is None:
        raise QueryError(f"the {strategy} strategy scores a run's predictions, and no run was given", where="run",
                         fix="give the model run whose predictions cover the pool (e.g. --run model/run)")
    pool = _pool_ids(ws, rv)
    if len(pool) > MAX_POOL:
        raise LimitError(f"the pool holds {len(pool):,} rows, more than {MAX_POOL:,}", where="pool",
                         fix="narrow the pool with a filter (a dataset, a split, a slice)")
    kw: dict[str, Any] = {"strategy": strategy, "run": rv.run.ref if rv.run is not None else None, "pool": rv.text,
                          "pool_size": len(pool), "class_balance": class_balance, "seed": seed}
    rng = np.random.default_rng(seed)
    u = cls = None
    names: list[str] = []
    unscored = 0
    if needs_run:
        measure = strategy if strategy in st.UNCERTAINTY else unc
        how = aggregate or st.DEFAULT_AGGREGATE[measure]
        u, cls, names, unscored = _row_uncertainty(ws, rv.run.id, pool, measure, how)  # type: ignore[union-attr]
        kw.update(aggregate=how, unscored=unscored)
        if strategy == "combined":
            kw["uncertainty"] = measure
    elif class_balance and rv.run is not None:
        _, cls, names, _ = _row_uncertainty(ws, rv.run.id, pool, "entropy", "max")
    elif class_balance:
        raise QueryError("class balance needs the predicted classes of a run", where="run",
                         fix="give the run, or leave class balance out")
    notes: list[str] = []
    dist = None
    if strategy in ("diversity", "combined"):
        info, ids_v, vecs, ref = _space_vectors(ws, space, pool, rng)
        kw.update(space=info.name, without_vector=len(pool) - len(ids_v), reference=len(ref))
        if len(ids_v) < len(pool):
            notes.append(f"{len(pool) - len(ids_v):,} pool row(s) have no vector in space {info.name!r} and were left out")
        keep = np.searchsorted(pool, ids_v)
        scores = u[keep] if u is not None else None
        c = cls[keep] if cls is not None else None
        first = int(rng.integers(len(ids_v))) if len(ids_v) else 0
        idx, gains, d = st.pick_with_gains(n, scores=scores, vectors=vecs, reference=ref, classes=c,
                                           class_balance=class_balance, first=first)
        chosen = keep[idx]
        dist = {j: (v if np.isfinite(v) else None) for j, v in zip(chosen.tolist(), d.tolist(), strict=True)}
    elif strategy == "random":
        draws = rng.random(len(pool))
        c = cls if class_balance else None
        chosen, gains, _ = st.pick_with_gains(n, scores=draws, classes=c, class_balance=class_balance)
    else:
        chosen, gains, _ = st.pick_with_gains(n, scores=u, classes=cls, class_balance=class_balance)
    if unscored and needs_run:
        notes.append(f"{unscored:,} pool row(s) have no prediction in the run (uncertainty 0)")
    chosen_ids = pool[chosen].tolist()
    keys = dict(ws.sql("SELECT id, global_key FROM data_rows WHERE id IN (SELECT unnest(?))", [chosen_ids]).fetchall()) \
        if chosen_ids else {}
    rows = [SelectedRow(data_row_id=int(i), global_key=keys[int(i)], score=float(g),
                        uncertainty=float(u[j]) if u is not None else None,
                        distance=dist.get(int(j)) if dist is not None else None,
                        predicted_class=(names[cls[j]] if cls is not None and cls[j] >= 0 else None))
            for i, j, g in zip(chosen_ids, chosen.tolist(), gains.tolist(), strict=True)]
    if (batch or tag) and not rows:
        raise QueryError("the pool has no rows to select", where="pool",
                         fix="check the pool's filter and run (e.g. are the unlabelled rows in the run?)")
    if batch or tag:
        with ws.store.transaction():  # the batch and the tag together, or neither
            if batch:
                kw["batch"] = _make_batch(ws, batch, [r.data_row_id for r in rows], priority, note, kw)
            if tag:
                ws.add_tags([r.global_key for r in rows], [tag])
                kw["tag"] = tag
    return Selection(rows=rows, notes=notes, **kw)


def _resolve(ws: Workspace, v: Any, run: Any) -> ResolvedView:
    if isinstance(v, ResolvedView):
        if run is not None and v.run is not None and ws.run(run).id != v.run.id:
            raise QueryError("the view is of another run than the one given", where="run",
                             fix="give the run in the view or as run=, not two different ones")
        return v
    if isinstance(v, View):
        if run is not None:
            from dataclasses import replace

            v = replace(v, run=run)
        return v.resolve(ws)
    return View(run=run, filter=v).resolve(ws)


def _pool_ids(ws: Workspace, rv: ResolvedView) -> np.ndarray:
    got = rv.rows_sql()
    if got is None:
        sql, params = (("SELECT data_row_id FROM run_rows WHERE run_id = ?", [rv.run.id]) if rv.run is not None
                       else ("SELECT id AS data_row_id FROM data_rows", []))
    else:
        sql, params = got
    tbl = ws.store.cursor().execute(f"SELECT DISTINCT data_row_id FROM ({sql}) ORDER BY 1", params).fetchnumpy()
    return np.asarray(tbl["data_row_id"], dtype=np.int64)


def _row_uncertainty(ws: Workspace, run_id: int, pool: np.ndarray, measure: str,
                     how: str) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """(uncertainty per pool row, index of its predicted class in ``names`` or -1, names, rows without objects)."""
    import pyarrow as pa

    cur = ws.store.cursor()
    cur.register("_sw_pool", pa.table({"id": pool}))
    try:
        tbl = cur.execute("""
            SELECT p.data_row_id, coalesce(p.answer, f.name) AS cls, p.confidence, p.probabilities
            FROM predictions p JOIN features f ON f.id = p.feature_id
            WHERE p.run_id = ? AND p.data_row_id IN (SELECT id FROM _sw_pool) ORDER BY p.data_row_id, p.id""",
                          [run_id]).arrow()
        if hasattr(tbl, "read_all"):  # (a reader: read it while the pool table is there)
            tbl = tbl.read_all()
    finally:
        cur.unregister("_sw_pool")
    n = len(pool)
    if tbl.num_rows == 0:
        return np.zeros(n), np.full(n, -1, np.int64), [], n
    row = np.searchsorted(pool, tbl.column("data_row_id").to_numpy().astype(np.int64))
    conf = tbl.column("confidence").to_numpy().astype(np.float64)
    probs = tbl.column("probabilities").combine_chunks()
    lens = probs.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = probs.offsets.to_numpy().astype(np.int64)
    flat = probs.values.to_numpy(zero_copy_only=False).astype(np.float64)
    obj = np.zeros(tbl.num_rows)
    norm = np.zeros(tbl.num_rows)
    binary = lens < 2  # no vector: the two-class vector [c, 1 - c]
    groups = [(2, np.flatnonzero(binary), np.stack([conf[binary], 1.0 - conf[binary]], axis=1))]
    for k in np.unique(lens[~binary]).tolist():
        js = np.flatnonzero(lens == k)
        groups.append((k, js, flat[offsets[js][:, None] + np.arange(k)[None, :]]))
    for k, js, m in groups:
        if len(js):
            sc = st.uncertainty(m, measure)
            obj[js] = sc
            norm[js] = st.normalised(sc, measure, k)
    scores = st.aggregate(row, obj, n, how, uncertain=norm >= st.UNCERTAIN_AT)
    # the predicted class of each row: that of its most uncertain object
    enc = tbl.column("cls").combine_chunks().dictionary_encode()
    names_raw = [str(v) for v in enc.dictionary.to_pylist()]
    names = sorted(set(names_raw))
    remap = np.asarray([names.index(v) for v in names_raw], dtype=np.int64)
    code = remap[enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
    order = np.lexsort((-obj, row))
    first = order[np.r_[True, row[order][1:] != row[order][:-1]]]
    cls = np.full(n, -1, np.int64)
    cls[row[first]] = code[first]
    unscored = int(n - len(np.unique(row)))
    return scores, cls, names, unscored


def _space_vectors(ws: Workspace, space: str | None, pool: np.ndarray,
                   rng: np.random.Generator) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(space info, pool ids with a vector, their vectors, the labelled rows' vectors), ready for Euclidean
    distances (unit length in a cosine space)."""
    from slicewise import embeddings

    have = embeddings.spaces(ws)
    if space is None:
        if len(have) != 1:
            raise NotFoundError("diversity needs an embedding space" + (
                f"; the workspace has {len(have)}: " + ", ".join(s.name for s in have) if have else
                " and the workspace has none"), where="space",
                fix="give the space (--space NAME)" if have else "embed the rows first (slicewise embed)")
        info = have[0]
    else:
        info = embeddings.space(ws, space)
    ids_v, vecs = embeddings.vectors(ws, info.name, pool)
    all_ids, all_vecs = embeddings.vectors(ws, info.name)
    labelled = np.asarray([r[0] for r in ws.store.cursor().execute(
        "SELECT DISTINCT data_row_id FROM annotations ORDER BY 1").fetchall()], dtype=np.int64)
    ref_ids = np.setdiff1d(np.intersect1d(all_ids, labelled), pool)
    if len(ref_ids) > MAX_REFERENCE:
        ref_ids = np.sort(rng.choice(ref_ids, MAX_REFERENCE, replace=False))
    ref = all_vecs[np.searchsorted(all_ids, ref_ids)] if len(ref_ids) else np.zeros((0, info.dim), np.float32)
    if info.metric == "cosine":
        vecs, ref = st.unit_rows(vecs), st.unit_rows(ref)
    return info, ids_v, np.asarray(vecs, dtype=np.float64), np.asarray(ref, dtype=np.float64)


def source_text(kw: dict[str, Any]) -> str:
    """How a selection was made, in words (kept as its batch's source)."""
    parts = [f"select {kw['strategy']}"]
    if kw.get("run"):
        parts.append(f"run:{kw['run']}")
    parts.append(f"pool:{kw['pool'] or 'all rows'}")
    if kw.get("aggregate") and kw["strategy"] != "random":
        parts.append(f"aggregate:{kw['aggregate']}")
    if kw.get("space"):
        parts.append(f"space:{kw['space']}")
    if kw.get("class_balance"):
        parts.append("class-balance")
    if kw["strategy"] in ("random", "diversity"):
        parts.append(f"seed:{kw['seed']}")
    return " ".join(parts)


def _make_batch(ws: Workspace, name: str, ids: list[int], priority: int, note: str, kw: dict[str, Any]) -> str:
    from slicewise.curation.batches import create_batch

    return create_batch(ws, name, ids, priority=priority, note=note, source=source_text(kw)).name
