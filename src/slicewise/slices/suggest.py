"""Automatic slice discovery: the conjunctions of up to three predicates whose error is significantly above
the run's, proposed as "Suggested slices" that one click saves.

``discover(ws, run, metric="f1", min_support=0.01, max_predicates=3, alpha=0.05, top=20)`` searches
predicates over what every row of the run has:

- metadata: each value of an enum or string field; five quantile bins of a number or date-time field
  (edges rounded to three significant digits / to the second, so that the saved filter reads well and
  selects exactly the same rows);
- ``split``, ``dataset`` (when the run's rows have more than one), each tag (``tag:T``), each class
  labelled on the row (``has:F``) and COCO's object sizes (``area.min < 1024``: a small labelled object,
  ``area.max >= 9216``: a large one); values held by fewer rows than the minimum support are left out
  (at most :data:`MAX_VALUES` per field, the most frequent).

The error is ``1 - F1`` of the slice's rows (micro, from their TP / FP / FN at the run's thresholds), or
``1 - precision`` / ``1 - recall`` (``metric=``). The search, its test and the false-discovery control
(Benjamini-Hochberg over every slice evaluated; a conjunction must also beat each of its sub-slices)
are those of :mod:`slicewise.slices.lattice`. Each suggestion carries its filter in the query language
(``filter``), which :func:`slicewise.slices.create_slice` accepts as it is (:func:`save_suggestion`).

The result is computed once per (run, thresholds, parameters) and kept in the workspace's state until
the run's metrics, rows, labels, metadata, tags or splits change; ``wait=False`` answers None while it is
computed in a background thread (what the server does).
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel

from slicewise.errors import QueryError
from slicewise.query import Cond, Has, and_, to_text
from slicewise.slices.lattice import Field, mask_of, search

METRICS = {"f1": "1 - F1", "recall": "1 - recall", "precision": "1 - precision"}
MAX_VALUES = 50  # predicates per field at most (the most frequent values)
BINS = 5  # quantile bins of a number or date-time field
DEFAULT_MIN_SUPPORT = 0.01
MIN_ROWS = 10  # the least support, whatever the fraction
TOPICS_OF_RUN = ("metrics", "runs", "run_rows", "predictions")
TOPICS = ("labels", "metadata", "metadata_fields", "tags", "split", "rows", "features", "datasets")


class Suggestion(BaseModel):
    """One suggested slice."""

    filter: str  # the query-language filter that selects exactly its rows
    predicates: list[str]  # each predicate as text
    name: str  # a short name for saving it (3..30 characters)
    rows: int  # support: rows of the run in the slice
    support: float  # rows / rows of the run
    error: float  # the slice's error (1 - metric)
    error_rest: float  # the error of the run's other rows
    effect: float  # error - the run's error
    score: float  # excess errors: effect x the slice's error units (2TP+FP+FN for F1)
    ci_low: float  # 95% normal interval of the slice's error (row-clustered ratio variance)
    ci_high: float
    p_value: float  # one-sided, slice vs the rest of the run
    q_value: float  # Benjamini-Hochberg adjusted over every slice evaluated
    tp: int
    fp: int
    fn: int


class Discovery(BaseModel):
    """The suggestions for a run, with the search's parameters and effort."""

    run: str
    run_id: int
    confidence: float
    iou: float
    metric: str
    error_name: str  # e.g. "1 - F1"
    error: float  # the run's error
    rows: int
    min_support: int  # in rows
    max_predicates: int
    alpha: float
    predicates: int  # predicates searched (level 1)
    evaluated: int  # slices evaluated (hypotheses of the FDR control)
    expanded: int
    pruned: int
    seconds: float
    suggestions: list[Suggestion]


def _check(metric: str, min_support: float, max_predicates: int, alpha: float, top: int) -> None:
    if metric not in METRICS:
        from slicewise.query.fields import did_you_mean

        raise QueryError(f"unknown discovery metric {metric!r}", where="metric",
                         fix=did_you_mean(metric, list(METRICS)) or f"use one of {', '.join(METRICS)}")
    if isinstance(min_support, bool) or not isinstance(min_support, int | float) or not min_support > 0 \
            or not math.isfinite(min_support) or (min_support > 1 and not float(min_support).is_integer()):
        raise QueryError(f"min_support {min_support!r} is neither a fraction in (0, 1] nor a whole number of rows",
                         where="min_support", fix="give e.g. 0.01 (1% of the rows) or 50 (rows)")
    if isinstance(max_predicates, bool) or not isinstance(max_predicates, int) or not 1 <= max_predicates <= 3:
        raise QueryError(f"max_predicates {max_predicates!r} is not 1, 2 or 3", where="max_predicates",
                         fix="give 1 to 3")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise QueryError(f"alpha {alpha!r} is not in (0, 1)", where="alpha", fix="give e.g. 0.05")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 200:
        raise QueryError(f"top {top!r} is not between 1 and 200", where="top", fix="give e.g. 20")


def discover(ws: Any, run: Any, *, metric: str = "f1", min_support: float = DEFAULT_MIN_SUPPORT,
             max_predicates: int = 3, alpha: float = 0.05, top: int = 20, confidence: float | None = None,
             iou: float | None = None, wait: bool = True) -> Discovery | None:
    """The run's suggested slices (see the module docstring). ``min_support``: a fraction of the run's
    rows (<= 1) or a number of rows (at least 10 either way). ``wait=False``: the kept result, else None
    while it is computed in the background (a failure is raised on the next call)."""
    from slicewise.query import thresholds
    from slicewise.query.search import fresh_run

    _check(metric, min_support, max_predicates, alpha, top)
    r = fresh_run(ws, run)
    c, t = thresholds(ws, r, confidence, iou)
    name = ("discover", r.id, c, t, metric, float(min_support), max_predicates, float(alpha), top)
    topics = [f"{x}:{r.id}" for x in TOPICS_OF_RUN] + list(TOPICS)

    def compute() -> Discovery:
        return _discover(ws, r, c, t, metric, min_support, max_predicates, alpha, top)

    if wait:
        return ws.state.memo(name, topics, compute)  # type: ignore[no-any-return]
    have, value = ws.state.remembered(name, topics)
    if have:
        return value  # type: ignore[no-any-return]
    failed = ws.state.entry(("discover-failed", name))
    if failed is not None and failed[0] == ws.state.version(topics):
        ws.state.set_entry(("discover-failed", name), None)
        raise failed[1]
    lock = ws.state.key_lock(("discover-job", name))
    if lock.acquire(blocking=False):
        version = ws.state.version(topics)

        def work() -> None:
            try:
                ws.state.memo(name, topics, compute)
            except Exception as exc:  # noqa: BLE001 - kept and raised to the next caller
                ws.state.set_entry(("discover-failed", name), (version, exc))
            finally:
                lock.release()

        threading.Thread(target=work, name=f"discover-{r.id}", daemon=True).start()
    return None


# -- loading the run's rows ------------------------------------------------------------------------
def _frame(ws: Any, r: Any, c: float, t: float) -> tuple[Any, dict[str, str], Any]:
    """(Arrow table of the run's rows: id, dataset_id, split, tags, gt_feats, md_* and tp, fp, fn;
    metadata field -> column; the catalog)."""
    from slicewise.query.search import compiler_for

    comp = compiler_for(ws, r, c, t)
    names = sorted(comp.catalog.metadata)
    if comp.ensure_metrics():
        rc = comp.cache()
        source, params, md = rc.table, list[Any](), dict(rc.metadata)
    else:  # caches off (or inside a transaction): the same columns straight from the store
        from slicewise.query.rowcache import _rows_sql

        base, params, md, _ = _rows_sql(ws, r.id, tuple(names))
        mt = comp.metric_table("discovery", None, False)
        source = f"(SELECT b.*, m.tp, m.fp, m.fn FROM ({base}) b LEFT JOIN {mt} m ON m.data_row_id = b.id)"
    cols = ", ".join(["id", "dataset_id", "split", "tags", "gt_feats", *md.values(),
                      "coalesce(tp, 0) AS tp", "coalesce(fp, 0) AS fp", "coalesce(fn, 0) AS fn"])
    table = ws.store.cursor().execute(f"SELECT {cols} FROM {source} ORDER BY id", params).arrow()
    if not hasattr(table, "column"):  # (duckdb >= 1.4 may give a RecordBatchReader)
        table = table.read_all()
    return table, md, comp.catalog


def _errors(table: Any, metric: str) -> tuple[np.ndarray, np.ndarray]:
    tp, fp, fn = (table.column(x).to_numpy().astype(np.float64) for x in ("tp", "fp", "fn"))
    if metric == "recall":
        return fn, tp + fn
    if metric == "precision":
        return fp, tp + fp
    return fp + fn, 2 * tp + fp + fn


class _Pred:
    __slots__ = ("node", "short")

    def __init__(self, node: Any, short: str) -> None:
        self.node, self.short = node, short


def _num(v: float) -> float:
    """``v`` to three significant digits (an edge that prints and parses back exactly)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.3g}")


def _categorical(name: str, values: Any, min_rows: int, make: Any) -> tuple[Field, list[_Pred]] | None:
    """A field over the distinct values of a column (nulls: no predicate)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    enc = pc.dictionary_encode(values).combine_chunks()
    idx = enc.indices.to_numpy(zero_copy_only=False)
    idx = np.where(np.asarray(enc.indices.is_valid()), np.nan_to_num(idx, nan=-1), -1).astype(np.int64)
    labels = enc.dictionary.to_pylist()
    if len(labels) < 2 and (idx < 0).sum() == 0:
        return None  # one value on every row: nothing to compare
    counts = np.bincount(idx[idx >= 0], minlength=len(labels))
    keep = [int(i) for i in np.argsort(-counts, kind="stable")[:MAX_VALUES] if counts[i] >= min_rows]
    if not keep:
        return None
    remap = np.full(len(labels) + 1, -1, dtype=np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    codes = remap[np.where(idx >= 0, idx, len(labels))]
    preds = [make(labels[i]) for i in keep]
    return Field(name, codes, tuple(p.short for p in preds)), preds


def _binned(name: str, field: str, values: np.ndarray, valid: np.ndarray, kind: str, min_rows: int
            ) -> tuple[Field, list[_Pred]] | None:
    """A field of quantile bins of a number (float64) or date-time (int64 microseconds) column."""
    v = values[valid]
    if len(v) < min_rows or v.min() == v.max():
        return None
    qs = np.quantile(v.astype(np.float64), np.linspace(0, 1, BINS + 1)[1:-1])
    edges: list[Any] = sorted({int(round(q / 1e6)) * 1_000_000 for q in qs}) if kind == "datetime" \
        else sorted({_num(float(q)) for q in qs})
    edges = [e for e in edges if v.min() < e <= v.max()]
    if not edges:
        return None
    codes = np.full(len(values), -1, dtype=np.int32)
    codes[valid] = np.searchsorted(np.asarray(edges, dtype=values.dtype), v, side="right").astype(np.int32)

    def lit(e: Any) -> Any:
        if kind == "datetime":
            return (datetime(1970, 1, 1) + timedelta(microseconds=int(e))).isoformat()
        return e

    def short(e: Any) -> str:
        return lit(e)[:16].replace("T", " ") if kind == "datetime" else f"{e:g}"

    preds = []
    bounds = [None, *edges, None]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        parts = ([Cond(field=field, op=">=", value=lit(lo))] if lo is not None else []) + \
                ([Cond(field=field, op="<", value=lit(hi))] if hi is not None else [])
        label = (f"{short(lo)} ≤ " if lo is not None else "") + name + (f" < {short(hi)}" if hi is not None else "")
        preds.append(_Pred(and_(*parts), label))
    return Field(name, codes, tuple(p.short for p in preds)), preds


def _multi(name: str, lists: Any, min_rows: int, make: Any, names: dict[Any, str] | None = None
           ) -> list[tuple[Field, list[_Pred]]]:
    """One binary field per value of a list column held by enough rows (tags, classes labelled)."""
    import pyarrow.compute as pc

    flat = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    if not len(flat):
        return []
    vals, inv = np.unique(flat, return_inverse=True)
    counts = np.bincount(inv, minlength=len(vals))
    out = []
    m = len(lists)
    for i in np.argsort(-counts, kind="stable")[:MAX_VALUES]:
        if counts[i] < min_rows or counts[i] == m:
            continue
        codes = np.full(m, -1, dtype=np.int32)
        codes[parent[inv == i]] = 0
        v = vals[i].item() if hasattr(vals[i], "item") else vals[i]
        label = names.get(v, str(v)) if names is not None else str(v)
        p = make(label)
        out.append((Field(f"{name}:{label}", codes, (p.short,)), [p]))
    return out


def predicates(ws: Any, run_id: int, table: Any, md: dict[str, str], catalog: Any, min_rows: int
               ) -> tuple[list[Field], list[list[_Pred]]]:
    """The fields (mutually exclusive predicates) searched, and each predicate's filter node."""
    import pyarrow.compute as pc

    out: list[tuple[Field, list[_Pred]]] = []

    def add(got: Any) -> None:
        if got is not None:
            out.append(got)

    for fname, col in sorted(md.items()):
        kind = catalog.metadata.get(fname, ("string", None))[0]
        field = f"metadata.{fname}"
        arr = table.column(col)
        if kind in ("string", "enum"):
            add(_categorical(fname, arr, min_rows,
                             lambda v, f=field, n=fname: _Pred(Cond(field=f, op="=", value=str(v)), f"{n} = {v}")))
        elif kind == "number":
            vals = arr.to_numpy(zero_copy_only=False).astype(np.float64)
            add(_binned(fname, field, vals, np.isfinite(vals), "number", min_rows))
        elif kind == "datetime":
            valid = np.asarray(arr.is_valid())
            vals = pc.cast(pc.fill_null(arr, datetime(1970, 1, 1)), "timestamp[us]").cast("int64").to_numpy()
            add(_binned(fname, field, vals.astype(np.int64), valid, "datetime", min_rows))
    add(_categorical("split", table.column("split"), min_rows,
                     lambda v: _Pred(Cond(field="split", op="=", value=str(v)), f"split = {v}")))
    ds_names = {d.id: d.name for d in ws.datasets()}
    ds = pc.cast(table.column("dataset_id"), "int64").to_numpy(zero_copy_only=False)
    import pyarrow as pa

    add(_categorical("dataset", pa.array([ds_names.get(int(i), str(i)) for i in np.unique(ds)])
                     .take(pa.array(np.searchsorted(np.unique(ds), ds))), min_rows,
                     lambda v: _Pred(Cond(field="dataset", op="=", value=str(v)), f"dataset = {v}")))
    out += _multi("tag", table.column("tags"), min_rows, lambda v: _Pred(Has(what="tag", name=v), f"tag:{v}"))
    out += _sizes(ws, run_id, table, min_rows)
    feats = {v: k for k, v in catalog.features.items()}
    out += _multi("class", table.column("gt_feats"), min_rows,
                  lambda v: _Pred(Has(what="annotation", name=v), f"has:{v}"), feats)
    return [f for f, _ in out], [p for _, p in out]


#: COCO's object sizes: small below 32^2 pixels, large from 96^2
SMALL, LARGE = 32 * 32, 96 * 96


def _sizes(ws: Any, run_id: int, table: Any, min_rows: int) -> list[tuple[Field, list[_Pred]]]:
    """Object-size predicates: the row has a small labelled object (``area.min < 1024``), a large one
    (``area.max >= 9216``); an object's area is its stored area (masks, polygons), else its box's."""
    ids = table.column("id").to_numpy()
    cur = ws.store.cursor()
    if not cur.execute("SELECT EXISTS (SELECT 1 FROM annotations WHERE coalesce(area, w * h) IS NOT NULL)").fetchone()[0]:
        return []  # (no spatial labels: classifications, text)
    got = cur.execute(
        "SELECT data_row_id, min(coalesce(area, w * h)) AS lo, max(coalesce(area, w * h)) AS hi FROM annotations "
        "WHERE coalesce(area, w * h) IS NOT NULL AND data_row_id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?) "
        "GROUP BY data_row_id", [run_id]).fetchnumpy()
    rows = np.asarray(got["data_row_id"], dtype=np.int64)
    if not len(rows):
        return []
    at = np.searchsorted(ids, rows)
    out = []
    for field, vals, hit, short in (("area.min", got["lo"], lambda v: v < SMALL, "small objects"),
                                    ("area.max", got["hi"], lambda v: v >= LARGE, "large objects")):
        v = np.asarray(vals, dtype=np.float64)
        codes = np.full(len(ids), -1, dtype=np.int32)
        codes[at[hit(v)]] = 0
        n = int((codes == 0).sum())
        if n < min_rows or n == len(ids):
            continue
        node = Cond(field=field, op="<", value=SMALL) if field == "area.min" else Cond(field=field, op=">=", value=LARGE)
        out.append((Field(short, codes, (short,)), [_Pred(node, short)]))
    return out


def _discover(ws: Any, r: Any, c: float, t: float, metric: str, min_support: float, max_predicates: int,
              alpha: float, top: int) -> Discovery:
    t0 = time.perf_counter()
    table, md, catalog = _frame(ws, r, c, t)
    m = table.num_rows
    min_rows = max(MIN_ROWS, math.ceil(min_support * m) if min_support <= 1 else int(min_support))
    e, n = _errors(table, metric)
    fields, preds = predicates(ws, r.id, table, md, catalog, min_rows)
    res = search(fields, e, n, min_support=min_rows, max_predicates=max_predicates, alpha=alpha, top=top)
    tp, fp, fn = (table.column(x).to_numpy().astype(np.int64) for x in ("tp", "fp", "fn"))
    out = []
    for f in res.found:
        ps = [preds[fi][v] for fi, v in f.preds]
        mask = mask_of(fields, f.preds, m)
        out.append(Suggestion(
            filter=to_text(and_(*[p.node for p in ps])), predicates=[to_text(p.node) for p in ps],
            name=_short_name([p.short for p in ps]), rows=f.rows, support=f.rows / m if m else 0.0,
            error=f.error, error_rest=f.error_rest, effect=f.effect, score=f.score, ci_low=f.ci[0],
            ci_high=f.ci[1], p_value=f.p_value, q_value=f.q_value, tp=int(tp[mask].sum()), fp=int(fp[mask].sum()),
            fn=int(fn[mask].sum())))
    return Discovery(run=r.ref, run_id=r.id, confidence=c, iou=t, metric=metric, error_name=METRICS[metric],
                     error=res.error, rows=m, min_support=min_rows, max_predicates=max_predicates, alpha=alpha,
                     predicates=sum(len(f.labels) for f in fields), evaluated=res.evaluated, expanded=res.expanded,
                     pruned=res.pruned, seconds=time.perf_counter() - t0, suggestions=out)


def _short_name(parts: list[str]) -> str:
    """A slice name (3..30 characters) from the predicates' short labels: their values where they say enough."""
    words = []
    for p in parts:
        _, sep, value = p.partition(" = ")
        words.append(value if sep else p)
    name = " & ".join(words).strip()
    if len(name) > 30:
        name = name[:29].rstrip() + "…"
    return name if len(name) >= 3 else (name + " slice")[:30]


def suggestion_rows(ws: Any, run: Any, suggestion: Suggestion, confidence: float | None = None,
                    iou: float | None = None) -> list[int]:
    """The data row ids the suggestion's filter selects in the run (what a saved slice will hold)."""
    from slicewise.view import View

    _, ids, _ = View(run=run, filter=suggestion.filter, confidence=confidence, iou=iou).resolve(ws).ids(10**9)
    return ids


def save_suggestion(ws: Any, suggestion: Suggestion, name: str | None = None, *, run: Any = None) -> Any:
    """Save a suggestion as a user slice (its filter as it is; a description with its effect and support)."""
    from slicewise.slices.store import create_slice

    desc = (f"suggested by slice discovery{' on ' + str(getattr(run, 'ref', run)) if run is not None else ''}: "
            f"error {suggestion.error:.3f} vs {suggestion.error_rest:.3f} on the other rows, {suggestion.rows} rows "
            f"(q = {suggestion.q_value:.2g})")
    return create_slice(ws, name or suggestion.name, suggestion.filter, description=desc)
