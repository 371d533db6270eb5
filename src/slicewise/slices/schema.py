"""The slices area's migrations (see slicewise.store.schema). Never edit a released migration; append."""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: saved slices. A user slice has run_id NULL and auto_key NULL (workspace level); an auto slice
    # belongs to one run and is identified by its auto_key ("false-positive", ...), with its parameters.
    [
        """CREATE TABLE slices (
            id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, description VARCHAR, query JSON NOT NULL,
            run_id INTEGER, auto_key VARCHAR, params JSON, created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL)""",
    ],
]
