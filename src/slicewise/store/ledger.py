"""Crash safety of our own: a ledger of every committed write, and the repair of an interrupted one.

**Why.** DuckDB makes a transaction durable by appending it to the write-ahead log (``<file>.wal``) at
COMMIT. A process killed while it writes that log leaves a torn tail, and DuckDB may replay a *prefix*
of the torn transaction's entries on the next open, silently (upstream: duckdb/duckdb PR 25931, PR
25432): a killed 1M-box import came back as 1,000,000 predictions of a run that did not exist. The
entries of one transaction are not written in statement order, so nothing about *which* part survives
can be assumed.

**What we keep.**

- The ``ledger`` table (its own schema area): one line per committed write transaction, written inside
  that transaction just before COMMIT: ``op`` (1, 2, ...), what it wrote (the topics it touched), and for
  every table it wrote the row count after it (plus a content checksum, ``sum(hash(row))``, when the table
  is small: ``meta``, ``features``, ``metric_jobs``...; on large tables that would cost a scan per write).
- A marks file beside the workspace, ``<file>.commits``: after each COMMIT returns, the op number and the
  size the write-ahead log had then. The log only grows between checkpoints (which empty it), and one
  process writes it, so that size is where the last complete transaction ends in it.

**What happens on open** (only when a write-ahead log is there, i.e. the last writer did not close the
file: a clean close checkpoints and removes it; a normal open costs nothing):

1. The log ends where the marks file says: the last write completed; nothing to do.
2. It is longer: the process died during (or just after) a COMMIT, or during a checkpoint. The file is
   opened read-only (DuckDB replays the log in memory) and every table is compared with the most recent
   ledger line that recorded it (count, and checksum where recorded). All match: the tail is a complete
   write (the process died before noting it) or harmless (a checkpoint's entry); keep it.
3. Otherwise the tail holds part of a write (rows of a write whose ledger line is missing, or a ledger line
   whose rows are): the log is cut back to the last complete write (the original is kept as
   ``<file>.wal.torn-<time>``) and checked again, so the workspace opens exactly as it was before the
   interrupted write, which :attr:`Recovery.message` reports. If even that does not check out, the log is
   put back as it was and the open refused.
4. Without a usable mark (a marks file from another log, or none), a log whose replay does not check out
   is not touched: the open is refused (:class:`~slicewise.errors.RecoveryError`) with what happened and
   how to recover.

Limits: a write whose only trace in a torn tail is a change of values in a large table (no checksum
there), with neither its ledger line nor a change of row counts, is not found.

Read-only opens check the same way and refuse a torn state (a read-only open cannot repair).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AREA = "ledger"
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE ledger (
            op BIGINT PRIMARY KEY, what VARCHAR NOT NULL, pid INTEGER NOT NULL, committed_at TIMESTAMP NOT NULL,
            tables JSON NOT NULL)""",
    ],
]
KEEP = 1_000  # ledger lines kept (only the last is needed to check a log; the rest is history)
SMALL = 2_000  # tables up to this many rows get a content checksum

#: the table a data-changing statement writes (unqualified names: the workspace's own tables)
_WRITE = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|COPY|ALTER\s+TABLE"
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?TABLE(?:\s+IF\s+NOT\s+EXISTS)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?)"
    r"\s+\"?([A-Za-z_]\w*)\"?(\s*\.)?", re.IGNORECASE)


def written_table(sql: str) -> str | None:
    """The workspace table a statement writes, or None (reads, writes to attached databases).

    >>> written_table("INSERT OR REPLACE INTO meta VALUES (1)"), written_table('delete from "tags" where 1')
    ('meta', 'tags')
    >>> written_table("SELECT 1"), written_table("INSERT INTO cache.t SELECT 1")
    (None, None)
    """
    m = _WRITE.match(sql)
    if m is None or m.group(2):
        return None
    name = m.group(1)
    return None if name.lower() == "ledger" else name


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def marks_path(path: Path) -> Path:
    return path.with_name(path.name + ".commits")


def has_table(con: Any) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                            "AND schema_name = 'main' AND table_name = 'ledger'").fetchone()[0])


def _state(con: Any, tables: list[str], checksum: set[str] | None = None) -> dict[str, list[Any]]:
    """{table: [rows, checksum or None]} (rows -1: the table does not exist). ``checksum``: the tables to
    checksum (None: those up to SMALL rows)."""
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name IN (SELECT unnest(?))", [tables]).fetchall()}
    present = [t for t in tables if t in have]
    out: dict[str, list[Any]] = {t: [-1, None] for t in tables if t not in have}
    if present:
        row = con.execute("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in present)).fetchone()
        for t, n in zip(present, row, strict=True):
            out[t] = [int(n), None]
    sums = [t for t in present if (out[t][0] <= SMALL if checksum is None else t in checksum)]
    if sums:
        row = con.execute("SELECT " + ", ".join(f'(SELECT coalesce(sum(hash(x)), 0)::VARCHAR FROM "{t}" x)'
                                                for t in sums)).fetchone()
        for t, s in zip(sums, row, strict=True):
            out[t][1] = str(s)
    return out


def record(con: Any, tables: set[str], what: str) -> int:
    """Inside the write transaction, just before COMMIT: a ledger line for it. Returns its op number."""
    (last,) = con.execute("SELECT coalesce(max(op), 0) FROM ledger").fetchone()
    op = int(last) + 1
    if op == 1 or op % 100 == 0:  # the first line, and before older lines go: every table (each stays recorded)
        tables = set(tables) | {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
            "AND table_name <> 'ledger'").fetchall()}
    state = _state(con, sorted(tables))
    con.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, ?)",
                [op, what[:500], os.getpid(), datetime.now(UTC).replace(tzinfo=None), json.dumps(state)])
    if op % 100 == 0:
        con.execute("DELETE FROM ledger WHERE op <= ?", [op - KEEP])
    return op


def mark(path: Path, op: int) -> None:
    """After COMMIT returned: note where the write-ahead log ends (see the module docstring)."""
    wal = wal_path(path)
    try:
        size = wal.stat().st_size
    except FileNotFoundError:
        size = 0  # checkpointed (DuckDB checkpoints a log past its threshold at commit)
    with contextlib.suppress(OSError):  # without a mark, an interrupted next write is refused, not repaired
        marks_path(path).write_text(f"{op} {size} {os.getpid()}\n")


def read_mark(path: Path) -> tuple[int, int] | None:
    try:
        op, size, _ = marks_path(path).read_text().split()
        return int(op), int(size)
    except (OSError, ValueError):
        return None


def check(con: Any) -> tuple[bool, str, int]:
    """Whether every table holds what the ledger says the writes left in it: (ok, what differs, the last op;
    0 when none). Each table is compared with the most recent ledger line that recorded it (its count, and
    its checksum when recorded), so rows of a write whose own line is missing are found as well."""
    if not has_table(con):
        return True, "", 0
    lines = con.execute("SELECT op, tables FROM ledger ORDER BY op DESC").fetchall()
    if not lines:
        return True, "", 0
    expected: dict[str, list[Any]] = {}
    for _, tables in lines:
        for t, v in json.loads(tables).items():
            expected.setdefault(t, v)
    now = _state(con, list(expected), {t for t, v in expected.items() if v[1] is not None})
    bad = [f"{t}: {now[t][0]} rows where the last write of it left {v[0]}" if now[t][0] != v[0]
           else f"{t}: content differs from what the last write of it left"
           for t, v in expected.items() if now[t] != v]
    return not bad, "; ".join(bad), int(lines[0][0])


def describe(con: Any, after: int) -> list[str]:
    """The ledger's lines after op ``after``, for messages."""
    if not has_table(con):
        return []
    return [f"op {op} ({what}, {at:%Y-%m-%d %H:%M:%S} UTC)" for op, what, at in con.execute(
        "SELECT op, what, committed_at FROM ledger WHERE op > ? ORDER BY op", [after]).fetchall()]


@dataclass
class Recovery:
    """What the open found after an unclean end, and what it did (see the module docstring)."""

    message: str
    kept: Path | None = None  # the original log, when it was cut back


def recover(path: Path, connect_ro: Any, *, read_only: bool) -> Recovery | None:
    """Before opening ``path``: check a write-ahead log left by a writer that did not close the file, and cut
    a torn transaction off it. ``connect_ro()`` opens the file read-only (waiting for another process as
    the store does). Returns what was done (None: nothing to report); raises RecoveryError when the
    log can neither be trusted nor repaired."""
    from slicewise.errors import BusyError, RecoveryError, SlicewiseError

    wal = wal_path(path)
    if not wal.is_file() or not path.exists():
        return None
    size = wal.stat().st_size
    mk = read_mark(path)
    if mk is not None and mk[1] > size:
        mk = None  # from another log (the process died between a checkpoint and its mark)
    if mk is not None and mk[1] == size:
        return None  # the log ends with a complete write
    try:
        con = connect_ro()
    except SlicewiseError as exc:
        if isinstance(exc, BusyError):
            raise
        ok, bad, op, ops = False, f"the write-ahead log cannot be replayed: {exc.message}", 0, []
    else:
        try:
            ok, bad, op = check(con)
            ops = describe(con, mk[0] if mk else op - 1)
        finally:
            con.close()
    if ok:
        return None  # every table holds what the ledger says: the log's tail (if any) is complete or harmless
    if mk is None:
        raise RecoveryError(f"the last write ({ops[-1] if ops else 'unknown'}) was interrupted and only part of it "
                            f"is in the file ({bad})", where=str(path),
                            fix=f"the state at the last checkpoint is intact: move {wal.name} aside (e.g. rename it "
                                f"to {wal.name}.torn) and open the workspace again; writes since that checkpoint are "
                                "then lost (redo the last import or edit)")
    if read_only:
        raise RecoveryError(f"the last write was interrupted and part of it is in the file ({bad})", where=str(path),
                            fix=f"open it once read-write (any slicewise command that writes, or slicewise.open("
                                f"{str(path)!r})): that rolls the interrupted write back")
    kept = wal.with_name(f"{wal.name}.torn-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
    shutil.copyfile(wal, kept)
    _cut(wal, mk[1])
    try:  # the log, cut back, must check out
        con = connect_ro()
        try:
            ok2, bad2, last = check(con)
        finally:
            con.close()
    except SlicewiseError as exc:
        ok2, bad2, last = False, exc.message, 0
    if not ok2:
        shutil.copyfile(kept, wal)  # leave everything as it was found
        raise RecoveryError(f"the last write was interrupted and part of it is in the file ({bad}); cutting the "
                            f"write-ahead log back to the last complete write did not give a consistent state ({bad2})",
                            where=str(path), fix=f"the state at the last checkpoint is intact: move {wal.name} aside "
                                                 "and open the workspace again; writes since that checkpoint are then lost")
    return Recovery(f"the last write was interrupted before it completed and has been rolled back ({bad}): the "
                    f"workspace is as it was after op {last}; redo that write. The interrupted log is kept as "
                    f"{kept.name} (safe to delete)", kept)


def _cut(wal: Path, size: int) -> None:
    with open(wal, "r+b") as fh:  # back to the end of the last complete write
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())
    if size == 0:
        wal.unlink()
