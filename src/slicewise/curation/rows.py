"""What the exports of a batch read: its rows (key, file, size, dataset) and the objects to pre-annotate them
with (a run's predictions above a confidence, or the current ground truth), and how a labelling tool's file
names map back to data rows."""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass
from typing import Any

from slicewise.errors import Problem, ValidationError

PRE = ("auto", "predictions", "labels", "none")


@dataclass(frozen=True)
class BatchRow:
    id: int
    key: str
    row_data: str
    media_type: str
    width: int | None
    height: int | None
    dataset: str
    split: str
    state: str | None

    @property
    def file_name(self) -> str:
        """The file's base name (what a labelling tool calls the image once uploaded)."""
        return posixpath.basename(self.row_data.replace("\\", "/").split("?", 1)[0]) or self.key


def batch_row_list(ws: Any, batch_id: int) -> list[BatchRow]:
    got = ws.sql("""SELECT d.id, d.global_key, d.row_data, d.media_type, d.width, d.height, ds.name, d.split, q.state
                    FROM batch_rows b JOIN data_rows d ON d.id = b.data_row_id JOIN datasets ds ON ds.id = d.dataset_id
                    LEFT JOIN queue q ON q.data_row_id = d.id WHERE b.batch_id = ? ORDER BY b.position""",
                 [batch_id]).fetchall()
    return [BatchRow(*r) for r in got]


def tool_names(rows: list[BatchRow]) -> dict[int, str]:
    """The name each row gets in a labelling tool: its file's base name when that is unique in the batch,
    else its global key."""
    n = Counter(r.file_name for r in rows)
    return {r.id: r.file_name if n[r.file_name] == 1 else r.key for r in rows}


def objects_for(ws: Any, rows: list[BatchRow], *, run: Any = None, pre: str = "auto",
                min_confidence: float | None = None) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """(what the objects are: ``predictions`` / ``labels`` / ``none``, objects by global key). ``auto``:
    the run's predictions when a run is given, else the ground truth. Predictions below ``min_confidence``
    (default: the confidence threshold the run is viewed at) are left out."""
    if pre not in PRE:
        raise ValidationError(Problem(f"unknown pre-annotation source {pre!r}", field="pre",
                                      fix="use " + ", ".join(PRE)))
    what = ("predictions" if run is not None else "labels") if pre == "auto" else pre
    keys = [r.key for r in rows]
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
    if what == "none" or not keys:
        return what, out
    if what == "predictions":
        if run is None:
            raise ValidationError(Problem("pre-annotating with predictions needs a model run", field="run",
                                          fix="give the run (model/run) whose predictions to send"))
        from slicewise.view import View

        r = ws.run(run)
        if min_confidence is None:
            min_confidence = View(run=r).resolve(ws).confidence or 0.0
        objs = [o for o in ws.predictions(r, keys) if float(o.get("confidence", 1.0)) >= min_confidence]
    else:
        objs = ws.annotations(keys)
    for o in objs:
        out[o["data_row"]].append(o)
    return what, out


def match_rows(ws: Any, names: list[tuple[str, str]], batch_id: int | None) -> tuple[dict[str, int], list[Problem]]:
    """Map the names a labelling tool's file gives its items (each with where it is in the file) to data
    rows: a global key, else a file's base name (or path) among the batch's rows (or, without a batch,
    among all rows, when only one row has it). Returns the map and one problem per name not found."""
    name_list = sorted({n for n, _ in names})
    by_key = dict(ws.sql("SELECT global_key, id FROM data_rows WHERE global_key IN (SELECT unnest(?))",
                         [name_list]).fetchall())
    if batch_id is not None:
        cand = ws.sql("SELECT d.id, d.row_data FROM batch_rows b JOIN data_rows d ON d.id = b.data_row_id "
                      "WHERE b.batch_id = ?", [batch_id]).fetchall()
    else:
        bases = [posixpath.basename(n.replace("\\", "/")) for n in name_list if n not in by_key]
        cand = ws.sql("SELECT id, row_data FROM data_rows WHERE regexp_extract(replace(row_data, '\\', '/'), "
                      "'[^/]*$') IN (SELECT unnest(?))", [bases]).fetchall() if bases else []
    by_path: dict[str, list[int]] = {}
    by_base: dict[str, list[int]] = {}
    for rid, rd in cand:
        p = str(rd).replace("\\", "/")
        by_path.setdefault(p, []).append(int(rid))
        by_base.setdefault(posixpath.basename(p.split("?", 1)[0]), []).append(int(rid))
    out: dict[str, int] = {}
    problems: list[Problem] = []
    for name, loc in names:
        if name in out:
            continue
        norm = name.replace("\\", "/")
        hit = by_key.get(name)
        if hit is None:
            for table, k in ((by_path, norm), (by_base, posixpath.basename(norm))):
                ids = table.get(k, [])
                if len(ids) == 1:
                    hit = ids[0]
                    break
                if len(ids) > 1:
                    problems.append(Problem(f"{name!r} names {len(ids)} data rows", loc, "name",
                                            "give the global key (export the batch again: names are unique in it)"))
                    hit = -1
                    break
        if hit is None:
            problems.append(Problem(f"{name!r} is not a data row" + (" of the batch" if batch_id is not None else ""),
                                    loc, "name", "import the file into the workspace it was exported from"
                                    + (", naming the batch it came from" if batch_id is not None else "")))
        elif hit >= 0:
            out[name] = hit
    return out, problems
