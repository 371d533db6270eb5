"""The workspace schema as numbered migrations, one list per area.

Each migration is a list of SQL statements applied in one transaction; ``meta`` records the last
one applied per area (``schema_version`` for the core, ``schema_version:<area>`` for the others).
Never edit a released migration: append a new one. An area (metrics, slices...) keeps its own list
(its ``schema`` module's ``MIGRATIONS``) and registers it with the store (``Store(areas=...)``; the
workspace does), so areas never collide and the store imports nothing above it.

Conventions the rest of the code relies on:
- ids are BIGINT/INTEGER assigned by the single writer (``max(id) + 1``), not sequences, so bulk
  inserts through Arrow can carry them;
- annotations (ground truth) and predictions share one column layout ("objects"): a box
  (x, y, w, h in pixels) for every spatial kind, ``geometry`` as WKB for polygon / polyline / point,
  ``mask_rle`` as a COCO compressed RLE string (size = the data row's height x width), NER spans as
  [span_start, span_end) character offsets, ``answer`` for radio and checklist classifications
  (a checklist with several ticked options is one object per option);
- ``data_rows.label_rev`` and ``run_rows.pred_rev`` are bumped whenever a row's ground truth or a
  run's predictions on it change; the metrics engine compares them to the revisions it computed
  with to find stale rows.
"""

from __future__ import annotations

OBJECT_COLUMNS = """
  id BIGINT NOT NULL,
  data_row_id BIGINT NOT NULL,
  feature_id INTEGER NOT NULL,
  kind VARCHAR NOT NULL,
  answer VARCHAR,
  x DOUBLE, y DOUBLE, w DOUBLE, h DOUBLE,
  geometry BLOB,
  mask_rle VARCHAR,
  span_start INTEGER, span_end INTEGER,
  area DOUBLE,
  external_id VARCHAR,
  source VARCHAR NOT NULL,
  created_at TIMESTAMP NOT NULL
"""

MIGRATIONS: list[list[str]] = [
    # 1: the foundation
    [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        """CREATE TABLE datasets (
            id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, description VARCHAR,
            created_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE data_rows (
            id BIGINT NOT NULL, global_key VARCHAR NOT NULL, dataset_id INTEGER NOT NULL,
            media_type VARCHAR NOT NULL, row_data VARCHAR NOT NULL, width INTEGER, height INTEGER,
            split VARCHAR NOT NULL, label_rev INTEGER NOT NULL, created_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE metadata_fields (
            name VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, options VARCHAR[])""",
        """CREATE TABLE row_metadata (
            data_row_id BIGINT NOT NULL, field VARCHAR NOT NULL, value_string VARCHAR,
            value_number DOUBLE, value_datetime TIMESTAMP)""",
        "CREATE TABLE tags (data_row_id BIGINT NOT NULL, tag VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)",
        """CREATE TABLE features (
            id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, kind VARCHAR NOT NULL,
            options VARCHAR[], external_id VARCHAR, created_at TIMESTAMP NOT NULL)""",
        f"CREATE TABLE annotations ({OBJECT_COLUMNS}, iscrowd BOOLEAN NOT NULL)",
        """CREATE TABLE models (
            id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, created_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE model_runs (
            id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, name VARCHAR NOT NULL,
            config JSON NOT NULL, created_at TIMESTAMP NOT NULL, UNIQUE (model_id, name))""",
        """CREATE TABLE run_rows (
            run_id INTEGER NOT NULL, data_row_id BIGINT NOT NULL, pred_rev INTEGER NOT NULL)""",
        f"""CREATE TABLE predictions ({OBJECT_COLUMNS}, run_id INTEGER NOT NULL,
            confidence DOUBLE NOT NULL, probabilities DOUBLE[])""",
        "CREATE UNIQUE INDEX data_rows_id ON data_rows (id)",
        "CREATE UNIQUE INDEX data_rows_key ON data_rows (global_key)",
    ],
    # 2: what each committed write changed, for caches to catch up with (see slicewise.state)
    [
        """CREATE TABLE change_log (
            seq BIGINT PRIMARY KEY, topic VARCHAR NOT NULL, run_id INTEGER, rows BIGINT[], token VARCHAR NOT NULL,
            committed_at TIMESTAMP NOT NULL)""",
    ],
    # 3: a row's objects, metadata and tags by its id in milliseconds (a gallery page, a detail view), not
    # by a scan of millions of lines
    [
        "CREATE INDEX annotations_row ON annotations (data_row_id)",
        "CREATE INDEX predictions_row ON predictions (data_row_id)",
        "CREATE INDEX row_metadata_row ON row_metadata (data_row_id)",
        "CREATE INDEX tags_row ON tags (data_row_id)",
    ],
    # 4: the folders a dataset's media files may be served from, recorded at import (see slicewise.io.media
    # and slicewise.server.media). A root is an absolute path, or relative to the workspace's folder.
    # Workspaces made before: each dataset gets the deepest folder that holds all of its local image paths
    # (absolute and relative ones apart), except "/" and folders reached through "..": such a dataset gets
    # no root, and the server refuses its media with a message saying how to record one.
    [
        """CREATE TABLE media_roots (
            dataset_id INTEGER NOT NULL, root VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (dataset_id, root))""",
        r"""INSERT INTO media_roots
            WITH paths AS (
              SELECT dataset_id, regexp_replace(row_data, '^file://', '') AS p FROM data_rows
              WHERE media_type = 'image' AND NOT regexp_matches(lower(row_data), '^(https?|s3|gs)://')),
            b AS (SELECT dataset_id, starts_with(p, '/') AS absolute, min(p) AS lo, max(p) AS hi FROM paths GROUP BY ALL),
            c AS (SELECT dataset_id, absolute, lo, list_max(list_filter(range(0, least(length(lo), length(hi)) + 1),
                    i -> left(lo, i) = left(hi, i))) AS n FROM b),
            d AS (SELECT dataset_id, absolute, regexp_extract(left(lo, n), '^(.*)/', 1) AS parent FROM c)
            SELECT DISTINCT dataset_id, CASE WHEN parent = '' THEN '.' ELSE parent END, now()::TIMESTAMP FROM d
            WHERE NOT (absolute AND parent = '') AND NOT regexp_matches(parent, '(^|/)\.\.(/|$)')""",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
