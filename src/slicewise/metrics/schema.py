"""The metrics area's tables (migrations of the ``metrics`` area; never edit a released one).

- ``metric_jobs``: one row per run: state, progress, error, and the settings it was computed with.
- ``metric_row_revs``: the (label_rev, pred_rev) of each data row when its records were computed;
  a difference with ``data_rows.label_rev`` / ``run_rows.pred_rev`` makes the run stale.
- ``match_records``: the long table of match records: for every confidence index of the grid, one
  record per matched pair of the full greedy pass (pred and gt set, with their IoU), per unmatched
  kept prediction (gt NULL) and per unmatched annotation (pred NULL). A pair is a match at IoU
  threshold t exactly when ``iou > t``.
- ``metric_feature_iou``: the overlap-quality ``iou`` per (conf index, data row, feature).
- ``metric_classes``: the classes of a run's confusion matrix: one per object feature, one per
  (feature, answer) for radio and checklist features.
- ``metric_views``: the cache of materialised per-(c, t) tables.
- ``custom_metrics``: user-uploaded scalar metrics.
- (2) ``metric_rf``: per (conf index, data row, feature) the counts, confidence stats and iou that do
  not depend on t, numbered ``rf_ord`` within a conf index; ``metric_tp``: the IoU of every same-class
  recorded pair, by ``rf_ord``. A new (c, t) is then a count of IoUs above t, in NumPy.
- (3) ``metric_row_const``: the per-row constants of each conf index.
- (4) ``run_ontology``: a run's ontology: the features it predicts, each with the media types
  (``image``, ``text``) and datasets (NULL: any) it applies to; ``explicit`` when set with
  :func:`slicewise.metrics.set_ontology`, else derived from the run's predictions and the labels of its
  rows (rewritten by every metrics job). Existing runs are backfilled here with the derived ontology.
  A row's TN counts only the run's ontology features applicable to the row (see
  :mod:`slicewise.metrics.ontologies`).
- (5) ``metric_feature_iou`` is dropped: its ``iou`` is metric_rf's (a job wrote the same lines twice).
  ``match_records`` becomes a view over ``match_spans``, which holds each record once for the consecutive
  conf indexes ``k_lo <= conf_idx < k_hi`` where it is the same (most predictions keep their match at
  every level where they are kept: about 4.5x fewer rows to write); the view lists them per conf index as
  before, in the same order. Existing records become one span each. Likewise ``metric_rf`` becomes a view
  over ``metric_lines`` (each line once for the conf indexes ``k_lo <= conf_idx < k_hi`` where it is present
  with the same values); the view numbers the lines ``rf_ord`` in (row, feature) order within a conf index.
- (6) Generations: ``match_spans``, ``metric_lines``, ``metric_tp``, ``metric_row_const`` and ``metric_row_revs``
  get ``gen``, the generation of the job that wrote the line, and ``metric_jobs`` gets ``records_gen``, the
  generation readers see (existing lines and jobs: 0). A full job writes a new generation in committed chunks
  and makes it current in one last transaction; readers filter on it (:mod:`slicewise.metrics.records`), and
  the views ``match_records`` and ``metric_rf`` list the current generation's lines only.
- (7) ``metric_tp`` is dropped: its pairs (the IoU of every same-class pair, by ``rf_ord``) are the records of
  ``match_spans`` with both sides of one class, read from there on their lines (a job wrote them twice, once
  per conf index; and an incremental job renumbered all of them in one transaction).
"""

from __future__ import annotations

from typing import Any

from slicewise.store.database import Step

#: the ontology a run's data implies: per (run, feature) the media types and datasets of the rows where the
#: feature is predicted by the run or labelled on a row of the run ({run}: a condition on ``run_id``)
DERIVED_ONTOLOGY_SQL = """
SELECT run_id, feature_id, list_sort(list_distinct(list(media_type))), list_sort(list_distinct(list(dataset_id))),
       FALSE
FROM (SELECT p.run_id, p.feature_id, d.media_type, d.dataset_id
      FROM predictions p JOIN data_rows d ON d.id = p.data_row_id
      UNION ALL
      SELECT rr.run_id, a.feature_id, d.media_type, d.dataset_id
      FROM annotations a JOIN run_rows rr ON rr.data_row_id = a.data_row_id JOIN data_rows d ON d.id = a.data_row_id)
WHERE {run}
GROUP BY run_id, feature_id"""

#: the same, with each (run, feature, media type, dataset) once before the lists are made (a list of every
#: prediction's media type is as long as the run: 0.4 GB of memory at 2M rows for a few distinct values)
DERIVED_ONTOLOGY_DISTINCT_SQL = DERIVED_ONTOLOGY_SQL.replace(
    "FROM (SELECT p.run_id", "FROM (SELECT DISTINCT p.run_id").replace(
    "UNION ALL\n      SELECT rr.run_id", "UNION\n      SELECT DISTINCT rr.run_id")
assert DERIVED_ONTOLOGY_DISTINCT_SQL.count("DISTINCT") == 2

#: the match records of every conf index from their spans (the columns of the table match_records was)
MATCH_RECORDS_SQL = """
SELECT run_id, conf_idx::SMALLINT AS conf_idx, data_row_id, pred_id, gt_id, pred_class, true_class, pred_feature,
       true_feature, iou, confidence
FROM (SELECT *, unnest(range(k_lo, k_hi)) AS conf_idx FROM match_spans)"""
#: the lines of every conf index from their spans, numbered (the columns of the table metric_rf was)
METRIC_RF_SQL = """
SELECT run_id, conf_idx::SMALLINT AS conf_idx,
       (row_number() OVER (PARTITION BY run_id, conf_idx ORDER BY data_row_id, feature_id) - 1)::INTEGER AS rf_ord,
       data_row_id, feature_id, n_pred, n_gt, conf_min, conf_max, conf_sum, iou
FROM (SELECT *, unnest(range(k_lo, k_hi)) AS conf_idx FROM metric_lines)"""
#: (6) the same, of the current generation of each run's lines only (metric_jobs.records_gen)
_CURRENT = "SEMI JOIN metric_jobs j ON j.run_id = s.run_id AND j.records_gen = s.gen"
MATCH_RECORDS_GEN_SQL = MATCH_RECORDS_SQL.replace(
    "FROM match_spans)", f"FROM match_spans s {_CURRENT})").replace("SELECT *, unnest", "SELECT s.*, unnest")
METRIC_RF_GEN_SQL = METRIC_RF_SQL.replace(
    "FROM metric_lines)", f"FROM metric_lines s {_CURRENT})").replace("SELECT *, unnest", "SELECT s.*, unnest")



def _is_table(con: Any, name: str) -> bool:
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' "
                       "AND table_name = ?", [name]).fetchone()
    return kind is not None and kind[0] == "BASE TABLE"


def _as_spans(con: Any) -> None:
    """The tables match_records and metric_rf (where they are tables) become one span per row, and views."""
    if _is_table(con, "match_records"):
        con.execute("""INSERT INTO match_spans SELECT run_id, conf_idx, conf_idx + 1, data_row_id, pred_id, gt_id,
                       pred_class, true_class, pred_feature, true_feature, iou, confidence FROM match_records""")
        con.execute("DROP TABLE match_records")
    con.execute(f"CREATE OR REPLACE VIEW match_records AS {MATCH_RECORDS_SQL}")
    if _is_table(con, "metric_rf"):
        con.execute("""INSERT INTO metric_lines SELECT run_id, conf_idx, conf_idx + 1, data_row_id, feature_id, n_pred,
                       n_gt, conf_min, conf_max, conf_sum, iou FROM metric_rf""")
        con.execute("DROP TABLE metric_rf")
    con.execute(f"CREATE OR REPLACE VIEW metric_rf AS {METRIC_RF_SQL}")


MIGRATIONS: list[list[Step]] = [
    [
        """CREATE TABLE metric_jobs (
            run_id INTEGER PRIMARY KEY, state VARCHAR NOT NULL, done BIGINT NOT NULL, total BIGINT NOT NULL,
            error VARCHAR, confidence_grid DOUBLE[], iou_grid DOUBLE[], settings JSON,
            started_at TIMESTAMP, finished_at TIMESTAMP, generation INTEGER NOT NULL)""",
        """CREATE TABLE metric_row_revs (
            run_id INTEGER NOT NULL, data_row_id BIGINT NOT NULL, label_rev INTEGER NOT NULL,
            pred_rev INTEGER NOT NULL)""",
        """CREATE TABLE match_records (
            run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, data_row_id BIGINT NOT NULL,
            pred_id BIGINT, gt_id BIGINT, pred_class INTEGER, true_class INTEGER,
            pred_feature INTEGER, true_feature INTEGER, iou DOUBLE, confidence DOUBLE)""",
        """CREATE TABLE metric_feature_iou (
            run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, data_row_id BIGINT NOT NULL,
            feature_id INTEGER NOT NULL, iou DOUBLE)""",
        """CREATE TABLE metric_classes (
            run_id INTEGER NOT NULL, class_id INTEGER NOT NULL, feature_id INTEGER NOT NULL,
            answer VARCHAR, name VARCHAR NOT NULL)""",
        """CREATE TABLE metric_views (
            run_id INTEGER NOT NULL, view VARCHAR NOT NULL, conf_idx SMALLINT NOT NULL, iou DOUBLE NOT NULL,
            table_name VARCHAR NOT NULL, generation INTEGER NOT NULL)""",
        """CREATE TABLE custom_metrics (
            run_id INTEGER NOT NULL, data_row_id BIGINT NOT NULL, feature_id INTEGER, name VARCHAR NOT NULL,
            value DOUBLE)""",
    ],
    [
        """CREATE TABLE metric_rf (
            run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, rf_ord INTEGER NOT NULL, data_row_id BIGINT NOT NULL,
            feature_id INTEGER NOT NULL, n_pred INTEGER NOT NULL, n_gt INTEGER NOT NULL, conf_min DOUBLE,
            conf_max DOUBLE, conf_sum DOUBLE, iou DOUBLE)""",
        """CREATE TABLE metric_tp (
            run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, rf_ord INTEGER NOT NULL, iou DOUBLE NOT NULL)""",
    ],
    [
        """CREATE TABLE metric_row_const (
            run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, data_row_id BIGINT NOT NULL,
            n_pred INTEGER NOT NULL, n_gt INTEGER NOT NULL, n_feat INTEGER NOT NULL, n_p INTEGER NOT NULL,
            n_r INTEGER NOT NULL, n_f INTEGER NOT NULL, iou DOUBLE, conf_min DOUBLE, conf_max DOUBLE,
            conf_mean DOUBLE)""",
    ],
    [
        """CREATE TABLE run_ontology (
            run_id INTEGER NOT NULL, feature_id INTEGER NOT NULL, media_types VARCHAR[] NOT NULL,
            datasets INTEGER[], explicit BOOLEAN NOT NULL)""",
        "INSERT INTO run_ontology " + DERIVED_ONTOLOGY_SQL.format(run="TRUE"),
    ],
    [
        "DROP TABLE IF EXISTS metric_feature_iou",
        """CREATE TABLE IF NOT EXISTS match_spans (
            run_id INTEGER NOT NULL, k_lo SMALLINT NOT NULL, k_hi SMALLINT NOT NULL, data_row_id BIGINT NOT NULL,
            pred_id BIGINT, gt_id BIGINT, pred_class INTEGER, true_class INTEGER,
            pred_feature INTEGER, true_feature INTEGER, iou DOUBLE, confidence DOUBLE)""",
        """CREATE TABLE IF NOT EXISTS metric_lines (
            run_id INTEGER NOT NULL, k_lo SMALLINT NOT NULL, k_hi SMALLINT NOT NULL, data_row_id BIGINT NOT NULL,
            feature_id INTEGER NOT NULL, n_pred INTEGER NOT NULL, n_gt INTEGER NOT NULL, conf_min DOUBLE,
            conf_max DOUBLE, conf_sum DOUBLE, iou DOUBLE)""",
        _as_spans,
    ],
    [
        "ALTER TABLE metric_jobs ADD COLUMN IF NOT EXISTS records_gen INTEGER DEFAULT 0",
        *(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS gen INTEGER DEFAULT 0"
          for t in ("match_spans", "metric_lines", "metric_tp", "metric_row_const", "metric_row_revs")),
        f"CREATE OR REPLACE VIEW match_records AS {MATCH_RECORDS_GEN_SQL}",
        f"CREATE OR REPLACE VIEW metric_rf AS {METRIC_RF_GEN_SQL}",
    ],
    [
        "DROP TABLE IF EXISTS metric_tp",
    ],
]
