"""Custom metrics: named scalar values per data row (optionally per feature) uploaded by the user.

Stored in ``custom_metrics(run_id, data_row_id, feature_id NULL, name, value)``; a new upload of the
same (row, feature, name) replaces the old value. Queryable like the auto metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.errors import Problem, ValidationError
from slicewise.metrics.engine import RunRef, get_run

if TYPE_CHECKING:
    from slicewise.workspace import Workspace


def custom_metrics_table(ws: Workspace, run: RunRef) -> str:
    """The table holding custom metrics (filter it on ``run_id``)."""
    get_run(ws, run)
    return "custom_metrics"


def _read_file(path: Path) -> list[dict[str, Any]]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if not path.exists():
        raise ValidationError(Problem("file not found", location=str(path), fix="check the path"))
    try:
        t = pq.read_table(path) if suffix in (".parquet", ".pq") else pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(column_types={"data_row": pa.string(), "global_key": pa.string(),
                                                                     "feature": pa.string(), "name": pa.string()}))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(Problem(f"cannot read the file: {exc}", location=str(path),
                                      fix="give a CSV or Parquet file with columns data_row, name, value "
                                          "and optionally feature")) from None
    rows = t.to_pylist()
    for i, r in enumerate(rows):
        r.setdefault("location", f"{path.name}:{i + 2 if suffix == '.csv' else i}")
    return rows


def add_custom_metrics(ws: Workspace, run: RunRef, records: Iterable[Mapping[str, Any]] | str | Path) -> int:
    """Upload custom metrics; returns how many values were stored. Every record is checked first: one
    bad record rejects the whole upload (nothing is stored) with every problem located.

    Records: ``data_row`` (or ``global_key``), ``name``, ``value`` (a finite number), ``feature`` (optional)."""
    r = get_run(ws, run)
    recs = _read_file(Path(records)) if isinstance(records, str | Path) else [dict(x) for x in records]
    keys = dict(ws.sql("SELECT global_key, id FROM data_rows").fetchall())
    feats = {f.name: f.id for f in ws.features()}
    problems: list[Problem] = []
    out: list[tuple[int, int | None, str, float]] = []
    seen: set[tuple[int, int | None, str]] = set()
    for i, rec in enumerate(recs):
        loc = str(rec.get("location") or f"record {i}")
        key = rec.get("data_row", rec.get("global_key"))
        if key is None or str(key) not in keys:
            problems.append(Problem(f"unknown data row {key!r}", loc, "data_row", "use the global key of a data row"))
            continue
        name = rec.get("name")
        if not name or not str(name).strip():
            problems.append(Problem("missing metric name", loc, "name", "name each metric (e.g. 'loss')"))
            continue
        fname = rec.get("feature")
        fid = None
        if fname is not None and not (isinstance(fname, float) and math.isnan(fname)) and str(fname) != "":
            if str(fname) not in feats:
                problems.append(Problem(f"unknown feature {fname!r}", loc, "feature", "use a feature of the ontology"))
                continue
            fid = feats[str(fname)]
        try:
            value = float(rec.get("value"))  # type: ignore[arg-type]
            assert math.isfinite(value)
        except (TypeError, ValueError, AssertionError):
            problems.append(Problem(f"value {rec.get('value')!r} is not a finite number", loc, "value", "give a number"))
            continue
        k = (keys[str(key)], fid, str(name).strip())
        if k in seen:
            problems.append(Problem(f"metric {k[2]!r} given twice for this row and feature", loc, "name",
                                    "give each (data row, feature, name) once"))
            continue
        seen.add(k)
        out.append((k[0], fid, k[2], value))
    if problems:
        raise ValidationError(problems)
    if not out:
        return 0
    t = pa.table({"run_id": pa.array(np.full(len(out), r.id, np.int32)),
                  "data_row_id": pa.array([o[0] for o in out], pa.int64()),
                  "feature_id": pa.array([o[1] for o in out], pa.int32()),
                  "name": pa.array([o[2] for o in out], pa.string()),
                  "value": pa.array([o[3] for o in out], pa.float64())})
    with ws.store.transaction() as con:
        con.register("_sw_custom", t)
        try:
            con.execute("""DELETE FROM custom_metrics c WHERE run_id = ? AND EXISTS (
                SELECT 1 FROM _sw_custom n WHERE n.data_row_id = c.data_row_id AND n.name = c.name
                AND n.feature_id IS NOT DISTINCT FROM c.feature_id)""", [r.id])
        finally:
            con.unregister("_sw_custom")
        ws.store.insert_arrow("custom_metrics", t)
        ws.store.touch("custom_metrics", run=r.id)
    return len(out)
