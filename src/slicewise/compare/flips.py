"""How each object's outcome changed between two runs, read from both runs' stored match records (no
re-matching).

At (c, t) a label's outcome in a run is ``TP`` (matched with IoU > t to a prediction of its class),
``confusion`` (matched to a prediction of another class) or ``FN``; see :mod:`slicewise.metrics.outcomes`.
Labels are the same objects in both runs, so each label of a common row has one outcome per run. Flip types
(a label has at most one):

- ``tp->fn``: TP in the baseline, FN in the run; ``fn->tp``: the reverse;
- ``class``: the class it is matched with changed (TP <-> confusion, confusion with another class,
  FN <-> confusion);
- ``iou``: TP in both, and its IoU moved by at least ``iou_delta`` (default 0.1) either way.

Predictions are different objects in each run. A prediction kept at c that matches no label (IoU <= t, a
pure false positive) is counted per (row, predicted feature): ``fp-new`` is how many more such FPs the run has
there than the baseline, ``fp-gone`` how many fewer (the gallery shows both runs' predictions to see which).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slicewise.metrics.records import Rows, rows_clause

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

#: flip types: name in filters (``flip:tp->fn``) -> column of the flips table
FLIPS = {"tp->fn": "tp_fn", "fn->tp": "fn_tp", "fp-new": "fp_new", "fp-gone": "fp_gone", "class": "class_changed",
         "iou": "iou_moved"}
#: accepted spellings
FLIP_ALIASES = {"tp-fn": "tp->fn", "fn-tp": "fn->tp", "tp_fn": "tp->fn", "fn_tp": "fn->tp", "fp_new": "fp-new",
                "new-fp": "fp-new", "fp_gone": "fp-gone", "gone-fp": "fp-gone", "class-changed": "class",
                "class_changed": "class", "iou-moved": "iou", "iou_moved": "iou", "any": "any"}
IOU_DELTA = 0.1


def flip_name(name: str) -> str:
    """The canonical flip type of a spelling (``tp-fn`` -> ``tp->fn``), or the input unchanged."""
    low = str(name).strip().lower()
    return FLIP_ALIASES.get(low, low)


def _labels_sql(a: int, ka: int, b: int, kb: int, t: float, common: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    """Every label of the common rows with its outcome in the baseline (``oa``, matched class ``pa``, ``ia``) and
    the run (``ob``, ``pb``, ``ib``). Classes are compared by name: a radio answer's class id is per run."""
    sql = f"""
      WITH common AS ({common[0]}),
      la AS (SELECT gt_id, data_row_id, true_feature, true_class, pred_class, iou, pred_id,
                    pred_id IS NOT NULL AND iou > ? AS m
             FROM match_records WHERE run_id = ? AND conf_idx = ? AND gt_id IS NOT NULL
               AND data_row_id IN (SELECT data_row_id FROM common)),
      lb AS (SELECT gt_id, true_class, pred_class, iou, pred_id, pred_id IS NOT NULL AND iou > ? AS m
             FROM match_records WHERE run_id = ? AND conf_idx = ? AND gt_id IS NOT NULL
               AND data_row_id IN (SELECT data_row_id FROM common)),
      ca AS (SELECT class_id, name FROM metric_classes WHERE run_id = ?),
      cb AS (SELECT class_id, name FROM metric_classes WHERE run_id = ?)
      SELECT la.gt_id, la.data_row_id, la.true_feature AS feature_id,
             CASE WHEN NOT la.m THEN 'FN' WHEN la.pred_class = la.true_class THEN 'TP' ELSE 'confusion' END AS oa,
             CASE WHEN la.m THEN pa_.name END AS pa, la.iou AS ia, la.pred_id AS pida,
             CASE WHEN NOT lb.m THEN 'FN' WHEN lb.pred_class = lb.true_class THEN 'TP' ELSE 'confusion' END AS ob,
             CASE WHEN lb.m THEN pb_.name END AS pb, lb.iou AS ib, lb.pred_id AS pidb
      FROM la JOIN lb USING (gt_id)
           LEFT JOIN ca pa_ ON pa_.class_id = la.pred_class LEFT JOIN cb pb_ ON pb_.class_id = lb.pred_class"""
    return sql, [*common[1], t, a, ka, t, b, kb, a, b]


def _flip_case(iou_delta: float) -> tuple[str, list[Any]]:
    return ("""CASE WHEN oa = 'TP' AND ob = 'FN' THEN 'tp->fn'
                    WHEN oa = 'FN' AND ob = 'TP' THEN 'fn->tp'
                    WHEN (oa = 'confusion' OR ob = 'confusion') AND NOT (pa IS NOT DISTINCT FROM pb) THEN 'class'
                    WHEN oa = 'TP' AND ob = 'TP' AND abs(ib - ia) >= ? THEN 'iou' END""", [iou_delta])


def flips_table_sql(a: int, ka: int, b: int, kb: int, t: float, common: tuple[str, list[Any]],
                    iou_delta: float = IOU_DELTA) -> tuple[str, list[Any]]:
    """SQL of the flips per (data_row_id, feature_id): one count column per flip type (``FLIPS``'s
    columns) and ``flips``, their sum; only lines with at least one flip."""
    lab, lp = _labels_sql(a, ka, b, kb, t, common)
    case, cp = _flip_case(iou_delta)
    sql = f"""
      WITH lab AS ({lab}),
      lf AS (SELECT data_row_id, feature_id, {case} AS flip FROM lab),
      lsum AS (SELECT data_row_id, feature_id,
                      count(*) FILTER (WHERE flip = 'tp->fn') AS tp_fn, count(*) FILTER (WHERE flip = 'fn->tp') AS fn_tp,
                      count(*) FILTER (WHERE flip = 'class') AS class_changed,
                      count(*) FILTER (WHERE flip = 'iou') AS iou_moved
               FROM lf WHERE flip IS NOT NULL GROUP BY ALL),
      common AS ({common[0]}),
      fa AS (SELECT data_row_id, pred_feature AS feature_id, count(*) AS n FROM match_records
             WHERE run_id = ? AND conf_idx = ? AND pred_id IS NOT NULL AND NOT (gt_id IS NOT NULL AND iou > ?)
               AND data_row_id IN (SELECT data_row_id FROM common) GROUP BY ALL),
      fb AS (SELECT data_row_id, pred_feature AS feature_id, count(*) AS n FROM match_records
             WHERE run_id = ? AND conf_idx = ? AND pred_id IS NOT NULL AND NOT (gt_id IS NOT NULL AND iou > ?)
               AND data_row_id IN (SELECT data_row_id FROM common) GROUP BY ALL),
      fp AS (SELECT coalesce(fa.data_row_id, fb.data_row_id) AS data_row_id,
                    coalesce(fa.feature_id, fb.feature_id) AS feature_id,
                    greatest(coalesce(fb.n, 0) - coalesce(fa.n, 0), 0) AS fp_new,
                    greatest(coalesce(fa.n, 0) - coalesce(fb.n, 0), 0) AS fp_gone
             FROM fa FULL JOIN fb ON fa.data_row_id = fb.data_row_id AND fa.feature_id = fb.feature_id),
      allf AS (SELECT coalesce(l.data_row_id, p.data_row_id) AS data_row_id,
                      coalesce(l.feature_id, p.feature_id)::INTEGER AS feature_id,
                      coalesce(l.tp_fn, 0)::INTEGER AS tp_fn, coalesce(l.fn_tp, 0)::INTEGER AS fn_tp,
                      coalesce(p.fp_new, 0)::INTEGER AS fp_new, coalesce(p.fp_gone, 0)::INTEGER AS fp_gone,
                      coalesce(l.class_changed, 0)::INTEGER AS class_changed,
                      coalesce(l.iou_moved, 0)::INTEGER AS iou_moved
               FROM lsum l FULL JOIN (SELECT * FROM fp WHERE fp_new > 0 OR fp_gone > 0) p
                 ON l.data_row_id = p.data_row_id AND l.feature_id = p.feature_id)
      SELECT *, (tp_fn + fn_tp + fp_new + fp_gone + class_changed + iou_moved)::INTEGER AS flips FROM allf"""
    return sql, [*lp, *cp, *common[1], a, ka, t, b, kb, t]


def label_flips(ws: Workspace, a: int, ka: int, b: int, kb: int, t: float, common: tuple[str, list[Any]],
                rows: Rows = None, *, flip: str | None = None, iou_delta: float = IOU_DELTA, limit: int = 1000
                ) -> list[dict[str, Any]]:
    """The labels of the common rows (of ``rows``) whose outcome changed, by data row and label id."""
    lab, lp = _labels_sql(a, ka, b, kb, t, common)
    case, cp = _flip_case(iou_delta)
    clause, rp = rows_clause(rows)
    fcond = " AND flip = ?" if flip is not None else ""
    got = ws.store.cursor().execute(f"""
        WITH lab AS ({lab}), lf AS (SELECT *, {case} AS flip FROM lab)
        SELECT lf.gt_id, lf.data_row_id, d.global_key, f.name, lf.oa, lf.pa, lf.ia, lf.pida, lf.ob, lf.pb, lf.ib,
               lf.pidb, lf.flip
        FROM lf JOIN data_rows d ON d.id = lf.data_row_id JOIN features f ON f.id = lf.feature_id
        WHERE flip IS NOT NULL {clause}{fcond} ORDER BY lf.data_row_id, lf.gt_id LIMIT ?""",
        [*lp, *cp, *rp, *([flip] if flip is not None else []), int(limit)]).fetchall()
    out = []
    for gid, rid, key, feat, oa, ca, ia, pa, ob, cb, ib, pb, fl in got:
        out.append({"label_id": int(gid), "data_row_id": int(rid), "global_key": key, "feature": feat, "flip": fl,
                    "baseline": {"outcome": oa, "class": ca, "iou": _f(ia), "prediction_id": _i(pa)},
                    "run": {"outcome": ob, "class": cb, "iou": _f(ib), "prediction_id": _i(pb)}})
    return out


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _i(v: Any) -> int | None:
    return None if v is None else int(v)
