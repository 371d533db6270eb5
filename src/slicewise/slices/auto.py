"""Auto-generated slices of a run: stored queries with parameters, one set per run that has ground truth.

They do not count towards the 100 user slices and cannot be deleted; their parameters come from the
run's config key ``auto_slices`` (``low_metric`` 0.5, ``low_confidence`` 0.5, ``mislabel_confidence``
0.9), changed with :func:`set_auto_params`.

=====================  =====================================================  ====================
slice                  filter (metrics at the thresholds viewed)               sort
=====================  =====================================================  ====================
True positives         ``tp > 0``                                              tp, descending
False positives        ``fp > 0``                                              fp, descending
False negatives        ``fn > 0``                                              fn, descending
True negatives         ``tp = 0 and fp = 0 and fn = 0`` (no label, silent)      global key
Low precision          ``precision < low_metric``                              precision, ascending
Low recall             ``recall < low_metric``                                 recall, ascending
Low F1                 ``f1 < low_metric``                                     f1, ascending
Low confidence         ``confidence.min < low_confidence``                     confidence.min, asc.
Candidate mislabels    ``fp@mislabel_confidence > 0`` (a prediction at least   confidence.max, desc.
                       that confident is unmatched: a false positive or a
                       class confusion)
Islands                ``island > island_disagreement`` (0.5): most of the     island, descending
                       row's nearest neighbours in the embedding space have
                       another label (only when the workspace has a space;
                       see slicewise.embeddings.islands)
=====================  =====================================================  ====================
"""

from __future__ import annotations

import json
from typing import Any

from slicewise.errors import QueryError
from slicewise.query import And, Cond, Query, Sort
from slicewise.query.search import fresh_run
from slicewise.slices.store import COLUMNS, Slice, counted, dump_query, slice_from_row, utc_now

DEFAULTS = {"low_metric": 0.5, "low_confidence": 0.5, "mislabel_confidence": 0.9}
ISLAND_DEFAULTS = {"island_disagreement": 0.5}  # present when the workspace has an embedding space
KEYS = ("true-positive", "false-positive", "false-negative", "true-negative", "low-precision", "low-recall",
        "low-f1", "low-confidence", "candidate-mislabels")


def has_islands(ws: Any) -> bool:
    """Whether the query field ``island`` resolves (an embedding space to take it from)."""
    from slicewise.query.fields import Catalog

    cat = ws.state.memo(("catalog", None), Catalog.TOPICS, lambda: Catalog(ws, None))
    try:
        cat.island_space("island")
    except QueryError:
        return False
    return True


def keys_for(ws: Any) -> tuple[str, ...]:
    return KEYS + (("islands",) if has_islands(ws) else ())


def auto_params(ws: Any, run: Any) -> dict[str, float]:
    """The run's auto-slice parameters (defaults merged with config ``auto_slices``), the mislabel
    confidence snapped up to the run's confidence grid (the metrics exist only at grid values)."""
    r = fresh_run(ws, run)
    p = {**DEFAULTS, **(ISLAND_DEFAULTS if has_islands(ws) else {}), **(r.config.get("auto_slices") or {})}
    if not has_islands(ws):
        p.pop("island_disagreement", None)
    try:
        from slicewise import metrics

        grid = sorted(metrics.grids(ws, r)[0])
    except Exception:  # noqa: BLE001 - no metrics engine: keep the value as given
        grid = []
    if grid:
        mc = p["mislabel_confidence"]
        p["mislabel_confidence"] = next((g for g in grid if g >= mc - 1e-12), grid[-1])
    return {k: float(v) for k, v in p.items()}


def set_auto_params(ws: Any, run: Any, **params: float) -> list[Slice]:
    """Change the auto slices' parameters for a run (e.g. ``low_confidence=0.4``) and re-store them."""
    bad = set(params) - set(DEFAULTS) - set(ISLAND_DEFAULTS)
    if bad:
        raise QueryError(f"unknown auto-slice parameter(s) {sorted(bad)}",
                         fix=f"use {sorted(DEFAULTS) + sorted(ISLAND_DEFAULTS)}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise QueryError(f"{k} = {v!r} is not a number in [0, 1]", where=k, fix="give e.g. 0.5")
    r = fresh_run(ws, run)
    ws.update_run_config(r, auto_slices={**(r.config.get("auto_slices") or {}), **params})
    return auto_slices(ws, r, with_counts=False)


def definitions(p: dict[str, float]) -> dict[str, tuple[str, Query]]:
    """auto key -> (name, query) for parameters ``p``."""
    def q(f: Any, field: str, desc: bool) -> Query:
        return Query(filter=f, sort=[Sort(field=field, desc=desc)])

    zero: list[Any] = [Cond(field=m, op="=", value=0) for m in ("tp", "fp", "fn")]
    islands = {"islands": ("Islands", q(Cond(field="island", op=">", value=p["island_disagreement"]), "island", True))} \
        if "island_disagreement" in p else {}
    return {
        "true-positive": ("True positives", q(Cond(field="tp", op=">", value=0), "tp", True)),
        "false-positive": ("False positives", q(Cond(field="fp", op=">", value=0), "fp", True)),
        "false-negative": ("False negatives", q(Cond(field="fn", op=">", value=0), "fn", True)),
        "true-negative": ("True negatives", q(And(all=zero), "global_key", False)),
        "low-precision": ("Low precision", q(Cond(field="precision", op="<", value=p["low_metric"]), "precision", False)),
        "low-recall": ("Low recall", q(Cond(field="recall", op="<", value=p["low_metric"]), "recall", False)),
        "low-f1": ("Low F1", q(Cond(field="f1", op="<", value=p["low_metric"]), "f1", False)),
        "low-confidence": ("Low confidence", q(Cond(field="confidence.min", op="<", value=p["low_confidence"]),
                                               "confidence.min", False)),
        "candidate-mislabels": ("Candidate mislabels", q(
            Cond(field="fp", op=">", value=0, at_confidence=p["mislabel_confidence"]), "confidence.max", True)),
    } | islands


def has_ground_truth(ws: Any, run: Any) -> bool:
    """Whether any row of the run has a label (remembered until labels or the run's rows change)."""
    run_id = ws.run(run).id if not hasattr(run, "id") else run.id

    def look() -> bool:
        row = ws.store.cursor().execute(
            "SELECT EXISTS (SELECT 1 FROM annotations WHERE data_row_id IN "
            "(SELECT data_row_id FROM run_rows WHERE run_id = ?))", [run_id]).fetchone()
        return bool(row and row[0])

    return ws.state.memo(("has-ground-truth", run_id), ["labels", f"run_rows:{run_id}"], look)


def auto_slices(ws: Any, run: Any, confidence: float | None = None, iou: float | None = None, *,
                with_counts: bool = True) -> list[Slice]:
    """The run's auto slices (stored on first call), each with its count at the thresholds viewed
    (``count`` is None while the run's metrics are not computed). Empty for a run without ground truth."""
    r = fresh_run(ws, run)
    if not has_ground_truth(ws, r):
        return []
    p = auto_params(ws, r)
    want = definitions(p)
    keys = keys_for(ws) if "island_disagreement" in p else KEYS
    cur = ws.store.cursor()
    have = {row[5]: row for row in cur.execute(
        f"SELECT {COLUMNS} FROM slices WHERE run_id = ? AND auto_key IS NOT NULL", [r.id]).fetchall()}
    params_json = json.dumps(p, sort_keys=True)
    stale = [k for k in keys if k not in have or have[k][3] != dump_query(want[k][1]) or have[k][6] != params_json]
    if stale and not ws.store.read_only:
        with ws.store.transaction() as con:  # (look again as the writer: another thread may have stored them)
            have = {row[5]: row for row in con.execute(
                f"SELECT {COLUMNS} FROM slices WHERE run_id = ? AND auto_key IS NOT NULL", [r.id]).fetchall()}
            stale = [k for k in keys if k not in have or have[k][3] != dump_query(want[k][1]) or have[k][6] != params_json]
            if stale:
                ws.store.touch("slices")
            now = utc_now()
            for k in stale:
                name, q = want[k]
                if k in have:
                    con.execute("UPDATE slices SET query = ?, params = ?, updated_at = ? WHERE id = ?",
                                [dump_query(q), params_json, now, have[k][0]])
                else:
                    con.execute("INSERT INTO slices VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                                [ws.store.next_id("slices"), name, dump_query(q), r.id, k, params_json, now, now])
        have = {row[5]: row for row in ws.store.cursor().execute(
            f"SELECT {COLUMNS} FROM slices WHERE run_id = ? AND auto_key IS NOT NULL", [r.id]).fetchall()}
    out = []
    for k in keys:
        if k in have and k not in stale or (k in have and not ws.store.read_only):
            s = slice_from_row(have[k])
        else:  # read-only workspace: serve the definition without storing it
            name, q = want[k]
            now = utc_now()
            s = slice_from_row((0, name, None, dump_query(q), r.id, k, params_json, now, now))
        out.append(s)
    return counted(ws, out, r, confidence, iou) if with_counts else out


def auto_slice(ws: Any, run: Any, key: str) -> Slice:
    """One auto slice of a run by key (``false-positive``...) or name (``False positives``)."""
    for s in auto_slices(ws, run, with_counts=False):
        if key in (s.auto_key, s.name) or key.lower() == s.name.lower():
            return s
    from slicewise.query.fields import did_you_mean

    raise QueryError(f"no auto slice {key!r} for this run", where="slice",
                     fix=did_you_mean(key, list(keys_for(ws))) or "the run needs ground truth; keys: " + ", ".join(keys_for(ws)))
