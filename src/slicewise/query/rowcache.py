"""The row cache: one wide table per (workspace generation, run[, confidence, IoU]) that makes queries fast.

A filter over the store touches many tables (data rows, metadata in long form, predictions to
aggregate, the metrics engine's tables); at a million rows each semi-join costs tens of milliseconds.
So the first query after a write builds, in an in-memory database attached to the workspace's DuckDB
instance, one table with a row per data row of the run and a column per row-level field:

  id, global_key, dataset_id, split, media_type, created_at, n_gt, n_pred, conf_min, conf_max,
  conf_mean, gt_feats / pred_feats (the feature ids labelled / predicted), tags, md_0 ... md_k (one per
  metadata field, typed), and with metrics at (c, t): tp, fp, fn, tn, precision, recall, f1, iou

and every later query is column predicates over it. The cache key holds the store's write generation
(:attr:`slicewise.store.Store.generation`, bumped on every commit), so any write makes the next query
rebuild it: membership stays exact. Inside a write transaction, and on a workspace opened read-only
(DuckDB cannot attach an in-memory database there), queries read the store's tables directly.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from slicewise.query.fields import METRICS

CACHE_DB = "sw_query_cache"
MAX_TABLES = 4
_LOCK = threading.Lock()
_TABLES: OrderedDict[tuple[Any, ...], RowCache] = OrderedDict()
_COUNTER = itertools.count(1)
ENABLED = True  # tests switch it off to check that both paths agree


@dataclass
class RowCache:
    table: str  # quoted, database-qualified
    metadata: dict[str, str] = field(default_factory=dict)  # metadata field -> column
    metrics: bool = False
    #: facet histograms: field -> (bin column, low, high, number of bins); the bins are precomputed over
    #: the run's whole range (so a histogram's axis stays put while the filter changes)
    bins: dict[str, tuple[str, float, float, int]] = field(default_factory=dict)
    #: string column -> (code column, its values in code order); codes count facets fast
    codes: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)


BINS = 10


def _with_bins(cur: Any, src: str, cols: dict[str, str], fixed: set[str], start: int,
               strings: tuple[str, ...] = ()) -> tuple[str, dict[str, tuple[str, float, float, int]]]:
    """Copy ``src`` into a new table with a UTINYINT bin column per numeric column (and a dense integer
    code ``<col>_code`` per string column of ``strings``); drop ``src``."""
    stats = cur.execute("SELECT " + ", ".join(f"min({c}), max({c}), bool_and({c} = floor({c}))" for c in cols.values())
                        + f" FROM {src}").fetchone() if cols else ()
    spec: dict[str, tuple[str, float, float, int]] = {}
    exprs = []
    for i, (name, col) in enumerate(cols.items()):
        lo, hi, ints = stats[3 * i: 3 * i + 3]
        if name in fixed:
            lo, hi, nb = 0.0, 1.0, BINS
        elif lo is None:
            continue
        elif ints and hi - lo + 1 <= 20:
            lo, hi, nb = float(lo), float(hi) + 1, int(hi - lo + 1)
        else:
            lo, hi, nb = float(lo), float(hi), BINS
        b = f"b_{start + i}"
        spec[name] = (b, lo, hi, nb)
        if hi <= lo:
            e = f"CASE WHEN {col} IS NOT NULL THEN 0 END"
        else:  # float(...) literals come from the data's own range, never from the user
            e = (f"CASE WHEN {col} IS NULL OR NOT isfinite({col}) THEN NULL WHEN {col} >= {hi!r} THEN {nb - 1} "
                 f"WHEN {col} <= {lo!r} THEN 0 ELSE floor(({col} - {lo!r}) / {hi - lo!r} * {nb}) END")
        exprs.append(f"CAST({e} AS UTINYINT) AS {b}")  # (least/greatest would turn NULL into a bin)
    for c in strings:
        exprs.append(f"CAST(CASE WHEN {c} IS NOT NULL THEN dense_rank() OVER (ORDER BY {c}) - 1 END AS INTEGER) "
                     f"AS {c}_code")
    full = f'"{CACHE_DB}"."rows_{next(_COUNTER)}"'
    cur.execute(f"CREATE TABLE {full} AS SELECT *{''.join(', ' + e for e in exprs)} FROM {src} ORDER BY id")
    cur.execute(f"DROP TABLE {src}")
    return full, spec


def _cursor(ws: Any) -> Any:
    cur = ws.store.cursor()
    cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {CACHE_DB}")
    return cur


_MEMO: dict[tuple[Any, ...], Any] = {}


def memo(ws: Any, what: tuple[Any, ...], fn: Any) -> Any:
    """``fn()`` remembered until the next write to the workspace (not inside a write transaction):
    the catalog, runs and metrics tables of a view are read once per generation, not once per query."""
    store = ws.store
    if store.in_transaction or not ENABLED:
        return fn()
    key = (store._key, store.generation) + what
    if key in _MEMO:
        return _MEMO[key]
    value = fn()
    if len(_MEMO) > 256:
        _MEMO.clear()
    _MEMO[key] = value
    return value


def lookup(ws: Any, run_id: int | None, metadata_fields: list[str], ct: tuple[float, float]) -> RowCache | None:
    """The metrics variant of the cache at ``ct`` if it was built in this generation."""
    store = ws.store
    if store.in_transaction or not ENABLED:
        return None
    return _TABLES.get((store._key, store.generation, run_id, tuple(metadata_fields), ct))


def get(ws: Any, run_id: int | None, metadata_fields: list[str], metric_table: str | None = None,
        ct: tuple[float, float] | None = None) -> RowCache | None:
    """The cache table for the run (with the metrics of ``metric_table`` at ``ct`` when given), built on
    first use; None inside a write transaction or when disabled."""
    store = ws.store
    if not ENABLED or store.in_transaction or store.read_only:  # read-only DuckDB cannot attach memory
        return None
    base_key = (store._key, store.generation, run_id, tuple(metadata_fields), None)
    with _LOCK:
        base = _TABLES.get(base_key)
        if base is None:
            base = _TABLES[base_key] = _build(ws, run_id, metadata_fields)
            _evict(ws, base_key)
        _TABLES.move_to_end(base_key)
        if metric_table is None:
            return base
        key = base_key[:-1] + (ct,)
        rc = _TABLES.get(key)
        if rc is None:
            rc = _TABLES[key] = _with_metrics(ws, base, metric_table)
            _evict(ws, key)
        _TABLES.move_to_end(key)
        return rc


def _with_metrics(ws: Any, base: RowCache, metric_table: str) -> RowCache:  # noqa: D401
    cur = _cursor(ws)
    full = f'"{CACHE_DB}"."rows_{next(_COUNTER)}"'
    cols = ", ".join(f'm."{c}"' for c in METRICS)
    cur.execute(f"CREATE TABLE {full} AS SELECT b.*, {cols} FROM {base.table} b "
                f"LEFT JOIN {metric_table} m ON m.data_row_id = b.id ORDER BY b.id")
    table, spec = _with_bins(cur, full, {m: f'"{m}"' for m in METRICS}, {"precision", "recall", "f1", "iou"}, 100)
    return RowCache(table, dict(base.metadata), metrics=True, bins={**base.bins, **spec}, codes=dict(base.codes))


def _build(ws: Any, run_id: int | None, metadata_fields: list[str]) -> RowCache:
    cur = _cursor(ws)
    full = f'"{CACHE_DB}"."rows_{next(_COUNTER)}"'
    kinds = dict(cur.execute("SELECT name, kind FROM metadata_fields").fetchall())
    md_cols: dict[str, str] = {}
    md_sel, md_params = [], []
    for i, f in enumerate(metadata_fields):
        col = {"number": "value_number", "datetime": "value_datetime"}.get(kinds.get(f, "string"), "value_string")
        md_cols[f] = f"md_{i}"
        md_sel.append(f"max({col}) FILTER (WHERE field = ?) AS md_{i}")
        md_params.append(f)
    run_cond, run_params = ("WHERE id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?)", [run_id]) \
        if run_id is not None else ("", [])
    md_cte = (f"md AS (SELECT data_row_id, {', '.join(md_sel)} FROM row_metadata GROUP BY data_row_id),"
              if md_sel else "md AS (SELECT NULL::BIGINT AS data_row_id WHERE FALSE),")
    pred_cond, pred_params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("WHERE FALSE", [])
    md_out = "".join(f", md.md_{i}" for i in range(len(metadata_fields)))
    cur.execute(f"""
        CREATE TABLE {full} AS
        WITH rw AS (SELECT id, global_key, dataset_id, split, media_type, created_at FROM data_rows {run_cond}),
        {md_cte}
        gt AS (SELECT data_row_id, count(*) AS n, list(DISTINCT feature_id ORDER BY feature_id) AS feats
               FROM annotations GROUP BY data_row_id),
        pr AS (SELECT data_row_id, count(*) AS n, min(confidence) AS cmin, max(confidence) AS cmax,
                      avg(confidence) AS cmean, list(DISTINCT feature_id ORDER BY feature_id) AS feats
               FROM predictions {pred_cond} GROUP BY data_row_id),
        tg AS (SELECT data_row_id, list(DISTINCT tag ORDER BY tag) AS tags FROM tags GROUP BY data_row_id)
        SELECT rw.*, coalesce(gt.n, 0) AS n_gt, coalesce(pr.n, 0) AS n_pred, pr.cmin AS conf_min,
               pr.cmax AS conf_max, pr.cmean AS conf_mean, coalesce(gt.feats, []::INTEGER[]) AS gt_feats,
               coalesce(pr.feats, []::INTEGER[]) AS pred_feats, coalesce(tg.tags, []::VARCHAR[]) AS tags{md_out}
        FROM rw LEFT JOIN md ON md.data_row_id = rw.id LEFT JOIN gt ON gt.data_row_id = rw.id
        LEFT JOIN pr ON pr.data_row_id = rw.id LEFT JOIN tg ON tg.data_row_id = rw.id ORDER BY rw.id""",
                run_params + md_params + pred_params)
    numeric = {f"metadata.{f}": md_cols[f] for f in metadata_fields if kinds.get(f) == "number"}
    numeric["annotation.count"] = "n_gt"
    if run_id is not None:
        numeric |= {"confidence.min": "conf_min", "confidence.max": "conf_max", "confidence.mean": "conf_mean",
                    "prediction.count": "n_pred"}
    strings = ("split", "media_type") + tuple(md_cols[f] for f in metadata_fields
                                              if kinds.get(f, "string") in ("string", "enum"))
    table, spec = _with_bins(cur, full, numeric, {"confidence.min", "confidence.max", "confidence.mean"}, 0, strings)
    codes = {}
    for c in strings:
        vals = [r[0] for r in cur.execute(f"SELECT DISTINCT {c} FROM {table} WHERE {c} IS NOT NULL ORDER BY 1").fetchall()]
        codes[c] = (f"{c}_code", vals)
    return RowCache(table, md_cols, bins=spec, codes=codes)


def _evict(ws: Any, keep: tuple[Any, ...]) -> None:
    """Drop tables of older generations of this workspace, and the least recently used beyond MAX_TABLES."""
    cur = _cursor(ws)
    stale = [k for k in _TABLES if k[0] == keep[0] and k[1] != keep[1]]
    live = [k for k in _TABLES if k not in stale and k[:-1] != keep[:-1]]  # LRU first
    while len(_TABLES) - len(stale) > MAX_TABLES and live:
        stale.append(live.pop(0))
    for k in stale:
        rc = _TABLES.pop(k)
        if k[0] == keep[0]:  # another workspace's tables live in its own DuckDB instance
            cur.execute(f"DROP TABLE IF EXISTS {rc.table}")


def clear() -> None:
    """Forget every cached table (they are dropped with their DuckDB instance, or on the next eviction)."""
    with _LOCK:
        _TABLES.clear()
