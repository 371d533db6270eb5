"""The embeddings area's tables (migrations of the ``embeddings`` area; never edit a released one).

- ``embedding_spaces``: one row per named space: the kind of data rows it embeds (image | text), the
  vector dimension, the metric (cosine | ip), where its vectors come from (custom | a built-in embedder).
- ``embeddings``: one vector per (space, data row), a ``FLOAT[]`` of the space's dimension, so the
  workspace stays one file.
- ``embedding_jobs``: the state of a built-in embedder's job per space (running, done, failed) with its
  progress; the rows already embedded are the job's checkpoint, so an interrupted job resumes.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE embedding_spaces (
            id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, kind VARCHAR NOT NULL, dim INTEGER NOT NULL,
            metric VARCHAR NOT NULL, source VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE embeddings (space_id INTEGER NOT NULL, data_row_id BIGINT NOT NULL, vector FLOAT[] NOT NULL)""",
        """CREATE TABLE embedding_jobs (
            space VARCHAR PRIMARY KEY, embedder VARCHAR NOT NULL, state VARCHAR NOT NULL, done BIGINT NOT NULL,
            total BIGINT NOT NULL, error VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP)""",
    ],
]
