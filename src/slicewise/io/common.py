"""What every importer shares: reading JSON with line numbers, image sizes, the one-transaction
commit, rejects files and the result of an import.

Every importer parses its files into plain data-row dicts and :class:`ObjectFrame` batches, noting
each record it cannot read in a :class:`Report`, and then calls :func:`commit`, which writes data
rows, features, ground truth and predictions in ONE transaction. By default any invalid record
(found while parsing or by the store's checks) raises a :class:`ValidationError` listing them all and
the store is exactly as before; with ``skip_invalid`` the valid records are written and
:attr:`ImportResult.rejected` holds one problem per rejected record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from slicewise.errors import Problem, Report, ValidationError
from slicewise.io.media import WORKSPACE_ROOT
from slicewise.io.runrows import RowSpec, coverage, describe, resolve
from slicewise.types.frame import ObjectFrame

if TYPE_CHECKING:
    from slicewise.workspace import Workspace, WriteResult

Progress = Callable[..., None]  # progress(n_done_increment, total=None)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


@dataclass
class ImportResult:
    """What an import wrote. ``rejected`` has one problem per rejected record (``skip_invalid``)."""

    data_rows: int = 0
    data_rows_skipped: int = 0  # already in the workspace (same global key)
    annotations: int = 0
    predictions: int = 0
    replaced: int = 0  # objects of an earlier import of the same file that this one replaced
    features_created: list[str] = field(default_factory=list)
    run: str | None = None
    run_rows: int | None = None  # rows the run covers after the import (None: no run)
    run_rows_without_predictions: int = 0  # of those, rows with no prediction of the run (their labels are FN)
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.data_rows or self.data_rows_skipped:
            parts.append(f"{self.data_rows:,} data rows")
        if self.data_rows_skipped:
            parts[-1] += f" (+{self.data_rows_skipped:,} already present)"
        if self.annotations:
            parts.append(f"{self.annotations:,} annotations")
        if self.predictions or self.run:
            parts.append(f"{self.predictions:,} predictions" + (f" in run {self.run}" if self.run else ""))
        if self.run_rows is not None:
            parts.append(f"the run covers {self.run_rows:,} data rows "
                         f"({self.run_rows_without_predictions:,} with no prediction)")
        if self.features_created:
            parts.append(f"{len(self.features_created)} new features")
        if self.rejected:
            parts.append(f"{len(self.rejected):,} records rejected")
        if self.warnings:
            parts.append(f"{len(self.warnings):,} warnings")
        return "imported " + (", ".join(parts) or "nothing")


# -- reading ------------------------------------------------------------------------------------
def read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    if not p.exists():
        raise ValidationError(Problem("file not found", str(p), "", "check the path"))
    if p.is_dir():
        raise ValidationError(Problem("is a folder, not a file", str(p), "", "give the file inside it"))
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValidationError(Problem(f"cannot read file: {exc.strerror}", str(p), "", "check its permissions")) from None
    if not data.strip():
        raise ValidationError(Problem("file is empty", str(p), "", "export the data again; the file has no records"))
    return data


def parse_json(data: bytes | str, where: str) -> Any:
    """JSON with the error's line and column. NaN/Infinity (Python's json.dump writes them) are read,
    so that validation can name the field, rather than failing the whole file as a syntax error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValidationError(Problem(f"JSON syntax error: {exc.msg} (column {exc.colno})",
                                      f"{where}:{exc.lineno}", "",
                                      "fix the JSON at that line (a missing comma, quote or bracket?)")) from None


def read_json(path: str | Path) -> Any:
    return parse_json(read_bytes(path), Path(path).name)


def read_ndjson(path: str | Path, report: Report) -> Iterator[tuple[int, Any]]:
    """(line number, object) for each non-blank line; a line that is not JSON goes to ``report``."""
    data = read_bytes(path)
    name = Path(path).name
    for no, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield no, parse_json(line, f"{name}")
        except ValidationError as exc:
            p = exc.problems[0]
            report.error(p.reason, f"{name}:{no}", "", "each line must be one complete JSON object")


def image_size(path: Path, location: str) -> tuple[int, int]:
    """(width, height) read from the image header with Pillow."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ValidationError(Problem(f"image file {path} is missing", location, "image",
                                      "put the image beside its label file, or pass the images folder"))
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Image.DecompressionBombError as exc:
        raise ValidationError(Problem(f"image file {path} is too large to read safely ({exc})", location, "image",
                                      "scale the image down (e.g. to at most 8000 x 8000), or remove it")) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValidationError(Problem(f"image file {path} is unreadable ({exc.__class__.__name__})", location,
                                      "image", "replace it with a valid JPEG/PNG, or remove its label file")) from None


def find_image(folder: Path, stem: str) -> Path | None:
    for suf in IMAGE_SUFFIXES:
        for s in (suf, suf.upper()):
            p = folder / f"{stem}{s}"
            if p.exists():
                return p
    return None


def source_name(fmt: str, path: str | Path) -> str:
    """The ``source`` tag of imported objects: re-importing the same file replaces them."""
    return f"{fmt}:{Path(path).name}"


# -- writing ------------------------------------------------------------------------------------
@dataclass
class Batch:
    """Everything one import writes."""

    dataset: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    annotations: ObjectFrame | None = None
    predictions: ObjectFrame | None = None
    run: str | None = None  # model/run
    run_config: Mapping[str, Any] | None = None
    features: list[tuple[str, str, str | None]] = field(default_factory=list)  # (name, kind, external id)
    source: str = "import"
    report: Report = field(default_factory=Report)
    run_rows: RowSpec | None = None  # which rows the run covers besides the predicted ones (io.runrows)
    #: the dataset's media roots this import records (io.media): its images folder, else the workspace's
    media_roots: list[str] = field(default_factory=lambda: [WORKSPACE_ROOT])


def split_run(ref: str) -> tuple[str, str]:
    model, _, name = ref.partition("/")
    if not model or not name:
        raise ValidationError(Problem(f"run {ref!r} is not model/run", "", "run", "write it as model/run, e.g. yolov8/valid"))
    return model, name


def commit(ws: Workspace, batch: Batch, *, skip_invalid: bool = False, create_features: bool = False,
           progress: Progress | None = None) -> ImportResult:
    """Write a parsed batch in one transaction (see the module docstring)."""
    from slicewise.store.objects import REGION_KINDS

    res = ImportResult(run=batch.run, warnings=list(batch.report.warnings))
    if progress:
        total = len(batch.rows) + sum(len(f) for f in (batch.annotations, batch.predictions) if f is not None)
        progress(0, total=total)
    problems: list[Problem] = list(batch.report.errors)
    with ws.store.transaction():
        have = {f.name: f for f in ws.features()}
        for name, kind, ext in batch.features:
            f = have.get(name)
            if f is None:
                ws.create_feature(name, kind, external_id=ext)
                res.features_created.append(name)
            elif f.kind != kind and not (f.kind in REGION_KINDS and kind in REGION_KINDS):
                problems.append(Problem(f"class {name!r} is already a {f.kind} feature, this file makes it {kind}",
                                        batch.source, "feature", "rename the class in the file, or use another workspace"))
            elif ext is not None and f.external_id is None:
                ws.store.con.execute("UPDATE features SET external_id = ? WHERE id = ?", [ext, f.id])
                ws.store.touch("features")
            elif ext is not None and f.external_id != ext:
                res.warnings.append(Problem(
                    f"class {name!r} already has external id {f.external_id}; this file's id {ext} is not recorded",
                    batch.source, "feature", "results must then use category id " + str(f.external_id)))
        if batch.rows:
            r = ws.add_data_rows(batch.dataset or "default", batch.rows, skip_invalid=True,
                                 media_roots=batch.media_roots)
            res.data_rows, res.data_rows_skipped = r.inserted, r.skipped
            problems += r.rejected
            res.warnings += r.warnings
        if progress:
            progress(len(batch.rows))
        for frame, is_pred in ((batch.annotations, False), (batch.predictions, True)):
            if frame is None:
                continue
            _refuse_if_no_row_is_known(ws, frame, batch.source, is_pred)
            out: WriteResult
            if is_pred:
                assert batch.run
                model, name = split_run(batch.run)
                run = ws.create_run(model, name, batch.run_config, exist_ok=True)
                out = ws.add_predictions(run, frame, source=batch.source, skip_invalid=True,
                                         create_features=create_features)
                res.predictions = out.inserted
                if batch.rows:  # a file that brings rows and the run's predictions together: every
                    # row it names is in the run, so rows with labels and no prediction count as FN
                    ws.add_run_rows(run, [str(r["global_key"]) for r in batch.rows], skip_unknown=True)
                if batch.run_rows is not None:
                    res.warnings += _add_spec_rows(ws, run.id, batch.run_rows, batch.source)
                res.run_rows, res.run_rows_without_predictions = coverage(ws.store.con, run.id)
            else:
                out = ws.add_annotations(frame, source=batch.source, skip_invalid=True,
                                         create_features=create_features)
                res.annotations = out.inserted
            res.replaced += out.replaced
            problems += out.rejected
            res.warnings += out.warnings
            if progress:
                progress(len(frame))
        res.rejected = one_per_record(problems)
        if res.rejected and not skip_invalid:
            raise ValidationError(res.rejected)  # rolls the transaction back
    return res


def _refuse_if_no_row_is_known(ws: Workspace, frame: ObjectFrame, source: str, predictions: bool) -> None:
    """One refusal, not one line per record, when not one data row the objects name is in the workspace:
    the file came before its images (or belongs to another workspace)."""
    if not len(frame):
        return
    known = "SELECT 1 FROM data_rows WHERE global_key = ?"
    if ws.store.cursor().execute(known, [str(frame.data_row[0])]).fetchone():
        return  # the usual case, at the cost of one index lookup
    keys = list(dict.fromkeys(frame.data_row.tolist()))
    if ws.store.cursor().execute("SELECT 1 FROM data_rows WHERE global_key IN (SELECT unnest(?)) LIMIT 1",
                                 [[str(k) for k in keys]]).fetchone():
        return
    empty = not ws.store.cursor().execute("SELECT 1 FROM data_rows LIMIT 1").fetchone()
    unknown_rows_first(keys, len(keys), source.partition(":")[2] or source, "data_row", empty,
                       "predictions" if predictions else "annotations")


def unknown_rows_first(unknown: Sequence[Any], n_named: int, where: str, field: str, empty_workspace: bool,
                       what: str = "predictions") -> None:
    """Raise the one 'import the images first' refusal when none of the ``n_named`` images a file names
    is known (``unknown`` lists them); else return, and each record is checked on its own."""
    if not unknown or len(unknown) < n_named:
        return
    n = len(unknown)
    shown = ", ".join(repr(v) for v in unknown[:5]) + (f", ... ({n - 5:,} more)" if n > 5 else "")
    have = "the workspace has no data rows yet" if empty_workspace else "the workspace has none of them"
    raise ValidationError(Problem(f"the {what} name {n:,} image{'s' if n != 1 else ''} ({shown}) and {have}",
                                  where, field, f"import the images (data rows) first, then the {what}; or check "
                                                "that the file belongs to this workspace"))


def _add_spec_rows(ws: Workspace, run_id: int, spec: RowSpec, source: str) -> list[Problem]:
    """Put the rows ``spec`` chooses in the run (see :mod:`slicewise.io.runrows`)."""
    import numpy as np

    from slicewise.store.objects import ensure_run_rows

    con = ws.store.con
    predicted = con.execute("SELECT DISTINCT data_row_id FROM predictions WHERE run_id = ? AND source = ?",
                            [run_id, source]).fetchnumpy()["data_row_id"].astype(np.int64)
    warnings: list[Problem] = []
    if not len(predicted) and spec.keyword in ("same-dataset", "same-split"):
        spec, note = _spec_without_predictions(con, spec, source)
        warnings.append(note)
    ids = resolve(con, spec, predicted)
    ensure_run_rows(ws.store, run_id, ids, bump=False)
    outside = len(np.setdiff1d(predicted, ids))
    if outside and spec.keyword is None:
        warnings.append(Problem(f"{outside:,} predicted data rows are outside rows {describe(spec)}; they are in "
                                "the run anyway", source, "rows", "check the spec, or delete those predictions"))
    return warnings


def _spec_without_predictions(con: Any, spec: RowSpec, source: str) -> tuple[RowSpec, Problem]:
    """A file with no predictions (a model that found nothing) names no image, so 'the predicted images'
    dataset' means the workspace's only dataset (and split); with several, the user must say which."""
    by = "d.name" + (", r.split" if spec.keyword == "same-split" else "")
    groups = con.execute(f"SELECT {by} FROM data_rows r JOIN datasets d ON d.id = r.dataset_id GROUP BY ALL").fetchall()
    if len(groups) != 1:
        have = "; ".join("/".join(f"{k}:{v}" for k, v in zip(("dataset", "split"), g, strict=False))
                         for g in sorted(groups)[:10]) or "(no data rows yet)"
        raise ValidationError(Problem("the file has no predictions, so it names no image: which rows the run covers "
                                      "is not known", source, "rows",
                                      f"say it with --rows (rows=...), e.g. --rows dataset:NAME; the workspace has {have}"))
    chosen = RowSpec(datasets=(groups[0][0],), splits=tuple(groups[0][1:]))
    return chosen, Problem(f"the file has no predictions: the run covers every row of {describe(chosen)}, whose "
                           "labels all count as false negatives", source, "rows",
                           "if the model did find objects, export its predictions again")


def one_per_record(problems: Sequence[Problem]) -> list[Problem]:
    """Keep the first problem of each record (location), in the records' order."""
    import re

    seen: set[str] = set()
    out = []
    for p in problems:
        key = p.location or p.reason
        if key not in seen:
            seen.add(key)
            out.append(p)
    natural = lambda p: [(0, int(t), "") if t.isdigit() else (1, 0, t)  # noqa: E731
                         for t in re.split(r"([0-9]+)", p.location)]
    return sorted(out, key=natural)


def write_rejects(path: str | Path, problems: Sequence[Problem]) -> int:
    """One JSON line per rejected record: location, field, reason, fix."""
    with open(path, "wb") as fh:
        for p in problems:
            fh.write(orjson.dumps({"location": p.location, "field": p.field, "reason": p.reason, "fix": p.fix}))
            fh.write(b"\n")
    return len(problems)


def num(v: Any) -> float | None:
    """A JSON number as float (bools are not numbers); None when it is not one."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)
