"""The row cache: one wide table per run (and per run and metrics view) that makes queries fast.

A filter over the store touches many tables (data rows, metadata in long form, predictions to
aggregate, the metrics engine's tables); at a million rows each semi-join costs tens of milliseconds.
So the first query builds, in the workspace's cache database (:mod:`slicewise.state`), one table with
a row per data row of the run and a column per row-level field:

  id, global_key, dataset_id, split, media_type, created_at, n_gt, n_pred, conf_min, conf_max,
  conf_mean, gt_feats / pred_feats (the feature ids labelled / predicted), tags, md_0 ... md_k (one per
  metadata field, typed), and in a metrics variant at (c, t): tp, fp, fn, tn, precision, recall, f1, iou

plus precomputed histogram bins (but for the metrics: the facets bin their values) and string codes for the
facets. Every later query is column predicates over it.

**Kept up to date, not rebuilt.** Each table remembers the last change (:class:`slicewise.state.Change`)
it reflects. On the next read it looks at what was published since: changes that cannot concern it
(a slice saved, another run's predictions, a grid edited) cost nothing; tags, metadata, splits, labels,
predictions and run membership of some rows re-read just those rows (deleted and inserted again, in the
base table and in its metrics variants); a new metadata field, or a value outside a histogram's range,
rebuilds the table. A new metrics job gives a new metrics view, hence a new variant.

**Kept across processes.** The cache database is a file beside the workspace; each table is registered
with the last change of the workspace's change log it holds, so a new process reuses it and catches up
through the log, as above (it rebuilds only when the log no longer reaches back that far).

Inside a write transaction, on a read-only workspace, and with caching off (``ws.state.enabled``),
queries read the store's tables directly.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pyarrow as pa

from slicewise.query.fields import COUNT_METRICS, METRICS

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

MAX_ENTRIES = 4  # base tables (run x metadata fields) kept per workspace
MAX_VARIANTS = 4  # metrics variants kept per base table
#: and at most this many lines of their columns in the process's memory: at 10M rows a variant's columns take
#: about 0.5 GB, so two are kept; at 1M rows, MAX_VARIANTS
MEMORY_LINES = 20_000_000
BINS = 10
RATIOS = ("precision", "recall", "f1", "iou")
CONFIDENCE = ("confidence.min", "confidence.max", "confidence.mean")
_ROW_TOPICS = frozenset({"split", "metadata", "tags", "labels"})
_VERSIONS = itertools.count(1)


@dataclass
class RowCache:
    table: str  # database-qualified (plain identifiers); a metrics variant's is a view (see _with_metrics) or a table (widen)
    metadata: dict[str, str] = field(default_factory=dict)  # metadata field -> column
    metrics: bool = False
    #: facet histograms: field -> (bin column, or value column of a field ``valued``, low, high, number of bins);
    #: the bins span the run's whole range (so a histogram's axis stays put while the filter changes)
    bins: dict[str, tuple[str, float, float, int]] = field(default_factory=dict)
    #: string column -> (code column, its values in code order); codes count facets fast
    codes: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)
    #: the fields whose bins come from the data's own range (others are fixed, e.g. [0, 1])
    ranged: tuple[str, ...] = ()
    #: the ranged fields binned one integer a bin (their values must stay integers)
    units: tuple[str, ...] = ()
    #: a metrics variant's metric columns, a line per line of the base table in the same order (``table`` joins
    #: them by position): the name of a table of the cache database (an earlier version's), or of ``columns``
    narrow: str = ""
    #: the fields whose ``bins`` name their value column: the facets bin their values (slicewise.query.bins)
    valued: tuple[str, ...] = ()
    #: a number that changes whenever the rows are patched, the same for a base and its variants (what this
    #: process derives from the tables is keyed by it)
    version: int = 0
    #: a metrics view's base table (whose lines it shows, in their order)
    base: str = ""
    #: a metrics variant's metric columns when they are in this process's memory (a pyarrow Table registered
    #: as ``narrow`` in ``ws.store.relations``; see _with_metrics)
    columns: Any = None
    #: the table's lines have ``gt_mask`` / ``pred_mask``: a bit per feature id below 64 labelled / predicted on
    #: the row (``has:`` and ``predicted:`` test a bit instead of searching a list: at 10M rows 45 ms, not 100)
    masks: bool = False

    #: code lookups of ``codes`` (column -> (length of its list when made, value -> code)); not saved
    _code_index: dict[str, tuple[int, dict[Any, int]]] = field(default_factory=dict, repr=False, compare=False)

    def code_of(self, column: str, value: Any) -> int:
        """The code of ``value`` in string column ``column`` (which must have codes), -1 when no line has it.
        Codes only ever get appended (see _code_exprs), so a lookup made at a list's length stays true."""
        values = self.codes[column][1]
        n = len(values)
        hit = self._code_index.get(column)
        if hit is None or hit[0] != n:
            hit = (n, {v: i for i, v in enumerate(values[:n])})
            self._code_index[column] = hit
        return hit[1].get(value, -1)

    @property
    def lines_in_memory(self) -> int:
        return self.columns.num_rows if self.columns is not None else 0

    def info(self) -> str:
        return json.dumps({"metadata": self.metadata, "metrics": self.metrics, "bins": self.bins,
                           "codes": self.codes, "ranged": list(self.ranged), "units": list(self.units),
                           "narrow": self.narrow.split(".")[-1], "valued": list(self.valued),
                           "base": self.base.split(".")[-1], "masks": self.masks})

    @classmethod
    def from_info(cls, table: str, info: str) -> RowCache:
        d = json.loads(info)
        db = table.rpartition('.')[0]
        return cls(table, d["metadata"], d["metrics"], {k: tuple(v) for k, v in d["bins"].items()},  # type: ignore[misc]
                   {k: (v[0], list(v[1])) for k, v in d["codes"].items()}, tuple(d["ranged"]), tuple(d["units"]),
                   f"{db}.{d['narrow']}" if d.get("narrow") else "", tuple(d.get("valued", ())),
                   base=f"{db}.{d['base']}" if d.get("base") else "", masks=bool(d.get("masks")))

    def names(self) -> list[str]:
        """Everything of the database this cache is made of (the view first; none for columns in memory)."""
        if self.columns is not None:
            return []
        return [self.table, self.narrow] if self.narrow else [self.table]


@dataclass
class _Entry:
    run_id: int | None
    fields: tuple[str, ...]
    base: RowCache
    seq: int  # the last change (of the workspace's change log) this entry's tables hold
    mark: str = ""  # "seq:token" as registered (a variant registered under another mark is stale)
    #: the key of the row metrics at (c, t) (metrics.views.row_metrics_source) -> variant
    variants: OrderedDict[str, RowCache] = field(default_factory=OrderedDict)
    #: the base table's ids in its order, once read (a new variant lines its metrics up with them)
    ids: np.ndarray | None = None
    #: (``ids``, an array of the row metrics' ids found equal to them): the next variant with that same array
    #: does not compare them again (10M ids: 13 ms)
    aligned: tuple[Any, Any] = (None, None)

    @property
    def key(self) -> str:
        return json.dumps([self.run_id, list(self.fields)])

    def tables(self) -> list[RowCache]:
        return [self.base, *self.variants.values()]

    def names(self) -> list[str]:
        return [n for rc in self.tables() for n in rc.names()]


#: (key, columns): the row metrics at (c, t) as :func:`slicewise.metrics.views.row_metrics_source` gives them
MetricsSource = tuple[str, Callable[[], dict[str, np.ndarray]]]


def get(ws: Workspace, run_id: int | None, metadata_fields: list[str], metrics: MetricsSource | None = None
        ) -> RowCache | None:
    """The cache table of the run's rows (with the row metrics of ``metrics`` when given), built on first
    use and brought up to date on every call; None when caches are off."""
    st = ws.state
    if not st.usable() or st.db is None:
        return None
    key = ("rowcache", run_id, tuple(metadata_fields))
    with st.key_lock(key):
        e: _Entry | None = st.entry(key)
        if e is None:
            e = _open(ws, run_id, tuple(metadata_fields))
            st.set_entry(key, e, limit=MAX_ENTRIES, on_evict=lambda old: _forget(ws, old))
        else:
            _refresh(ws, e)
        if metrics is None:
            return e.base
        view, columns = metrics
        v = e.variants.get(view)
        if v is None:
            _make_room(ws, e)
            v = _open_variant(ws, e, view, columns)
            e.variants[view] = v
            while True:  # the oldest but the new one; one table (widen) only when all others are
                older = [k for k in e.variants if k != view]
                if len(e.variants) > MAX_VARIANTS:
                    name = next((k for k in older if e.variants[k].narrow), older[0])
                elif (past := _past_memory(e, 0, keep=view)) is not None:
                    name = past
                else:
                    break
                st.retire(e.variants.pop(name).names())
        e.variants.move_to_end(view)
        return v


def _make_room(ws: Workspace, e: _Entry) -> None:
    """Before a variant is made: the oldest variants in memory go while a new one's lines would take the ones
    in memory past :data:`MEMORY_LINES` (so that the new one can reuse their arrays, see
    :class:`slicewise.metrics.fast.Outputs`, rather than add to them)."""
    while (name := _past_memory(e, len(e.ids) if e.ids is not None else 0)) is not None:
        ws.state.retire(e.variants.pop(name).names())


def _past_memory(e: _Entry, more: int, keep: str | None = None) -> str | None:
    """The oldest variant in memory but ``keep`` while the lines in memory, and ``more``, pass :data:`MEMORY_LINES`."""
    in_memory = [k for k, x in e.variants.items() if x.columns is not None and k != keep]
    if in_memory and sum(x.lines_in_memory for x in e.variants.values()) + more > MEMORY_LINES:
        return in_memory[0]
    return None


# -- opening, refreshing, forgetting ------------------------------------------------------------
def widen(ws: Workspace, run_id: int | None, metadata_fields: list[str], metrics: MetricsSource) -> RowCache | None:
    """The metrics variant of ``metrics`` (built if need be) made one table: the base's columns and the
    metrics. A join by position of the base and the metric columns is cheap to build (a new (c, t) writes
    nothing: its columns stay in memory) but DuckDB cannot push a filter or a join below it: at 10M rows a
    page filtered by a per-feature metric (a semi-join of 37k ids) took 0.77 s through such a view and 0.17 s
    on one table, a page sorted by fp
    0.14 s and 0.02 s. One table costs a copy (16 s at 10M rows), so :func:`slicewise.query.warm` makes one
    for the view of a run's own thresholds after its metrics job; it outlives the other variants (the newest
    :data:`MAX_VARIANTS` are kept) and replaces an earlier one. Patched like the base (rows re-read, their
    metrics kept). None when caches are off."""
    v = get(ws, run_id, metadata_fields, metrics)
    st = ws.state
    if v is None or not v.narrow:
        return v
    key = ("rowcache", run_id, tuple(metadata_fields))
    with st.key_lock(key):
        e: _Entry | None = st.entry(key)
        view = metrics[0]
        v = e.variants.get(view) if e is not None else None
        if e is None or v is None or not v.narrow:
            return v
        wide = st.table_name("rowsw")
        st.cursor().execute(f"CREATE TABLE {wide} AS SELECT * FROM {v.table}")
        w = dataclasses.replace(v, table=wide, narrow="", columns=None)
        e.variants[view] = w
        _register_variant(ws, e, view, w)
        st.retire(v.names())
        for other in [k for k, x in e.variants.items() if not x.narrow and k != view]:  # (an earlier job's)
            st.retire(e.variants.pop(other).names())
        return w


def _open(ws: Workspace, run_id: int | None, fields: tuple[str, ...]) -> _Entry:
    """The registered table, brought up to date from the change log; else a new build."""
    st = ws.state
    e = _Entry(run_id, fields, RowCache(""), 0)
    found = st.lookup("rows", e.key)
    if found is not None and found[3]:
        seq, _, token = found[1].partition(":")
        if not RowCache.from_info(found[0], found[3]).masks:  # (an earlier version's: built again)
            st.retire([found[0], *(t for t, _, mark, _ in st.registered("rows+metrics") if mark == found[1])])
        elif st.holds(int(seq), token):
            e.base, e.seq, e.mark = RowCache.from_info(found[0], found[3]), int(seq), found[1]
            for table, key, mark, info in st.registered("rows+metrics"):  # its variants catch up with it
                view = json.loads(key)[-1]
                if mark == e.mark and info and key == _variant_key(e, view) and len(e.variants) < MAX_VARIANTS:
                    e.variants[view] = RowCache.from_info(table, info)
            _refresh(ws, e)
            return e
    e.seq = st.store.last_seq()  # before reading any data: the table holds at least that
    e.base = _build(ws, run_id, fields)
    _register(ws, e)
    return e


def _register(ws: Workspace, e: _Entry) -> None:
    """Vouch for the entry's tables as holding every change up to ``e.seq`` (a later process catches up
    from there through the change log)."""
    st = ws.state
    e.mark = f"{e.seq}:{st.store.change_token(e.seq) or '' if e.seq else ''}"
    st.register(e.base.table, "rows", e.key, e.mark, e.base.info())
    for view, v in e.variants.items():
        _register_variant(ws, e, view, v)


def _register_variant(ws: Workspace, e: _Entry, view: str, v: RowCache) -> None:
    key = _variant_key(e, view)
    if v.columns is not None:  # (in this process's memory: no later process will find it)
        return
    if v.narrow:  # (a cache database of an earlier version: narrow variants in the file)
        ws.state.register(v.narrow, "rows+metrics-columns", key, e.mark)
    ws.state.register(v.table, "rows+metrics", key, e.mark, v.info())


def _variant_key(e: _Entry, view: str) -> str:
    """The registry key of a metrics variant: its base's, and the key of its row metrics (which names the
    run's metrics job generation, conf index and IoU, and the versions of what they are made of)."""
    return json.dumps([e.run_id, list(e.fields), view])


def _open_variant(ws: Workspace, e: _Entry, view: str, columns: Callable[[], dict[str, np.ndarray]]) -> RowCache:
    found = ws.state.lookup("rows+metrics", _variant_key(e, view))
    if found is not None and found[1] == e.mark and found[3]:
        return RowCache.from_info(found[0], found[3])
    if e.ids is None:
        e.ids = _ids(ws.state.cursor(), e.base.table)
    cols = columns()
    have = cols["data_row_id"]
    if e.aligned[0] is not e.ids or e.aligned[1] is not have:  # (compared once per pair of arrays)
        aligned = len(have) == len(e.ids) and np.array_equal(np.asarray(have, np.int64), e.ids)
        e.aligned = (e.ids, have) if aligned else (None, None)
    v = _with_metrics(ws, e.base, e.ids, cols, aligned=e.aligned[1] is have)
    _register_variant(ws, e, view, v)
    return v


def _refresh(ws: Workspace, e: _Entry) -> None:
    """Apply what was published since the entry's last change (see the module docstring)."""
    st = ws.state
    changes, seq = st.since(e.seq)
    if changes is not None and not changes:
        return
    rebuild = changes is None
    ids: list[np.ndarray] = []
    for c in changes or []:
        mine = (c.topic in _ROW_TOPICS or (c.topic == "rows" and e.run_id is None)
                or (c.topic in ("predictions", "run_rows") and c.run == e.run_id))
        if c.topic in ("all", "metadata_fields") or (mine and c.rows is None):
            rebuild = True
        elif mine and c.rows is not None:
            ids.append(c.rows)
    if rebuild or (ids and not _patch(ws, e, np.unique(np.concatenate(ids)))):
        old = e.names()
        e.base = _build(ws, e.run_id, e.fields)
        e.ids = None
        e.variants.clear()
        st.retire(old)
    marked = int(e.mark.partition(":")[0] or 0)
    e.seq = seq
    if rebuild or ids or seq - marked > 1000:  # (a later process skips unrelated changes quickly)
        _register(ws, e)


def _forget(ws: Workspace, e: _Entry) -> None:
    ws.state.retire(e.names())


# -- building ----------------------------------------------------------------------------------
#: a bit per feature id below :data:`MASK_BITS` (an aggregate over a row's annotations or predictions)
MASK_BITS = 64
_MASK = (f"bit_or(CASE WHEN feature_id >= 0 AND feature_id < {MASK_BITS} THEN (1::UBIGINT << feature_id::UBIGINT) "
         "ELSE 0::UBIGINT END)")


def _rows_sql(ws: Workspace, run_id: int | None, fields: tuple[str, ...], only: str | None = None
              ) -> tuple[str, list[Any], dict[str, str], dict[str, str]]:
    """(SELECT of the base columns, params, metadata field -> column, field kinds); ``only`` names a
    table of ids (column ``id``) to restrict every source to."""
    kinds = dict(ws.state.cursor().execute("SELECT name, kind FROM metadata_fields").fetchall())
    md_cols: dict[str, str] = {}
    md_sel, md_params = [], []
    for i, f in enumerate(fields):
        col = {"number": "value_number", "datetime": "value_datetime"}.get(kinds.get(f, "string"), "value_string")
        md_cols[f] = f"md_{i}"
        md_sel.append(f"max({col}) FILTER (WHERE field = ?) AS md_{i}")
        md_params.append(f)
    pick = f" AND data_row_id IN (SELECT id FROM {only})" if only else ""
    row_conds, row_params = [], []
    if run_id is not None:
        row_conds.append("id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?)")
        row_params.append(run_id)
    if only:
        row_conds.append(f"id IN (SELECT id FROM {only})")
    row_where = ("WHERE " + " AND ".join(row_conds)) if row_conds else ""
    md_cte = (f"md AS (SELECT data_row_id, {', '.join(md_sel)} FROM row_metadata WHERE TRUE{pick} GROUP BY data_row_id),"
              if md_sel else "md AS (SELECT NULL::BIGINT AS data_row_id WHERE FALSE),")
    pred_cond, pred_params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("WHERE FALSE", [])
    md_out = "".join(f", md.md_{i}" for i in range(len(fields)))
    sql = f"""
        WITH rw AS (SELECT id, global_key, dataset_id, split, media_type, created_at FROM data_rows {row_where}),
        {md_cte}
        gt AS (SELECT data_row_id, count(*) AS n, list(DISTINCT feature_id ORDER BY feature_id) AS feats,
                      {_MASK} AS mask
               FROM annotations WHERE TRUE{pick} GROUP BY data_row_id),
        pr AS (SELECT data_row_id, count(*) AS n, min(confidence) AS cmin, max(confidence) AS cmax,
                      avg(confidence) AS cmean, list(DISTINCT feature_id ORDER BY feature_id) AS feats, {_MASK} AS mask
               FROM predictions {pred_cond}{pick} GROUP BY data_row_id),
        tg AS (SELECT data_row_id, list(DISTINCT tag ORDER BY tag) AS tags FROM tags WHERE TRUE{pick} GROUP BY data_row_id)
        SELECT rw.*, coalesce(gt.n, 0) AS n_gt, coalesce(pr.n, 0) AS n_pred, pr.cmin AS conf_min,
               pr.cmax AS conf_max, pr.cmean AS conf_mean, coalesce(gt.feats, []::INTEGER[]) AS gt_feats,
               coalesce(pr.feats, []::INTEGER[]) AS pred_feats, coalesce(gt.mask, 0::UBIGINT) AS gt_mask,
               coalesce(pr.mask, 0::UBIGINT) AS pred_mask, coalesce(tg.tags, []::VARCHAR[]) AS tags{md_out}
        FROM rw LEFT JOIN md ON md.data_row_id = rw.id LEFT JOIN gt ON gt.data_row_id = rw.id
        LEFT JOIN pr ON pr.data_row_id = rw.id LEFT JOIN tg ON tg.data_row_id = rw.id"""
    return sql, row_params + md_params + pred_params, md_cols, kinds


def _base_columns(run_id: int | None, fields: tuple[str, ...], md_cols: dict[str, str], kinds: dict[str, str]
                  ) -> tuple[dict[str, str], set[str], tuple[str, ...]]:
    """(histogram field -> value column, fields with a fixed [0, 1] range, string columns coded)."""
    numeric = {f"metadata.{f}": md_cols[f] for f in fields if kinds.get(f) == "number"}
    numeric["annotation.count"] = "n_gt"
    if run_id is not None:
        numeric |= {"confidence.min": "conf_min", "confidence.max": "conf_max", "confidence.mean": "conf_mean",
                    "prediction.count": "n_pred"}
    strings = ("split", "media_type") + tuple(md_cols[f] for f in fields if kinds.get(f, "string") in ("string", "enum"))
    return numeric, set(CONFIDENCE), strings


def _build(ws: Workspace, run_id: int | None, fields: tuple[str, ...]) -> RowCache:
    st = ws.state
    cur = st.cursor()
    sql, params, md_cols, kinds = _rows_sql(ws, run_id, fields)
    src = st.table_name("src")
    cur.execute(f"CREATE TABLE {src} AS {sql}", params)
    numeric, fixed, strings = _base_columns(run_id, fields, md_cols, kinds)
    spec, units = _bin_spec(cur, src, numeric, fixed)
    table = st.table_name("rows")
    exprs = [_bin_expr(f"s.{col}", spec[name], 0 + i) for i, (name, col) in enumerate(numeric.items()) if name in spec]
    codes, joins = {}, []
    for i, c in enumerate(strings):  # a dense code per distinct value, joined from the (small) list of values
        vals = [r[0] for r in cur.execute(f"SELECT DISTINCT {c} FROM {src} WHERE {c} IS NOT NULL ORDER BY 1").fetchall()]
        codes[c] = (f"{c}_code", vals)
        joins.append(f"LEFT JOIN (SELECT unnest(?::VARCHAR[]) AS v, (generate_subscripts(?::VARCHAR[], 1) - 1)::INTEGER "
                     f"AS code) c{i} ON c{i}.v = s.{c}")
        exprs.append(f"c{i}.code AS {c}_code")
    params = [p for c in strings for p in (codes[c][1], codes[c][1])]
    # in id order: a metrics variant's columns (by data row id) then line up with it as they are
    cur.execute(f"CREATE TABLE {table} AS SELECT s.*{''.join(', ' + e for e in exprs)} FROM {src} s {' '.join(joins)} "
                "ORDER BY s.id", params)
    cur.execute(f"DROP TABLE {src}")
    bins = {name: (f"b_{i}", *spec[name]) for i, name in enumerate(numeric) if name in spec}
    return RowCache(table, md_cols, bins=bins, codes=codes,  # type: ignore[arg-type]
                    ranged=tuple(n for n in bins if n not in fixed), units=units, masks=True)


def _with_metrics(ws: Workspace, base: RowCache, ids: np.ndarray, columns: dict[str, np.ndarray], *,
                  aligned: bool) -> RowCache:
    """A metrics variant of ``base``: its metric columns as an Arrow table in this process's memory, a line per
    line of the base table in the same order, which queries read joined to the base by position (``table`` is
    that join). Nothing is written: a reading cursor registers the columns when a statement names them
    (:attr:`slicewise.store.database.Store.relations`, held weakly: they go with the last variant object
    that holds them, i.e. once evicted and no query still uses them). At 10M rows writing them to a table cost
    0.6 s in memory and 1.4 s in the cache file; a later process computes them again, or finds the one table
    :func:`widen` made in the file. The facets bin the metrics' values as they count them (``valued``).

    ``columns`` are the row metrics by data row id (metrics.views.row_metrics_source), ``ids`` the base's in
    its order (``aligned``: the same ids, a base in id order as built and every row); rows of the base they do not
    have (put in the run after its metrics job) get NULL."""
    have = np.asarray(columns["data_row_id"], np.int64)
    if aligned:
        at, missing = None, None
    else:
        at = np.minimum(np.searchsorted(have, ids), max(len(have) - 1, 0))
        missing = have[at] != ids if len(have) else np.ones(len(ids), bool)
    data = {"m_id": pa.array(ids, pa.int64())}  # (which row each line is: what a patch and a check read)
    stats = {}
    for m in METRICS:
        v = np.asarray(columns[m])
        if m in COUNT_METRICS:
            v = v.astype(np.int32, copy=False)
        if at is not None:
            v = v[at] if len(have) else np.zeros(len(ids), v.dtype)
        data[m], got = _nullable(v, missing, columns.get(m + ".valid") if at is None else None)
        if m in COUNT_METRICS:
            stats[m] = got
    spec, units = _spec({m: stats.get(m, (None, None, None)) for m in METRICS}, set(RATIOS))
    bins = {m: (f'"{m}"', *spec[m]) for m in METRICS if m in spec}
    return _variant(ws, base, pa.table(data), bins, units)


def _variant(ws: Workspace, base: RowCache, columns: pa.Table, bins: dict[str, tuple[Any, ...]],
             units: tuple[str, ...]) -> RowCache:
    """The metrics variant of ``base`` whose metric columns are ``columns`` (see :func:`_with_metrics`)."""
    name = f"sw_rowsm_{uuid.uuid4().hex[:16]}"
    ws.store.relations[name] = columns
    return RowCache(f"(SELECT b.*, m.* EXCLUDE (m_id) FROM {base.table} b POSITIONAL JOIN {name} m)", dict(base.metadata),
                    metrics=True, bins={**base.bins, **bins},  # type: ignore[dict-item]
                    codes={k: (c, list(v)) for k, (c, v) in base.codes.items()},
                    ranged=base.ranged + tuple(n for n in bins if n not in RATIOS), units=base.units + units,
                    narrow=name, valued=tuple(bins), version=base.version, base=base.table, columns=columns,
                    masks=base.masks)


#: a value within this fraction of a bin's width below an edge counts as on the edge (in the upper bin):
#: 0.3 is on the edge 0.3 of ten bins over [0, 1] although (0.3 - 0) / 1 * 10 may round to 2.9999999999999996
EDGE_TOLERANCE = 1e-9


def _bin_spec(cur: Any, table: str, cols: dict[str, str], fixed: set[str]
              ) -> tuple[dict[str, tuple[float, float, int]], tuple[str, ...]]:
    """((low, high, bins) per field, the fields with unit bins) of columns of a table (see :func:`_spec`)."""
    if not cols:
        return {}, ()
    stats = cur.execute("SELECT " + ", ".join(f"min({c}), max({c}), bool_and({c} = floor({c}))" for c in cols.values())
                        + f" FROM {table}").fetchone()
    return _spec({name: stats[3 * i: 3 * i + 3] for i, name in enumerate(cols)}, fixed)


def _spec(stats: dict[str, Any], fixed: set[str]) -> tuple[dict[str, tuple[float, float, int]], tuple[str, ...]]:
    """((low, high, bins) per field, the fields with unit bins) from each field's (min, max, all whole
    numbers): [0, 1] in ten for ``fixed`` fields, one bin per integer for integer fields of a small range,
    else ten bins over the data's range; fields with no value get none."""
    spec, units = {}, []
    for name, (lo, hi, ints) in stats.items():
        if name in fixed:
            spec[name] = (0.0, 1.0, BINS)
        elif lo is None:
            continue
        elif ints and hi - lo + 1 <= 20:
            spec[name] = (float(lo), float(hi) + 1, int(hi - lo + 1))
            units.append(name)
        else:
            spec[name] = (float(lo), float(hi), BINS)
    return spec, tuple(units)


def _nullable(v: np.ndarray, missing: np.ndarray | None, valid: np.ndarray | None = None
              ) -> tuple[pa.Array, tuple[Any, Any, Any]]:
    """(an Arrow column of ``v``, NULL where it is NaN or ``missing``; (min, max, all whole numbers) of its
    values when they are integers, as SQL gives them). A column of 10M lines costs a few milliseconds (NumPy's
    isnan and Arrow's mask packing about 30); none with its validity bitmap ``valid`` (a bit per value, least
    significant first: 1 where it is not NaN) when there is no ``missing``."""
    if missing is None:
        kind = v.dtype.kind
        if kind == "f" and valid is not None:  # (its null count is counted when something asks it)
            return pa.Array.from_buffers(pa.float64(), len(v), [pa.py_buffer(valid), pa.py_buffer(np.ascontiguousarray(
                v, np.float64))], null_count=-1), (None, None, None)
        if kind == "f":
            v = np.ascontiguousarray(v, np.float64)
            bits, nulls = _valid_bits(v)
            return pa.Array.from_buffers(pa.float64(), len(v), [pa.py_buffer(bits) if nulls else None, pa.py_buffer(v)],
                                         null_count=nulls), (None, None, None)
        lo, hi = _int_range(v) if len(v) else (None, None)
        return pa.array(v), (lo, hi, True if len(v) else None)
    null = (np.isnan(v) | missing) if v.dtype.kind == "f" else missing
    kept = v[~null]
    stats = (int(kept.min()), int(kept.max()), True) if v.dtype.kind != "f" and len(kept) else (None, None, None)
    return pa.array(v, mask=null if null.any() else None), stats


@numba.njit(cache=True, parallel=True)
def _valid_bits(v: np.ndarray) -> tuple[np.ndarray, int]:
    """Arrow's validity bitmap of ``v`` (a bit per value, least significant first: 1 where it is not NaN) and
    the number of NaN."""
    n = len(v)
    bits = np.zeros((n + 63) // 64 * 8, np.uint8)  # (padded to 64 bits, as Arrow prefers)
    nulls = 0
    for i in numba.prange((n + 7) // 8):
        b = 0
        for j in range(i * 8, min(i * 8 + 8, n)):
            if v[j] == v[j]:
                b |= 1 << (j - i * 8)
            else:
                nulls += 1
        bits[i] = b
    return bits, nulls


@numba.njit(cache=True, parallel=True)
def _int_range(v: np.ndarray) -> tuple[int, int]:
    """(min, max) of a non-empty integer array."""
    n_chunks = 16
    lo = np.empty(n_chunks, np.int64)
    hi = np.empty(n_chunks, np.int64)
    for c in numba.prange(n_chunks):
        a, b = len(v) * c // n_chunks, len(v) * (c + 1) // n_chunks
        mn, mx = v[0], v[0]
        for j in range(a, b):
            mn = min(mn, v[j])
            mx = max(mx, v[j])
        lo[c], hi[c] = mn, mx
    return int(lo.min()), int(hi.max())


def _bin_expr(col: str, spec: tuple[float, float, int], n: int) -> str:
    lo, hi, nb = spec
    if hi <= lo:
        e = f"CASE WHEN {col} IS NOT NULL THEN 0 END"
    else:  # float(...) literals come from the data's own range, never from the user
        e = (f"CASE WHEN {col} IS NULL OR NOT isfinite({col}) THEN NULL WHEN {col} >= {hi!r} THEN {nb - 1} "
             f"WHEN {col} <= {lo!r} THEN 0 ELSE least(floor(({col} - {lo!r}) / {hi - lo!r} * {nb} + {EDGE_TOLERANCE!r}), "
             f"{nb - 1}) END")
    return f"CAST({e} AS UTINYINT) AS b_{n}"  # (least/greatest would turn NULL into a bin)


# -- patching ----------------------------------------------------------------------------------
def _patch(ws: Workspace, e: _Entry, ids: np.ndarray) -> bool:
    """Re-read the rows ``ids`` into every table of the entry. False when that is not enough (a value
    outside a histogram's range): the caller rebuilds."""
    st = ws.state
    cur = st.cursor()
    in_memory = [k for k, v in e.variants.items() if v.columns is not None]
    old_ids = e.ids if e.ids is not None or not in_memory else _ids(cur, e.base.table)  # (the lines before)
    e.ids = None  # (the base's lines change)
    idt = st.table_name("ids")
    fresh = st.table_name("fresh")
    cur.register("_sw_patch_ids", pa.table({"id": pa.array(ids, pa.int64())}))
    try:
        cur.execute(f"CREATE TABLE {idt} AS SELECT id FROM _sw_patch_ids")
    finally:
        cur.unregister("_sw_patch_ids")
    try:
        sql, params, md_cols, kinds = _rows_sql(ws, e.run_id, e.fields, only=idt)
        if md_cols != e.base.metadata:
            return False
        cur.execute(f"CREATE TABLE {fresh} AS {sql}", params)
        numeric, _, strings = _base_columns(e.run_id, e.fields, md_cols, kinds)
        if not _fits(cur, fresh, numeric, e.base):
            return False
        code_exprs, code_params = _code_exprs(cur, fresh, strings, e)
        bin_exprs = [f"{_bin_expr(col, e.base.bins[name][1:], int(e.base.bins[name][0][2:]))}"  # type: ignore[arg-type]
                     for name, col in numeric.items() if name in e.base.bins]
        # the lines again in id order in every table: a variant's narrow table stays line for line with its
        # base (the views join them by position)
        lines = f"f.*{''.join(', ' + x for x in bin_exprs + code_exprs)}"  # the base's columns of the fresh rows
        select = f"SELECT {lines} FROM {fresh} f ORDER BY f.id"
        with _transaction(cur):
            cur.execute(f"DELETE FROM {e.base.table} WHERE id IN (SELECT id FROM {idt})")
            cur.execute(f"INSERT INTO {e.base.table} BY NAME {select}", code_params)
            for v in e.variants.values():
                if v.columns is None:
                    _patch_variant(ws, cur, v, idt, fresh, lines, code_params)
        try:  # the columns in memory: their lines in the base's new order, the rows' metrics kept
            if in_memory and old_ids is not None:
                fresh_ids = np.asarray(cur.execute(f"SELECT id FROM {fresh} ORDER BY id").fetchnumpy()["id"], np.int64)
                at, new_ids = _patched_lines(old_ids, ids, fresh_ids)
                for view in in_memory:
                    v = e.variants[view]
                    moved = v.columns.take(at).set_column(0, "m_id", pa.array(new_ids, pa.int64()))
                    e.variants[view] = _variant(ws, e.base, moved, {k: v.bins[k] for k in v.valued},
                                                tuple(u for u in v.units if u in v.valued))
        except BaseException:  # (their lines would no longer match the base's: computed again when asked)
            for view in in_memory:
                e.variants.pop(view, None)
            raise
        finally:
            version = next(_VERSIONS)  # (after the writes: what is derived from the tables is derived again)
            for rc in e.tables():
                rc.version = version
        return True
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {fresh}")
        cur.execute(f"DROP TABLE IF EXISTS {idt}")


def _ids(cur: Any, table: str) -> np.ndarray:
    """A table's ids in its lines' order."""
    return np.asarray(cur.execute(f"SELECT id FROM {table}").fetchnumpy()["id"], np.int64)


def _patched_lines(old: np.ndarray, patched: np.ndarray, fresh: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """(for each line of a table after a patch, its line before (NULL for a row it did not have); the ids of
    the lines after): the lines of the rows not ``patched`` as they were, then the ``fresh`` rows (those of
    ``patched`` still there) in id order, as :func:`_patch` rewrites a base table."""
    kept = np.flatnonzero(~np.isin(old, patched))
    if len(old):
        order = np.argsort(old, kind="stable")
        back = order[np.minimum(np.searchsorted(old, fresh, sorter=order), len(old) - 1)]
        new = old[back] != fresh
    else:
        back, new = np.zeros(len(fresh), np.int64), np.ones(len(fresh), bool)
    return (pa.array(np.concatenate([kept, back]), mask=np.concatenate([np.zeros(len(kept), bool), new])),
            np.concatenate([old[kept], fresh]))


@contextmanager
def _transaction(cur: Any) -> Iterator[None]:
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def _patch_variant(ws: Workspace, cur: Any, v: RowCache, idt: str, fresh: str, lines: str, code_params: list[Any]
                   ) -> None:
    """Re-read the rows of ``idt`` into a metrics variant (from ``fresh``, whose base columns are ``lines``),
    their metrics kept (they change with a new metrics job), the lines again in id order: a narrow table
    stays line for line with its base (its view joins them by position)."""
    keep = ws.state.table_name("keep")
    if v.narrow:
        cur.execute(f"CREATE TABLE {keep} AS SELECT * FROM {v.narrow} WHERE m_id IN (SELECT id FROM {idt})")
        cur.execute(f"DELETE FROM {v.narrow} WHERE m_id IN (SELECT id FROM {idt})")
        cur.execute(f"INSERT INTO {v.narrow} BY NAME SELECT f.id AS m_id, k.* EXCLUDE (m_id) FROM {fresh} f "
                    f"LEFT JOIN {keep} k ON k.m_id = f.id ORDER BY f.id")
    else:  # one table (widen): the base's fresh lines with the rows' metrics
        metric_cols = ", ".join(f'"{m}"' for m in METRICS)
        cur.execute(f"CREATE TABLE {keep} AS SELECT id AS m_id, {metric_cols} FROM {v.table} "
                    f"WHERE id IN (SELECT id FROM {idt})")
        cur.execute(f"DELETE FROM {v.table} WHERE id IN (SELECT id FROM {idt})")
        cur.execute(f"INSERT INTO {v.table} BY NAME SELECT {lines}, k.* EXCLUDE (m_id) FROM {fresh} f "
                    f"LEFT JOIN {keep} k ON k.m_id = f.id ORDER BY f.id", code_params)
    cur.execute(f"DROP TABLE {keep}")


def _fits(cur: Any, fresh: str, numeric: dict[str, str], rc: RowCache) -> bool:
    """Whether the fresh rows' values fall in the bins the table was built with (a field that had no
    value then has no bins: any value now does not fit)."""
    checks = []
    for name, col in numeric.items():
        if name not in rc.bins:
            checks.append(f"count({col}) > 0")
        elif name in rc.ranged:
            _, lo, hi, _ = rc.bins[name]
            cond = (f"{col} < {lo!r} OR {col} >= {hi!r} OR {col} <> floor({col})" if name in rc.units
                    else f"{col} < {lo!r} OR {col} > {hi!r}")
            checks.append(f"coalesce(bool_or({cond}), FALSE)")
    return not checks or not any(cur.execute(f"SELECT {', '.join(checks)} FROM {fresh}").fetchone())


def _code_exprs(cur: Any, fresh: str, strings: tuple[str, ...], e: _Entry) -> tuple[list[str], list[Any]]:
    """Code columns for the fresh rows; values never seen get the next codes (in every table's list)."""
    exprs, params = [], []
    for c in strings:
        code_col, values = e.base.codes[c]
        new = [r[0] for r in cur.execute(f"SELECT DISTINCT {c} FROM {fresh} WHERE {c} IS NOT NULL "
                                         f"AND NOT list_contains(?::VARCHAR[], {c}) ORDER BY 1", [values]).fetchall()]
        for rc in e.tables():
            if rc.codes[c][1] is not values:
                rc.codes[c][1].extend(new)
        values.extend(new)
        exprs.append(f"CAST(list_position(?::VARCHAR[], {c}) - 1 AS INTEGER) AS {code_col}")
        params.append(list(values))
    return exprs, params
