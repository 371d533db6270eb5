"""Compile a filter AST to one parameterised SQL condition over ``data_rows r``.

Every condition becomes either a predicate on a column of ``r`` or ``r.id IN (subquery)``; negation
and missing values follow two-valued logic: a condition on a value the row does not have (no such
metadata, an undefined metric) is false, and ``not`` makes it true. ``a != v`` means ``not a = v``
and ``a not in (...)`` means ``not a in (...)``. Values and names always travel as parameters; the
only identifiers written into SQL are fixed column names and the metrics engine's table names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from slicewise.errors import MetricsError, QueryError
from slicewise.query.ast import And, Cond, Filter, Has, Not, Or, Similar, Sort, check_depth
from slicewise.query.fields import COUNT_METRICS, Catalog, FieldSpec, did_you_mean

SQL = tuple[str, list[Any]]
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")


def quote_table(name: str) -> str:
    """``db.table`` or ``table`` as quoted identifiers; anything else is refused.

    >>> quote_table("sw_cache.mv_row_r1")
    '"sw_cache"."mv_row_r1"'
    """
    if not _TABLE.match(str(name)):
        raise QueryError(f"the metrics engine returned an unusable table name {name!r}")
    return ".".join(f'"{p}"' for p in str(name).split("."))
_VALUE_COL = {"string": "value_string", "enum": "value_string", "number": "value_number",
              "datetime": "value_datetime"}
_OPS_BY_KIND = {
    "number": {"=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "is none", "is any"},
    "datetime": {"=", "!=", "<", "<=", ">", ">=", "between", "is none", "is any"},
    "string": {"=", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "is none", "is any"},
    "enum": {"=", "!=", "in", "not in", "is none", "is any"},
}
_AGG = {"min": "min", "max": "max", "mean": "avg"}


def as_filter(node: Any) -> Any:
    """Accept a filter node, its JSON-like dict, its text, or None."""
    from slicewise.query.text import parse

    if node is None:
        return node
    if isinstance(node, str):
        return parse(node) if node.strip() else None
    check_depth(node)  # before anything recurses over it
    if isinstance(node, Cond | Has | And | Or | Not):
        return node
    try:
        return Filter.validate_python(node)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        if len(loc) > 200:
            loc = loc[:100] + " ... " + loc[-95:]
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        raise QueryError(f"invalid filter: {msg}", where=loc or "filter",
                         fix="see slicewise.query.ast for the node shapes") from None


@dataclass
class Compiler:
    """Compiles filters and sort keys for one workspace, run and (confidence, iou) view."""

    ws: Any
    run_id: int | None
    confidence: float
    iou: float
    check_only: bool = False  # validate names and values only (no run, no metrics tables needed)
    use_cache: bool = True  # read row-level fields from the row cache (slicewise.query.rowcache)
    similar: Similar | None = None  # a similarity search restricting the rows (and giving ``similarity``)
    baseline: int | None = None  # the run compared with: ``flip:`` and ``delta.`` (slicewise.compare)
    catalog: Catalog = field(init=False)
    _tables: dict[tuple[float, bool], str] = field(default_factory=dict, init=False)
    _rc: Any = field(default=None, init=False)
    _negated: int = field(default=0, init=False)  # NOT ancestors of the node being compiled
    _rc_tried: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.use_cache and not self.check_only:
            self.catalog = self.ws.state.memo(("catalog", self.run_id), Catalog.TOPICS,
                                              lambda: Catalog(self.ws, self.run_id))
        else:
            self.catalog = Catalog(self.ws, self.run_id)

    # -- the row cache -------------------------------------------------------------------------
    def cache(self) -> Any:
        """The row cache table for this run (None when not used: disabled, in a transaction...)."""
        if not self._rc_tried:
            self._rc_tried = True
            if self.use_cache and not self.check_only:
                from slicewise.query import rowcache

                self._rc = rowcache.get(self.ws, self.run_id, sorted(self.catalog.metadata))
        return self._rc

    def ensure_metrics(self) -> bool:
        """Switch the row cache to its variant with the row metrics at (c, t); False without a cache.
        Raises QueryError when the metrics are not available."""
        rc = self.cache()
        if rc is None:
            return False
        if not rc.metrics:
            from slicewise.query import rowcache

            self._rc = rowcache.get(self.ws, self.run_id, sorted(self.catalog.metadata), self.metrics_source())
        return True

    def metrics_source(self) -> Any:
        """The row metrics at (c, t) for the row cache (``metrics.row_metrics_source``); QueryError without them."""
        run_id = self._need_run("metrics")
        return self._metrics_call("metrics", "row_metrics_source", run_id, self.confidence, self.iou)

    def from_table(self) -> str:
        """The table aliased ``r`` in queries: the row cache, or data_rows. Read it after compiling."""
        rc = self.cache()
        return rc.table if rc is not None else "data_rows"

    def _column(self, spec: FieldSpec, feature: str | None, at: float | None) -> str | None:
        """The row cache column holding this field, or None when it is not there."""
        if feature is not None or at is not None or self.cache() is None:
            return None
        if spec.category == "metadata":
            return f"r.{self._rc.metadata[spec.key]}" if spec.key in self._rc.metadata else None
        if spec.category == "confidence":
            self._need_run(spec.name)
            return f"r.conf_{spec.key}"
        if spec.category == "count":
            if spec.key == "prediction":
                self._need_run(spec.name)
            return "r.n_gt" if spec.key == "annotation" else "r.n_pred"
        if spec.category == "metric":
            self._need_run(spec.name)
            self.ensure_metrics()
            return f'r."{spec.key}"'
        return None

    # -- the run restriction ------------------------------------------------------------------
    def base(self) -> SQL:
        if self.run_id is None or self.cache() is not None:  # the cache holds only the run's rows
            return "TRUE", []
        return "r.id IN (SELECT data_row_id FROM run_rows WHERE run_id = ?)", [self.run_id]

    def where(self, node: Any) -> SQL:
        """The full WHERE condition: the run's rows, the filter, and the similarity search."""
        b_sql, b_params = self.base()
        if node is not None:
            f_sql, f_params = self.node(node)
            b_sql, b_params = f"{b_sql} AND ({f_sql})", b_params + f_params
        if self.similar is None:
            return b_sql, b_params
        rel, r_params = self.scores()
        if self.similar.k is None:
            return f"{b_sql} AND r.id IN (SELECT id FROM {rel})", b_params + r_params
        # the k nearest among the rows matching the rest (the inner r is the inner FROM's)
        return (f"{b_sql} AND r.id IN (SELECT s.id FROM {rel} s WHERE s.id IN "
                f"(SELECT r.id FROM {self.from_table()} r WHERE {b_sql}) ORDER BY s.score DESC, s.id LIMIT ?)",
                b_params + r_params + b_params + [int(self.similar.k)])

    def scores(self) -> SQL:
        """The similarity scores (relation with ``id``, ``score``) of the search; QueryError without one."""
        if self.similar is None:
            raise QueryError("sorting or filtering by similarity needs anchor rows", where="similarity",
                             fix="pick rows and use Find similar (API: similar_space and similar_to)")
        if self.check_only:
            self._check_space(self.similar.space)
            return "(SELECT 0::BIGINT AS id, 0.0::FLOAT AS score)", []
        from slicewise.embeddings.search import scores_relation

        return scores_relation(self.ws, self.similar.space, self.similar.anchors)

    def _check_space(self, name: str) -> None:
        if name not in self.catalog.spaces:
            raise QueryError(f"no embedding space {name!r}", where="similar_space",
                             fix=did_you_mean(name, list(self.catalog.spaces)) or
                             "spaces: " + (", ".join(self.catalog.spaces) or "none yet (run `slicewise embed`)"))

    # -- nodes -------------------------------------------------------------------------------------
    def node(self, node: Any) -> SQL:
        if isinstance(node, And | Or):
            parts = node.all if isinstance(node, And) else node.any
            if not parts:
                return ("TRUE" if isinstance(node, And) else "FALSE"), []
            sqls, params = [], []
            for p in parts:
                s, ps = self.node(p)
                sqls.append(f"({s})")
                params += ps
            return (" AND " if isinstance(node, And) else " OR ").join(sqls), params
        if isinstance(node, Not):
            self._negated += 1
            try:
                s, ps = self.node(node.of)
            finally:
                self._negated -= 1
            return f"NOT ({s})", ps
        if isinstance(node, Has):
            return self.has(node)
        if isinstance(node, Cond):
            return self.cond(node)
        raise QueryError(f"not a filter node: {node!r}")

    def has(self, node: Has) -> SQL:
        if node.what in ("batch", "queue"):
            from slicewise.curation.filters import has_sql

            return has_sql(self.ws, node.what, node.name)
        if node.what == "flip":
            table, col = self.flips_table(node.name)
            return f'r.id IN (SELECT data_row_id FROM {table} WHERE "{col}" > 0)', []
        if node.what == "error":
            col = self._error_type(node.name)
            table = self.tide_table(f"error:{node.name}")
            return f'r.id IN (SELECT data_row_id FROM {table} WHERE "{col}" > 0)', []
        if self.cache() is not None:
            col = {"tag": "r.tags", "annotation": "r.gt_feats", "prediction": "r.pred_feats"}[node.what]
            if node.what == "prediction":
                self._need_run("predicted:" + (node.name or "*"))
            if node.name is None:
                return f"len({col}) > 0", []
            value: Any = node.name if node.what == "tag" else self.catalog.feature_id(node.name)
            bit = self._mask_bit(value) if node.what != "tag" else 0
            if bit:  # (a bit: faster than the list)
                mask = "r.gt_mask" if node.what == "annotation" else "r.pred_mask"
                return f"({mask} & ?::UBIGINT) <> 0", [bit]
            return f"list_contains({col}, ?)", [value]
        if node.what == "tag":
            if node.name is None:
                return "r.id IN (SELECT data_row_id FROM tags)", []
            return "r.id IN (SELECT data_row_id FROM tags WHERE tag = ?)", [node.name]
        cond, params = [], []
        table = "annotations" if node.what == "annotation" else "predictions"
        if node.what == "prediction":
            cond.append("run_id = ?")
            params.append(self._need_run("predicted:" + (node.name or "*")))
        if node.name is not None:
            cond.append("feature_id = ?")
            params.append(self.catalog.feature_id(node.name))
        where = (" WHERE " + " AND ".join(cond)) if cond else ""
        return f"r.id IN (SELECT data_row_id FROM {table}{where})", params

    def cond(self, node: Cond) -> SQL:
        spec = self.catalog.resolve(node.field, node.feature, node.at_confidence)
        if node.op not in _OPS_BY_KIND[spec.kind]:
            raise QueryError(f"operator {node.op!r} does not apply to {node.field} (a {spec.kind} field)",
                             where=node.field, fix="use one of: " + ", ".join(sorted(_OPS_BY_KIND[spec.kind])))
        if node.op in ("!=", "not in", "is none"):
            pos = node.model_copy(update={"op": {"!=": "=", "not in": "in", "is none": "is any"}[node.op]})
            self._negated += 1
            try:
                s, ps = self.cond(pos)
            finally:
                self._negated -= 1
            return f"NOT ({s})", ps
        values = self._values(spec, node)
        if spec.category == "row":
            if spec.name == "dataset":
                pred, ps = _pred("name", node.op, values)
                return f"r.dataset_id IN (SELECT id FROM datasets WHERE {pred})", ps
            pred, ps = self._column_pred(f"r.{spec.key}", node.op, values)
            return self._two_valued(pred), ps
        col = self._column(spec, node.feature, node.at_confidence)
        if col is not None:
            pred, ps = self._column_pred(col, node.op, values)
            return self._two_valued(pred), ps
        if spec.category == "count":
            return self._count(spec, node, values)
        src, src_params = self.source(spec, node.feature, node.at_confidence)
        pred, ps = _pred("v", node.op, values)
        sql, params = f"r.id IN (SELECT data_row_id FROM ({src}) WHERE {pred})", src_params + ps
        bit = self._feature_bit(spec, node.feature)
        if bit:  # only rows labelled or predicted with the feature have its metrics: the others skip the IN
            # (a recall needs a label of it, a precision a prediction)
            mask = {"recall": "r.gt_mask", "precision": "r.pred_mask"}.get(spec.key, "(r.gt_mask | r.pred_mask)")
            return f"({mask} & ?::UBIGINT) <> 0 AND {sql}", [bit] + params
        return sql, params

    def _column_pred(self, col: str, op: str, values: list[Any]) -> SQL:
        """:func:`_pred` on a column of ``r``; ``=`` and ``in`` on a string column of the row cache test its
        integer code instead (at 10M rows a page filtered by a camera and its count: 92 -> 71 ms)."""
        name = col.removeprefix("r.")
        rc = self.cache()
        if col in _INT_COLUMNS:  # a whole number stays an integer: compared as a float, each line is cast (at 10M
            values = [_whole(v) for v in values]  # rows `fp > 0` 64 -> 38 ms)
        if rc is None or op not in ("=", "in") or name not in rc.codes:
            return _pred(col, op, values)
        code_col = f"r.{rc.codes[name][0]}"
        codes = [rc.code_of(name, v) for v in values]  # (-1: a value no line has)
        return (f"{code_col} = ?", codes) if op == "=" else (f"list_contains(?, {code_col})", [codes])

    def _feature_bit(self, spec: FieldSpec, feature: str | None) -> int:
        """The row cache's mask bit of the feature of a per-feature metric (0 when there is none): every line of
        the metrics engine's per-(row, feature) table is a row labelled or predicted with its feature, which
        holds while the run's metrics job is up to date (its records then are the rows' labels and predictions)."""
        if spec.category != "metric" or feature is None or self.check_only:
            return 0
        bit = self._mask_bit(self.catalog.feature_id(feature))
        if not bit or self._metrics_call(spec.name, "job_status", self._need_run(spec.name)).state != "ready":
            return 0
        return bit

    def _mask_bit(self, feature_id: int) -> int:
        """The bit of a feature id in the row cache's ``gt_mask`` / ``pred_mask`` (0: the cache has none for it)."""
        from slicewise.query.rowcache import MASK_BITS

        if self.cache() is None or not self._rc.masks or not 0 <= feature_id < MASK_BITS:
            return 0
        return 1 << feature_id

    def source(self, spec: FieldSpec, feature: str | None, at: float | None) -> SQL:
        """A subquery ``(data_row_id, v)`` with one row per data row that has a value of the field."""
        fid = [self.catalog.feature_id(feature)] if feature is not None else []
        fcond = " AND feature_id = ?" if feature is not None else ""
        if spec.category == "metadata":
            col = _VALUE_COL[spec.kind]
            return (f"SELECT data_row_id, {col} AS v FROM row_metadata WHERE field = ? AND {col} IS NOT NULL",
                    [spec.key])
        if spec.category == "metric":
            table = self.metric_table(spec.name, at, feature is not None)
            return (f'SELECT data_row_id, "{spec.key}" AS v FROM {table} WHERE "{spec.key}" IS NOT NULL{fcond}',
                    fid)
        if spec.category == "custom":
            run = self._need_run(spec.name)
            fc = fcond if feature is not None else " AND feature_id IS NULL"
            return (f"SELECT data_row_id, max(value) AS v FROM custom_metrics WHERE run_id = ? AND name = ?{fc} "
                    "AND value IS NOT NULL GROUP BY data_row_id", [run, spec.key] + fid)
        if spec.category == "confidence":
            run = self._need_run(spec.name)
            return (f"SELECT data_row_id, {_AGG[spec.key]}(confidence) AS v FROM predictions WHERE run_id = ?{fcond} "
                    "GROUP BY data_row_id", [run] + fid)
        if spec.category == "delta":
            return self.delta_source(spec, feature)
        if spec.category == "tide":
            return f'SELECT data_row_id, "{spec.key}" AS v FROM {self.tide_table(spec.name)}', []
        if spec.category == "area":
            agg = "min" if spec.key == "min" else "max"
            return (f"SELECT data_row_id, {agg}(coalesce(area, w * h)) AS v FROM annotations "
                    "WHERE coalesce(area, w * h) IS NOT NULL GROUP BY data_row_id", [])
        if spec.category == "similarity":
            rel, rel_params = self.scores()
            return f"SELECT id AS data_row_id, score AS v FROM {rel}", rel_params
        if spec.category == "island":
            if self.check_only:
                return "SELECT 0::BIGINT AS data_row_id, 0.0 AS v WHERE FALSE", []
            from slicewise.embeddings.islands import islands_relation

            rel = islands_relation(self.ws, spec.key)
            return f"SELECT data_row_id, disagreement AS v FROM {rel}", []
        if spec.category == "mistake":
            if self.check_only:
                return "SELECT 0::BIGINT AS data_row_id, 0.0 AS v WHERE FALSE", []
            from slicewise.mistakes.results import relation

            det, _, what = spec.key.partition(".")
            rel = quote_table(relation(self.ws, self._need_run(spec.name)))
            return f"SELECT data_row_id, {'flagged' if what else 'score'} AS v FROM {rel} WHERE detector = ?", [det]
        if spec.category == "count":
            table = "annotations" if spec.key == "annotation" else "predictions"
            params: list[Any] = []
            conds = []
            if table == "predictions":
                conds.append("run_id = ?")
                params.append(self._need_run(spec.name))
            if feature is not None:
                conds.append("feature_id = ?")
                params += fid
            where = (" WHERE " + " AND ".join(conds)) if conds else ""
            return f"SELECT data_row_id, count(*) AS v FROM {table}{where} GROUP BY data_row_id", params
        raise QueryError(f"field {spec.name!r} has no per-row source")  # pragma: no cover

    def _count(self, spec: FieldSpec, node: Cond, values: list[Any]) -> SQL:
        src, params = self.source(spec, node.feature, None)
        pred, ps = _pred("v", node.op, values)
        if node.op == "is any":  # every row has a count (0 when none)
            return "TRUE", []
        if _holds_for_zero(node.op, values):  # rows without any object match: test the complement
            return f"r.id NOT IN (SELECT data_row_id FROM ({src}) WHERE NOT ({pred}))", params + ps
        return f"r.id IN (SELECT data_row_id FROM ({src}) WHERE {pred})", params + ps

    # -- sorting -----------------------------------------------------------------------------------
    def sort_expr(self, sort: Sort, i: int) -> tuple[str, str, list[Any]]:
        """(join clause, value expression, params of the join) for one sort key."""
        spec = self.catalog.resolve(sort.field, sort.feature, sort.at_confidence)
        if spec.category == "row":
            if spec.name == "dataset":
                return f"LEFT JOIN datasets s{i} ON s{i}.id = r.dataset_id", f"s{i}.name", []
            return "", f"r.{spec.key}", []
        col = self._column(spec, sort.feature, sort.at_confidence)
        if col is not None:
            return "", col, []
        src, params = self.source(spec, sort.feature, sort.at_confidence)
        value = f"coalesce(s{i}.v, 0)" if spec.category == "count" else f"s{i}.v"
        return f"LEFT JOIN ({src}) s{i} ON s{i}.data_row_id = r.id", value, params

    # -- helpers -----------------------------------------------------------------------------------
    def _two_valued(self, pred: str) -> str:
        """A predicate on a value that may be NULL, as TRUE/FALSE. Outside any NOT a NULL already acts as
        FALSE in WHERE (AND/OR are monotone), so the coalesce, which slows DuckDB's scans, is left out."""
        return f"coalesce({pred}, FALSE)" if self._negated else pred

    def _need_run(self, what: str) -> int:
        if self.check_only:
            return -1
        if self.run_id is None:
            raise QueryError(f"{what} needs a model run", where=what, fix="give the run whose rows you filter")
        return self.run_id

    def metric_table(self, what: str, at: float | None, per_feature: bool) -> str:
        """The quoted name of the metrics engine's per-row (or per row and feature) table at (c, t)."""
        if self.check_only:
            return '"unchecked_metrics_table"'
        run_id = self._need_run(what)
        c = self.confidence if at is None else float(at)
        key = (c, per_feature)
        if key not in self._tables:
            name = self._metrics_call(what, "row_feature_metrics_table" if per_feature else "row_metrics_table",
                                      run_id, c, self.iou)
            self._tables[key] = quote_table(str(name))
        return self._tables[key]

    def _metrics_call(self, what: str, name: str, *args: Any) -> Any:
        """``slicewise.metrics.<name>(ws, *args)``, its errors as QueryErrors about ``what``."""
        try:
            from slicewise import metrics
            fn = getattr(metrics, name)
        except (ImportError, AttributeError):
            raise QueryError(f"{what}: the metrics engine is not available in this installation", where=what,
                             fix="filter on metadata, annotations, predictions or tags") from None
        try:
            return fn(self.ws, *args)
        except MetricsError as exc:
            raise QueryError(f"{what}: {exc.message}", where=exc.where or what,
                             fix=exc.fix or "compute the run's metrics first (`slicewise metrics compute RUN`)") from None

    def _error_type(self, name: str | None) -> str:
        """The error-rows column of ``error:NAME`` (a TIDE type, its short name, or ``any``)."""
        from slicewise.query.fields import ERROR_NAMES

        col = ERROR_NAMES.get(str(name).lower()) if name is not None else None
        if col is None:
            raise QueryError(f"unknown error type {name!r}", where=f"error:{name}",
                             fix=did_you_mean(str(name), list(ERROR_NAMES)[:7]) or
                             "use one of: " + ", ".join(list(ERROR_NAMES)[:7]))
        return col

    def tide_table(self, what: str) -> str:
        """The quoted name of the TIDE error-rows table of the run at the view's (c, t)."""
        if self.check_only:
            return '"unchecked_tide_table"'
        run_id = self._need_run(what)
        from slicewise.metrics.tide import error_rows_table

        try:
            name = error_rows_table(self.ws, run_id, self.confidence, self.iou)
        except MetricsError as exc:
            raise QueryError(f"{what}: {exc.message}", where=exc.where or what,
                             fix=exc.fix or "view the run at an IoU above TIDE's background IoU 0.1") from None
        return quote_table(name)

    def _need_baseline(self, what: str) -> tuple[int, int]:
        run = self._need_run(what)
        if self.baseline is None:
            raise QueryError(f"{what} needs a run to compare with", where=what,
                             fix="compare two runs: give the baseline run (View(baseline=...), "
                                 "--baseline, or open it from the Compare page)")
        return self.baseline, run

    def flips_table(self, name: str | None) -> tuple[str, str]:
        """(quoted flips table of the comparison, column) of ``flip:NAME``."""
        from slicewise.compare.flips import FLIPS, flip_name

        flip = flip_name(name or "any")
        if flip != "any" and flip not in FLIPS:
            raise QueryError(f"unknown flip type {name!r}", where=f"flip:{name}",
                             fix="use one of: " + ", ".join([*FLIPS, "any"]))
        col = "flips" if flip == "any" else FLIPS[flip]
        if self.check_only:
            return '"unchecked_flips_table"', col
        base, run = self._need_baseline(f"flip:{name}")
        from slicewise.compare import flips_table

        try:
            return quote_table(flips_table(self.ws, base, run, self.confidence, self.iou)), col
        except MetricsError as exc:
            raise QueryError(f"flip:{name}: {exc.message}", where=exc.where or "flip", fix=exc.fix) from None

    def delta_source(self, spec: FieldSpec, feature: str | None) -> SQL:
        """``(data_row_id, v)``: the row's (or feature's) metric in the run minus the baseline's."""
        fid = self.catalog.feature_id(feature) if feature is not None else None
        if self.check_only:
            return "SELECT 0::BIGINT AS data_row_id, 0.0 AS v WHERE FALSE", []
        base, run = self._need_baseline(spec.name)
        from slicewise.compare import delta_source

        try:
            return delta_source(self.ws, base, run, self.confidence, self.iou, spec.key, fid)
        except MetricsError as exc:
            raise QueryError(f"{spec.name}: {exc.message}", where=exc.where or spec.name, fix=exc.fix) from None

    def _values(self, spec: FieldSpec, node: Cond) -> list[Any]:
        if node.op in ("is none", "is any"):
            return []
        raw = node.value if isinstance(node.value, list) else [node.value]
        if node.op in ("in", "not in") and not raw:
            raise QueryError(f"{node.field} {node.op} () has an empty list", where=node.field, fix="list at least one value")
        out = [_coerce(spec, v, node.field) for v in raw]
        if node.op == "contains":
            out = [str(v) for v in out]
        return out


def _coerce(spec: FieldSpec, v: Any, where: str) -> Any:
    kind = spec.kind
    if kind == "number":
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise QueryError(f"{where} is a number field; {v!r} is not a number", where=where,
                             fix=f"write a number, e.g. {where} > 0.5 (without quotes)")
        return float(v)
    if kind == "datetime":
        if isinstance(v, datetime):
            return v
        if isinstance(v, date):
            return datetime(v.year, v.month, v.day)
        try:
            d = datetime.fromisoformat(str(v))
        except ValueError:
            raise QueryError(f"{where} is a date-time field; {v!r} is not a date", where=where,
                             fix='write an ISO date such as "2024-05-01" or "2024-05-01T12:00:00"') from None
        return d.replace(tzinfo=None) if d.tzinfo is None else d.astimezone().replace(tzinfo=None)
    if isinstance(v, bool):
        v = "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v)
    if kind == "enum" and spec.options and s not in spec.options:
        raise QueryError(f"{s!r} is not an option of {where}", where=where,
                         fix=did_you_mean(s, list(spec.options)) or "use one of: " + ", ".join(spec.options))
    return s


#: the integer columns of the row cache (counts)
_INT_COLUMNS = frozenset({f'r."{m}"' for m in COUNT_METRICS} | {"r.n_gt", "r.n_pred"})


def _whole(v: Any) -> Any:
    """A float that is a whole number (within 2**53) as an int; anything else as it is."""
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else v


def _pred(col: str, op: str, values: list[Any]) -> SQL:
    if op in ("=", "<", "<=", ">", ">="):
        return f"{col} {op} ?", values[:1]
    if op == "between":
        return f"{col} BETWEEN ? AND ?", values[:2]
    if op == "in":
        return f"list_contains(?, {col})", [values]
    if op == "contains":
        return f"contains(lower({col}), lower(?))", values[:1]
    if op == "is any":
        return f"{col} IS NOT NULL", []
    raise QueryError(f"unknown operator {op!r}")  # pragma: no cover


def _holds_for_zero(op: str, values: list[Any]) -> bool:
    v = values
    return {"=": lambda: v[0] == 0, "<": lambda: v[0] > 0, "<=": lambda: v[0] >= 0, ">": lambda: v[0] < 0,
            ">=": lambda: v[0] <= 0, "between": lambda: v[0] <= 0 <= v[1], "in": lambda: 0 in v}[op]()
