"""What a :class:`~slicewise.workspace.Workspace` remembers between calls, owned by that workspace.

Every cache of the library lives here, never in a module global: the query engine's per-run row
caches and the facets' columns, the metrics engine's per-level arrays and materialised views, memoised
catalogs and run settings, the progress of running metric jobs, the cache database (a file beside the
workspace, attached to its DuckDB instance under a name of its own) that holds the cached tables, and the
Arrow tables no later process needs that queries read from memory (a new (c, t)'s row metrics, named in
:attr:`slicewise.store.database.Store.relations`). Closing the workspace drops what is in memory; the cache
folder beside the workspace (its database, and the per-conf-index arrays of :mod:`slicewise.metrics.levelfiles`)
serves the next process.

**Changes, not generations.** Every write transaction says what it changed (:class:`Change`: a topic,
the run and the data rows concerned) through :meth:`slicewise.store.Store.touch`; when it commits, the
store hands the changes to :meth:`State.publish`. Caches compare what was published since they were
built with what they depend on: saving a slice touches only ``slices``, so no row cache notices it;
tagging three rows touches ``tags`` for those rows, and a row cache re-reads just them.

**One build at a time per key.** :meth:`State.key_lock` gives a lock per cache key, so two threads
asking for the same table build it once while the other waits; different keys build in parallel.

Tables are never dropped the moment they are replaced: a query may have read the old name just
before; :meth:`State.retire` drops them a little later (:data:`RETIRE_AFTER` seconds).

A cached name may be a view over *companion* tables named ``<name>__<part>`` (in the cache database):
they are kept, vouched for and dropped with it (:data:`COMPANION`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

    from slicewise.store import Store

T = TypeVar("T")

#: what a write may change; caches name the topics they depend on
TOPICS = frozenset({
    "all",              # unknown: every cache starts over
    "datasets",         # datasets created or renamed
    "rows",             # data rows added (rows = their ids)
    "split",            # splits of some rows
    "metadata",         # metadata values of some rows
    "metadata_fields",  # the metadata schema (a field declared or retyped)
    "tags",             # tags of some rows
    "features",         # the ontology
    "labels",           # ground truth of some rows
    "predictions",      # a run's predictions on some rows
    "run_rows",         # rows put in a run
    "runs",             # models, runs and run settings (grids, thresholds, auto-slice parameters)
    "metric_job",       # a metrics job's state (running, failed...)
    "metrics",          # a run's stored match records (a metrics job finished)
    "custom_metrics",   # a run's custom metric values
    "slices",           # saved and auto slices
    "embeddings",       # an embedding space's vectors (rows = the rows whose vectors changed) or the spaces
    "embed_job",        # a built-in embedder job's state and progress
    "batches",          # labelling batches created, changed or dropped (rows = their rows)
    "queue",            # labelling-queue states of some rows
})
CACHE_FORMAT = 4  # bump when the layout of a cached table changes: older cache files are then emptied
ROW_TOPICS = frozenset({"rows", "split", "metadata", "tags", "labels", "predictions", "run_rows"})
LOG_LIMIT = 10_000  # changes kept for incremental refresh; a cache older than that rebuilds
RETIRE_AFTER = 30.0  # seconds a replaced table stays readable
COMPANION = "__"  # <name>__<part>: a table that belongs to the cached table or view <name>


def _drop(cur: Any, table: str) -> None:
    """Drop a qualified cache table or view and its companion tables."""
    db, _, name = table.rpartition(".")
    view = cur.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = ? AND view_name = ?",
                       [db, name]).fetchone()
    cur.execute(f"DROP {'VIEW' if view and view[0] else 'TABLE'} IF EXISTS {table}")
    for (part,) in cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND "
                               "starts_with(table_name, ?)", [db, name + COMPANION]).fetchall():
        cur.execute(f'DROP TABLE IF EXISTS {db}."{part}"')


def array_bytes(value: Any) -> int:
    """The bytes of the NumPy arrays in a value: an array, or a dict, tuple, list or dataclass of them."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(array_bytes(v) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(array_bytes(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return sum(array_bytes(getattr(value, f)) for f in value.__dataclass_fields__)
    return 0


@dataclass(frozen=True)
class Change:
    """One thing a committed write changed. ``rows`` None means every row (or not known); ``seq`` is its
    place in the workspace's change log (given at commit)."""

    topic: str
    run: int | None = None
    rows: np.ndarray | None = None
    seq: int = 0
    token: str = ""

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"unknown change topic {self.topic!r}")


class State:
    """The caches of one open workspace. Thread-safe; see the module docstring."""

    #: row caches and memoised values on (tests switch them off, per workspace or on the class, to check
    #: that queries agree with and without them)
    enabled = True

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._seq = store.last_seq()  # the change log as this workspace was opened
        self._mem_from = self._seq  # changes after this are in self._log (until it is trimmed)
        self._log: list[Change] = []
        self._versions: dict[str, int] = {}
        self._memo: dict[Hashable, Any] = {}
        self._lru: dict[str, OrderedDict[Hashable, Any]] = {}
        self._entries: dict[Hashable, Any] = {}
        self._retired: list[tuple[float, str]] = []
        self._db: str | None = None
        self._db_failed = False
        self._names = 0
        self._token = uuid.uuid4().hex[:8]
        self._closed = False
        self.persistent = True  # keep the cache database in a file beside the workspace (see db)
        self.progress: dict[int, tuple[int, int]] = {}  # run id -> (done, total) of a running metrics job

    # -- changes ------------------------------------------------------------------------------
    def publish(self, changes: Iterable[Change]) -> None:
        """Record what a committed transaction changed (the store calls this after COMMIT, with the
        changes numbered in the workspace's change log)."""
        with self._lock:
            for c in changes:
                self._seq = max(self._seq, c.seq)
                self._log.append(c)
                self._versions[c.topic] = self._versions.get(c.topic, 0) + 1
                if c.run is not None:
                    own = f"{c.topic}:{c.run}"
                    self._versions[own] = self._versions.get(own, 0) + 1
                if c.topic == "all":
                    for t in TOPICS:
                        self._versions[t] = self._versions.get(t, 0) + 1
            if len(self._log) > LOG_LIMIT:
                cut = len(self._log) - LOG_LIMIT
                self._mem_from = self._log[cut - 1].seq
                del self._log[:cut]

    @property
    def seq(self) -> int:
        """The seq of the last change this workspace object knows of."""
        return self._seq

    def since(self, seq: int, until: int | None = None) -> tuple[list[Change] | None, int]:
        """(the changes after ``seq`` (up to ``until``, else up to the last one published), that last
        seq); None when the log no longer reaches back that far (treat as "everything changed").
        Changes this object did not publish itself (made before it was opened, or through another
        workspace object on the same file) come from the stored change log."""
        stored = self.store.last_seq() if until is None else until  # (another object on this file may write)
        with self._lock:
            end = max(self._seq, stored) if until is None else until
            if seq >= end:
                return [], end
            if self._mem_from <= seq and end <= self._seq:
                return [c for c in self._log if seq < c.seq <= end], end
        return self.store.changes_between(seq, end), end

    def holds(self, seq: int, token: str) -> bool:
        """Whether change ``seq`` with ``token`` is in this workspace's history (a table registered as
        up to date with it can catch up from there)."""
        if seq == 0:
            return True
        return seq <= self._seq and self.store.change_token(seq) == token

    def snapshot(self, topics: Sequence[str]) -> tuple[str, int]:
        """(the stored versions of ``topics`` as :meth:`fingerprint` gives them, the seq of the last
        change published): consistent with each other, so a table built after reading them holds
        every change up to that seq and at least the state the fingerprint names."""
        while True:
            before = self.store.commits
            fp = self.fingerprint(topics)
            seq = self._seq
            if before == self.store.commits and before % 2 == 0:
                return fp, seq
            time.sleep(0.001)  # a commit is between writing its versions and publishing its changes

    def version(self, topics: Sequence[str]) -> tuple[int, ...]:
        """A key that changes whenever a change of one of ``topics`` (or ``all``) is published;
        ``"metrics:3"`` names the changes of one run."""
        with self._lock:
            return tuple(self._versions.get(t, 0) for t in topics) + (self._versions.get("all", 0),)

    # -- memoised values ----------------------------------------------------------------------
    def usable(self) -> bool:
        """Whether caches may be read now: enabled, open, and not inside this thread's write
        transaction (which sees uncommitted data that no cache holds)."""
        return self.enabled and not self._closed and not self.store.in_my_transaction

    def memo(self, name: Hashable, topics: Sequence[str], fn: Callable[[], T]) -> T:
        """``fn()``, remembered until a change of one of ``topics`` is published."""
        if not self.usable():
            return fn()
        key = (name, self.version(topics))
        with self._lock:
            if key in self._memo:
                return self._memo[key]  # type: ignore[no-any-return]
        value = fn()
        with self._lock:
            if len(self._memo) > 512:
                self._memo.clear()
            self._memo[key] = value
        return value

    def remembered(self, name: Hashable, topics: Sequence[str]) -> tuple[bool, Any]:
        """(True, value) when :meth:`memo` holds ``name`` at the current versions of ``topics``, else (False, None)."""
        if not self.usable():
            return False, None
        key = (name, self.version(topics))
        with self._lock:
            return (True, self._memo[key]) if key in self._memo else (False, None)

    def lru(self, kind: str, key: Hashable, make: Callable[[], T], limit: int, budget: int | None = None) -> T:
        """``make()`` kept among the ``limit`` most recently used values of ``kind`` (built once per key), and
        with ``budget``, among as many of them as hold at most that many bytes of NumPy arrays together (the
        newest is kept whatever its size)."""
        if not self.usable():
            return make()
        with self._lock:
            group = self._lru.setdefault(kind, OrderedDict())
            if key in group:
                group.move_to_end(key)
                return group[key]  # type: ignore[no-any-return]
        with self.key_lock((kind, key)):
            with self._lock:
                if key in group:
                    return group[key]  # type: ignore[no-any-return]
            value = make()
            with self._lock:
                group[key] = value
                while len(group) > limit or (budget is not None and len(group) > 1
                                             and sum(array_bytes(v) for v in group.values()) > budget):
                    group.popitem(last=False)
        return value

    def forget(self, kind: str) -> None:
        """Drop every value :meth:`lru` keeps of ``kind`` (each goes once nothing else holds it)."""
        with self._lock:
            self._lru.pop(kind, None)

    def key_lock(self, key: Hashable) -> threading.Lock:
        """The build lock of one cache key."""
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                lock = self._key_locks[key] = threading.Lock()
            return lock

    # -- cache entries (objects that refresh themselves, such as row caches) --------------------
    def entry(self, key: Hashable) -> Any:
        with self._lock:
            return self._entries.get(key)

    def set_entry(self, key: tuple[Any, ...], value: Any, *, limit: int | None = None, group: int = 1,
                  on_evict: Callable[[Any], None] | None = None) -> None:
        """Store an entry; with ``limit``, keep only the ``limit`` newest entries whose key starts with
        the same ``group`` items as ``key`` (older ones go to ``on_evict``)."""
        evicted = []
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = value
            if limit is not None:
                same = [k for k in self._entries if isinstance(k, tuple) and k[:group] == key[:group]]
                for k in same[: max(len(same) - limit, 0)]:
                    evicted.append(self._entries.pop(k))
        if on_evict:
            for e in evicted:
                on_evict(e)

    # -- the cache database -----------------------------------------------------------------
    @property
    def db(self) -> str | None:
        """The alias of this workspace's cache database, attached on first use; None when caching is
        off or impossible (a read-only workspace cannot attach one).

        It is the file :func:`cache_path` beside the workspace, so a later process starts with the
        tables an earlier one built (each registered with the versions of what it was built from, see
        :meth:`lookup`); when that file cannot be used (another process or workspace object has it,
        or it is damaged) an in-memory database serves instead."""
        if self._db is None and not self._db_failed and not self._closed:
            with self._lock:
                if self._db is None and not self._db_failed:
                    self._db = self._attach()
                    self._db_failed = self._db is None
        return self._db

    def _attach(self) -> str | None:
        alias = f"sw_cache_{uuid.uuid4().hex[:12]}"
        cur = self.store.own_cursor()
        path = cache_path(self.store.path) if self.persistent else None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                cur.execute(f"ATTACH '{_sql_str(str(path))}' AS {alias} (READ_ONLY false)")
                self._prepare(alias)
                return alias
            except Exception:  # noqa: BLE001 - in use elsewhere, unwritable folder...: keep it in memory
                with contextlib.suppress(Exception):  # noqa: BLE001
                    cur.execute(f"DETACH DATABASE IF EXISTS {alias}")
        try:
            cur.execute(f"ATTACH ':memory:' AS {alias} (READ_ONLY false)")
        except Exception:  # noqa: BLE001
            return None
        self._prepare(alias)
        return alias

    def _prepare(self, alias: str) -> None:
        """Create or check the registry; drop the tables it does not vouch for."""
        cur = self.store.own_cursor()
        cur.execute(f"""CREATE TABLE IF NOT EXISTS {alias}.sw_registry (
                          name VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, key VARCHAR NOT NULL,
                          fingerprint VARCHAR NOT NULL, n BIGINT NOT NULL, info VARCHAR, format INTEGER NOT NULL,
                          workspace_id VARCHAR)""")
        wid = self.workspace_id()
        registry = cur.execute(f"SELECT name, n, format, workspace_id FROM {alias}.sw_registry").fetchall()
        views = {r[0] for r in cur.execute("SELECT view_name FROM duckdb_views() WHERE database_name = ? "
                                           "AND NOT internal", [alias]).fetchall()}
        tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?",
                                            [alias]).fetchall()} - {"sw_registry"}
        keep = set()
        for name, n, fmt, owner in registry:
            ok = fmt == CACHE_FORMAT and owner == wid and name in tables | views
            if ok:
                try:  # a table a crash left half-written, or a view over a table gone, is not used
                    got = cur.execute(f'SELECT count(*) FROM {alias}."{name}"').fetchone()
                    ok = got is not None and int(got[0]) == int(n)
                except Exception:  # noqa: BLE001 - a view whose table is gone
                    ok = False
            if ok:
                keep.add(name)
            else:
                cur.execute(f"DELETE FROM {alias}.sw_registry WHERE name = ?", [name])
        for name in views - keep:
            cur.execute(f'DROP VIEW IF EXISTS {alias}."{name}"')
        for name in tables - keep:
            if name.rpartition(COMPANION)[0] not in keep:
                cur.execute(f'DROP TABLE IF EXISTS {alias}."{name}"')

    def workspace_id(self) -> str:
        row = self.store.own_cursor().execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()
        return str(row[0]) if row else ""

    def fingerprint(self, topics: Sequence[str], extra: Any = None) -> str:
        """The stored versions of ``topics`` (``"predictions:3"`` names one run's), as a string that
        differs whenever one of them (or ``all``) was written since."""
        v = self.store.versions()
        parts = [f"{t}={v.get('version:' + t, '')}" for t in sorted(set(topics) | {"all"})]
        return ";".join(parts) + (f";{extra}" if extra is not None else "")

    def lookup(self, kind: str, key: str) -> tuple[str, str, int, str | None] | None:
        """(qualified table, fingerprint, rows, info) of a registered cache table, or None."""
        db = self.db
        if db is None:
            return None
        row = self.store.own_cursor().execute(f"SELECT name, fingerprint, n, info FROM {db}.sw_registry "
                                          "WHERE kind = ? AND key = ?", [kind, key]).fetchone()
        if row is None:
            return None
        return f"{db}.{row[0]}", str(row[1]), int(row[2]), row[3]

    def registered(self, kind: str) -> list[tuple[str, str, str, str | None]]:
        """(qualified table, key, fingerprint, info) of every registered table of ``kind``."""
        db = self.db
        if db is None:
            return []
        return [(f"{db}.{r[0]}", str(r[1]), str(r[2]), r[3]) for r in self.store.own_cursor().execute(
            f"SELECT name, key, fingerprint, info FROM {db}.sw_registry WHERE kind = ? ORDER BY name", [kind]).fetchall()]

    def register(self, table: str, kind: str, key: str, fingerprint: str, info: str | None = None) -> None:
        """Vouch for a cache table (replacing what was registered under the same kind and key)."""
        db = self.db
        assert db is not None
        name = table.split(".")[-1]
        cur = self.store.own_cursor()
        n = int(cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        old = cur.execute(f"SELECT name FROM {db}.sw_registry WHERE kind = ? AND key = ? AND name <> ?",
                          [kind, key, name]).fetchall()
        cur.execute(f"DELETE FROM {db}.sw_registry WHERE (kind = ? AND key = ?) OR name = ?", [kind, key, name])
        cur.execute(f"INSERT INTO {db}.sw_registry VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [name, kind, key, fingerprint, n, info, CACHE_FORMAT, self.workspace_id()])
        self.retire([f"{db}.{o[0]}" for o in old])

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor of the workspace, outside any write transaction (the cache database is visible
        from every cursor)."""
        return self.store.own_cursor()

    def table(self, kind: str, key: str, topics: Sequence[str], build: Callable[[str], None], *,
              limit: int = 16) -> str:
        """The qualified name of a cache table that ``build(name)`` fills from the store, built on first
        use and rebuilt when a change of ``topics`` was written since (checked through the stored
        versions, so a table an earlier process built is reused). At most ``limit`` tables of a kind
        are kept. Works whatever :meth:`usable` says: the name is meant for SQL over committed data."""
        db = self.db
        if db is None:
            raise RuntimeError("slicewise cannot attach a cache database to this workspace's connection")
        mem = self.version(topics)
        with self._lock:
            known = self._entries.get(("table", kind, key))
        if known is not None and known[1] == mem:
            return str(known[0])
        with self.key_lock(("table", kind, key)):
            fp, _ = self.snapshot(topics)
            found = self.lookup(kind, key)
            if found is not None and found[1] == fp:
                name = found[0]
            else:  # named after what it holds, so that names mean the same in every process
                import hashlib

                digest = hashlib.sha1(f"{key}|{fp}".encode()).hexdigest()[:12]
                name = f"{db}.{kind.replace('-', '_')}_{digest}"
                with self._lock:  # (a retired one of the same name would be dropped over this one)
                    self._retired = [(w, t) for w, t in self._retired if t != name]
                _drop(self.store.own_cursor(), name)
                build(name)
                self.register(name, kind, key, fp)
            self.set_entry(("table", kind, key), (name, mem), limit=limit, group=2,
                           on_evict=lambda old: self.retire([old[0]]))
        return name

    def table_name(self, prefix: str) -> str:
        """A new qualified name in the cache database (``<db>.<prefix>_<n>``, plain identifiers)."""
        db = self.db
        if db is None:
            raise RuntimeError("no cache database")
        with self._lock:
            self._names += 1
            n = self._names
        assert prefix.isidentifier()
        return f"{db}.{prefix}_{self._token}_{n}"  # the token keeps names apart from other processes' tables

    def retire(self, tables: Iterable[str]) -> None:
        """Forget replaced tables now (no later process will use them) and drop them once no query of
        this one can still be about to read them."""
        tables = list(tables)
        db = self._db
        if db is not None and tables:
            names = [t.split(".")[-1] for t in tables]
            self.store.own_cursor().execute(f"DELETE FROM {db}.sw_registry WHERE list_contains(?, name)", [names])
        now = time.monotonic()
        with self._lock:
            self._retired += [(now, t) for t in tables]
            due = [t for when, t in self._retired if now - when > RETIRE_AFTER]
            self._retired = [(w, t) for w, t in self._retired if now - w <= RETIRE_AFTER]
        if due:
            cur = self.cursor()
            for t in due:
                _drop(cur, t)

    def close(self) -> None:
        """Forget everything; the cache database goes with its tables."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            db, self._db = self._db, None
            self._memo.clear()
            self._lru.clear()
            self._entries.clear()
            self._retired.clear()
            self.progress.clear()
        self.store.relations.clear()
        if db is not None:
            with contextlib.suppress(Exception):  # noqa: BLE001 - the connection may already be gone
                self.store.own_cursor().execute(f"DETACH {db}")


def cache_path(workspace: Path) -> Path:
    """Where a workspace keeps its derived tables: ``.<name>.cache/derived.duckdb`` beside the file
    (the folder also holds the server's thumbnails). Deleting it only costs rebuilding them."""
    return workspace.parent / f".{workspace.name}.cache" / "derived.duckdb"


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
