"""The one module that knows the layout of the metrics tables: it packs the matching's arrays
(:mod:`slicewise.metrics.tally`) into the stored tables and holds every SQL statement that reads them back.

Stored per run (see :mod:`slicewise.metrics.schema` for the columns): ``match_spans`` (the match records,
each once for the conf indexes where it is the same; the view ``match_records`` lists them per conf index),
``metric_lines`` (the (row, feature) lines: counts, confidence stats and the overlap quality ``iou``, each
once for the conf indexes where they are the same; the view ``metric_rf`` lists them per conf index,
numbered ``rf_ord`` in (row, feature) order), ``metric_row_const`` (per row, what does not depend on t) and
``metric_classes`` (the confusion matrix's classes). Also here: the SQL over the cached per-(c, t) tables
(:func:`cache_table` writes them) whose columns ``row_metrics_table`` documents. A conf index's same-class
pairs (a TP at t when their IoU is above t) are the records with both sides of one class: read from
``match_spans`` and put on their lines by (row, feature) (:func:`summaries`).

Generations: every stored line carries the ``gen`` of the job that wrote it, and readers see only the run's
current one (``metric_jobs.records_gen``, :func:`gen_of`; the views ``match_records`` and ``metric_rf`` do the
same by a join). A full job writes a new generation in committed chunks, which readers ignore until one last
small transaction makes it current; the previous one is then dropped in chunks (:func:`drop_other_gens`).
One open transaction holding every line of a large job made DuckDB keep about as much memory again as the
data written, until the commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.metrics.tally import Matched

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

Rows = tuple[str, list[Any]] | None  # (sql selecting data_row_id, params) restricting a view, or None

_I16, _I32, _I64, _F64 = pa.int16(), pa.int32(), pa.int64(), pa.float64()


def _schema(*cols: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=null) for n, t, null in cols])


MATCH_SPANS = _schema(
    ("run_id", _I32, False), ("k_lo", _I16, False), ("k_hi", _I16, False), ("data_row_id", _I64, False),
    ("pred_id", _I64, True),
    ("gt_id", _I64, True), ("pred_class", _I32, True), ("true_class", _I32, True), ("pred_feature", _I32, True),
    ("true_feature", _I32, True), ("iou", _F64, True), ("confidence", _F64, True))
METRIC_LINES = _schema(
    ("run_id", _I32, False), ("k_lo", _I16, False), ("k_hi", _I16, False), ("data_row_id", _I64, False),
    ("feature_id", _I32, False), ("n_pred", _I32, False), ("n_gt", _I32, False), ("conf_min", _F64, True),
    ("conf_max", _F64, True), ("conf_sum", _F64, True), ("iou", _F64, True))
METRIC_ROW_CONST = _schema(
    ("run_id", _I32, False), ("conf_idx", _I16, False), ("data_row_id", _I64, False),
    *((c, _I32, False) for c in ("n_pred", "n_gt", "n_feat", "n_p", "n_r", "n_f")),
    *((c, _F64, True) for c in ("iou", "conf_min", "conf_max", "conf_mean")))
#: the tables a metrics job derives from the records, per run (metric_classes and the job's bookkeeping aside)
DERIVED = ("match_spans", "metric_lines", "metric_row_const")
CLASS_OFFSET = 1_000_000_000  # class ids of (feature, answer) classes; object classes are feature ids


def _pack(schema: pa.Schema, arrays: dict[str, np.ndarray], run_id: int, nulls: dict[str, np.ndarray] | None = None
          ) -> pa.Table:
    """Arrays (named as the columns) as an Arrow table of ``schema``; NaN is NULL in nullable doubles,
    ``nulls[column]`` marks the NULLs of the others."""
    n = len(next(iter(arrays.values())))
    cols = []
    for f in schema:
        v = np.full(n, run_id) if f.name == "run_id" else arrays[f.name]
        v = np.asarray(v).astype(f.type.to_pandas_dtype())
        mask = (nulls or {}).get(f.name)
        if mask is None and f.nullable and pa.types.is_floating(f.type):
            mask = np.isnan(v)
        cols.append(pa.array(v, type=f.type, mask=mask))
    return pa.Table.from_arrays(cols, schema=schema)


def pack(m: Matched, run_id: int) -> dict[str, pa.Table]:
    """The stored tables' lines of a batch."""
    r = m.records
    return {
        "match_spans": _pack(MATCH_SPANS, dataclasses.asdict(r), run_id, {
            "pred_id": ~r.has_pred, "pred_class": ~r.has_pred, "pred_feature": ~r.has_pred,
            "gt_id": ~r.has_gt, "true_class": ~r.has_gt, "true_feature": ~r.has_gt}),
        "metric_lines": _pack(METRIC_LINES, dataclasses.asdict(m.lines), run_id),
        "metric_row_const": _pack(METRIC_ROW_CONST, dataclasses.asdict(m.rows), run_id)}


def insert(ws: Workspace, tables: dict[str, pa.Table], gen: int) -> None:
    """Append a batch's tables (:func:`pack`) as lines of generation ``gen``."""
    for name, t in tables.items():
        ws.store.insert_arrow(name, t.append_column("gen", pa.array(np.full(t.num_rows, gen, np.int32))))


def gen_of(cur: Any, run_id: int) -> int:
    """The generation of a run's stored lines that readers see (0: the lines written before generations)."""
    row = cur.execute("SELECT records_gen FROM metric_jobs WHERE run_id = ?", [run_id]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def delete(con: Any, run_id: int, gen: int, rows_table: str | None = None) -> None:
    """Delete a run's derived lines of generation ``gen``: all of them, or those of the rows listed in the
    registered table ``rows_table``."""
    if rows_table is None:
        for t in DERIVED:
            con.execute(f"DELETE FROM {t} WHERE run_id = ? AND gen = ?", [run_id, gen])
        return
    assert rows_table.isidentifier()
    for t in DERIVED:
        con.execute(f"DELETE FROM {t} WHERE run_id = ? AND gen = ? AND data_row_id IN "
                    f"(SELECT data_row_id FROM {rows_table})", [run_id, gen])


#: the tables with lines per data row and generation
_ROW_TABLES = (*DERIVED, "metric_row_revs")


def drop_other_gens(ws: Workspace, run_id: int, keep: int, rows_per_step: int) -> None:
    """Delete every stored line of a run whose generation is not ``keep`` (the one readers see, so nothing
    they see changes), about ``rows_per_step`` data rows at a time, each step its own transaction (one
    transaction deleting them all would hold memory for every deleted line until its commit; up to
    ``rows_per_step`` rows in all: one transaction). The caller holds the writer (:meth:`Store.writer`)."""
    cur = ws.store.cursor()
    lo, hi, n = cur.execute("SELECT min(data_row_id), max(data_row_id), count(*) FROM metric_row_revs "  # type: ignore[misc]
                            "WHERE run_id = ? AND gen <> ?", [run_id, keep]).fetchone()
    if n > rows_per_step:  # (a few rows' lines go in the one last transaction below)
        steps = max(1, -(-int(n) // rows_per_step))
        edges = np.linspace(int(lo), int(hi) + 1, steps + 1).astype(np.int64)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            with ws.store.transaction() as con:
                for t in _ROW_TABLES:
                    con.execute(f"DELETE FROM {t} WHERE run_id = ? AND gen <> ? AND data_row_id >= ? AND data_row_id < ?",
                                [run_id, keep, int(a), int(b)])
    stray = cur.execute(" UNION ALL ".join(f"(SELECT 1 FROM {t} WHERE run_id = ? AND gen <> ? LIMIT 1)"
                                           for t in _ROW_TABLES), [run_id, keep] * len(_ROW_TABLES)).fetchall()
    if stray:
        with ws.store.transaction() as con:  # what the steps did not reach (lines of rows without revs; a few rows)
            delete_other_gens(con, run_id, keep)


def delete_other_gens(con: Any, run_id: int, keep: int) -> None:
    """Inside a transaction: delete every stored line of a run whose generation is not ``keep``."""
    for t in _ROW_TABLES:
        con.execute(f"DELETE FROM {t} WHERE run_id = ? AND gen <> ?", [run_id, keep])


# -- reading the summaries back ---------------------------------------------------------------------------
def _num(t: pa.Table, c: str, dtype: Any) -> np.ndarray:
    import pyarrow.compute as pc

    col = t.column(c)
    if col.null_count:
        col = pc.fill_null(col, np.nan)
    return col.to_numpy().astype(dtype, copy=False)


#: metric_row_const's columns, with the value of a row that has none (nothing labelled or kept at c)
ROW_CONST = {"n_pred": 0.0, "n_gt": 0.0, "n_feat": 0.0, "n_p": 0.0, "n_r": 0.0, "n_f": 0.0, "iou": np.nan,
             "conf_min": np.nan, "conf_max": np.nan, "conf_mean": np.nan}


@dataclass(frozen=True)
class Summaries:
    """The summaries of one conf index: lines in ``rf_ord`` order (their data row, prediction and label
    counts), same-class pairs (``pair_line``, ``pair_iou``), and the per-row constants of ``rows``
    (NULL as NaN)."""

    line_row: np.ndarray
    line_feature: np.ndarray
    n_pred: np.ndarray
    n_gt: np.ndarray
    pair_line: np.ndarray
    pair_iou: np.ndarray
    rows: np.ndarray
    row_const: dict[str, np.ndarray]


def _lines_at(cur: Any, columns: str, run_id: int, k: int, gen: int | None = None) -> pa.Table:
    """Some columns of the lines of a run at a conf index, in ``rf_ord`` order ((row, feature) order: the order
    a full job writes them in; sorted here when an incremental job appended some)."""
    t = cur.execute(f"SELECT data_row_id AS _r, feature_id AS _f, {columns} FROM metric_lines "
                    "WHERE run_id = ? AND gen = ? AND k_lo <= ? AND ? < k_hi",
                    [run_id, gen_of(cur, run_id) if gen is None else gen, k, k]).to_arrow_table()
    o = _rf_order(t.column("_r").to_numpy(), t.column("_f").to_numpy())
    if o is not None:
        t = t.take(pa.array(o))
    return t.drop_columns(["_r", "_f"])


def _rf_order(r: np.ndarray, f: np.ndarray) -> np.ndarray | None:
    """The order that sorts lines by (row, feature), or None when they are (the order a full job writes them
    in; an incremental job appends some)."""
    if len(r) > 1 and not np.all((r[1:] > r[:-1]) | ((r[1:] == r[:-1]) & (f[1:] > f[:-1]))):
        return np.lexsort((f, r))
    return None


def summaries(cur: Any, run_id: int, k: int, row_columns: Sequence[str] = tuple(ROW_CONST)) -> Summaries:
    return summaries_at(cur, run_id, [k], row_columns)[0]


def summaries_at(cur: Any, run_id: int, ks: Sequence[int], row_columns: Sequence[str] = tuple(ROW_CONST)
                 ) -> list[Summaries]:
    """:class:`Summaries` of several conf indexes from one read of each table (each span once), with the
    per-row constants ``row_columns``."""
    gen = gen_of(cur, run_id)  # (once: the reads are of one generation)
    lo, hi = min(ks), max(ks)
    rf = cur.execute("""SELECT k_lo, k_hi, data_row_id, feature_id, n_pred, n_gt FROM metric_lines
                        WHERE run_id = ? AND gen = ? AND k_lo <= ? AND ? < k_hi""", [run_id, gen, hi, lo]).fetchnumpy()
    # the same-class pairs: records with both sides of one class, on the line of the prediction's feature
    tp = cur.execute("""SELECT k_lo, k_hi, data_row_id, pred_feature, iou FROM match_spans
                        WHERE run_id = ? AND gen = ? AND k_lo <= ? AND ? < k_hi AND pred_class = true_class""",
                     [run_id, gen, hi, lo]).fetchnumpy()
    rc = cur.execute(f"SELECT conf_idx, data_row_id, {', '.join(row_columns)} FROM metric_row_const WHERE run_id = ? "
                     "AND gen = ? AND conf_idx BETWEEN ? AND ?", [run_id, gen, lo, hi]).fetchnumpy()

    def num(d: dict[str, Any], c: str, dtype: Any, sel: np.ndarray | slice) -> np.ndarray:
        v = d[c][sel]
        if isinstance(v, np.ma.MaskedArray):  # (DuckDB masks the NULLs of a column that has some: NULL is NaN)
            v = np.ma.filled(v.astype(np.float64), np.nan)
        return np.asarray(v, dtype)

    def at(mask: np.ndarray) -> np.ndarray | slice:  # (every line: no copy)
        return slice(None) if mask.all() else np.flatnonzero(mask)

    out = []
    for k in ks:
        sel = at((rf["k_lo"] <= k) & (k < rf["k_hi"]))
        r, f = num(rf, "data_row_id", np.int64, sel), num(rf, "feature_id", np.int64, sel)
        o = _rf_order(r, f)
        if o is not None:
            sel, r, f = (np.arange(len(r)) if isinstance(sel, slice) else sel)[o], r[o], f[o]
        ps = at((tp["k_lo"] <= k) & (k < tp["k_hi"]))
        rs = at(rc["conf_idx"] == k)
        out.append(Summaries(r, f, num(rf, "n_pred", np.float64, sel), num(rf, "n_gt", np.float64, sel),
                             _line_of(r, f, num(tp, "data_row_id", np.int64, ps), num(tp, "pred_feature", np.int64, ps)),
                             num(tp, "iou", np.float64, ps), num(rc, "data_row_id", np.int64, rs),
                             {c: num(rc, c, np.float64, rs) for c in row_columns}))
    return out


def row_const_at(cur: Any, run_id: int, k: int, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Some per-row constants of conf index k (NULL as NaN), with their rows' ``data_row_id``."""
    rc = cur.execute(f"SELECT data_row_id, {', '.join(columns)} FROM metric_row_const WHERE run_id = ? AND gen = ? "
                     "AND conf_idx = ?", [run_id, gen_of(cur, run_id), k]).to_arrow_table()
    return {"data_row_id": _num(rc, "data_row_id", np.int64), **{c: _num(rc, c, np.float64) for c in columns}}


def _line_of(line_row: np.ndarray, line_feature: np.ndarray, row: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """The position of each (row, feature) among lines in (row, feature) order (every one is there: a pair's
    prediction is kept at the conf index, so its line is present)."""
    m = int(max(line_feature.max(initial=0), feature.max(initial=0))) + 1
    return np.searchsorted(line_row * m + line_feature, row * m + feature)


def line_details(cur: Any, run_id: int, k: int) -> dict[str, np.ndarray]:
    """The per-line columns only the per-(row, feature) table needs, in ``rf_ord`` order."""
    t = _lines_at(cur, "data_row_id, feature_id, conf_min, conf_max, conf_sum, iou", run_id, k)
    return {"data_row_id": _num(t, "data_row_id", np.int64), "feature_id": _num(t, "feature_id", np.int32),
            **{c: _num(t, c, np.float64) for c in ("conf_min", "conf_max", "conf_sum", "iou")}}


def run_rows(cur: Any, run_id: int) -> np.ndarray:
    """The ids of a run's data rows, sorted."""
    r = cur.execute("SELECT data_row_id FROM run_rows WHERE run_id = ? ORDER BY data_row_id", [run_id]).fetchnumpy()
    return np.asarray(r["data_row_id"], np.int64)


# -- the match records ------------------------------------------------------------------------------------
def record_arrays(cur: Any, run_id: int) -> dict[str, np.ndarray]:
    """Every record of a run: conf_idx, has_pred, has_gt, pred_class / true_class (-1 when absent), iou (-1).
    (Read as spans and spread over their conf indexes here: a fifth of the rows to read.)"""
    rec = cur.execute("""SELECT k_lo, k_hi, pred_id IS NOT NULL AS hp, gt_id IS NOT NULL AS hg,
                                coalesce(pred_class, -1) AS pc, coalesce(true_class, -1) AS tc, coalesce(iou, -1.0) AS iou
                         FROM match_spans WHERE run_id = ? AND gen = ?""", [run_id, gen_of(cur, run_id)]).fetchnumpy()
    lo = np.asarray(rec["k_lo"], np.int64)
    n = np.asarray(rec["k_hi"], np.int64) - lo
    first = np.repeat(np.cumsum(n) - n, n)  # each record's span starts here among the spread records
    conf_idx = np.repeat(lo, n) + np.arange(int(n.sum())) - first

    def spread(c: str, dtype: Any) -> np.ndarray:
        return np.repeat(np.asarray(rec[c], dtype), n)

    return {"conf_idx": conf_idx, "has_pred": spread("hp", bool), "has_gt": spread("hg", bool),
            "pred_class": spread("pc", np.int64), "true_class": spread("tc", np.int64), "iou": spread("iou", np.float64)}


def rows_clause(rows: Rows, col: str = "data_row_id") -> tuple[str, list[Any]]:
    """`` AND col IN (rows)`` and its parameters ("" without ``rows``)."""
    if rows is None:
        return "", []
    sql, params = rows
    return f" AND {col} IN (SELECT data_row_id FROM ({sql}))", list(params)


# the objects of each confusion cell at (k, t): a matched pair counts in (true, pred), an unmatched kept
# prediction in (None, pred), an unmatched label in (true, None)
_CELLS_SQL = """
WITH r AS (SELECT * FROM match_spans WHERE run_id = ? AND gen = {gen} AND k_lo <= ? AND ? < k_hi {rows}),
cells AS (
  SELECT CASE WHEN gt_id IS NOT NULL AND iou > ? THEN true_class END AS tc, pred_class AS pc, data_row_id
  FROM r WHERE pred_id IS NOT NULL
  UNION ALL
  SELECT true_class, NULL, data_row_id FROM r WHERE gt_id IS NOT NULL AND (pred_id IS NULL OR NOT iou > ?))
"""


def confusion_cells(cur: Any, run_id: int, k: int, t: float, rows: Rows) -> list[tuple[int | None, int | None, int]]:
    """(true class, predicted class, count) of every non-empty cell (None: no class)."""
    clause, params = rows_clause(rows)
    return [(tc, pc, int(n)) for tc, pc, n in cur.execute(
        _CELLS_SQL.format(rows=clause, gen=gen_of(cur, run_id)) + "SELECT tc, pc, count(*) FROM cells GROUP BY ALL",
        [run_id, k, k, *params, t, t]).fetchall()]


def cell_rows_sql(run_id: int, k: int, t: float, tc: int | None, pc: int | None, rows: Rows) -> tuple[str, list[Any]]:
    """(sql, params) selecting the ``data_row_id`` of the rows with an object in cell (tc, pc)."""
    clause, params = rows_clause(rows)
    cond = ("tc IS NULL" if tc is None else "tc = ?") + " AND " + ("pc IS NULL" if pc is None else "pc = ?")
    # (run later, maybe after another job: the generation is looked up by the statement itself)
    gen = f"(SELECT records_gen FROM metric_jobs WHERE run_id = {int(run_id)})"
    sql = _CELLS_SQL.format(rows=clause, gen=gen) + f"SELECT DISTINCT data_row_id FROM cells WHERE {cond}"
    return sql, [run_id, k, k, *params, t, t] + [v for v in (tc, pc) if v is not None]


def pr_counts(cur: Any, run_id: int, feature_id: int | None, t: float, rows: Rows) -> dict[int, tuple[int, int, int]]:
    """Per conf index: (TP at t, kept predictions, labels), of one feature or all."""
    clause, params = rows_clause(rows)
    pf = "" if feature_id is None else " AND pred_feature = ?"
    tf = "" if feature_id is None else " AND true_feature = ?"
    fp_ = [] if feature_id is None else [feature_id]
    agg = cur.execute(f"""
        WITH r AS (SELECT * FROM match_records WHERE run_id = ? {clause})
        SELECT conf_idx,
          count(*) FILTER (WHERE pred_id IS NOT NULL {pf} AND gt_id IS NOT NULL AND iou > ? AND pred_class = true_class),
          count(*) FILTER (WHERE pred_id IS NOT NULL {pf}),
          count(*) FILTER (WHERE gt_id IS NOT NULL {tf})
        FROM r GROUP BY conf_idx ORDER BY conf_idx""", [run_id, *params, *fp_, t, *fp_, *fp_]).fetchall()
    return {int(k): (int(a), int(b), int(c)) for k, a, b, c in agg}


def scored_predictions(cur: Any, run_id: int, k: int, t: float, rows: Rows) -> dict[str, np.ndarray]:
    """The predictions kept at conf index k: ``pred_class``, ``confidence`` and ``correct`` (a TP at IoU t:
    matched with IoU above t to a label of its class)."""
    clause, params = rows_clause(rows)
    got = cur.execute(f"""
        SELECT pred_class, confidence, (gt_id IS NOT NULL AND iou > ? AND pred_class = true_class) AS ok
        FROM match_spans WHERE run_id = ? AND gen = ? AND k_lo <= ? AND ? < k_hi AND pred_id IS NOT NULL {clause}""",
                      [t, run_id, gen_of(cur, run_id), k, k, *params]).fetchnumpy()
    return {"pred_class": np.asarray(got["pred_class"], np.int64), "confidence": np.asarray(got["confidence"], np.float64),
            "correct": np.asarray(got["ok"], bool)}


def ranked_predictions(cur: Any, run_id: int, feature_id: int | None, t: float, rows: Rows
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, TP at t) of the predictions kept at the lowest grid confidence, by decreasing confidence."""
    clause, params = rows_clause(rows)
    pf = "" if feature_id is None else " AND pred_feature = ?"
    got = cur.execute(f"""
        WITH r AS (SELECT * FROM match_spans WHERE run_id = ? AND gen = ? AND k_lo = 0 {clause})
        SELECT confidence, (gt_id IS NOT NULL AND iou > ? AND pred_class = true_class) AS tp
        FROM r WHERE pred_id IS NOT NULL {pf} ORDER BY confidence DESC""",
                      [run_id, gen_of(cur, run_id), *params, t, *([] if feature_id is None else [feature_id])]).fetchnumpy()
    return np.asarray(got["confidence"], np.float64), np.asarray(got["tp"], bool)


def row_records(cur: Any, run_id: int, k: int, data_row_id: int) -> list[tuple[Any, ...]]:
    """(pred_id, gt_id, pred_class, true_class, iou) of one data row's records at conf index k."""
    return [tuple(r) for r in cur.execute("""SELECT pred_id, gt_id, pred_class, true_class, iou FROM match_spans
                                             WHERE run_id = ? AND gen = ? AND k_lo <= ? AND ? < k_hi
                                             AND data_row_id = ?""",
                                          [run_id, gen_of(cur, run_id), k, k, int(data_row_id)]).fetchall()]


def rows_records(cur: Any, run_id: int, k: int, data_row_ids: list[int]) -> list[tuple[Any, ...]]:
    """(pred_id, gt_id, pred_class, true_class, iou) of some data rows' records at conf index k."""
    return [tuple(r) for r in cur.execute("""SELECT pred_id, gt_id, pred_class, true_class, iou FROM match_spans
                                             WHERE run_id = ? AND gen = ? AND k_lo <= ? AND ? < k_hi
                                             AND list_contains(?, data_row_id)""",
                                          [run_id, gen_of(cur, run_id), k, k, [int(i) for i in data_row_ids]]).fetchall()]


def rows_prediction_confidences(cur: Any, run_id: int, data_row_ids: list[int]) -> list[tuple[int, float | None]]:
    """(prediction id, confidence) of a run's predictions on some data rows."""
    return [(int(i), None if c is None else float(c)) for i, c in cur.execute(
        "SELECT id, confidence FROM predictions WHERE run_id = ? AND list_contains(?, data_row_id)",
        [run_id, [int(i) for i in data_row_ids]]).fetchall()]


# -- the cached per-(c, t) tables (columns as row_metrics_table documents them) ---------------------------
def arrow(columns: dict[str, np.ndarray]) -> pa.Table:
    """Column arrays as an Arrow table, NaN as NULL in float columns."""
    return pa.table({c: (pa.array(v, mask=np.isnan(v)) if v.dtype == np.float64 else v) for c, v in columns.items()})


ROW_GROUP = 122_880  # DuckDB's row group: a table registered in batches of this size is scanned in parallel


def cache_table(cur: Any, name: str, columns: dict[str, np.ndarray]) -> None:
    """Create the table ``name`` (in the workspace's cache database) from column arrays."""
    t = arrow(columns)
    cur.register("_sw_cache_table", pa.Table.from_batches(t.to_batches(max_chunksize=ROW_GROUP), t.schema))
    try:
        cur.execute(f"CREATE TABLE {name} AS SELECT * FROM _sw_cache_table")
    finally:
        cur.unregister("_sw_cache_table")


def feature_totals(cur: Any, table: str, rows: Rows) -> list[tuple[Any, ...]]:
    """Per feature of a per-(row, feature) table (over ``rows``): (feature_id, name, kind, tp, fp, fn, mean iou,
    rows, predictions, annotations), by name."""
    clause, params = rows_clause(rows, "f.data_row_id")
    return [tuple(r) for r in cur.execute(f"""
        SELECT f.feature_id, ft.name, ft.kind, sum(tp), sum(fp), sum(fn), avg(iou), count(*),
               sum(n_predictions), sum(n_annotations)
        FROM {table} f JOIN features ft ON ft.id = f.feature_id WHERE TRUE {clause}
        GROUP BY ALL ORDER BY ft.name""", params).fetchall()]


def with_keys(cur: Any, table: str, per_feature: bool) -> pa.Table:
    """A per-row (or per-(row, feature)) table with the rows' global keys (and feature names) in front."""
    feat = ", f.name AS feature" if per_feature else ""
    join = " JOIN features f ON f.id = m.feature_id" if per_feature else ""
    return cur.execute(f"""SELECT d.global_key{feat}, m.* FROM {table} m
        JOIN data_rows d ON d.id = m.data_row_id{join} ORDER BY m.data_row_id""").to_arrow_table()


# -- classes ----------------------------------------------------------------------------------------------
def classes(cur: Any, run_id: int) -> list[tuple[int, str]]:
    """(class id, name) of a run's confusion classes, by feature then answer."""
    return [(int(c), str(n)) for c, n in cur.execute(
        "SELECT class_id, name FROM metric_classes WHERE run_id = ? ORDER BY feature_id, answer NULLS FIRST",
        [run_id]).fetchall()]


def class_features(cur: Any, run_id: int) -> list[int]:
    """The features that have a class in a run's confusion matrix, by id."""
    return [int(v[0]) for v in cur.execute(
        "SELECT DISTINCT feature_id FROM metric_classes WHERE run_id = ? ORDER BY 1", [run_id]).fetchall()]


class ClassBook:
    """Assigns confusion-matrix classes while a job runs: a feature's id for objects, a new id from
    ``CLASS_OFFSET`` per (feature, answer) of radio and checklist features; :meth:`flush` stores new ones."""

    def __init__(self, con: Any, run_id: int) -> None:
        self.con, self.run_id = con, run_id
        self.names = dict(con.execute("SELECT id, name FROM features").fetchall())
        self.known = {(f, a): c for c, f, a in con.execute(
            "SELECT class_id, feature_id, answer FROM metric_classes WHERE run_id = ?", [run_id]).fetchall()}
        self.next = max([c for c in self.known.values() if c >= CLASS_OFFSET], default=CLASS_OFFSET - 1) + 1
        self.new: list[tuple[int, int, int, str | None, str]] = []

    def __call__(self, o: Any) -> np.ndarray:
        out = o.feature.astype(np.int64).copy()
        for i in np.flatnonzero(np.isin(o.kind, ["radio", "checklist"])):
            out[i] = self._cls(int(o.feature[i]), o.answer[i])
        for f in np.unique(o.feature[~np.isin(o.kind, ["radio", "checklist"])]):
            self._cls(int(f), None)
        return out

    def _cls(self, f: int, a: str | None) -> int:
        c = self.known.get((f, a))
        if c is None:
            c = f if a is None else self.next
            if a is not None:
                self.next += 1
            self.known[(f, a)] = c
            name = self.names.get(f, str(f)) + (f": {a}" if a is not None else "")
            self.new.append((self.run_id, c, f, a, name))
        return c

    def flush(self) -> None:
        if self.new:
            self.con.executemany("INSERT INTO metric_classes VALUES (?, ?, ?, ?, ?)", self.new)
            self.new = []
