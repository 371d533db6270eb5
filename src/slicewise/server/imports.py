"""Imports of uploaded files as background jobs of the server (``POST /api/imports``).

An upload is saved under the workspace's cache folder (``.<name>.cache/uploads/<tmp>/``, under its own
file name, so that defaults taken from the name, such as the dataset, are those of ``slicewise import``)
and imported in a worker thread by the same :mod:`slicewise.io` function as the CLI command of its
format, with the same options; the folder is removed afterwards. Formats that read a folder (YOLO, VOC,
indoor; YOLO predictions as txt files) take a zip of it. Data rows point to their image files, so the
images of a zip are kept, in ``<stem>-media/imports/<job>/`` beside the workspace (the rest of the zip
is removed; all of it when the import fails). ``images`` (a folder of images already on the server) is
absolute or relative to the workspace's folder.

An import is one transaction: a bad file raises before anything is written and the job reports the
rejected records (file, line, field, fix) with the workspace unchanged; with ``skip_invalid`` the valid
records are imported and the result lists the rejected ones. Paths in messages are written relative to
the upload.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import shutil
import stat
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from slicewise.errors import Problem, SlicewiseError, ValidationError
from slicewise.workspace import Workspace

#: format -> (function of slicewise.io, what it reads: a file, a folder (zip), or either)
FORMATS: dict[str, tuple[str, Literal["file", "folder", "either"]]] = {
    "coco": ("import_coco", "file"),
    "coco-results": ("import_coco_results", "file"),
    "yolo": ("import_yolo", "folder"),
    "yolo-predictions": ("import_yolo_predictions", "either"),
    "voc": ("import_voc", "folder"),
    "indoor": ("import_indoor", "folder"),
    "ndjson": ("import_ndjson", "file"),
    "rows": ("import_rows", "file"),
    "table": ("import_table", "file"),
}
#: the options of `slicewise import <format>` (each format takes those its function has)
OPTIONS = ("dataset", "images", "split", "run", "rows", "create_features", "skip_invalid", "key", "label",
           "prediction", "confidence", "probabilities", "metadata", "feature", "media_type")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
MAX_UNZIPPED = 50 * 2**30  # bytes a zip may expand to
MAX_MEMBERS = 2_000_000
KEEP_JOBS = 200
LIST_LIMIT = 1000  # rejected records / warnings listed in a job (the counts are exact)


def importer(fmt: str) -> Any:
    from slicewise import io

    return getattr(io, FORMATS[fmt][0])


def check_options(fmt: str, options: dict[str, Any]) -> None:
    """Raise a ValidationError when ``fmt`` takes none of an option, or lacks a required one."""
    if fmt not in FORMATS:
        raise ValidationError(Problem(f"unknown format {fmt!r}", field="format", fix="use one of " + ", ".join(FORMATS)))
    params = inspect.signature(importer(fmt)).parameters
    problems = [Problem(f"format {fmt} has no option {k!r}", field=f"options.{k}",
                        fix="its options: " + ", ".join(o for o in OPTIONS if o in params))
                for k, v in options.items() if v is not None and k not in params]
    problems += [Problem(f"format {fmt} needs the option {name!r}", field=f"options.{name}", fix="give it")
                 for name, p in list(params.items())[2:] if p.default is inspect.Parameter.empty and options.get(name) is None]
    if problems:
        raise ValidationError(problems)


@dataclass
class ImportJob:
    id: int
    format: str
    filename: str
    options: dict[str, Any]
    state: Literal["queued", "running", "done", "failed"] = "queued"
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def advance(self, n: int = 1, total: int | None = None) -> None:
        self.done += n
        if total is not None:
            self.total = total


class ImportJobs:
    """The import jobs of one server: started with :meth:`start`, looked up with :meth:`get`."""

    def __init__(self, ws: Workspace) -> None:
        from slicewise.state import cache_path

        self.ws = ws
        self.base = Path(ws.path).resolve().parent
        self.uploads = cache_path(Path(ws.path).resolve()).parent / "uploads"
        self.media = self.base / f"{Path(ws.path).stem}-media" / "imports"
        self._jobs: OrderedDict[int, ImportJob] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def folder(self) -> Path:
        """A new temporary folder for one upload."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="upload-", dir=self.uploads))

    def start(self, fmt: str, upload: Path, options: dict[str, Any]) -> ImportJob:
        """Import ``upload`` (a file in a folder of :meth:`folder`, which the job removes) in the background."""
        with self._lock:
            job = ImportJob(next(self._ids), fmt, upload.name, options)
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        threading.Thread(target=self._run, args=(job, upload), name=f"import-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: int) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: ImportJob, upload: Path) -> None:
        tmp = upload.parent
        extracted: Path | None = None
        scrub = [str(tmp) + "/"]
        try:
            job.state = "running"
            source = upload
            if zipfile.is_zipfile(upload) and FORMATS[job.format][1] != "file":
                extracted = self.media / str(job.id)
                scrub.append(str(extracted) + "/")
                source = unzip(upload, extracted / upload.stem)
            elif FORMATS[job.format][1] == "folder":
                raise ValidationError(Problem(f"format {job.format} reads a folder: upload it as a zip", job.filename,
                                              "file", "zip the folder (e.g. zip -r data.zip data/) and upload that"))
            opts = {k: v for k, v in job.options.items() if v is not None}
            if opts.get("images"):
                opts["images"] = self.base / opts["images"]
            res = importer(job.format)(self.ws, source, **opts, progress=job.advance)
            job.result = _scrubbed(result_json(res), scrub)
            job.state = "done"
        except SlicewiseError as exc:
            from slicewise.server.errors import body_for

            job.error = _scrubbed(body_for(exc), scrub)
            job.state = "failed"
        except Exception as exc:  # noqa: BLE001 - a bug or an unreadable upload: the job says so
            job.error = _scrubbed({"error": type(exc).__name__, "detail": str(exc), "message": str(exc),
                                   "where": job.filename, "fix": ""}, scrub)
            job.state = "failed"
        finally:
            job.finished = time.time()
            shutil.rmtree(tmp, ignore_errors=True)
            if extracted is not None:
                keep_images(extracted, keep=job.state == "done")


def unzip(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` (no member may leave it, be a link, or make it too big); the
    folder to import: ``dest``, or its only subfolder when the zip holds one folder."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_UNZIPPED:
            raise ValidationError(Problem("the zip is too large to extract", archive.name, "file",
                                          f"at most {MAX_MEMBERS:,} files and {MAX_UNZIPPED // 2**30} GiB"))
        for m in members:
            name = PurePosixPath(m.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in m.filename or stat.S_ISLNK(m.external_attr >> 16):
                raise ValidationError(Problem(f"the zip holds a path that leaves its folder: {m.filename!r}",
                                              archive.name, "file", "zip the folder with relative paths only"))
        dest.mkdir(parents=True, exist_ok=True)
        zf.extractall(dest)
    entries = [p for p in dest.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def keep_images(folder: Path, *, keep: bool) -> None:
    """Remove what was extracted from a zip but the images the imported data rows point to."""
    if keep:
        for p in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
            if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES:
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    if not keep or not any(folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # imports/ when no other import kept images


def problem_json(p: Problem) -> dict[str, str]:
    return {"reason": p.reason, "location": p.location, "field": p.field, "fix": p.fix, "severity": p.severity}


def result_json(res: Any) -> dict[str, Any]:
    return {"summary": res.summary(), "data_rows": res.data_rows, "data_rows_skipped": res.data_rows_skipped,
            "annotations": res.annotations, "predictions": res.predictions, "replaced": res.replaced,
            "features_created": list(res.features_created), "run": res.run, "run_rows": res.run_rows,
            "run_rows_without_predictions": res.run_rows_without_predictions,
            "rejected_count": len(res.rejected), "warnings_count": len(res.warnings),
            "rejected": [problem_json(p) for p in res.rejected[:LIST_LIMIT]],
            "warnings": [problem_json(p) for p in res.warnings[:LIST_LIMIT]]}


def _scrubbed(value: Any, prefixes: list[str]) -> Any:
    """``value`` with the server's temporary folders cut from its paths (they mean nothing to the client)."""
    if isinstance(value, str):
        for p in prefixes:
            value = value.replace(p, "")
        return value
    if isinstance(value, dict):
        return {k: _scrubbed(v, prefixes) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, prefixes) for v in value]
    return value
