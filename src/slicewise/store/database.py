"""The DuckDB store: one file per workspace, one writer, a cursor per reader.

All writes go through :meth:`Store.transaction`, which holds the writer lock and rolls back on
any error, so a failed operation leaves the file exactly as it was. Readers call
:meth:`Store.cursor` (DuckDB cursors are cheap and safe to use from another thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from slicewise.errors import StoreError
from slicewise.store.schema import AREAS, SCHEMA_VERSION, area_migrations

_GENERATIONS: dict[str, int] = {}  # resolved path -> committed write transactions in this process


class Store:
    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError("no workspace here", where=str(self.path),
                             fix="check the path (-w/--workspace), or create it with an import or `slicewise demo`")
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open workspace: {exc}", where=str(self.path),
                             fix="check the path, and that no other process has the workspace open for writing") from None
        self._lock = threading.RLock()
        self._depth = 0
        self._tx_thread: int | None = None
        self._key = str(self.path.resolve())
        self.read_only = read_only
        if not read_only:
            self._migrate()
        elif self.schema_version() != SCHEMA_VERSION:
            raise StoreError(f"workspace has schema version {self.schema_version()}, this slicewise needs {SCHEMA_VERSION}",
                             where=str(self.path), fix="open it once without read_only to migrate it")

    # -- connection --------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reading; each thread should use its own.

        Inside a :meth:`transaction` on the same thread, reads go through the writer (wrapped so
        that closing it is a no-op), so they see the transaction's own uncommitted writes.
        """
        if self._depth and self._tx_thread == threading.get_ident():
            return _Borrowed(self._con)  # type: ignore[return-value]
        return self._con.cursor()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The writer connection. Use only inside :meth:`transaction`."""
        return self._con

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the writer; commit on success, roll back everything on error. Nests."""
        if self.read_only:
            raise StoreError("workspace is open read-only", where=str(self.path), fix="open it without read_only")
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._con.execute("BEGIN TRANSACTION")
                self._tx_thread = threading.get_ident()
            self._depth += 1
            try:
                yield self._con
            except BaseException:
                self._depth -= 1
                if outer:
                    self._con.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if outer:
                    try:
                        self._con.execute("COMMIT")
                    except duckdb.Error as exc:
                        self._con.execute("ROLLBACK")
                        raise StoreError(f"commit failed: {exc}", where=str(self.path)) from None
                    _GENERATIONS[self._key] = _GENERATIONS.get(self._key, 0) + 1

    @property
    def generation(self) -> int:
        """Bumped by every committed write to this file in this process; caches of derived tables
        (e.g. slicewise.query's row cache) key on it. (DuckDB lets one process write a file at a time.)"""
        return _GENERATIONS.get(self._key, 0)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- helpers ----------------------------------------------------------------------------
    def next_id(self, table: str, n: int = 1) -> int:
        """First of ``n`` fresh ids for ``table`` (the caller holds the writer)."""
        assert table.isidentifier()
        (cur,) = self._con.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()  # type: ignore[misc]
        return int(cur) + 1

    def insert_arrow(self, table: str, data: Any) -> None:
        """Append a pyarrow table (columns named as the table's, any order) in one statement."""
        assert table.isidentifier()
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        self._con.register("_sw_insert", data)
        try:
            self._con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _sw_insert")
        finally:
            self._con.unregister("_sw_insert")

    def schema_version(self, area: str = "core") -> int:
        has = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'").fetchall()
        if not has[0][0]:
            return 0
        key = "schema_version" if area == "core" else f"schema_version:{area}"
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return int(row[0][0]) if row else 0

    def _migrate(self) -> None:
        for area in AREAS:
            migrations = area_migrations(area)
            current = self.schema_version(area)
            if current > len(migrations):
                raise StoreError(f"workspace has {area} schema version {current}, newer than this slicewise "
                                 f"({len(migrations)})", where=str(self.path), fix="upgrade slicewise")
            key = "schema_version" if area == "core" else f"schema_version:{area}"
            for version in range(current + 1, len(migrations) + 1):
                with self.transaction() as con:
                    for stmt in migrations[version - 1]:
                        con.execute(stmt)
                    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(version)])


class _Borrowed:
    """The writer connection lent to a reader inside a transaction; ``close`` does nothing."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
