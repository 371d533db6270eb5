"""Run a query: the matching data rows of a run, sorted and paged, with the total count.

>>> import tempfile, os, slicewise
>>> from slicewise.query import search
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "metadata": {"n": i}} for i in range(5)])
>>> page = search(ws, None, "metadata.n >= 2", sort="-metadata.n", limit=2)
>>> page.total, [r.global_key for r in page.rows], [r.sort_value for r in page.rows]
(3, ['k4', 'k3'], [4.0, 3.0])
>>> [r.global_key for r in search(ws, None, "metadata.n >= 2", sort="-metadata.n", cursor=page.next_cursor).rows]
['k2']
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from slicewise.errors import LimitError, QueryError
from slicewise.query.ast import And, Cond, Query, Similar, Sort
from slicewise.query.compiler import Compiler, as_filter

MAX_LIMIT = 10_000


class PageRow(BaseModel):
    data_row_id: int
    global_key: str
    sort_value: Any = None  # the first sort key's value (None without a sort)
    sort_values: list[Any] = []
    similarity: float | None = None  # the row's similarity score when the query has a similarity search


class Page(BaseModel):
    total: int
    rows: list[PageRow]
    limit: int
    offset: int
    next_cursor: str | None = None  # pass back as ``cursor=`` for the next page (fast at any depth)
    confidence: float | None = None
    iou: float | None = None


def fresh_run(ws: Any, run: Any) -> Any:
    """The run as stored now (a ModelRun object held by a caller may predate a config change)."""
    return ws.run(getattr(run, "id", run))


def run_id_of(ws: Any, run: Any) -> int | None:
    if run is None:
        return None
    return int(fresh_run(ws, run).id)


def thresholds(ws: Any, run: Any, confidence: float | None = None, iou: float | None = None) -> tuple[float, float]:
    """The (confidence, IoU) pair a view uses: the given values, else the run's chosen ones (config keys
    ``view_confidence`` / ``view_iou``), else the values of the run's grids nearest 0.5."""
    c, t = confidence, iou
    if run is not None and (c is None or t is None):
        # re-read the run: a ModelRun object held by the caller may predate a config change
        cfg: dict[str, Any] = fresh_run(ws, run).config
        c = c if c is not None else cfg.get("view_confidence")
        t = t if t is not None else cfg.get("view_iou")
    if c is None or t is None:
        grid_c, grid_t = _grids(ws, run)
        c = c if c is not None else min(grid_c, key=lambda v: (abs(v - 0.5), v))
        t = t if t is not None else min(grid_t, key=lambda v: (abs(v - 0.5), v))
    for name, v in (("confidence", c), ("iou", t)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise QueryError(f"{name} threshold {v!r} is not a number in [0, 1]", where=name, fix="give e.g. 0.5")
    return float(c), float(t)


def _grids(ws: Any, run: Any) -> tuple[list[float], list[float]]:
    return ws.state.memo(("grids", getattr(run, "id", run)), ["runs"], lambda: _grids_now(ws, run))  # type: ignore[no-any-return]


def _grids_now(ws: Any, run: Any) -> tuple[list[float], list[float]]:
    if run is not None:
        try:
            from slicewise import metrics

            gc, gt = metrics.grids(ws, run)
            if gc and gt:
                return list(gc), list(gt)
        except Exception:  # noqa: BLE001 - no metrics engine / no grids yet: fall back to 0.5
            pass
    return [0.5], [0.5]


def as_query(query: Any = None, sort: Any = None) -> Query:
    """A :class:`Query` from a Query, a filter (node, dict or text) and/or sort keys (list or text)."""
    from slicewise.query.text import parse_sort

    if isinstance(query, Query):
        q = query
    elif isinstance(query, dict) and set(query) <= {"filter", "sort", "similar"} and query:
        try:
            q = Query.model_validate({"filter": as_filter(query.get("filter")), "sort": query.get("sort") or [],
                                      "similar": query.get("similar")})
        except ValidationError as exc:
            raise QueryError(f"invalid query: {exc.errors()[0]['msg']}", where="sort") from None
    else:
        q = Query(filter=as_filter(query))
    if sort is not None:
        if isinstance(sort, str):
            keys = parse_sort(sort)
        elif isinstance(sort, Sort):
            keys = [sort]
        else:
            keys = [s if isinstance(s, Sort) else Sort.model_validate(s) for s in sort]
        q = q.model_copy(update={"sort": keys})
    return q


def compiler_for(ws: Any, run: Any, confidence: float | None, iou: float | None, *, use_cache: bool = True,
                 similar: Any = None, baseline: Any = None) -> Compiler:
    c, t = thresholds(ws, run, confidence, iou)
    return Compiler(ws, run_id_of(ws, run), c, t, use_cache=use_cache, similar=as_similar(similar),
                    baseline=run_id_of(ws, baseline))


def as_similar(similar: Any) -> Similar | None:
    """A :class:`Similar` from itself, its dict, or None."""
    if similar is None or isinstance(similar, Similar):
        return similar
    try:
        return Similar.model_validate(similar)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise QueryError(f"invalid similarity search: {err.get('msg')}",
                         where="similar." + ".".join(str(x) for x in err.get("loc", ())),
                         fix="give a space, 1 to 20 anchor row ids and optionally k (1 to 10,000)") from None


def row_ids_sql(ws: Any, run: Any, filter: Any = None, confidence: float | None = None,
                iou: float | None = None, *, similar: Any = None, baseline: Any = None) -> tuple[str, list[Any]]:
    """``(sql, params)`` selecting one column ``data_row_id``: the run's rows that match the filter
    (and the similarity search). This is what the metrics functions take as ``rows=``. ``baseline``: the
    run compared with (for ``flip:`` and ``delta.`` conditions, see :mod:`slicewise.compare`)."""
    comp = compiler_for(ws, run, confidence, iou, similar=similar, baseline=baseline)
    where, params = comp.where(as_filter(filter))
    return f"SELECT r.id AS data_row_id FROM {comp.from_table()} r WHERE {where}", params


def count(ws: Any, run: Any, filter: Any = None, confidence: float | None = None, iou: float | None = None,
          *, similar: Any = None, baseline: Any = None) -> int:
    """How many of the run's data rows match the filter (and the similarity search)."""
    comp = compiler_for(ws, run, confidence, iou, similar=similar, baseline=baseline)
    where, params = comp.where(as_filter(filter))
    row = ws.store.cursor().execute(f"SELECT count(*) FROM {comp.from_table()} r WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0


def counts(ws: Any, run: Any, filters: list[Any], confidence: float | None = None,
           iou: float | None = None) -> list[int | None]:
    """How many of the run's rows match each filter, in one scan; None for a filter that cannot be
    evaluated (e.g. a metric filter while the run's metrics are not computed)."""
    comp = compiler_for(ws, run, confidence, iou)
    parts: list[tuple[str, list[Any]] | None] = []
    for f in filters:
        try:
            parts.append(comp.where(as_filter(f)))
        except QueryError:
            parts.append(None)
    ok = [p for p in parts if p is not None]
    if not ok:
        return [None] * len(parts)
    sql = ", ".join(f"count(*) FILTER (WHERE {w})" for w, _ in ok)
    row = ws.store.cursor().execute(f"SELECT {sql} FROM {comp.from_table()} r",
                                    [p for _, ps in ok for p in ps]).fetchone()
    got = iter(row or [0] * len(ok))
    return [None if p is None else int(next(got)) for p in parts]


def warm(ws: Any, run: Any, *, facets: bool = False) -> None:
    """Build what the first view of a run reads: its row cache and the cache's metrics variant at the run's
    thresholds (:func:`thresholds`), made one table (:func:`slicewise.query.rowcache.widen`: the views most
    used are the run's own thresholds). The server calls it when a metrics job ends and the CLI after
    ``metrics compute``, so that the first page after a job does not wait for them (at a million rows they
    take seconds; a later process finds them in the workspace's cache database), and the per-(row, feature)
    metrics at those thresholds (the metrics page's per-feature figures, filters such as ``recall[cat] > 0``:
    at 10M rows their build takes gigabytes a server would otherwise hold for a while). Then it writes the arrays
    of every conf index of the job to the workspace's cache folder (:mod:`slicewise.metrics.levelfiles`), so
    that moving to another confidence level maps them instead of reading the job's records (at 10M rows:
    about ten seconds a conf index). With ``facets`` (a server, which keeps them) the first view's facet columns
    are fetched too, before the files (:mod:`slicewise.query.facetcache`: 5-7 s at 10M rows)."""
    c, t = thresholds(ws, run)
    search(ws, run, None, c, t, limit=1, sort="-fp", with_total=False)
    comp = compiler_for(ws, run, c, t)
    if comp.cache() is not None:  # its metrics variant as one table (see rowcache.widen)
        from slicewise.query import rowcache

        rowcache.widen(ws, comp.run_id, sorted(comp.catalog.metadata), comp.metrics_source())
        from slicewise.metrics.fast import release_outputs

        release_outputs(ws)  # (the variant was copied: its arrays need not wait for another)
    if facets:
        from slicewise.query.facets import facets as all_facets

        all_facets(ws, run, None, c, t)
    from slicewise.metrics import fast
    from slicewise.metrics.engine import require_ready
    from slicewise.metrics.views import row_feature_metrics_table

    row_feature_metrics_table(ws, run, c, t)  # (the metrics page's per-feature figures; filters on them)

    r, s, gen = require_ready(ws, run)
    fast.write_levels(ws, r.id, gen, range(len(s.confidence)))


def search(ws: Any, run: Any, query: Any = None, confidence: float | None = None, iou: float | None = None,
           limit: int = 50, offset: int = 0, *, sort: Any = None, cursor: str | None = None,
           with_total: bool = True, baseline: Any = None) -> Page:
    """One page of the run's data rows matching ``query``, in sort order (ties by data row id).

    ``query``: a :class:`Query`, a filter node / dict / text, or None. ``sort`` overrides the query's
    sort (text like ``"-iou, metadata.camera"`` or :class:`Sort` keys). Rows without a sort value come
    last in either direction. Page with ``offset``, or (fast deep into results) with the previous
    page's ``next_cursor``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise LimitError(f"page size {limit!r} is not between 1 and {MAX_LIMIT}", where="limit",
                         fix=f"ask for at most {MAX_LIMIT} rows a page")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise QueryError(f"offset {offset!r} must be a whole number >= 0", where="offset")
    q = as_query(query, sort)
    comp = compiler_for(ws, run, confidence, iou, similar=q.similar, baseline=baseline)
    where, params = comp.where(q.filter)
    joins, exprs, jparams, order = [], [], [], []
    for i, s in enumerate(q.sort):
        join, expr, ps = comp.sort_expr(s, i)
        if join:
            joins.append(join)
            jparams += ps
        exprs.append(expr)
        order += [f"({expr}) IS NULL", f"{expr} {'DESC' if s.desc else 'ASC'}"]
    order.append("r.id")
    page_where, page_params = where, list(params)
    if cursor is not None:
        if offset:
            raise QueryError("give either an offset or a cursor, not both", where="cursor")
        kinds = [(s.field, comp.catalog.resolve(s.field, s.feature, s.at_confidence).kind) for s in q.sort]
        vals, last_id = _decode_cursor(cursor, kinds)
        k_sql, k_params = _keyset(exprs, [s.desc for s in q.sort], vals, last_id)
        page_where, page_params = f"{where} AND ({k_sql})", params + k_params
    # the page's ids first, their global keys after: a sort over millions of lines that carries each line's key
    # (a string) to the top-N costs 5x more (at 10M rows 160-190 ms against 35 ms through a metrics view)
    select = ", ".join(["r.id"] + [f"{e} AS sv{i}" for i, e in enumerate(exprs)])
    if q.similar is not None:  # each row's score, whatever the sort
        rel, rel_params = comp.scores()
        joins.append(f"LEFT JOIN {rel} sim ON sim.id = r.id")
        jparams += rel_params
        select += ", sim.score AS similarity"
    cur = ws.store.cursor()
    total = -1
    if with_total and cursor is None and q.similar is None and _few(comp, q.filter):
        # the matches gathered once for both the page and the count (each would scan every line again: at 10M
        # rows a page filtered by recall[person] and its count 83 -> 48 ms)
        inner = f"SELECT {select} FROM {comp.from_table()} r {' '.join(joins)} WHERE {where}"
        m_order = [x for i, s in enumerate(q.sort) for x in (f"sv{i} IS NULL", f"sv{i} {'DESC' if s.desc else 'ASC'}")]
        sql = (f"WITH m AS MATERIALIZED ({inner}) SELECT p.*, c.n FROM (SELECT count(*) AS n FROM m) c LEFT JOIN "
               f"(SELECT * FROM m ORDER BY {', '.join(m_order + ['id'])} LIMIT ? OFFSET ?) p ON TRUE "
               f"ORDER BY {', '.join(['p.' + x for x in m_order] + ['p.id'])}")
        got = cur.execute(sql, jparams + params + [limit, offset]).fetchall()
        total = int(got[0][-1])
        rows = [r[:-1] for r in got if r[0] is not None]  # (no match: one line, the count's)
    else:
        sql = (f"SELECT {select} FROM {comp.from_table()} r {' '.join(joins)} WHERE {page_where} "
               f"ORDER BY {', '.join(order)} LIMIT ? OFFSET ?")
        rows = cur.execute(sql, jparams + page_params + [limit, offset]).fetchall()
        if with_total:
            total = int(cur.execute(f"SELECT count(*) FROM {comp.from_table()} r WHERE {where}",  # type: ignore[index]
                                    params).fetchone()[0])
    keys = dict(cur.execute("SELECT id, global_key FROM data_rows WHERE id = ANY(?)", [[r[0] for r in rows]]).fetchall()
                ) if rows else {}
    n_sort = len(exprs)
    out = [PageRow(data_row_id=r[0], global_key=keys[r[0]], sort_value=r[1] if n_sort else None,
                   sort_values=list(r[1:1 + n_sort]),
                   similarity=float(r[1 + n_sort]) if q.similar is not None and r[1 + n_sort] is not None else None)
           for r in rows if r[0] in keys]  # (a row deleted between the two reads is left out)
    nxt = _encode_cursor(list(rows[-1][1:1 + n_sort]), rows[-1][0]) if len(rows) == limit else None
    return Page(total=total, rows=out, limit=limit, offset=offset, next_cursor=nxt,
                confidence=comp.confidence if comp.run_id is not None else None,
                iou=comp.iou if comp.run_id is not None else None)


def _few(comp: Compiler, node: Any) -> bool:
    """Whether a filter keeps only rows that have a line of one feature's metrics (a per-feature metric condition,
    alone or in the filter's top-level AND): so few of a run's rows, as a rule, that gathering its matches once
    costs less than scanning every line twice."""
    if isinstance(node, And):
        return any(_few(comp, p) for p in node.all)
    if not isinstance(node, Cond) or node.feature is None or node.op in ("!=", "not in", "is none"):
        return False
    try:
        return comp.catalog.resolve(node.field, node.feature, node.at_confidence).category == "metric"
    except QueryError:
        return False


def _keyset(exprs: list[str], desc: list[bool], vals: list[Any], last_id: int) -> tuple[str, list[Any]]:
    """Rows strictly after the cursor in ORDER BY (expr IS NULL, expr dir)..., r.id."""
    comps: list[tuple[str, str, Any]] = []  # (expr, '>' or '<' meaning "after", cursor value)
    for e, d, v in zip(exprs, desc, vals, strict=True):
        comps.append((f"(({e}) IS NULL)", ">", v is None))
        if v is not None:
            comps.append((e, "<" if d else ">", v))
    comps.append(("r.id", ">", last_id))
    ors, params = [], []
    for i, (e, op, v) in enumerate(comps):
        eqs = [f"{ce} = ?" for ce, _, _ in comps[:i]]
        params += [cv for _, _, cv in comps[:i]] + [v]
        ors.append("(" + " AND ".join(eqs + [f"{e} {op} ?"]) + ")")
    return " OR ".join(ors), params


def _encode_cursor(vals: list[Any], last_id: int) -> str:
    enc = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in vals]
    return base64.urlsafe_b64encode(json.dumps([enc, last_id]).encode()).decode()


def _decode_cursor(cursor: str, kinds: list[tuple[str, str]]) -> tuple[list[Any], int]:
    """The sort values and last row id of a cursor, each checked against the kind of its sort key
    (a number for number fields, text for string and enum fields, a date-time for date-time fields,
    or null), so that a forged or stale cursor is refused here and never reaches SQL."""
    def bad(why: str = "") -> QueryError:
        return QueryError("the page cursor is not valid for this query" + (f": {why}" if why else ""), where="cursor",
                          fix="use the next_cursor of the previous page of the same query and sort")

    if not isinstance(cursor, str) or len(cursor) > 100_000:
        raise bad()
    try:
        enc, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise bad() from None
    if not isinstance(enc, list) or len(enc) != len(kinds):
        raise bad(f"it holds {len(enc) if isinstance(enc, list) else 'no'} sort values, the sort has {len(kinds)}")
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not -2**63 <= last_id < 2**63:
        raise bad(f"its row id {last_id!r} is not a whole number")
    vals = []
    for v, (name, kind) in zip(enc, kinds, strict=True):
        try:
            vals.append(_cursor_value(v, kind))
        except (ValueError, TypeError):
            want = {"number": "a number", "datetime": "a date-time"}.get(kind, "text")
            raise bad(f"its value for {name} must be {want} or null, not {json.dumps(v)[:60]}") from None
    return vals, last_id


def _cursor_value(v: Any, kind: str) -> Any:
    """One decoded sort value of a cursor, or ValueError when its type does not fit the field's kind."""
    if v is None:
        return None
    if kind == "number":
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError
        return v
    if kind == "datetime":
        if not isinstance(v, dict) or set(v) != {"t"} or not isinstance(v["t"], str):
            raise ValueError
        return datetime.fromisoformat(v["t"])
    if not isinstance(v, str):  # string and enum fields
        raise ValueError
    return v
