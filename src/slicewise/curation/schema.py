"""The curation area's tables (migrations of the ``curation`` area; never edit a released one).

- ``batches``: named, frozen sets of data rows handed to labellers: priority, note, where the rows came from
  (``source``: "selection", "slice:NAME", "filter:TEXT", "select:least-confidence"...), when it was last exported.
- ``batch_rows``: the rows of each batch, in the order they were given (``position``).
- ``queue``: the labelling queue: one line per data row that entered it, with its state (``to_label``,
  ``in_review``, ``rework``, ``done``), the batch it came with, who moved it there last and when.
- ``queue_events``: every move of a row in the queue (from, to, who, when, why): the queue's history.
"""

from __future__ import annotations

AREA = "curation"
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE batches (
            id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, priority INTEGER NOT NULL, note VARCHAR NOT NULL,
            source VARCHAR, created_at TIMESTAMP NOT NULL, exported_at TIMESTAMP, exported_as VARCHAR)""",
        """CREATE TABLE batch_rows (batch_id INTEGER NOT NULL, data_row_id BIGINT NOT NULL, position INTEGER NOT NULL)""",
        "CREATE INDEX batch_rows_batch ON batch_rows (batch_id)",
        """CREATE TABLE queue (
            data_row_id BIGINT NOT NULL, state VARCHAR NOT NULL, batch_id INTEGER, updated_by VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL, note VARCHAR)""",
        "CREATE INDEX queue_row ON queue (data_row_id)",
        """CREATE TABLE queue_events (
            data_row_id BIGINT NOT NULL, from_state VARCHAR, to_state VARCHAR NOT NULL, by_whom VARCHAR NOT NULL,
            moved_at TIMESTAMP NOT NULL, note VARCHAR)""",
    ],
]
