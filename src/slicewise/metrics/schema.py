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
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
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
]
