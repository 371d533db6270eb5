"""Read custom vectors from files: ``.npy`` + keys, Parquet, CSV.

- ``.npy``: an (n, dim) array; the keys come from ``keys`` (a text file of one global key a line, a
  JSON list, or a ``.npy`` of keys or data row ids), in the same order.
- Parquet: a key column (``global_key``, ``key``, or ``data_row_id`` / ``id`` for ids) and either a list
  column (``vector``, ``embedding`` or ``embeddings``) or one numeric column per dimension.
- CSV: a header; the key column as for Parquet, then either a ``vector`` column holding a JSON list or
  one numeric column per dimension.

Each reader returns ``(keys, vectors)``; an error names the file, the line (CSV) or row, and the field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import Problem, ValidationError

KEY_COLUMNS = ("global_key", "key", "data_row_id", "id")
VECTOR_COLUMNS = ("vector", "embedding", "embeddings")


def read_vectors(path: str | Path, keys: str | Path | None = None) -> tuple[list[Any], np.ndarray]:
    """(row keys or ids, (n, dim) float32 vectors) from a file; see the module docstring."""
    p = Path(path)
    if not p.exists():
        raise ValidationError(Problem("no such file", location=str(p), fix="check the path"))
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _npy(p, keys)
    if keys is not None:
        raise ValidationError(Problem("--keys goes with a .npy file only", location=str(keys),
                                      fix="Parquet and CSV files carry their keys in a column"))
    if suffix in (".parquet", ".pq"):
        return _parquet(p)
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv(p, "\t" if suffix == ".tsv" else ",")
    raise ValidationError(Problem(f"unknown vector file type {suffix!r}", location=str(p),
                                  fix="give a .npy (with --keys), .parquet or .csv file"))


def _npy(p: Path, keys: str | Path | None) -> tuple[list[Any], np.ndarray]:
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValidationError(Problem(f"not a readable .npy array: {exc}", location=str(p),
                                      fix="save it with numpy.save")) from None
    if arr.ndim != 2:
        raise ValidationError(Problem(f"array has shape {arr.shape}, not (n, dim)", location=str(p),
                                      fix="save one row per data row"))
    if keys is None:
        raise ValidationError(Problem("a .npy file needs its keys", location=str(p),
                                      fix="pass --keys FILE: one global key a line (or a JSON list, or a .npy of ids)"))
    kp = Path(keys)
    if not kp.exists():
        raise ValidationError(Problem("no such keys file", location=str(kp), fix="check the path"))
    if kp.suffix.lower() == ".npy":
        k = np.load(kp, allow_pickle=False)
        out = [int(x) for x in k] if np.issubdtype(k.dtype, np.integer) else [str(x) for x in k]
    elif kp.suffix.lower() == ".json":
        try:
            out = json.loads(kp.read_text())
        except ValueError as exc:
            raise ValidationError(Problem(f"not JSON: {exc}", location=str(kp), fix="give a JSON list of keys")) from None
        if not isinstance(out, list):
            raise ValidationError(Problem("not a JSON list", location=str(kp), fix="give a JSON list of keys"))
    else:
        out = [line.rstrip("\r\n") for line in kp.read_text(encoding="utf-8").splitlines()]
        while out and out[-1] == "":
            out.pop()
    if len(out) != len(arr):
        raise ValidationError(Problem(f"{len(out)} keys for {len(arr)} vectors", location=str(kp),
                                      fix="give one key per row of the array, in the same order"))
    return out, _floats(arr, str(p))


def _floats(arr: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(Problem(f"vectors are not numbers: {exc}", location=where, fix="give numbers")) from None


def _key_column(names: list[str], where: str) -> str:
    for c in KEY_COLUMNS:
        if c in names:
            return c
    raise ValidationError(Problem("no key column", location=where, field="header",
                                  fix="name one column global_key (or key, or data_row_id for ids); found: "
                                      + ", ".join(names[:10])))


def _parquet(p: Path) -> tuple[list[Any], np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        tbl = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(Problem(f"not a readable Parquet file: {exc}", location=str(p))) from None
    names = tbl.column_names
    kc = _key_column(names, str(p))
    keys = tbl.column(kc).to_pylist()
    vc = next((c for c in VECTOR_COLUMNS if c in names), None)
    if vc is not None:
        col = tbl.column(vc).combine_chunks()
        if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
            raise ValidationError(Problem(f"column {vc!r} is {col.type}, not a list of numbers", location=str(p), field=vc))
        lens = np.asarray(col.value_lengths().fill_null(0))
        bad = np.flatnonzero(lens != (lens[0] if len(lens) else 0))
        if len(bad):
            i = int(bad[0])
            raise ValidationError(Problem(f"vector has {lens[i]} numbers, the first has {lens[0]}",
                                          location=f"{p}: row {i + 1}", field=vc, fix="give every vector the same length"))
        vecs = _floats(col.flatten().to_numpy(zero_copy_only=False), str(p)).reshape(len(keys), -1) if len(keys) else \
            np.zeros((0, 0), np.float32)
    else:
        cols = [c for c in names if c != kc]
        if not cols:
            raise ValidationError(Problem("no vector column", location=str(p),
                                          fix="add a list column 'vector' or one numeric column per dimension"))
        vecs = np.column_stack([_floats(tbl.column(c).to_numpy(zero_copy_only=False), f"{p} [{c}]") for c in cols])
    return _keys_typed(keys, kc), vecs


def _csv(p: Path, delimiter: str) -> tuple[list[Any], np.ndarray]:
    keys: list[Any] = []
    vecs: list[list[float]] = []
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise ValidationError(Problem("empty file", location=str(p), fix="give a header and one line per data row"))
        header = [h.strip() for h in header]
        kc = _key_column(header, f"{p}:1")
        ki = header.index(kc)
        vi = next((header.index(c) for c in VECTOR_COLUMNS if c in header), None)
        dims = [i for i in range(len(header)) if i != ki]
        problems: list[Problem] = []
        for line_no, rec in enumerate(reader, start=2):
            if not rec or all(not x.strip() for x in rec):
                continue
            if len(rec) != len(header):
                problems.append(Problem(f"{len(rec)} fields, the header has {len(header)}", location=f"{p}:{line_no}",
                                        fix="give one value per column"))
                continue
            try:
                if vi is not None:
                    v = json.loads(rec[vi])
                    if not isinstance(v, list):
                        raise ValueError("not a JSON list")
                    row = [float(x) for x in v]
                else:
                    row = [float(rec[i]) for i in dims]
            except (ValueError, TypeError) as exc:
                problems.append(Problem(f"vector is not numbers: {exc}", location=f"{p}:{line_no}",
                                        field=header[vi] if vi is not None else "vector",
                                        fix="write numbers (a JSON list in a 'vector' column)"))
                continue
            if vecs and len(row) != len(vecs[0]):
                problems.append(Problem(f"vector has {len(row)} numbers, the first has {len(vecs[0])}",
                                        location=f"{p}:{line_no}", fix="give every vector the same length"))
                continue
            keys.append(rec[ki])
            vecs.append(row)
            if len(problems) > 100:
                break
        if problems:
            raise ValidationError(problems)
    arr = np.asarray(vecs, dtype=np.float32) if vecs else np.zeros((0, 1), np.float32)
    return _keys_typed(keys, kc), arr


def _keys_typed(keys: list[Any], column: str) -> list[Any]:
    if column in ("data_row_id", "id"):
        try:
            return [int(k) for k in keys]
        except (TypeError, ValueError):
            raise ValidationError(Problem("data row ids must be whole numbers", field=column,
                                          fix="use a global_key column for keys")) from None
    return [str(k) for k in keys]
