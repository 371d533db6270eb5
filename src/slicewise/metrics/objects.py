"""The objects matching works on: annotations or predictions of some data rows as parallel arrays.

:func:`load_objects` reads them from the store; the matching kernels (:mod:`slicewise.metrics.matching`)
take :class:`Objects` and return arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slicewise.errors import MetricsError

#: kinds compared with each other (class-agnostic matching pairs objects of one family)
FAMILY = {"bbox": "area", "polygon": "area", "mask": "area", "point": "point", "polyline": "line",
          "ner": "ner", "radio": "radio", "checklist": "checklist"}
CLASSIFICATION = ("radio", "checklist")


def codes(values: np.ndarray | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """(index of each value among the distinct ones, the distinct values) of an array of strings, without
    a Python loop over the values; NULL (None) is the index one past the distinct values."""
    arr = values if isinstance(values, pa.ChunkedArray) else pa.array(values, type=pa.string())
    enc = pc.dictionary_encode(arr)
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    names = enc.dictionary.to_pylist()
    return enc.indices.fill_null(len(names)).to_numpy(zero_copy_only=False).astype(np.int64), names


@dataclass
class Objects:
    """Annotations or predictions of some data rows, as parallel arrays (sorted by id)."""

    id: np.ndarray
    row: np.ndarray
    feature: np.ndarray
    kind: np.ndarray  # object (str)
    answer: np.ndarray  # object
    box: np.ndarray  # (n, 4)
    geometry: np.ndarray  # object: WKB or None
    mask: np.ndarray  # object: RLE string or None
    span: np.ndarray  # (n, 2)
    size: np.ndarray  # (n, 2) height, width of the row
    confidence: np.ndarray  # 1.0 for annotations
    rles: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)  # by index, built on use
    kinds: tuple[np.ndarray, list[str]] | None = field(default=None, repr=False, compare=False)  # see kind_codes

    def __len__(self) -> int:
        return len(self.id)

    def kind_codes(self) -> tuple[np.ndarray, list[str]]:
        """(each object's kind as an index into the distinct kinds, the distinct kinds), worked out once."""
        if self.kinds is None:
            self.kinds = codes(self.kind)
        return self.kinds

    @classmethod
    def from_arrow(cls, t: pa.Table) -> Objects:
        def col(name: str, dtype: Any = None) -> np.ndarray:
            c = t.column(name)
            if dtype is not None:
                return c.to_numpy(zero_copy_only=False).astype(dtype)
            if c.null_count == len(c):  # (geometry, masks, answers of boxes: no Python object per value)
                return np.full(len(c), None, dtype=object)
            if pa.types.is_string(c.type):  # each distinct string once (answers)
                idx, names = codes(c)
                return np.array([*names, None], dtype=object)[idx]
            return np.array(c.to_pylist(), dtype=object)

        n = t.num_rows
        box = np.column_stack([np.nan_to_num(col(c, np.float64), nan=0.0) for c in "xywh"]) if n else np.zeros((0, 4))
        span = np.column_stack([col(c, np.float64) for c in ("span_start", "span_end")]) if n else np.zeros((0, 2))
        size = np.column_stack([np.nan_to_num(col(c, np.float64)) for c in ("height", "width")]) if n \
            else np.zeros((0, 2))
        kinds = codes(t.column("kind"))  # (never NULL)
        return cls(id=col("id", np.int64), row=col("data_row_id", np.int64), feature=col("feature_id", np.int64),
                   kind=np.array(kinds[1], dtype=object)[kinds[0]], answer=col("answer"), box=box,
                   geometry=col("geometry"), mask=col("mask_rle"), span=span, size=size,
                   confidence=col("confidence", np.float64), kinds=kinds)


def as_rles(o: Objects, idx: np.ndarray) -> list[dict[str, Any]]:
    """Objects as COCO RLEs at their row's size (boxes and polygons rasterised as pycocotools does),
    remembered on ``o``."""
    out = []
    for i in idx:
        r = o.rles.get(int(i))
        if r is None:
            r = o.rles[int(i)] = _to_rle(o, int(i))
        out.append(r)
    return out


def _to_rle(o: Objects, i: int) -> dict[str, Any]:
    h, w = int(o.size[i, 0]), int(o.size[i, 1])
    if o.kind[i] != "mask" and (h <= 0 or w <= 0):
        raise MetricsError(f"a {o.kind[i]} is compared with a mask on a data row without width and height",
                           where=f"data row {int(o.row[i])}", fix="give the data row its width and height")
    return dict(rle_of(o.kind[i], h, w, o.mask[i], o.geometry[i], tuple(float(v) for v in o.box[i])))


def rle_of(kind: str, h: int, w: int, mask: str | None, geometry: bytes | None, box: tuple[float, ...]) -> Any:
    """One object as a COCO RLE on an h x w image: a mask as stored; a polygon (WKB ``geometry``) or a box
    (x, y, w, h) rasterised as pycocotools' ``annToRLE`` does."""
    from pycocotools import mask as mask_utils

    if kind == "mask":
        return {"size": [h, w], "counts": str(mask).encode()}
    if kind == "polygon":
        import shapely

        g = shapely.from_wkb(geometry)
        polys = list(g.geoms) if hasattr(g, "geoms") else [g]
        rings = [np.asarray(p.exterior.coords[:-1], np.float64).ravel().tolist() for p in polys]
    else:
        x, y, bw, bh = box
        rings = [[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]
    return mask_utils.merge(mask_utils.frPyObjects(rings, h, w))


def load_objects(con: Any, table: str, run_id: int | None, rows_table: str, span: tuple[int, int]) -> Objects:
    """Objects of the rows listed in the registered table ``rows_table`` (column data_row_id), whose ids are
    within ``span`` (lowest, highest: row groups of objects outside it are skipped unread)."""
    assert table in ("annotations", "predictions") and rows_table.isidentifier()
    conf = "o.confidence" if table == "predictions" else "1.0::DOUBLE AS confidence"
    cond = "o.run_id = ? AND " if table == "predictions" else ""
    t = con.execute(f"""
        SELECT o.id, o.data_row_id, o.feature_id, o.kind, o.answer, o.x, o.y, o.w, o.h,
               CASE WHEN o.kind IN ('polygon', 'point', 'polyline') THEN o.geometry END AS geometry,
               o.mask_rle, o.span_start, o.span_end, {conf}, d.height, d.width
        FROM {table} o JOIN data_rows d ON d.id = o.data_row_id
        WHERE {cond} o.data_row_id BETWEEN ? AND ? AND o.data_row_id IN (SELECT data_row_id FROM {rows_table})
        ORDER BY o.id""", [*([run_id] if table == "predictions" else []), *span]).to_arrow_table()
    return Objects.from_arrow(t)


def load_row_objects(con: Any, run_id: int, data_row_ids: np.ndarray) -> tuple[Objects, Objects]:
    """(the run's predictions, the labels) of some data rows."""
    ids = np.asarray(data_row_ids, np.int64)
    span = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
    con.register("_sw_objects_rows", pa.table({"data_row_id": ids}))
    try:
        return (load_objects(con, "predictions", run_id, "_sw_objects_rows", span),
                load_objects(con, "annotations", None, "_sw_objects_rows", span))
    finally:
        con.unregister("_sw_objects_rows")
