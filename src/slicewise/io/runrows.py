"""Which data rows a prediction-only import puts in its model run (``rows=`` / ``--rows SPEC``).

The metrics engine evaluates exactly a run's rows (``run_rows``): a labelled row with no prediction
must be in the run for its labels to count as false negatives. A file of predictions only names the
rows the model found something on, so the importers add more rows, chosen by a spec:

- ``dataset:NAME``: every row of that dataset (repeat with ``,`` for several: ``dataset:a,dataset:b``)
- ``split:NAME``: every row of that split (train, valid, test, none)
- ``dataset:NAME/split:NAME``: both conditions (kinds are AND-ed, names of one kind OR-ed)
- ``all``: every row of the workspace; ``predicted``: only the rows that got a prediction
- ``same-dataset``: every row of the datasets of the predicted rows
- ``same-split``: every row of the same (dataset, split) pairs as the predicted rows
- ``auto`` (or no spec): the importer's default: ``same-dataset`` for COCO results (``import_coco``
  makes one dataset per instances file, so that is every image of the file the predictions are
  for, as pycocotools evaluates every image of the ground truth), ``same-split`` for YOLO predictions,
  ``predicted`` for NDJSON predictions.

The predicted rows are always in the run. A spec naming an unknown dataset or split, or choosing no
row at all, is refused and the import changes nothing.

>>> parse_spec("dataset:coco/split:valid")
RowSpec(keyword=None, datasets=('coco',), splits=('valid',))
>>> parse_spec("same-split").keyword
'same-split'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from slicewise.errors import Problem, ValidationError

KEYWORDS = ("auto", "all", "predicted", "same-dataset", "same-split")
SPLITS = ("train", "valid", "test", "none")
_FIX = "write e.g. dataset:coco, split:valid, dataset:coco/split:valid, all, predicted, same-dataset or same-split"


@dataclass(frozen=True)
class RowSpec:
    keyword: str | None = None
    datasets: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()


def parse_spec(spec: str | None, default: str = "predicted") -> RowSpec:
    """A spec string (see the module docstring) as a :class:`RowSpec`; ``None``/``auto`` give ``default``."""
    text = (spec or "auto").strip()
    if text == "auto":
        text = default
    if text in KEYWORDS:
        return RowSpec(keyword=text)
    datasets: list[str] = []
    splits: list[str] = []
    for part in re.split(r"[/,](?=\s*(?:dataset|split):)", text):
        kind, sep, name = part.strip().partition(":")
        name = name.strip()
        if not sep or kind not in ("dataset", "split") or not name:
            raise ValidationError(Problem(f"row spec {spec!r}: cannot read {part.strip()!r}", "", "rows", _FIX))
        if kind == "split":
            if name.lower() not in SPLITS:
                raise ValidationError(Problem(f"row spec {spec!r}: unknown split {name!r}", "", "rows",
                                              "use split:train, split:valid, split:test or split:none"))
            splits.append(name.lower())
        else:
            datasets.append(name)
    return RowSpec(datasets=tuple(dict.fromkeys(datasets)), splits=tuple(dict.fromkeys(splits)))


def resolve(con: Any, spec: RowSpec, predicted: np.ndarray) -> np.ndarray:
    """Data row ids the spec chooses (``predicted``: ids of the rows that got a prediction)."""
    if spec.keyword == "predicted":
        return np.asarray(predicted, np.int64)
    if spec.keyword == "all":
        return con.execute("SELECT id FROM data_rows").fetchnumpy()["id"].astype(np.int64)
    if spec.keyword in ("same-dataset", "same-split"):
        by = "r.dataset_id" + (", r.split" if spec.keyword == "same-split" else "")
        return con.execute(f"""SELECT r.id FROM data_rows r WHERE ({by}) IN (
                               SELECT ({by}) FROM data_rows r WHERE r.id IN (SELECT unnest(?)))""",
                           [np.asarray(predicted, np.int64).tolist()]).fetchnumpy()["id"].astype(np.int64)
    where, params = ["TRUE"], []
    if spec.datasets:
        known = {n for (n,) in con.execute("SELECT name FROM datasets").fetchall()}
        missing = [d for d in spec.datasets if d not in known]
        if missing:
            raise ValidationError(Problem(f"row spec: no dataset named {missing[0]!r}", "", "rows",
                                          f"use one of: {', '.join(sorted(known)) or '(none yet)'}"))
        where.append("r.dataset_id IN (SELECT id FROM datasets WHERE name IN (SELECT unnest(?)))")
        params.append(list(spec.datasets))
    if spec.splits:
        where.append("r.split IN (SELECT unnest(?))")
        params.append(list(spec.splits))
    ids = con.execute(f"SELECT r.id FROM data_rows r WHERE {' AND '.join(where)}",
                      params).fetchnumpy()["id"].astype(np.int64)
    if not len(ids):
        have = con.execute("SELECT d.name, r.split, count(*) FROM data_rows r JOIN datasets d ON d.id = r.dataset_id "
                           "GROUP BY ALL ORDER BY ALL").fetchall()
        listed = "; ".join(f"dataset:{d}/split:{s} ({n})" for d, s, n in have) or "(no data rows yet)"
        raise ValidationError(Problem("row spec " + describe(spec) + " chooses no data row", "", "rows",
                                      f"the workspace has {listed}"))
    return ids


def describe(spec: RowSpec) -> str:
    if spec.keyword:
        return spec.keyword
    return "/".join([",".join(f"dataset:{d}" for d in spec.datasets),
                     ",".join(f"split:{s}" for s in spec.splits)]).strip("/")


def coverage(con: Any, run_id: int) -> tuple[int, int]:
    """(rows in the run, rows of the run without any prediction of it)."""
    n, empty = con.execute("""SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
                                  SELECT 1 FROM predictions p WHERE p.run_id = rr.run_id AND p.data_row_id = rr.data_row_id))
                              FROM run_rows rr WHERE rr.run_id = ?""", [run_id]).fetchone()
    return int(n), int(empty)
