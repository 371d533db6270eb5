"""The DuckDB store: one file per workspace, one writer, a cursor per reader.

All writes go through :meth:`Store.transaction`, which holds the writer lock and rolls back on
any error, so a failed operation leaves the file exactly as it was. Readers call
:meth:`Store.cursor` (DuckDB cursors are cheap and safe to use from another thread).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from slicewise.errors import StoreError
from slicewise.state import Change
from slicewise.store.schema import MIGRATIONS, SCHEMA_VERSION

LOG_ROWS = 200_000  # a change of more rows is logged as "every row" (caches rebuild rather than patch)
LOG_KEEP = 10_000  # changes kept in the change log


class Store:
    """The workspace file. While another process has it open (DuckDB: one process per file), opening
    waits up to ``wait`` seconds for it to close, telling ``on_wait`` once what it waits for, and then
    raises a :class:`StoreError` naming that process (at once when it is a ``slicewise serve``)."""

    def __init__(self, path: str | Path, *, read_only: bool = False, wait: float = 0.0,
                 on_wait: Callable[[str], None] | None = None,
                 areas: Mapping[str, Sequence[Sequence[str]]] | None = None) -> None:
        """``areas``: the numbered migrations of each area (``core`` first; see
        :mod:`slicewise.store.schema`); the layers above the store register theirs here."""
        self.path = Path(path)
        self.areas = dict(areas) if areas is not None else {"core": MIGRATIONS}
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError("no workspace here", where=str(self.path),
                             fix="check the path (-w/--workspace), or create it with an import or `slicewise demo`")
        self._con = self._connect(read_only, wait, on_wait)
        self._lock = threading.RLock()
        self._depth = 0
        self._tx_thread: int | None = None
        self._changes: list[Change] = []  # what the open transaction changed (see touch)
        self.on_commit: Callable[[list[Change]], None] | None = None  # the workspace's State.publish
        #: odd while a commit is between writing its versions and publishing its changes (a seqlock:
        #: see State.snapshot)
        self.commits = 0
        self.read_only = read_only
        if not read_only:
            self._migrate()
        elif self.schema_version() != SCHEMA_VERSION:
            raise StoreError(f"workspace has schema version {self.schema_version()}, this slicewise needs {SCHEMA_VERSION}",
                             where=str(self.path), fix="open it once without read_only to migrate it")

    # -- connection --------------------------------------------------------------------------
    def _connect(self, read_only: bool, wait: float, on_wait: Callable[[str], None] | None) -> duckdb.DuckDBPyConnection:
        from slicewise import discovery

        deadline = time.monotonic() + max(wait, 0.0)
        delay, told = 0.05, False
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                holder = discovery.lock_holder(exc)
                if holder is None:
                    raise StoreError(f"cannot open workspace: {exc}", where=str(self.path),
                                     fix="check the path and that the file is a slicewise workspace") from None
            pid, exe = holder
            server = discovery.find_server(self.path)
            if server is not None and server.pid == pid:  # a server holds it for as long as it runs
                raise StoreError(f"{server.describe()} is serving this workspace and holds it open", where=str(self.path),
                                 fix="the slicewise CLI sends its commands through that server; this one could not reach "
                                     f"it (does {server.url} answer?). From Python, use the server's HTTP API (e.g. "
                                     f"POST {server.url}/api/imports), or stop the server (Ctrl+C in its terminal, or "
                                     f"kill {pid}) first")
            who = discovery.describe_process(pid, exe)
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(f"the workspace is in use by {who}" + (f" (waited {wait:g} s)" if wait > 0 else ""),
                                 where=str(self.path),
                                 fix=f"let it finish and run again, or stop it (kill {pid}); a CLI command waits up to "
                                     "SLICEWISE_WAIT seconds (default 30) for the workspace. To work on it while "
                                     "another process does, use `slicewise serve` and the CLI goes through the server") from None
            if not told and on_wait is not None:
                on_wait(f"waiting for {who}, which has the workspace open (up to {left:.0f} s) ...")
                told = True
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reading; each thread should use its own.

        Inside a :meth:`transaction` on the same thread, reads go through the writer (wrapped so
        that closing it is a no-op), so they see the transaction's own uncommitted writes.
        """
        if self.in_my_transaction:
            return _Borrowed(self._con)  # type: ignore[return-value]
        return self._con.cursor()

    def own_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own even inside this thread's write transaction (it sees committed data only):
        for work that must not join the transaction, such as the caches' own tables."""
        return self._con.cursor()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The writer connection. Use only inside :meth:`transaction`."""
        return self._con

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the writer; commit on success, roll back everything on error. Nests.

        Writers say what they changed with :meth:`touch` (every write must); when the outermost
        transaction commits, those changes go to :attr:`on_commit` (the workspace's caches), and each
        touched topic gets a new random version in ``meta`` (``version:<topic>[:<run>]``) in the same
        transaction, so caches kept on disk can tell whether what they were built from is still there."""
        if self.read_only:
            raise StoreError("workspace is open read-only", where=str(self.path), fix="open it without read_only")
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._con.execute("BEGIN TRANSACTION")
                self._tx_thread = threading.get_ident()
                self._changes = []
            self._depth += 1
            try:
                yield self._con
            except BaseException:
                self._depth -= 1
                if outer:
                    self._changes = []
                    self._tx_thread = None
                    with contextlib.suppress(duckdb.Error):  # already rolled back by DuckDB: the original error is what matters
                        self._con.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if outer:
                    changes, self._changes = self._changes, []
                    self._tx_thread = None
                    self.commits += 1
                    try:
                        try:
                            if changes:
                                changes = self._stamp(changes)
                            self._con.execute("COMMIT")
                        except duckdb.Error as exc:
                            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has usually ended the transaction already
                                self._con.execute("ROLLBACK")
                            raise StoreError(f"commit failed: {exc}", where=str(self.path),
                                             fix="check that the disk has room and the folder is writable") from None
                        if self.on_commit is not None and changes:
                            self.on_commit(changes)
                    finally:
                        self.commits += 1

    def touch(self, topic: str, *, rows: Any = None, run: int | None = None) -> None:
        """Record, inside a write transaction, what it changes (see :mod:`slicewise.state`): a topic,
        the data row ids concerned (None: all of them) and the run."""
        assert self.in_my_transaction, "touch() belongs inside store.transaction()"
        ids = None if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
        self._changes.append(Change(topic, run, ids))

    def _stamp(self, changes: list[Change]) -> list[Change]:
        """Number the changes in the change log and give the touched topics (and their runs) new random
        versions, inside the transaction (before COMMIT). Returns the numbered changes."""
        import dataclasses
        import uuid
        from datetime import UTC, datetime

        import pyarrow as pa

        token = uuid.uuid4().hex
        first = self.last_seq(self._con) + 1
        out = []
        for i, c in enumerate(changes):
            rows = c.rows if c.rows is None or len(c.rows) <= LOG_ROWS else None
            out.append(dataclasses.replace(c, rows=rows, seq=first + i, token=token))
        self.insert_arrow("change_log", pa.table({
            "seq": pa.array([c.seq for c in out], pa.int64()), "topic": [c.topic for c in out],
            "run_id": pa.array([c.run for c in out], pa.int32()),
            "rows": pa.array([None if c.rows is None else c.rows for c in out], pa.list_(pa.int64())),
            "token": [token] * len(out), "committed_at": pa.array([datetime.now(UTC).replace(tzinfo=None)] * len(out), pa.timestamp("us"))}))
        last = out[-1].seq
        if last // LOG_KEEP != (first - 1) // LOG_KEEP:  # now and then, forget the oldest changes
            self._con.execute("DELETE FROM change_log WHERE seq <= ?", [last - LOG_KEEP])
        keys = sorted({f"version:{c.topic}" for c in changes}
                      | {f"version:{c.topic}:{c.run}" for c in changes if c.run is not None})
        self._con.execute("INSERT OR REPLACE INTO meta SELECT unnest(?), ?", [keys, token])
        return out

    def last_seq(self, con: Any = None) -> int:
        """The seq of the last change in the change log (0 when none)."""
        row = (con or self.cursor()).execute("SELECT coalesce(max(seq), 0) FROM change_log").fetchone()
        return int(row[0]) if row else 0

    def changes_between(self, after: int, upto: int) -> list[Change] | None:
        """The logged changes with ``after < seq <= upto``; None when the log no longer reaches back."""
        cur = self.own_cursor()
        first = cur.execute("SELECT min(seq) FROM change_log").fetchone()
        if first is None or first[0] is None or int(first[0]) > after + 1:
            return None
        out = []
        for seq, topic, run, rows, token in cur.execute(
                "SELECT seq, topic, run_id, rows, token FROM change_log WHERE seq > ? AND seq <= ? ORDER BY seq",
                [after, upto]).fetchall():
            out.append(Change(topic, run, None if rows is None else np.asarray(rows, np.int64), int(seq), token))
        return out

    def change_token(self, seq: int) -> str | None:
        """The token of logged change ``seq`` (None when it is not, or no longer, in the log)."""
        row = self.own_cursor().execute("SELECT token FROM change_log WHERE seq = ?", [seq]).fetchone()
        return str(row[0]) if row else None

    def versions(self) -> dict[str, str]:
        """The stored version of every topic that was ever written (see :meth:`transaction`)."""
        return dict(self.cursor().execute("SELECT key, value FROM meta WHERE key LIKE 'version:%'").fetchall())

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @property
    def in_my_transaction(self) -> bool:
        """Whether the calling thread holds an open write transaction."""
        return self._depth > 0 and self._tx_thread == threading.get_ident()

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
        migrated = False
        for area, migrations in self.areas.items():
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
                migrated = True
        with self.transaction() as con:
            if not con.execute("SELECT 1 FROM meta WHERE key = 'workspace_id'").fetchone():
                import uuid  # the identity of this file's lineage, for the caches kept beside it

                con.execute("INSERT INTO meta VALUES ('workspace_id', ?)", [uuid.uuid4().hex])
                migrated = True
            if migrated:
                self.touch("all")


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
