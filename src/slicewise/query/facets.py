"""Facets for the filter panel: value counts and histograms over the rows matching the current filter.

The matching ids are computed once, handed to DuckDB as an Arrow table, and every facet is a GROUP BY
against them, so the cost is one filter plus a few scans whatever the number of facets.

>>> import tempfile, os, slicewise
>>> from slicewise.query import facets
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "split": "valid" if i % 2 else "train",
...                             "metadata": {"cam": f"c{i % 3}", "n": float(i)}} for i in range(6)])
>>> f = facets(ws, None, "split = valid")
>>> f.total, f.metadata["cam"], f.histograms["metadata.n"].counts
(3, {'c0': 1, 'c1': 1, 'c2': 1}, [0, 1, 0, 1, 0, 1])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from slicewise.errors import QueryError
from slicewise.query import facetcache
from slicewise.query.compiler import as_filter
from slicewise.query.fields import COUNT_METRICS, RATIO_METRICS
from slicewise.query.rowcache import EDGE_TOLERANCE

BINS = 10
TOP_VALUES = 50


class Histogram(BaseModel):
    """``counts[i]`` rows have a value in ``[edges[i], edges[i+1])`` (the last bin is closed);
    ``missing`` rows have no value."""

    edges: list[float]
    counts: list[int]
    missing: int = 0
    min: float | None = None
    max: float | None = None


class Facets(BaseModel):
    total: int
    split: dict[str, int] = {}
    dataset: dict[str, int] = {}
    media_type: dict[str, int] = {}
    metadata: dict[str, dict[str, int]] = {}  # string/enum field -> value -> rows (top 50 values)
    tags: dict[str, int] = {}
    batches: dict[str, int] = {}  # labelling batch -> rows in it (batch:NAME)
    queue: dict[str, int] = {}  # labelling-queue state -> rows in it (queue:STATE)
    annotations: dict[str, int] = {}  # feature -> rows with ground truth of it
    predictions: dict[str, int] = {}  # feature -> rows with a prediction of it
    histograms: dict[str, Histogram] = {}  # numeric metadata, metrics, confidence, counts, custom metrics
    confidence: float | None = None
    iou: float | None = None
    metrics_error: str | None = None  # why metric histograms are absent (e.g. not computed yet)


def facets(ws: Any, run: Any, filter: Any = None, confidence: float | None = None, iou: float | None = None,
           *, bins: int = BINS, similar: Any = None, baseline: Any = None) -> Facets:
    """Value counts of every string/enum metadata field, tag and feature, and histograms of every
    numeric metadata field, metric (at the thresholds viewed), confidence and custom metric, over the
    run's rows matching ``filter``."""
    from slicewise.query.search import compiler_for

    comp = compiler_for(ws, run, confidence, iou, similar=similar, baseline=baseline)
    node = as_filter(filter)
    if comp.cache() is not None:
        return _facets_cached(ws, comp, node, bins)
    where, params = comp.where(node)
    cur = ws.store.cursor()
    ids = cur.execute(f"SELECT r.id AS data_row_id FROM data_rows r WHERE {where}", params).arrow()
    if not isinstance(ids, pa.Table):  # duckdb >= 1.4 may return a RecordBatchReader
        ids = ids.read_all()
    cur.register("_sw_m", ids)
    m = "(SELECT data_row_id FROM _sw_m)"
    out = Facets(total=ids.num_rows, confidence=comp.confidence if comp.run_id else None,
                 iou=comp.iou if comp.run_id else None)
    try:
        # built-in row fields
        for col, target in (("split", out.split), ("media_type", out.media_type)):
            for v, n in cur.execute(f"SELECT {col}, count(*) FROM data_rows WHERE id IN {m} GROUP BY 1 ORDER BY 2 DESC, 1"
                                    ).fetchall():
                target[v] = n
        for v, n in cur.execute(f"SELECT d.name, count(*) FROM data_rows r JOIN datasets d ON d.id = r.dataset_id "
                                f"WHERE r.id IN {m} GROUP BY 1 ORDER BY 2 DESC, 1").fetchall():
            out.dataset[v] = n
        cat = comp.catalog
        strings = [k for k, (kind, _) in cat.metadata.items() if kind in ("string", "enum")]
        numbers = [k for k, (kind, _) in cat.metadata.items() if kind == "number"]
        if strings:
            for fld, v, n in cur.execute(f"""
                    SELECT field, value_string, count(*) AS n FROM row_metadata
                    WHERE list_contains(?, field) AND data_row_id IN {m} GROUP BY 1, 2
                    QUALIFY row_number() OVER (PARTITION BY field ORDER BY n DESC, value_string) <= ?
                    ORDER BY field, n DESC, value_string""", [strings, TOP_VALUES]).fetchall():
                out.metadata.setdefault(fld, {})[v] = n
            for s in strings:
                out.metadata.setdefault(s, {})
        for t, n in cur.execute(f"SELECT tag, count(DISTINCT data_row_id) n FROM tags WHERE data_row_id IN {m} "
                                "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall():
            out.tags[t] = n
        names = {v: k for k, v in cat.features.items()}
        for fid, n in cur.execute(f"SELECT feature_id, count(DISTINCT data_row_id) n FROM annotations "
                                  f"WHERE data_row_id IN {m} GROUP BY 1 ORDER BY 2 DESC, 1").fetchall():
            out.annotations[names.get(fid, str(fid))] = n
        # histograms: (name, value) pairs from several sources, binned in one pass each
        sources: list[tuple[str, list[Any], dict[str, tuple[float, float]]]] = []
        if numbers:
            sources.append((f"SELECT 'metadata.' || field AS name, value_number AS x FROM row_metadata "
                            f"WHERE list_contains(?, field) AND data_row_id IN {m}", [numbers], {}))
        if comp.run_id is not None:
            for fid, n in cur.execute(f"SELECT feature_id, count(DISTINCT data_row_id) n FROM predictions "
                                      f"WHERE run_id = ? AND data_row_id IN {m} GROUP BY 1 ORDER BY 2 DESC, 1",
                                      [comp.run_id]).fetchall():
                out.predictions[names.get(fid, str(fid))] = n
            sources.append((f"""
                SELECT name, x FROM (SELECT min(confidence) AS "confidence.min", max(confidence) AS "confidence.max",
                       avg(confidence) AS "confidence.mean" FROM predictions
                       WHERE run_id = ? AND data_row_id IN {m} GROUP BY data_row_id)
                UNPIVOT (x FOR name IN ("confidence.min", "confidence.max", "confidence.mean"))""",
                            [comp.run_id], {k: (0.0, 1.0) for k in ("confidence.min", "confidence.max",
                                                                    "confidence.mean")}))
            try:
                table = comp.metric_table("metrics", None, False)
            except QueryError as exc:
                out.metrics_error = exc.message
            else:
                cols = ", ".join(f'CAST("{c}" AS DOUBLE) AS "{c}"' for c in COUNT_METRICS + RATIO_METRICS)
                names_in = ", ".join(f'"{c}"' for c in COUNT_METRICS + RATIO_METRICS)
                sources.append((f'SELECT name, x FROM (SELECT {cols} FROM {table} WHERE data_row_id IN {m}) '
                                f"UNPIVOT (x FOR name IN ({names_in}))", [],
                                {c: (0.0, 1.0) for c in RATIO_METRICS}))
            if cat.custom:
                sources.append((f"SELECT 'metric.' || name AS name, value AS x FROM custom_metrics "
                                f"WHERE run_id = ? AND feature_id IS NULL AND data_row_id IN {m}",
                                [comp.run_id], {}))
        for sql, ps, fixed in sources:
            for name, h in _histograms(cur, sql, ps, fixed, bins).items():
                h.missing = max(out.total - sum(h.counts), 0)
                out.histograms[name] = h
        for k in numbers:
            out.histograms.setdefault(f"metadata.{k}", Histogram(edges=[], counts=[], missing=out.total))
        _embedding_histograms(ws, comp, cur, "SELECT data_row_id FROM _sw_m", [], out, bins)
        _curation_counts(cur, "SELECT data_row_id FROM _sw_m", [], out)
    finally:
        cur.unregister("_sw_m")
    return out


def _curation_counts(cur: Any, ids_sql: str, params: list[Any], out: Facets) -> None:
    """The rows per labelling batch and per queue state (see :mod:`slicewise.curation`)."""
    from slicewise.curation.filters import facet_counts

    out.batches, out.queue = facet_counts(cur, ids_sql, params)


ISLAND_FACET_MAX = 100_000  # island histograms for spaces up to this many vectors (larger ones: filter/sort only)


def _embedding_histograms(ws: Any, comp: Any, cur: Any, ids_sql: str, params: list[Any], out: Facets,
                          bins: int) -> None:
    """Histograms of the kNN label disagreement (``island``, per space) and of the similarity score (and of
    the run's label-mistake scores, see :func:`_mistake_histograms`)."""
    _mistake_histograms(ws, comp, cur, ids_sql, params, out, bins)
    cat = comp.catalog
    if not cat.spaces:
        return
    from slicewise.embeddings.islands import islands_relation

    try:
        default = cat.island_space("island")
    except QueryError:
        default = None
    sources: list[tuple[str, list[Any], dict[str, tuple[float, float]]]] = []
    sizes = {s.name: s.count for s in _spaces(ws)}
    for sp in cat.spaces:
        if sizes.get(sp, 0) > ISLAND_FACET_MAX:
            continue
        name = "island" if sp == default else f"island.{sp}"
        rel = islands_relation(ws, sp)
        sources.append((f"SELECT ? AS name, disagreement AS x FROM {rel} WHERE data_row_id IN ({ids_sql})",
                        [name] + params, {name: (0.0, 1.0)}))
    if comp.similar is not None:
        rel, rps = comp.scores()
        sources.append((f"SELECT 'similarity' AS name, CAST(score AS DOUBLE) AS x FROM {rel} WHERE id IN ({ids_sql})",
                        rps + params, {}))
    for sql, ps, fixed in sources:
        for name, h in _histograms(cur, sql, ps, fixed, bins).items():
            h.missing = max(out.total - sum(h.counts), 0)
            out.histograms[name] = h


def _mistake_histograms(ws: Any, comp: Any, cur: Any, ids_sql: str, params: list[Any], out: Facets,
                        bins: int) -> None:
    """``mistake.<detector>`` histograms of the run's label-mistake scores, once they are computed (facets
    never wait for the detectors: slicewise.mistakes.results.ready)."""
    if comp.run_id is None or comp.check_only:
        return
    from slicewise.mistakes.results import DETECTORS, ready, relation

    if not ready(ws, comp.run_id):
        return
    rel = relation(ws, comp.run_id)
    sql = f"SELECT 'mistake.' || detector AS name, score AS x FROM {rel} WHERE data_row_id IN ({ids_sql})"
    for name, h in _histograms(cur, sql, params, {f"mistake.{d}": (0.0, 1.0) for d in DETECTORS}, bins).items():
        h.missing = max(out.total - sum(h.counts), 0)
        out.histograms[name] = h


def _spaces(ws: Any) -> list[Any]:
    from slicewise.embeddings.store import spaces

    return spaces(ws)


def _facets_cached(ws: Any, comp: Any, node: Any, bins: int) -> Facets:
    """Facets over the row cache: one aggregate (count, min, max), the ids of the matching rows, one compiled
    pass over the table's facet columns kept in memory (:mod:`slicewise.query.facetcache`), and a GROUP BY for
    tag names."""
    metrics_error = None
    if comp.run_id is not None:
        try:
            comp.ensure_metrics()
        except QueryError as exc:
            metrics_error = exc.message
    where, params = comp.where(node)
    table = comp.from_table()
    rc = comp.cache()
    cat = comp.catalog
    cur = ws.store.cursor()
    strings = [k for k, (kind, _) in cat.metadata.items() if kind in ("string", "enum") and k in rc.metadata]
    cols = {"split": "split", "media_type": "media_type", "dataset": "dataset_id"}
    cols |= {f"metadata.{k}": rc.metadata[k] for k in strings}
    hist = {n: v for n, v in rc.bins.items() if n.startswith(("metadata.", "annotation.")) or comp.run_id is not None}
    value_col = {n: _value_column(n, rc) for n in hist}
    lists = ["tags", "gt_feats"] + (["pred_feats"] if comp.run_id is not None else [])
    # the count and the min and max of ranged fields in one aggregate
    ranged = [n for n in hist if not (n.startswith("confidence.") or n in RATIO_METRICS)]
    sql_from = f"FROM {table} r WHERE {where}"
    mm: tuple[Any, ...] = ()
    aggs = ", ".join(["count(*)"] + [f"min({value_col[n]}), max({value_col[n]})" for n in ranged])
    first = cur.execute(f"SELECT {aggs} {sql_from}", params).fetchone()
    total, mm = int(first[0]), tuple(first[1:])
    out = Facets(total=total, confidence=comp.confidence if comp.run_id else None,
                 iou=comp.iou if comp.run_id else None, metrics_error=metrics_error)
    # the facets' columns of the table (fetched once per table: slicewise.query.facetcache), counted over the
    # matching rows in one pass; tag names: a GROUP BY
    coded = {n: rc.codes[c] for n, c in cols.items() if c in rc.codes}
    fields = [(code, n, len(values)) for n, (code, values) in coded.items()]
    fields.append(("dataset_id", "dataset", max(cat.datasets.values(), default=0) + 1))
    fields += [(b, n, nb) for n, (b, _, _, nb) in hist.items() if n not in rc.valued]
    metric_fields = facetcache.metric_fields(rc) if any(n in rc.valued for n in hist) else []
    feature_lists = [c for c in lists if c != "tags"]
    lines, part = facetcache.base_part(ws, rc, fields, feature_lists)
    parts = [part] + ([facetcache.metric_part(ws, rc, lines)] if metric_fields else [])
    pos = None
    if where.strip() != "TRUE":
        pos = lines.positions(cur.execute(f"SELECT r.id {sql_from}", params).fetchnumpy()["id"])
    tallied, per_list = facetcache.tally(parts, pos, len(lines.ids))
    per_field = dict(zip([n for _, n, _ in fields + metric_fields], tallied, strict=True))
    counts: dict[str, dict[Any, int]] = {}
    for n, (_, values) in coded.items():
        counts[n] = _top({values[k]: c for k, c in facetcache.counts_of(per_field[n]).items()})
    by_id = {v: k for k, v in cat.datasets.items()}
    dsc = facetcache.counts_of(per_field["dataset"])
    out.split, out.media_type = counts.get("split", {}), counts.get("media_type", {})
    out.dataset = _top({by_id.get(k, str(k)): c for k, c in dsc.items()})
    out.metadata = {k: counts.get(f"metadata.{k}", {}) for k in strings}
    for n, (_, lo, hi, nb) in hist.items():
        hc = [int(x) for x in per_field[n][1:nb + 1]]
        mn, mx = mm[2 * ranged.index(n): 2 * ranged.index(n) + 2] if n in ranged else (None, None)
        out.histograms[n] = Histogram(edges=edges(lo, hi, nb), counts=hc,
                                      missing=max(total - sum(hc), 0),
                                      min=None if mn is None else float(mn), max=None if mx is None else float(mx))
    fnames = {v: k for k, v in cat.features.items()}
    out.tags = _top(dict(cur.execute(f"SELECT v, count(*) FROM (SELECT unnest(tags) AS v {sql_from}) GROUP BY v",
                                     params).fetchall()), limit=10_000)
    for col, bc in zip(feature_lists, per_list, strict=True):
        named = _top({fnames.get(int(k), str(k)): int(bc[k]) for k in np.flatnonzero(bc)}, limit=10_000)
        if col == "gt_feats":
            out.annotations = named
        else:
            out.predictions = named
    for k, (kind, _) in cat.metadata.items():
        if kind == "number":
            out.histograms.setdefault(f"metadata.{k}", Histogram(edges=[], counts=[], missing=total))
    filtered = f"(SELECT * FROM {table} r WHERE {where})"
    if comp.run_id is not None and cat.custom:
        ids = f"SELECT id FROM {filtered}"
        for name, h in _histograms(cur, f"SELECT 'metric.' || name AS name, value AS x FROM custom_metrics "
                                        f"WHERE run_id = ? AND feature_id IS NULL AND data_row_id IN ({ids})",
                                   [comp.run_id] + params, {}, bins).items():
            h.missing = max(total - sum(h.counts), 0)
            out.histograms[name] = h
    _embedding_histograms(ws, comp, cur, f"SELECT id FROM {filtered}", params, out, bins)
    _curation_counts(cur, f"SELECT id FROM {filtered}", params, out)
    return out


def edges(lo: float, hi: float, nb: int) -> list[float]:
    """The ``nb + 1`` edges of equal bins over [lo, hi], each the double nearest its decimal value
    (``lo + (hi - lo) * k / nb``: 0.3, not 0 + 3 * 0.1 = 0.30000000000000004).

    >>> edges(0.0, 1.0, 10)[3], edges(0.0, 1.0, 10)[-1]
    (0.3, 1.0)
    """
    if hi <= lo:
        return [lo] * nb + [hi]
    return [lo + (hi - lo) * k / nb for k in range(nb)] + [hi]


def _top(h: dict[Any, int], limit: int = TOP_VALUES) -> dict[Any, int]:
    items = sorted(h.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return {k: int(v) for k, v in items[:limit]}


def _value_column(name: str, rc: Any) -> str:
    """The row cache column of a binned field."""
    if name.startswith("metadata."):
        return str(rc.metadata[name[len("metadata."):]])
    if name.startswith("confidence."):
        return "conf_" + name.split(".")[1]
    return {"annotation.count": "n_gt", "prediction.count": "n_pred"}.get(name, f'"{name}"')


def _histograms(cur: Any, values_sql: str, params: list[Any], fixed: dict[Any, tuple[float, float]],
                bins: int) -> dict[Any, Histogram]:
    """Equal-width histograms per name of ``values_sql`` (columns name, x); ranges are the data's min
    and max unless ``fixed`` gives them; integer-valued fields with a small range get unit bins."""
    stats = cur.execute(f"""
        WITH v AS ({values_sql})
        SELECT name, min(x), max(x), bool_and(x = floor(x)) FROM v
        WHERE x IS NOT NULL AND isfinite(x) GROUP BY name""", params).fetchall()
    spec: dict[Any, tuple[float, float, int]] = {}
    for name, lo, hi, ints in stats:
        if name in fixed:
            lo, hi = fixed[name]
            nb = bins
        elif ints and hi - lo + 1 <= max(bins, 20):
            lo, hi, nb = float(lo), float(hi) + 1, int(hi - lo + 1)
        else:
            lo, hi, nb = float(lo), float(hi), bins
        spec[name] = (lo, hi, nb)
    out: dict[Any, Histogram] = {}
    if not spec:
        return out
    names = list(spec)
    counts = cur.execute(f"""
        WITH v AS ({values_sql}),
        s AS (SELECT unnest(?) AS name, unnest(?) AS lo, unnest(?) AS hi, unnest(?) AS nb)
        SELECT v.name, CASE WHEN s.hi = s.lo THEN 0
                            ELSE least(greatest(CAST(floor((v.x - s.lo) / (s.hi - s.lo) * s.nb + {EDGE_TOLERANCE!r}) AS BIGINT), 0),
                                                 s.nb - 1)
                       END AS bin, count(*)
        FROM v JOIN s ON s.name = v.name WHERE v.x IS NOT NULL AND isfinite(v.x) GROUP BY ALL""",
                         params + [names, [spec[n][0] for n in names], [spec[n][1] for n in names],
                                   [spec[n][2] for n in names]]).fetchall()
    for n in names:
        lo, hi, nb = spec[n]
        out[n] = Histogram(edges=edges(lo, hi, nb), counts=[0] * nb, min=None, max=None)
    for name, b, c in counts:
        out[name].counts[int(b)] += int(c)
    for name, lo, hi, _ in stats:
        out[name].min, out[name].max = float(lo), float(hi)
    return out
