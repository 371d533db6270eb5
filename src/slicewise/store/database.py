"""The DuckDB store: one file per workspace, one writer, a cursor per reader.

All writes go through :meth:`Store.transaction`, which holds the writer lock and rolls back on
any error, so a failed operation leaves the file exactly as it was. Readers call
:meth:`Store.cursor` (DuckDB cursors are cheap and safe to use from another thread).

Every committed write is recorded in the ledger, and a write that a crash left half-replayed is rolled
back when the file is next opened (see :mod:`slicewise.store.ledger`). DuckDB and OS errors inside a
transaction leave it as :class:`~slicewise.errors.StoreError` subclasses that say what happened and how
to fix it (:func:`store_error`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np

from slicewise.errors import BusyError, DiskFullError, Interrupted, ReadOnlyError, SlicewiseError, StoreError
from slicewise.state import Change
from slicewise.store import ledger
from slicewise.store.schema import MIGRATIONS, SCHEMA_VERSION

LOG_ROWS = 200_000  # a change of more rows is logged as "every row" (caches rebuild rather than patch)
LOG_KEEP = 10_000  # changes kept in the change log
#: one step of a migration: a SQL statement, or a function of the connection for a step SQL cannot say alone
Step = str | Callable[[Any], None]


_MEMORY = re.compile(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def memory_config() -> dict[str, Any]:
    """DuckDB's settings from the environment: ``SLICEWISE_MEMORY_LIMIT`` (e.g. ``3GB``) caps the memory DuckDB
    keeps for its buffers and operators of this process (larger work spills to disk); unset, DuckDB's
    default (80% of the machine's memory)."""
    raw = os.environ.get("SLICEWISE_MEMORY_LIMIT", "")
    if not raw.strip():
        return {}
    if not _MEMORY.fullmatch(raw):
        raise StoreError(f"SLICEWISE_MEMORY_LIMIT={raw!r} is not an amount of memory", where="SLICEWISE_MEMORY_LIMIT",
                         fix="write a number and a unit, e.g. 3GB or 500MB, or unset it for DuckDB's default")
    return {"memory_limit": raw.strip()}


class Store:
    """The workspace file. While another process has it open (DuckDB: one process per file), opening
    waits up to ``wait`` seconds for it to close, telling ``on_wait`` once what it waits for, and then
    raises a :class:`StoreError` naming that process (at once when it is a ``slicewise serve``)."""

    def __init__(self, path: str | Path, *, read_only: bool = False, wait: float = 0.0,
                 on_wait: Callable[[str], None] | None = None,
                 areas: Mapping[str, Sequence[Sequence[Step]]] | None = None) -> None:
        """``areas``: the numbered migrations of each area (``core`` first; see
        :mod:`slicewise.store.schema`); the layers above the store register theirs here."""
        self.path = Path(path)
        self.areas = dict(areas) if areas is not None else {"core": MIGRATIONS}
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError("no workspace here", where=str(self.path),
                             fix="check the path (-w/--workspace), or create it with an import or `slicewise demo`")
        self.unclean = ledger.wal_path(self.path).exists()  # the last writer did not close the file
        #: what the open found after an unclean end of the last writer (see slicewise.store.ledger), if anything
        self.recovery: ledger.Recovery | None = ledger.recover(
            self.path, lambda: self._connect(True, wait, on_wait), read_only=read_only)
        self._raw = self._connect(read_only, wait, on_wait)
        #: Arrow tables a statement of a reading cursor may name as relations (the query engine's metrics columns
        #: at a (c, t), slicewise.query.rowcache)
        self.relations = Relations()
        self._con = cast(duckdb.DuckDBPyConnection, _Writer(self._raw, self))
        self._written: set[str] = set()  # the tables the open transaction wrote (see _Writer)
        self._ledger: bool | None = None  # whether the ledger table exists (None: not known yet)
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
            try:
                self._migrate()
                ledger.mark(self.path, self.last_op())
            except BaseException:
                self._raw.close()
                raise
        elif self.schema_version() != SCHEMA_VERSION:
            raise StoreError(f"workspace has schema version {self.schema_version()}, this slicewise needs {SCHEMA_VERSION}",
                             where=str(self.path), fix="open it once without read_only to migrate it")

    # -- connection --------------------------------------------------------------------------
    def _connect(self, read_only: bool, wait: float, on_wait: Callable[[str], None] | None) -> duckdb.DuckDBPyConnection:
        from slicewise import discovery

        deadline = time.monotonic() + max(wait, 0.0)
        delay, told = 0.05, False
        config = memory_config()
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.Error as exc:
                holder = discovery.lock_holder(exc)
                if holder is None:
                    mapped = store_error(exc, self.path, "open")
                    if type(mapped) is not StoreError:
                        raise mapped from None
                    raise StoreError(f"cannot open workspace: {exc}", where=str(self.path),
                                     fix="check the path and that the file is a slicewise workspace") from None
            pid, exe = holder
            server = discovery.find_server(self.path)
            if server is not None and server.pid == pid:  # a server holds it for as long as it runs
                raise BusyError(f"{server.describe()} is serving this workspace and holds it open", where=str(self.path),
                                 fix="the slicewise CLI sends its commands through that server; this one could not reach "
                                     f"it (does {server.url} answer?). From Python, use the server's HTTP API (e.g. "
                                     f"POST {server.url}/api/imports), or stop the server (Ctrl+C in its terminal, or "
                                     f"kill {pid}) first")
            who = discovery.describe_process(pid, exe)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BusyError(f"the workspace is in use by {who}" + (f" (waited {wait:g} s)" if wait > 0 else ""),
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
        return _Cursor(self._raw.cursor(), self.relations)  # type: ignore[return-value]

    def own_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own even inside this thread's write transaction (it sees committed data only):
        for work that must not join the transaction, such as the caches' own tables."""
        return _Cursor(self._raw.cursor(), self.relations)  # type: ignore[return-value]

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The writer connection. Use only inside :meth:`transaction`."""
        return self._con

    def close(self) -> None:
        self._raw.close()

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
                try:
                    self._raw.execute("BEGIN TRANSACTION")
                except duckdb.Error as exc:
                    raise store_error(exc, self.path, "begin") from None
                self._tx_thread = threading.get_ident()
                self._changes = []
                self._written = set()
            self._depth += 1
            try:
                yield self._con
            except BaseException as exc:
                self._depth -= 1
                if outer:
                    self._changes = []
                    self._written = set()
                    self._tx_thread = None
                    with contextlib.suppress(duckdb.Error):  # already rolled back by DuckDB: the original error is what matters
                        self._raw.execute("ROLLBACK")
                    if isinstance(exc, duckdb.Error | OSError) and not isinstance(exc, SlicewiseError):
                        raise store_error(exc, self.path, "write") from exc
                raise
            else:
                self._depth -= 1
                if outer:
                    changes, self._changes = self._changes, []
                    written, self._written = self._written, set()
                    self._tx_thread = None
                    self.commits += 1
                    try:
                        op = 0
                        try:
                            if changes:
                                changes = self._stamp(changes)
                            if (changes or written) and self._has_ledger():
                                op = ledger.record(self._raw, written | ({"meta", "change_log"} if changes else set()),
                                                   _what(changes, written))
                            self._raw.execute("COMMIT")
                        except BaseException as exc:
                            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has usually ended the transaction already
                                self._raw.execute("ROLLBACK")
                            if isinstance(exc, duckdb.Error | OSError):
                                raise store_error(exc, self.path, "commit") from exc
                            raise
                        if op:
                            ledger.mark(self.path, op)
                        if self.on_commit is not None and changes:
                            self.on_commit(changes)
                    finally:
                        self.commits += 1

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the writer across several transactions of this thread (no other thread's transaction can
        start between them): for a write committed in steps, such as a metrics job's chunks."""
        if self.read_only:
            raise StoreError("workspace is open read-only", where=str(self.path), fix="open it without read_only")
        with self._lock:
            yield

    def _has_ledger(self) -> bool:
        if not self._ledger:
            self._ledger = ledger.has_table(self._raw)
        return self._ledger

    def last_op(self) -> int:
        """The number of the last write in the ledger (0: none yet)."""
        if not ledger.has_table(self._raw):
            return 0
        row = self._raw.cursor().execute("SELECT coalesce(max(op), 0) FROM ledger").fetchone()
        return int(row[0]) if row else 0

    def check(self) -> tuple[bool, str]:
        """Whether the tables hold what the last write recorded: (ok, what differs)."""
        ok, bad, _ = ledger.check(self.cursor())
        return ok, bad

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
                        if callable(stmt):
                            stmt(con)
                        else:
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


def _what(changes: list[Change], written: set[str]) -> str:
    """A ledger line's description of a write: its topics (with runs), else the tables it wrote."""
    topics = sorted({c.topic + (f":{c.run}" if c.run is not None else "") for c in changes})
    return ", ".join(topics) if topics else "tables " + ", ".join(sorted(written))


def store_error(exc: BaseException, path: Path, doing: str) -> SlicewiseError:
    """A DuckDB or OS error met while ``doing`` something with the workspace, as the slicewise error that says
    what happened, where and how to fix it. Anything unrecognised becomes a plain :class:`StoreError`."""
    import errno

    text = str(exc)
    low = text.lower()
    where = str(path)
    code = getattr(exc, "errno", None)
    if isinstance(exc, duckdb.InterruptException) or "interrupted" in low or isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted; nothing of this operation was written", where=where,
                           fix="run the command again")
    if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or any(
            m in low for m in ("no space left", "file too large", "disk quota", "out of disk")):
        return DiskFullError(f"no room to write the workspace ({text.strip()}); nothing of this operation was written",
                             where=where, fix="free disk space (or raise the file size limit: ulimit -f) and run it again")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or any(
            m in low for m in ("permission denied", "read-only file system", "read only file system",
                               "operation not permitted", "database is read-only", "read-only mode")):
        return ReadOnlyError(f"the workspace cannot be written ({text.strip()}); nothing of this operation was written",
                             where=where, fix="make the file and its folder writable (the write-ahead log is created "
                                              "beside the file), or copy the workspace somewhere writable")
    if "could not set lock" in low or "conflicting lock" in low:
        return BusyError(f"another process holds the workspace ({text.strip()})", where=where,
                         fix="let it finish, or stop it, and run again")
    return StoreError(f"{doing} failed: {type(exc).__name__}: {text.strip()}; nothing of this operation was written",
                      where=where, fix="run it again; if it keeps failing, run with --debug and report the error")


class _Writer:
    """The writer connection, noting which workspace tables the open transaction writes (for the ledger)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, store: Store) -> None:
        self._con = con
        self._store = store

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        table = ledger.written_table(query) if isinstance(query, str) else None
        if table is not None:
            self._store._written.add(table)
        self._con.execute(query, *args, **kwargs)
        return self

    def executemany(self, query: str, *args: Any, **kwargs: Any) -> Any:
        table = ledger.written_table(query) if isinstance(query, str) else None
        if table is not None:
            self._store._written.add(table)
        self._con.executemany(query, *args, **kwargs)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class Relations:
    """Arrow tables by name, held weakly: one goes when the last object holding it drops it. Readers on any
    thread see a consistent set (each change replaces the dict; dead names are pruned on the next change)."""

    def __init__(self) -> None:
        self._refs: dict[str, weakref.ref[Any]] = {}
        self._lock = threading.Lock()

    def __setitem__(self, name: str, table: Any) -> None:
        with self._lock:
            live = {k: r for k, r in self._refs.items() if r() is not None}
            live[name] = weakref.ref(table)
            self._refs = live

    def get(self, name: str) -> Any:
        ref = self._refs.get(name)
        return ref() if ref is not None else None

    def __getitem__(self, name: str) -> Any:
        table = self.get(name)
        if table is None:
            raise KeyError(name)
        return table

    def names(self) -> list[str]:
        """The names (some may have gone since: :meth:`get` says None)."""
        return list(self._refs)

    def __len__(self) -> int:
        return sum(1 for r in list(self._refs.values()) if r() is not None)

    def clear(self) -> None:
        with self._lock:
            self._refs = {}


class _Cursor:
    """A reading cursor that registers the store's Arrow relations (:attr:`Store.relations`) a statement
    names, the first time one does: each cursor is a DuckDB connection of its own, with its own registrations
    (about 0.5 ms each, so only those a statement needs)."""

    __slots__ = ("_cur", "_relations", "_have")

    def __init__(self, cur: duckdb.DuckDBPyConnection, relations: Relations) -> None:
        self._cur = cur
        self._relations = relations
        self._have: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def _register(self, query: object) -> None:
        if not isinstance(query, str):
            return
        for name in self._relations.names():
            if name not in self._have and name in query:
                table = self._relations.get(name)
                if table is not None:  # (else gone: the statement fails as naming an unknown table)
                    self._cur.register(name, table)
                    self._have.add(name)

    def execute(self, query: Any, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        self._register(query)
        return self._cur.execute(query) if parameters is None else self._cur.execute(query, parameters)

    def sql(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._register(query)
        return self._cur.sql(query, *args, **kwargs)

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cur.close()


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
