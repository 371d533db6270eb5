"""Compare two runs over their common data rows: per class and per slice metric deltas with bootstrap
intervals, and object flips."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.compare import bootstrap, flips
from slicewise.compare.results import METRICS, Comparison, GroupDelta, MetricDelta
from slicewise.errors import MetricsError, QueryError, SlicewiseError
from slicewise.metrics import reduce
from slicewise.metrics.engine import RunRef, conf_index, get_run, require_ready
from slicewise.metrics.records import Rows, rows_clause

if TYPE_CHECKING:
    from slicewise.types.domain import ModelRun
    from slicewise.workspace import Workspace

#: a group of fewer rows is never flagged: resampling a handful of rows gives an interval (often of width 0)
#: that says nothing about the models
MIN_ROWS = 10


class Pair:
    """Two runs resolved for a comparison at one (c, t): ids, conf indices, the common rows' SQL."""

    def __init__(self, ws: Workspace, baseline: RunRef, run: RunRef, confidence: float | None = None,
                 iou: float | None = None) -> None:
        from slicewise.query.search import thresholds

        self.ws = ws
        self.a: ModelRun = get_run(ws, baseline)
        self.b: ModelRun = get_run(ws, run)
        if self.a.id == self.b.id:
            raise QueryError(f"the baseline and the run are the same run ({self.b.ref})", where="baseline",
                             fix="compare two different runs")
        ra, sa, self.gen_a = require_ready(ws, self.a)
        rb, sb, self.gen_b = require_ready(ws, self.b)
        self.c, self.t = thresholds(ws, self.b, confidence, iou)
        self.kb = conf_index(sb, self.c, rb.ref)
        try:
            self.ka = conf_index(sa, self.c, ra.ref)
        except MetricsError as exc:
            raise MetricsError(f"the baseline {ra.ref} has no confidence level {self.c}: {exc.message}",
                               where=f"run {ra.ref}", fix="pick a confidence on both runs' grids (--confidence)") from None
        self._tables: dict[bool, tuple[str, str]] = {}
        self.common: tuple[str, list[Any]] = (
            "SELECT data_row_id FROM run_rows WHERE run_id = ? INTERSECT "
            "SELECT data_row_id FROM run_rows WHERE run_id = ?", [self.a.id, self.b.id])

    @property
    def key(self) -> str:
        return f"a{self.a.id}g{self.gen_a}_b{self.b.id}g{self.gen_b}_c{self.kb}_t{round(self.t * 1e9)}"

    def topics(self) -> list[str]:
        from slicewise.metrics.fast import view_topics

        return [*view_topics(self.a.id), *view_topics(self.b.id), "run_rows"]

    def flips_table(self, iou_delta: float = flips.IOU_DELTA) -> str:
        """A cache table of the flips per (data_row_id, feature_id) (see :func:`flips.flips_table_sql`)."""
        def build(name: str) -> None:
            sql, params = flips.flips_table_sql(self.a.id, self.ka, self.b.id, self.kb, self.t, self.common, iou_delta)
            self.ws.state.cursor().execute(f"CREATE TABLE {name} AS {sql}", params)

        return self.ws.state.table("compare-flips", f"{self.key}_d{round(iou_delta * 1e9)}", self.topics(), build)

    def tables(self, per_feature: bool) -> tuple[str, str]:
        """The per-row (or per-(row, feature)) metrics tables of the baseline and the run at (c, t)."""
        from slicewise import metrics

        got = self._tables.get(per_feature)
        if got is None:
            fn = metrics.row_feature_metrics_table if per_feature else metrics.row_metrics_table
            got = self._tables[per_feature] = (fn(self.ws, self.a, self.c, self.t), fn(self.ws, self.b, self.c, self.t))
        return got


def counts_sql(pair: Pair, per_feature: bool, rows: Rows = None) -> tuple[str, list[Any]]:
    """Per common row (and feature): (data_row_id[, feature_id], tp, fp, fn of the baseline, then of the run),
    0 where a side has no line; read from a cache table built once per (runs, c, t) (:func:`_counts_build`)."""
    def build(name: str) -> None:
        sql, params = _counts_build(pair, per_feature)
        pair.ws.state.cursor().execute(f"CREATE TABLE {name} AS {sql}", params)

    table = pair.ws.state.table("compare-counts", f"{pair.key}_{'rf' if per_feature else 'r'}", pair.topics(), build)
    clause, params = rows_clause(rows, "x.data_row_id")
    return f"SELECT * FROM {table} x WHERE TRUE {clause}", params


def _counts_build(pair: Pair, per_feature: bool) -> tuple[str, list[Any]]:
    ta, tb = pair.tables(per_feature)
    keys = "data_row_id, feature_id" if per_feature else "data_row_id"
    on = " AND ".join(f"a.{k} = b.{k}" for k in keys.split(", "))
    sel = ", ".join(f"coalesce(a.{k}, b.{k}) AS {k}" for k in keys.split(", "))
    return (f"""WITH common AS ({pair.common[0]}),
      a AS (SELECT * FROM {ta} WHERE data_row_id IN (SELECT data_row_id FROM common)),
      b AS (SELECT * FROM {tb} WHERE data_row_id IN (SELECT data_row_id FROM common))
      SELECT * FROM (SELECT {sel},
             coalesce(a.tp, 0) AS tpa, coalesce(a.fp, 0) AS fpa, coalesce(a.fn, 0) AS fna,
             coalesce(b.tp, 0) AS tpb, coalesce(b.fp, 0) AS fpb, coalesce(b.fn, 0) AS fnb
      FROM a FULL JOIN b ON {on}) x ORDER BY {keys}""", list(pair.common[1]))


def _prf(s: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1 of baseline (columns 0-2: tp, fp, fn) and run (3-5), NaN when undefined."""
    out = {}
    s = np.asarray(s, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for side, o in (("a", 0), ("b", 3)):
            tp, fp, fn = s[..., o], s[..., o + 1], s[..., o + 2]
            out[f"precision_{side}"] = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
            out[f"recall_{side}"] = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            out[f"f1_{side}"] = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return out


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else reduce.round_ratio(float(v))


def group_delta(kind: str, name: str, filter: str, feature: str | None, values: np.ndarray, counts: np.ndarray,
                n_rows: int, n_boot: int, seed: int, level: float, flip_counts: dict[str, int]) -> GroupDelta:
    """A group's deltas from its distinct count vectors ``values`` (K, 6) and their multiplicities (rows
    with no count at all may be left out of ``values``: ``n_rows`` says how many rows the group has)."""
    values = np.asarray(values, np.float64).reshape(-1, 6)
    counts = np.asarray(counts, np.int64)
    zeros = n_rows - int(counts.sum())
    if zeros > 0:  # rows of the group where neither run has an object: resampled too
        values = np.vstack([values, np.zeros((1, 6))])
        counts = np.append(counts, zeros)
    order = np.lexsort(values.T[::-1])  # a fixed order (SQL's GROUP BY has none): the seed then fixes the draws
    values, counts = values[order], counts[order]
    total = counts @ values
    point = _prf(total)
    sums = bootstrap.resample_sums(values, counts, n_boot, np.random.default_rng([seed, _stable(kind + name)]))
    boot = _prf(sums)
    md = {}
    for m in METRICS:
        a, b = float(point[f"{m}_a"]), float(point[f"{m}_b"])
        delta = b - a if np.isfinite(a) and np.isfinite(b) else None
        lo = hi = None
        if delta is not None:
            lo, hi = bootstrap.percentile_interval(boot[f"{m}_b"] - boot[f"{m}_a"], level)
        sig = n_rows >= MIN_ROWS and lo is not None and hi is not None and (lo > 0 or hi < 0)
        md[m] = MetricDelta(_num(a), _num(b), None if delta is None else reduce.round_ratio(delta),
                            _num(lo), _num(hi), bool(sig))
    t = total.astype(np.int64)
    return GroupDelta(kind, name, filter, feature, int(n_rows), (int(t[0]), int(t[3])), (int(t[1]), int(t[4])),
                      (int(t[2]), int(t[5])), md, flip_counts)


def _stable(s: str) -> int:
    import zlib

    return zlib.crc32(s.encode())


def compare_runs(ws: Workspace, baseline: RunRef, run: RunRef, *, confidence: float | None = None,
                 iou: float | None = None, slices: Sequence[str | int] | None = None, auto: bool = True,
                 n_boot: int = bootstrap.N_BOOT, seed: int = bootstrap.SEED, level: float = bootstrap.LEVEL,
                 iou_delta: float = flips.IOU_DELTA) -> Comparison:
    """Compare ``run`` with ``baseline`` over their common data rows at (confidence, iou) (default: the run's
    view thresholds; the confidence must be on both runs' grids).

    Per class (feature), overall (micro) and per slice (``slices``: saved or auto slice names or ids; default:
    every saved slice, plus the run's auto slices when ``auto``): precision, recall and F1 in both runs, their
    delta (run - baseline) and its percentile bootstrap interval over data rows (``n_boot`` resamples, seeded
    with ``seed``, at ``level``; see :mod:`slicewise.compare.bootstrap`). Slice membership is evaluated on the
    baseline at the same thresholds (a metadata slice is the same rows in both runs; a metric slice is the
    baseline's rows, so the comparison asks how the run does on the baseline's problem rows). Flips: see
    :mod:`slicewise.compare.flips`."""
    if not 0 < level < 1:
        raise QueryError(f"level {level} is not in (0, 1)", where="level", fix="give e.g. 0.95")
    if not 1 <= int(n_boot) <= 100_000:
        raise QueryError(f"n_boot {n_boot} is outside 1..100000", where="n_boot", fix="give e.g. 1000")
    pair = Pair(ws, baseline, run, confidence, iou)
    cur = ws.store.cursor()
    n_a, n_b, n = cur.execute(f"""SELECT (SELECT count(*) FROM run_rows WHERE run_id = ?),
                                         (SELECT count(*) FROM run_rows WHERE run_id = ?),
                                         (SELECT count(*) FROM ({pair.common[0]}))""",
                              [pair.a.id, pair.b.id, *pair.common[1]]).fetchone() or (0, 0, 0)
    ft = pair.flips_table(iou_delta)
    names = {f.id: f.name for f in ws.features()}
    fcols = ", ".join(f"sum({c})::BIGINT" for c in flips.FLIPS.values())
    per_feature_flips = {int(r[0]): dict(zip(flips.FLIPS, map(int, r[1:]), strict=True))
                         for r in cur.execute(f"SELECT feature_id, {fcols} FROM {ft} GROUP BY 1").fetchall()}
    total_flips = {k: sum(d[k] for d in per_feature_flips.values()) for k in flips.FLIPS}

    args = (n_boot, seed, level)
    sql, params = counts_sql(pair, True)
    grouped = cur.execute(f"SELECT feature_id, tpa, fpa, fna, tpb, fpb, fnb, count(*) FROM ({sql}) GROUP BY ALL",
                          params).fetchnumpy()
    fid = np.asarray(grouped["feature_id"], np.int64)
    vals = np.column_stack([np.asarray(grouped[c], np.float64) for c in ("tpa", "fpa", "fna", "tpb", "fpb", "fnb")]) \
        if len(fid) else np.zeros((0, 6))
    cnt = np.asarray(grouped["count_star()"], np.int64)
    classes = []
    for f in sorted(set(fid.tolist()), key=lambda f: names.get(f, str(f))):
        sel = fid == f
        name = names.get(f, str(f))
        classes.append(group_delta("class", name, f"has:{_q(name)} or predicted:{_q(name)}", name, vals[sel],
                                   cnt[sel], int(n), *args, per_feature_flips.get(f, dict.fromkeys(flips.FLIPS, 0))))
    overall = _row_group(ws, pair, "overall", "all rows", "", None, int(n), args, total_flips)
    out_slices = []
    for ref, s_name, s_filter, rows in _slices(ws, pair, slices, auto):
        out_slices.append(_row_group(ws, pair, "slice", s_name, s_filter, rows, None, args, {}, ref=ref))
    return Comparison(pair.a.ref, pair.b.ref, pair.a.id, pair.b.id, pair.c, pair.t, int(n), int(n_a) - int(n),
                      int(n_b) - int(n), overall, tuple(classes), tuple(out_slices), total_flips, int(n_boot), int(seed),
                      float(level), float(iou_delta))


def _q(name: str) -> str:
    from slicewise.query.text import _name

    return str(_name(name))


def _row_group(ws: Workspace, pair: Pair, kind: str, name: str, filter: str, rows: Rows, n_rows: int | None,
               args: tuple[int, int, float], flip_counts: dict[str, int], ref: Any = None) -> GroupDelta:
    sql, params = counts_sql(pair, False, rows)
    got = ws.store.cursor().execute(f"SELECT tpa, fpa, fna, tpb, fpb, fnb, count(*) FROM ({sql}) GROUP BY ALL",
                                    params).fetchall()
    vals = np.array([g[:6] for g in got], np.float64).reshape(-1, 6)
    cnt = np.array([g[6] for g in got], np.int64)
    if n_rows is None:  # a slice: its common rows (the per-row table has a line for every common row)
        n_rows = int(cnt.sum())
    return group_delta(kind, name, filter, None, vals, cnt, n_rows, *args, flip_counts)


def _slices(ws: Workspace, pair: Pair, refs: Sequence[str | int] | None, auto: bool
            ) -> list[tuple[Any, str, str, Rows]]:
    """(ref, name, filter text, rows SQL) of the slices compared; membership on the baseline."""
    from slicewise import slices as sl
    from slicewise.query.ast import Query
    from slicewise.query.search import row_ids_sql
    from slicewise.query.text import to_text

    if refs is not None:
        chosen = [sl.resolve_slice(ws, r, pair.a) for r in refs]
    else:
        chosen = list(sl.list_slices(ws))
        if auto:
            with contextlib.suppress(SlicewiseError):  # a run that cannot have them (e.g. without ground truth)
                chosen += list(sl.auto_slices(ws, pair.a, pair.c, pair.t))
    out = []
    for s in chosen:
        q = Query.model_validate(s.query)
        text = to_text(q.filter) if q.filter is not None else ""
        rows = row_ids_sql(ws, pair.a, q.filter, pair.c, pair.t, similar=q.similar) if q.filter is not None \
            or q.similar is not None else None
        out.append((s.id if s.id is not None else s.name, s.name, text, rows))
    return out
