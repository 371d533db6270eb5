"""Tabular classification (CSV or Parquet): one line per data row with its key, ground-truth class,
predicted class, confidence, optional per-class probability columns, and metadata columns.

The classes form one radio feature (default ``class``) whose options are the probability columns'
classes (in column order) when given, else every class seen, sorted. Ground truth and prediction are
radio objects on the row; the probabilities are stored in option order.

>>> import tempfile, os, slicewise
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.csv")
>>> _ = open(p, "w").write("key,label,pred,conf,p_cat,p_dog,site\\na,cat,cat,0.9,0.9,0.1,x\\nb,dog,cat,0.6,0.6,0.4,y\\n")
>>> ws = slicewise.open(os.path.join(d, "ws.duckdb"))
>>> r = import_table(ws, p, run="clf/v1", key="key", label="label", prediction="pred",
...                  confidence="conf", probabilities="p_", metadata=["site"])
>>> (r.data_rows, r.annotations, r.predictions), ws.feature("class").options
((2, 2, 2), ['cat', 'dog'])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import Problem, Report, ValidationError
from slicewise.io.common import Batch, ImportResult, Progress, commit, read_bytes, source_name
from slicewise.types.frame import ObjectFrame


def read_table(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    read_bytes(path)  # exists, readable, not empty
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path)
        return pcsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(Problem(f"cannot read the table: {exc}", path.name, "",
                                      "give a CSV with a header line, or a Parquet file")) from None


def import_table(ws: Any, path: str | Path, *, run: str | None = None, key: str = "global_key",
                 label: str | None = "label", prediction: str | None = "prediction",
                 confidence: str | None = "confidence", probabilities: str | Sequence[str] | None = None,
                 metadata: Sequence[str] | None = None, feature: str = "class", row_data: str | None = None,
                 media_type: str = "image", split: str | None = None, dataset: str | None = None,
                 skip_invalid: bool = False, progress: Progress | None = None) -> ImportResult:
    """``probabilities``: a column-name prefix (``p_`` -> ``p_cat``, ``p_dog``) or a list of columns
    named after their class. ``metadata``: columns to keep as metadata (default: every other column)."""
    path = Path(path)
    t = read_table(path)
    cols = t.column_names
    csv = path.suffix.lower() not in (".parquet", ".pq")
    line = (lambda i: f"{path.name}:{i + 2}") if csv else (lambda i: f"{path.name} row {i}")
    if t.num_rows == 0:
        raise ValidationError(Problem("the table has no rows", path.name, "", "export the data again"))

    def need(c: str | None, what: str) -> None:
        if c is not None and c not in cols:
            raise ValidationError(Problem(f"no {what} column {c!r} (columns: {', '.join(cols)})", path.name, c,
                                          f"name the {what} column with --{what.replace(' ', '-')}"))
    need(key, "key")
    label = label if label in cols else None
    prediction = prediction if (prediction in cols or prediction is None) else prediction
    need(prediction if run else None, "prediction")
    confidence = confidence if confidence in cols else None
    if isinstance(probabilities, str):
        prob_cols = [c for c in cols if c.startswith(probabilities)]
        classes_from_probs = [c[len(probabilities):] for c in prob_cols]
    else:
        prob_cols = list(probabilities or [])
        for c in prob_cols:
            need(c, "probability")
        classes_from_probs = prob_cols
    if probabilities is not None and not prob_cols:
        raise ValidationError(Problem(f"no column starts with {probabilities!r}", path.name, "probabilities",
                                      "give the prefix of the per-class probability columns"))
    used = {key, label, prediction, confidence, row_data, split, *prob_cols}
    md_cols = list(metadata) if metadata is not None else [c for c in cols if c not in used]
    for c in md_cols:
        need(c, "metadata")
    data = {c: t.column(c).to_pylist() for c in set(cols) & ({*used, *md_cols} - {None})}
    n = t.num_rows
    rep = Report()
    keys = data[key]
    opt_cols = [c for c in (label, prediction if run else None) if c]
    options = classes_from_probs or sorted({str(v) for c in opt_cols for v in data[c] if v not in (None, "")})
    rows: list[dict[str, Any]] = []
    gt: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    probs = np.array([data[c] for c in prob_cols], dtype=np.float64).T if prob_cols else None
    for i in range(n):
        loc = line(i)
        k = keys[i]
        if k in (None, ""):
            rep.error("missing data row key", loc, key, "give every line a key")
            continue
        md = {c: data[c][i] for c in md_cols if data[c][i] is not None and not (isinstance(data[c][i], float)
                                                                               and math.isnan(data[c][i]))}
        rows.append({"global_key": str(k), "row_data": str(data[row_data][i]) if row_data else str(k),
                     "media_type": media_type, "split": data[split][i] if split else None, "metadata": md,
                     "location": loc})
        for col, out in ((label, gt), (prediction if run else None, pr)):
            if not col:
                continue
            v = data[col][i]
            if v in (None, ""):
                continue
            if classes_from_probs and str(v) not in classes_from_probs:
                rep.error(f"class {v!r} has no probability column", loc, col,
                          "use one of: " + ", ".join(classes_from_probs))
                continue
            rec: dict[str, Any] = {"data_row": str(k), "feature": feature, "answer": str(v), "location": loc}
            if out is pr:
                if confidence:
                    rec["confidence"] = data[confidence][i]
                if probs is not None:
                    rec["probabilities"] = probs[i].tolist()
            out.append(rec)
    batch = Batch(report=rep, rows=rows, dataset=dataset or path.stem, source=source_name("table", path),
                  features=[], annotations=ObjectFrame.from_records(gt, report=rep) if label else None)
    if run:
        batch.predictions, batch.run = ObjectFrame.from_records(pr, report=rep), run
    have = {f.name: f for f in ws.features()}
    if feature not in have:
        batch.features = [(feature, "radio", None)]
    return _commit_with_options(ws, batch, feature, options, skip_invalid, progress)


def _commit_with_options(ws: Any, batch: Batch, feature: str, options: list[str], skip_invalid: bool,
                         progress: Progress | None) -> ImportResult:
    """Create the radio feature with its options inside the import's transaction, then commit."""
    with ws.store.transaction():
        if batch.features:
            ws.create_feature(feature, "radio", options or None)
            batch.features = []
            created = [feature]
        else:
            created = []
        res = commit(ws, batch, skip_invalid=skip_invalid, progress=progress)
    res.features_created += created
    return res
