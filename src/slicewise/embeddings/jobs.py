"""Embedding jobs: run a built-in embedder over a workspace's data rows into a space.

Images are embedded in batches; each batch's vectors and the job's progress are written in one
transaction, so the rows already in the space are the job's checkpoint: a job interrupted (Ctrl+C, a
crash, a stopped server) resumes where it stopped, and a job run again after new rows were added
embeds only those. Text spaces (TF-IDF + SVD is fitted on the whole corpus) are recomputed whole
when rows were added. The job's state is in ``embedding_jobs`` (``job_status``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.embeddings import embedders as E
from slicewise.embeddings.store import KINDS, add_vectors, check_name, spaces
from slicewise.errors import ConflictError, Problem, ValidationError

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

BATCH = 64
Progress = Callable[[int, int], None]


@dataclass
class JobStatus:
    space: str
    embedder: str
    state: str  # running | done | failed | interrupted
    done: int
    total: int
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def job_status(ws: Workspace, space: str) -> JobStatus | None:
    row = ws.store.cursor().execute("SELECT space, embedder, state, done, total, error, started_at, finished_at "
                                    "FROM embedding_jobs WHERE space = ?", [space]).fetchone()
    return JobStatus(*row) if row else None


def _set_job(ws: Workspace, space: str, embedder: str, state: str, done: int, total: int,
             error: str | None = None, finished: bool = False) -> None:
    with ws.store.transaction() as con:
        old = con.execute("SELECT started_at FROM embedding_jobs WHERE space = ?", [space]).fetchone()
        started = old[0] if old and state != "running" else _now()
        con.execute("INSERT OR REPLACE INTO embedding_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [space, embedder, state, done, total, error, started, _now() if finished else None])
        ws.store.touch("embed_job")


def embed(ws: Workspace, space: str | None = None, kind: str = "image", *, embedder: str | None = None,
          size: int = 224, batch: int = BATCH, on_progress: Progress | None = None,
          stop: threading.Event | None = None, base: str | Path | None = None) -> JobStatus:
    """Embed every data row of ``kind`` that has no vector in ``space`` yet (default name: the kind).

    ``base``: the folder relative image paths are read from (default: the workspace's folder).
    ``stop``: set it to end the job after the current batch (state ``interrupted``; run again to resume)."""
    if kind not in KINDS:
        raise ValidationError(Problem(f"unknown kind {kind!r}", field="kind", fix="use image or text"))
    name = check_name(space or kind)
    existing = {s.name: s for s in spaces(ws)}
    if name in existing and existing[name].kind != kind:
        raise ConflictError(f"space {name!r} holds {existing[name].kind} vectors", where="space",
                            fix=f"use --kind {existing[name].kind}, or another --space")
    if name in existing and existing[name].source == "custom":
        raise ConflictError(f"space {name!r} holds custom vectors", where="space",
                            fix="give the built-in embedder its own --space name")
    st = job_status(ws, name)
    if st is not None and st.state == "running" and _active(ws, name):
        raise ConflictError(f"an embedding job for space {name!r} is already running", where="space",
                            fix="wait for it (its progress: `slicewise embeddings status`)")
    if kind == "image":
        return _embed_images(ws, name, embedder or "efficientnet-lite0", size, batch, on_progress, stop, base)
    return _embed_texts(ws, name, embedder or "tfidf-svd", on_progress)


_ACTIVE: dict[tuple[int, str], int] = {}  # (id of the workspace's state, space) -> thread id of its job
_ACTIVE_LOCK = threading.Lock()


def _active(ws: Workspace, space: str) -> bool:
    with _ACTIVE_LOCK:
        return (id(ws.state), space) in _ACTIVE


def _embed_images(ws: Workspace, name: str, embedder: str, size: int, batch: int, on_progress: Progress | None,
                  stop: threading.Event | None, base: str | Path | None) -> JobStatus:
    if embedder not in E.IMAGE_EMBEDDERS:
        raise ValidationError(Problem(f"unknown image embedder {embedder!r}", field="embedder",
                                      fix="use " + ", ".join(E.IMAGE_EMBEDDERS)))
    model = E.ImageEmbedder(size)
    folder = Path(base) if base is not None else Path(ws.path).resolve().parent
    rows = ws.store.cursor().execute("""
        SELECT r.id, r.row_data FROM data_rows r WHERE r.media_type = 'image' AND r.id NOT IN (
            SELECT e.data_row_id FROM embeddings e JOIN embedding_spaces s ON s.id = e.space_id WHERE s.name = ?)
        ORDER BY r.id""", [name]).fetchall()
    have = next((s.count for s in spaces(ws) if s.name == name), 0)
    total = have + len(rows)
    key = (id(ws.state), name)
    with _ACTIVE_LOCK:
        _ACTIVE[key] = threading.get_ident()
    done, failed = have, []
    _set_job(ws, name, model.config, "running", done, total)
    try:
        for start in range(0, len(rows), batch):
            if stop is not None and stop.is_set():
                _set_job(ws, name, model.config, "interrupted", done, total, finished=True)
                return job_status(ws, name)  # type: ignore[return-value]
            chunk = rows[start:start + batch]
            paths = [_resolve(folder, r[1]) for r in chunk]
            vecs, bad = model.embed(paths)
            failed += [chunk[i] for i in bad]
            ok = [r[0] for i, r in enumerate(chunk) if i not in set(bad)]
            with ws.store.transaction() as con:
                if ok:
                    add_vectors(ws, name, ok, vecs, kind="image", source=model.config)
                done += len(chunk)
                con.execute("UPDATE embedding_jobs SET done = ? WHERE space = ?", [done, name])
                ws.store.touch("embed_job")
            if on_progress is not None:
                on_progress(done, total)
        error = None
        if failed:
            error = (f"{len(failed)} image(s) could not be read, e.g. " +
                     ", ".join(str(_resolve(folder, r[1])) for r in failed[:3]))
        _set_job(ws, name, model.config, "done", done, total, error=error, finished=True)
    except BaseException as exc:
        state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        _set_job(ws, name, model.config, state, done, total, error=None if state == "interrupted" else str(exc),
                 finished=True)
        raise
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(key, None)
    return job_status(ws, name)  # type: ignore[return-value]


def _embed_texts(ws: Workspace, name: str, embedder: str, on_progress: Progress | None) -> JobStatus:
    rows = ws.store.cursor().execute(
        "SELECT id, row_data FROM data_rows WHERE media_type = 'text' ORDER BY id").fetchall()
    if not rows:
        raise ValidationError(Problem("the workspace has no text data rows to embed", field="kind",
                                      fix="add text rows first, or embed images (--kind image)"))
    ids = [r[0] for r in rows]
    texts = [_read_text(ws, r[1]) for r in rows]
    model = E.text_embedder(embedder, texts)
    _set_job(ws, name, model.config, "running", 0, len(rows))
    try:
        vecs = np.vstack([model.embed_texts(texts[i:i + 1024]) for i in range(0, len(texts), 1024)])
        with ws.store.transaction() as con:
            info = next((s for s in spaces(ws) if s.name == name), None)
            if info is not None and info.dim != vecs.shape[1]:  # a refit on a new corpus may change the dimension
                from slicewise.embeddings.store import drop_space

                drop_space(ws, name)
            add_vectors(ws, name, ids, vecs, kind="text", source=model.config)
            con.execute("UPDATE embedding_jobs SET done = ? WHERE space = ?", [len(ids), name])
        if on_progress is not None:
            on_progress(len(ids), len(ids))
        _set_job(ws, name, model.config, "done", len(ids), len(ids), finished=True)
    except BaseException as exc:
        _set_job(ws, name, model.config, "failed", 0, len(rows), error=str(exc), finished=True)
        raise
    return job_status(ws, name)  # type: ignore[return-value]


def _read_text(ws: Workspace, row_data: str) -> str:
    """A text row's text: ``row_data`` itself, or the file it names (when it is one)."""
    if len(row_data) < 4096 and "\n" not in row_data and row_data.endswith((".txt", ".md")):
        p = _resolve(Path(ws.path).resolve().parent, row_data)
        if p.is_file():
            return p.read_text(encoding="utf-8", errors="replace")
    return row_data


def _resolve(folder: Path, row_data: str) -> Path:
    p = Path(row_data[len("file://"):] if row_data.startswith("file://") else row_data)
    return p if p.is_absolute() else folder / p


def start(ws: Workspace, space: str | None = None, kind: str = "image", **kw: Any) -> tuple[threading.Thread, threading.Event]:
    """Run :func:`embed` in a background thread; returns (thread, stop event)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            embed(ws, space, kind, stop=stop, **kw)
        except BaseException as exc:  # noqa: BLE001 - recorded in embedding_jobs by embed itself
            errors.append(exc)

    t = threading.Thread(target=run, name=f"slicewise-embed-{space or kind}", daemon=True)
    t.start()
    time.sleep(0)  # let it register
    return t, stop


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
