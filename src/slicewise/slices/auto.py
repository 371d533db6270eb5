"""Auto-generated slices of a run: stored queries with explicit parameters, one set per run that has ground truth.

They do not count towards the 100 user slices and cannot be deleted; their parameters come from the
run's config key ``auto_slices`` (``low_metric`` 0.5, ``low_confidence`` 0.5, ``mislabel_confidence``
0.9), changed with :func:`set_auto_params`. Every auto slice carries its parameters (``params``) and says
what it holds with them in ``description`` (e.g. "FP with confidence >= 0.9: ...").

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
Low-recall classes     ``has:A or has:B ...``: rows labelled with a class       recall, ascending
                       whose recall over the whole run is below low_metric
                       (the seed's "recall for a specific class is low"), at
                       the run's chosen thresholds (``view_confidence`` /
                       ``view_iou``, else the grid values nearest 0.5)
Label mistakes (D)     ``mistake.D.flagged = 1`` for each label-mistake        mistake.D, descending
                       detector D (cleanlab, knn, combined) that can score
                       the run (see slicewise.mistakes)
=====================  =====================================================  ====================

The row-level slices (Low precision / recall / F1) read the mean over the row's features; "Low-recall
classes" is the per-class reading. The mislabel confidence is **not** moved when the confidence grid
changes: metrics exist only at grid values, so when the grid no longer holds it the slice keeps its
parameter, has no count, and its ``note`` says so (put the value back on the grid or choose a grid value
with :func:`set_auto_params`). Before, the parameter snapped silently to the grid (``fp@0.9`` became
``fp@0.6`` after a grid edit, and the count went from 1 to 29).
"""

from __future__ import annotations

import json
from typing import Any

from slicewise.errors import QueryError, SlicewiseError
from slicewise.query import And, Cond, Has, Or, Query, Sort
from slicewise.query.search import fresh_run
from slicewise.slices.store import COLUMNS, Slice, counted, dump_query, slice_from_row, utc_now

DEFAULTS = {"low_metric": 0.5, "low_confidence": 0.5, "mislabel_confidence": 0.9}
ISLAND_DEFAULTS = {"island_disagreement": 0.5}  # present when the workspace has an embedding space
KEYS = ("true-positive", "false-positive", "false-negative", "true-negative", "low-precision", "low-recall",
        "low-f1", "low-confidence", "candidate-mislabels", "low-recall-classes")


def _num(v: float) -> str:
    return f"{float(v):g}"


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
    """The run's auto-slice parameters as set (defaults merged with config ``auto_slices``; the island
    parameter only when the workspace has an embedding space)."""
    r = fresh_run(ws, run)
    known = {**DEFAULTS, **(ISLAND_DEFAULTS if has_islands(ws) else {})}
    p = {**known, **(r.config.get("auto_slices") or {})}
    return {k: float(v) for k, v in p.items() if k in known}


def _grid(ws: Any, r: Any) -> tuple[float, ...]:
    try:
        from slicewise import metrics

        return tuple(sorted(metrics.grids(ws, r)[0]))
    except SlicewiseError:
        return ()


def grid_note(ws: Any, run: Any, p: dict[str, float] | None = None) -> str | None:
    """Why the mislabel confidence cannot be evaluated on the run's confidence grid (None when it can)."""
    r = fresh_run(ws, run)
    p = p or auto_params(ws, r)
    grid = _grid(ws, r)
    mc = p["mislabel_confidence"]
    if not grid or any(abs(g - mc) <= 1e-9 for g in grid):
        return None
    up = next((g for g in grid if g >= mc), None)
    hint = f"set it to {_num(up)}" if up is not None else f"set it to {_num(grid[-1])} (the highest grid value)"
    return (f"the mislabel confidence {_num(mc)} is not on the run's confidence grid "
            f"({', '.join(_num(g) for g in grid)}): metrics exist only at grid values, so this slice has no "
            f"count; add {_num(mc)} to the grid, or {hint}")


def set_auto_params(ws: Any, run: Any, **params: float) -> list[Slice]:
    """Change the auto slices' parameters for a run (e.g. ``low_confidence=0.4``) and re-store them.
    A mislabel confidence must be a value of the run's confidence grid."""
    bad = set(params) - set(DEFAULTS) - set(ISLAND_DEFAULTS)
    if bad:
        raise QueryError(f"unknown auto-slice parameter(s) {sorted(bad)}",
                         fix=f"use {sorted(DEFAULTS) + sorted(ISLAND_DEFAULTS)}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise QueryError(f"{k} = {v!r} is not a number in [0, 1]", where=k, fix="give e.g. 0.5")
    r = fresh_run(ws, run)
    if "mislabel_confidence" in params:
        note = grid_note(ws, r, {**auto_params(ws, r), "mislabel_confidence": float(params["mislabel_confidence"])})
        if note:
            raise QueryError(note, where="mislabel_confidence", fix="pick a value of the run's confidence grid")
    ws.update_run_config(r, auto_slices={**(r.config.get("auto_slices") or {}), **params})
    return auto_slices(ws, r, with_counts=False)


def class_recalls(ws: Any, run: Any) -> tuple[dict[str, float], float, float] | None:
    """(feature name -> recall of the whole run, c, t) at the run's chosen thresholds, for the features
    with labels (None when the run's metrics are not computed). Remembered until metrics or settings change."""
    from slicewise.query.search import thresholds

    r = fresh_run(ws, run)

    def look() -> tuple[dict[str, float], float, float] | None:
        from slicewise import metrics

        try:
            c, t = thresholds(ws, r)
            fm = metrics.feature_metrics(ws, r, c, t, warn=False)
        except SlicewiseError:
            return None
        return {f.feature: float(f.recall) for f in fm.features if f.recall is not None}, float(c), float(t)

    return ws.state.memo(("class-recalls", r.id), [f"metrics:{r.id}", f"runs:{r.id}", "labels", "features"], look)


def definitions(p: dict[str, float], recalls: tuple[dict[str, float], float, float] | None = None
                ) -> dict[str, tuple[str, Query, str]]:
    """auto key -> (name, query, description with the parameters) for parameters ``p`` (and the run's class
    recalls, see :func:`class_recalls`, for the per-class slice)."""
    def q(f: Any, field: str, desc: bool) -> Query:
        return Query(filter=f, sort=[Sort(field=field, desc=desc)])

    lm, lc, mc = _num(p["low_metric"]), _num(p["low_confidence"]), _num(p["mislabel_confidence"])
    zero: list[Any] = [Cond(field=m, op="=", value=0) for m in ("tp", "fp", "fn")]
    out = {
        "true-positive": ("True positives", q(Cond(field="tp", op=">", value=0), "tp", True),
                          "TP > 0: rows where a prediction matches a label of its class (IoU above t)"),
        "false-positive": ("False positives", q(Cond(field="fp", op=">", value=0), "fp", True),
                           "FP > 0: rows with a prediction kept at c that matches no label of its class"),
        "false-negative": ("False negatives", q(Cond(field="fn", op=">", value=0), "fn", True),
                           "FN > 0: rows with a label that no prediction of its class matches"),
        "true-negative": ("True negatives", q(And(all=zero), "global_key", False),
                          "TP = FP = FN = 0: rows with no label and no prediction kept at c"),
        "low-precision": ("Low precision", q(Cond(field="precision", op="<", value=p["low_metric"]), "precision", False),
                          f"precision < {lm}: the mean over the row's features"),
        "low-recall": ("Low recall", q(Cond(field="recall", op="<", value=p["low_metric"]), "recall", False),
                       f"recall < {lm}: the mean over the row's features"),
        "low-f1": ("Low F1", q(Cond(field="f1", op="<", value=p["low_metric"]), "f1", False),
                   f"F1 < {lm}: the mean over the row's features"),
        "low-confidence": ("Low confidence", q(Cond(field="confidence.min", op="<", value=p["low_confidence"]),
                                               "confidence.min", False),
                           f"a prediction with confidence < {lc}"),
        "candidate-mislabels": ("Candidate mislabels", q(
            Cond(field="fp", op=">", value=0, at_confidence=p["mislabel_confidence"]), "confidence.max", True),
            f"FP with confidence >= {mc}: a prediction at least {mc} confident matches no label of its class "
            "(a false positive or a class confusion)"),
    }
    if recalls is None:
        low: list[str] = []
        desc = f"rows labelled with a class whose recall in the run is below {lm} (metrics not computed yet)"
    else:
        rec, c, t = recalls
        low = sorted(f for f, v in rec.items() if v < p["low_metric"])
        at = f"at confidence {_num(c)}, IoU {_num(t)}"
        desc = (f"rows labelled with a class whose recall in the run is below {lm} ({at}): "
                + (", ".join(f"{f} {rec[f]:.3f}" for f in low) if low else "none"))
    flt: Any = Or(any=[Has(what="annotation", name=f) for f in low]) if len(low) > 1 else \
        Has(what="annotation", name=low[0]) if low else Cond(field="annotation.count", op="<", value=0)
    out["low-recall-classes"] = ("Low-recall classes", q(flt, "recall", False), desc)
    if "island_disagreement" in p:
        d = _num(p["island_disagreement"])
        out["islands"] = ("Islands", q(Cond(field="island", op=">", value=p["island_disagreement"]), "island", True),
                          f"island > {d}: more than {d} of the row's nearest neighbours in the embedding space "
                          "carry another label (a candidate mislabel, or a cluster the labels split)")
    return out


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
    recalls = class_recalls(ws, r)
    want = definitions(p, recalls)
    from slicewise.mistakes.results import auto_definitions

    mistakes = auto_definitions(ws, r.id)  # "Label mistakes (cleanlab)"...: see slicewise.mistakes
    want.update(mistakes)
    keys = KEYS + (("islands",) if "islands" in want else ()) + tuple(mistakes)
    cur = ws.store.cursor()
    have = {row[5]: row for row in cur.execute(
        f"SELECT {COLUMNS} FROM slices WHERE run_id = ? AND auto_key IS NOT NULL", [r.id]).fetchall()}
    params_json = json.dumps(p, sort_keys=True)

    def outdated(k: str) -> bool:
        return k not in have or have[k][3] != dump_query(want[k][1]) or have[k][6] != params_json \
            or have[k][2] != want[k][2]

    stale = [k for k in keys if outdated(k)]
    if stale and not ws.store.read_only:
        with ws.store.transaction() as con:  # (look again as the writer: another thread may have stored them)
            have = {row[5]: row for row in con.execute(
                f"SELECT {COLUMNS} FROM slices WHERE run_id = ? AND auto_key IS NOT NULL", [r.id]).fetchall()}
            stale = [k for k in keys if outdated(k)]
            if stale:
                ws.store.touch("slices")
            now = utc_now()
            for k in stale:
                name, q, desc = want[k]
                if k in have:
                    con.execute("UPDATE slices SET query = ?, params = ?, description = ?, updated_at = ? WHERE id = ?",
                                [dump_query(q), params_json, desc, now, have[k][0]])
                else:
                    con.execute("INSERT INTO slices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [ws.store.next_id("slices"), name, desc, dump_query(q), r.id, k, params_json, now, now])
        have = {row[5]: row for row in ws.store.cursor().execute(
            f"SELECT {COLUMNS} FROM slices WHERE run_id = ? AND auto_key IS NOT NULL", [r.id]).fetchall()}
    out = []
    for k in keys:
        if k in have and k not in stale or (k in have and not ws.store.read_only):
            s = slice_from_row(have[k])
        else:  # read-only workspace: serve the definition without storing it
            name, q, desc = want[k]
            now = utc_now()
            s = slice_from_row((0, name, desc, dump_query(q), r.id, k, params_json, now, now))
        note = grid_note(ws, r, p) if k == "candidate-mislabels" else None
        out.append(s.model_copy(update={"note": note}) if note else s)
    if not with_counts:
        return out
    from slicewise.mistakes.results import NOT_READY, ready

    lazy = set() if not mistakes or ready(ws, r) else set(mistakes)  # counting them would run the detectors
    done = iter(counted(ws, [s for s in out if s.auto_key not in lazy], r, confidence, iou))
    return [s.model_copy(update={"count": None, "note": NOT_READY}) if s.auto_key in lazy else next(done) for s in out]


def auto_slice(ws: Any, run: Any, key: str) -> Slice:
    """One auto slice of a run by key (``false-positive``...) or name (``False positives``)."""
    for s in auto_slices(ws, run, with_counts=False):
        if key in (s.auto_key, s.name) or key.lower() == s.name.lower():
            return s
    from slicewise.query.fields import did_you_mean

    raise QueryError(f"no auto slice {key!r} for this run", where="slice",
                     fix=did_you_mean(key, list(keys_for(ws))) or "the run needs ground truth; keys: " + ", ".join(keys_for(ws)))
