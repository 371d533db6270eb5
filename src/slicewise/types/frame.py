"""``ObjectFrame``: a batch of annotations or predictions as parallel NumPy arrays.

One frame is what importers build and what the store writes in one Arrow insert. Records refer
to data rows by global key and to features by name; the workspace resolves both when it writes.

Geometry conventions: boxes are x, y, w, h in pixels; polygons, polylines and points are stored
as WKB (shapely); masks as COCO compressed RLE strings; NER spans as [start, end) offsets.

>>> f = ObjectFrame.from_records([
...     {"data_row": "img1", "feature": "cat", "bbox": [10, 10, 20, 30], "confidence": 0.9},
...     {"data_row": "img1", "feature": "dog", "polygon": [[0, 0], [10, 0], [10, 10]]},
... ])
>>> len(f), list(f.kind), f.x.tolist()
(2, ['bbox', 'polygon'], [10.0, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from slicewise.errors import Problem, Report, ValidationError
from slicewise.types.kinds import Kind

_GEOMETRY_KEYS = ("bbox", "polygon", "mask", "line", "polyline", "point", "span", "answer", "answers")


@dataclass
class ObjectFrame:
    data_row: np.ndarray  # object: global keys
    feature: np.ndarray  # object: feature names
    kind: np.ndarray  # object: Kind values
    x: np.ndarray  # float64, NaN for non-spatial kinds
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    geometry: np.ndarray  # object: WKB bytes or None
    mask_rle: np.ndarray  # object: compressed RLE str or None
    mask_size: np.ndarray  # object: (height, width) of the RLE, checked against the image
    span_start: np.ndarray  # int64, -1 when not a span
    span_end: np.ndarray
    answer: np.ndarray  # object: str or None
    confidence: np.ndarray  # float64, NaN = not given (1.0 for predictions)
    iscrowd: np.ndarray  # bool
    area: np.ndarray  # float64, NaN = derive
    external_id: np.ndarray  # object
    probabilities: np.ndarray  # object: list[float] or None
    location: np.ndarray  # object: where each record came from, for error messages

    def __post_init__(self) -> None:
        n = len(self.data_row)
        for f in fields(self):
            arr = getattr(self, f.name)
            if len(arr) != n:
                raise ValueError(f"ObjectFrame column {f.name} has {len(arr)} values, expected {n}")

    def __len__(self) -> int:
        return len(self.data_row)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def empty(cls) -> ObjectFrame:
        return cls.from_columns(data_row=[], feature=[], kind=[])

    @classmethod
    def from_columns(cls, *, data_row: Sequence[str], feature: Sequence[str], kind: Sequence[str] | str,
                     **cols: Any) -> ObjectFrame:
        """Build from whole columns; missing columns get their 'absent' value.

        >>> ObjectFrame.from_columns(data_row=["a"], feature=["cat"], kind="bbox",
        ...                          x=[1], y=[2], w=[3], h=[4]).w.tolist()
        [3.0]
        """
        n = len(data_row)
        obj = lambda v=None: np.array([v] * n, dtype=object)  # noqa: E731
        nan = lambda: np.full(n, np.nan)  # noqa: E731
        kinds = np.array([kind] * n if isinstance(kind, str) else list(kind), dtype=object)
        defaults: dict[str, Any] = {
            "x": nan(), "y": nan(), "w": nan(), "h": nan(),
            "geometry": obj(), "mask_rle": obj(), "mask_size": obj(), "span_start": np.full(n, -1, np.int64),
            "span_end": np.full(n, -1, np.int64), "answer": obj(), "confidence": nan(),
            "iscrowd": np.zeros(n, bool), "area": nan(), "external_id": obj(),
            "probabilities": obj(), "location": obj(""),
        }
        out: dict[str, Any] = {}
        for name, default in defaults.items():
            if name in cols and cols[name] is not None:
                v = cols.pop(name)
                out[name] = np.asarray(v, dtype=default.dtype) if default.dtype != object else _objarr(v)
            else:
                out[name] = default
        if cols:
            raise TypeError(f"unknown ObjectFrame columns: {sorted(cols)}")
        return cls(data_row=_objarr(data_row), feature=_objarr(feature), kind=kinds, **out)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], *, report: Report | None = None) -> ObjectFrame:
        """Build from one dict per object.

        Keys: ``data_row`` (global key), ``feature`` (name), one geometry key (``bbox`` [x,y,w,h],
        ``polygon`` [[x,y],...] or a list of such rings, ``mask`` {"size": [h,w], "counts": ...},
        ``line``/``polyline`` [[x,y],...], ``point`` [x,y], ``span`` [start,end], ``answer`` str,
        ``answers`` [str,...] for a checklist), and optionally ``kind``, ``confidence``,
        ``iscrowd``, ``area``, ``external_id``, ``probabilities``, ``location``.

        Records that cannot be read are reported in ``report`` (and dropped) when given, else a
        :class:`ValidationError` lists them all.
        """
        own = report is None
        rep = report if report is not None else Report()
        cols: dict[str, list[Any]] = {f.name: [] for f in fields(cls)}
        for i, rec in enumerate(records):
            loc = str(rec.get("location") or f"record {i}")
            try:
                for obj in _explode(rec, loc):
                    for k, v in obj.items():
                        cols[k].append(v)
            except _BadRecord as exc:
                rep.error(exc.reason, loc, exc.field, exc.fix)
        if own and rep.errors:
            raise ValidationError(rep.errors)
        return cls.from_columns(**cols)  # type: ignore[arg-type]

    @staticmethod
    def concat(frames: Sequence[ObjectFrame]) -> ObjectFrame:
        frames = [f for f in frames if len(f)] or [ObjectFrame.empty()]
        return ObjectFrame(**{f.name: np.concatenate([getattr(fr, f.name) for fr in frames])
                              for f in fields(ObjectFrame)})

    def take(self, index: np.ndarray) -> ObjectFrame:
        """Rows selected by a boolean mask or an index array."""
        return ObjectFrame(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def problems(self, *, predictions: bool) -> Report:
        """Validate what can be checked without the store (vectorised); see ``validate``."""
        return validate(self, predictions=predictions)


class _BadRecord(Exception):
    def __init__(self, reason: str, field: str = "", fix: str = "") -> None:
        super().__init__(reason)
        self.reason, self.field, self.fix = reason, field, fix


def _objarr(v: Any) -> np.ndarray:
    if isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 1:
        return v
    arr = np.empty(len(v), dtype=object)
    arr[:] = list(v)
    return arr


def _num(v: Any, field: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        fix = "give a probability between 0 and 1" if field == "confidence" else "write a plain number"
        raise _BadRecord(f"{field} {v!r} is not a number", field, fix) from None


def _points(v: Any, field: str) -> list[tuple[float, float]]:
    """[[x,y],...] or a flat [x1,y1,x2,y2,...] or [{"x":..,"y":..},...] into a list of pairs."""
    if isinstance(v, list) and v and isinstance(v[0], Mapping):
        return [(_num(p.get("x"), field), _num(p.get("y"), field)) for p in v]
    if isinstance(v, list) and v and not isinstance(v[0], list | tuple):
        if len(v) % 2:
            raise _BadRecord("a flat coordinate list needs an even count", field, "write x1,y1,x2,y2,...")
        return [(_num(v[i], field), _num(v[i + 1], field)) for i in range(0, len(v), 2)]
    try:
        return [(_num(p[0], field), _num(p[1], field)) for p in v]
    except (TypeError, IndexError, KeyError):
        raise _BadRecord("points must be [[x, y], ...]", field, "write each point as [x, y]") from None


def _rings(v: Any) -> list[list[tuple[float, float]]]:
    if not isinstance(v, list) or not v:
        raise _BadRecord("polygon has no points", "polygon", "give at least 3 [x, y] points")
    first = v[0]
    # a list of rings: [[[x,y],...], ...] or COCO's [[x1,y1,x2,y2,...], ...]
    is_multi = isinstance(first, list) and (
        (first and isinstance(first[0], list | tuple | Mapping)) or len(first) > 2)
    rings = v if is_multi else [v]
    return [_points(r, "polygon") for r in rings]


def _explode(rec: Mapping[str, Any], loc: str) -> list[dict[str, Any]]:
    """One input record as one or more frame rows (a checklist with n answers gives n rows)."""
    from shapely import LineString, MultiPolygon, Point, Polygon, to_wkb

    if not rec.get("data_row"):
        raise _BadRecord("missing data row key", "data_row", "give the data row's global key")
    if not rec.get("feature"):
        raise _BadRecord("missing feature (class) name", "feature", "name the class of the object")
    keys = [k for k in _GEOMETRY_KEYS if rec.get(k) is not None]
    if not keys:
        raise _BadRecord("no geometry or answer", "", "give one of: " + ", ".join(_GEOMETRY_KEYS))
    key = keys[0]
    nan = math.nan
    row: dict[str, Any] = {
        "data_row": str(rec["data_row"]), "feature": str(rec["feature"]), "x": nan, "y": nan,
        "w": nan, "h": nan, "geometry": None, "mask_rle": None, "mask_size": None, "span_start": -1, "span_end": -1,
        "answer": None, "confidence": nan if rec.get("confidence") is None else _num(rec["confidence"], "confidence"),
        "iscrowd": bool(rec.get("iscrowd", False)),
        "area": nan if rec.get("area") is None else _num(rec["area"], "area"),
        "external_id": None if rec.get("external_id") is None else str(rec["external_id"]),
        "probabilities": None, "location": loc,
    }
    if math.isnan(row["confidence"]) and rec.get("confidence") is not None:
        raise _BadRecord("confidence is NaN", "confidence", "give a probability between 0 and 1, or leave it out")
    if rec.get("probabilities") is not None:
        row["probabilities"] = [_num(p, "probabilities") for p in rec["probabilities"]]
    val = rec[key]
    if key == "bbox":
        if isinstance(val, Mapping):  # Labelbox style {top, left, height, width}
            val = [val.get("left"), val.get("top"), val.get("width"), val.get("height")]
        if not isinstance(val, list | tuple) or len(val) != 4:
            raise _BadRecord("bbox must be [x, y, w, h]", "bbox", "write four numbers: left, top, width, height")
        row.update(kind=Kind.BBOX.value, **dict(zip("xywh", (_num(c, "bbox") for c in val), strict=True)))
    elif key == "polygon":
        rings = _rings(val)
        for r in rings:
            if len(r) < 3:
                raise _BadRecord(f"polygon has {len(r)} points", "polygon", "a polygon needs at least 3 points")
        geom = Polygon(rings[0]) if len(rings) == 1 else MultiPolygon([Polygon(r) for r in rings])
        row.update(kind=Kind.POLYGON.value, geometry=to_wkb(geom))
        _bounds(row, geom)
    elif key in ("line", "polyline"):
        pts = _points(val, "line")
        if len(pts) < 2:
            raise _BadRecord(f"polyline has {len(pts)} points", "line", "a polyline needs at least 2 points")
        geom = LineString(pts)
        row.update(kind=Kind.POLYLINE.value, geometry=to_wkb(geom))
        _bounds(row, geom)
    elif key == "point":
        if isinstance(val, Mapping):
            val = [val.get("x"), val.get("y")]
        if not isinstance(val, list | tuple) or len(val) != 2:
            raise _BadRecord("point must be [x, y]", "point", "write two numbers")
        geom = Point(_num(val[0], "point"), _num(val[1], "point"))
        row.update(kind=Kind.POINT.value, geometry=to_wkb(geom), x=geom.x, y=geom.y, w=0.0, h=0.0)
    elif key == "mask":
        row.update(kind=Kind.MASK.value, **{k: v for k, v in _mask(val).items() if k != "area" or math.isnan(row["area"])})
    elif key == "span":
        if isinstance(val, Mapping):
            val = [val.get("start"), val.get("end")]
        if not isinstance(val, list | tuple) or len(val) != 2:
            raise _BadRecord("span must be [start, end]", "span", "write two character offsets")
        row.update(kind=Kind.NER.value, span_start=int(_num(val[0], "span")), span_end=int(_num(val[1], "span")))
    elif key == "answer":
        row.update(kind=rec.get("kind") or Kind.RADIO.value, answer=str(val))
    else:  # answers: a checklist
        if not isinstance(val, list | tuple) or not val:
            raise _BadRecord("answers must be a non-empty list", "answers", "list the ticked options")
        return [{**row, "kind": Kind.CHECKLIST.value, "answer": str(a)} for a in val]
    if rec.get("kind") and str(rec["kind"]) != row["kind"]:
        raise _BadRecord(f"kind {rec['kind']!r} does not fit the {key!r} geometry", "kind",
                         f"use kind {row['kind']!r} or give the matching geometry")
    return [row]


def _bounds(row: dict[str, Any], geom: Any) -> None:
    x0, y0, x1, y1 = geom.bounds
    row.update(x=x0, y=y0, w=x1 - x0, h=y1 - y0)


def _mask(val: Any) -> dict[str, Any]:
    """A COCO RLE (compressed or not) as its compressed string plus its box and area."""
    from pycocotools import mask as mask_utils

    if not isinstance(val, Mapping) or "size" not in val or "counts" not in val:
        raise _BadRecord("mask must be a COCO RLE {size: [h, w], counts: ...}", "mask",
                         "encode the mask with pycocotools.mask.encode")
    h, w = (int(_num(s, "mask.size")) for s in val["size"])
    counts = val["counts"]
    try:
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w) if isinstance(counts, list) \
            else {"size": [h, w], "counts": counts.encode() if isinstance(counts, str) else counts}
        if isinstance(counts, list) and sum(counts) != h * w:
            raise _BadRecord(f"RLE counts sum to {sum(counts)}, not {h}x{w}={h * w}", "mask.counts",
                             "the run lengths must cover the whole image")
        area = float(mask_utils.area(rle))
        bx, by, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
    except _BadRecord:
        raise
    except Exception as exc:  # pycocotools raises bare exceptions on corrupt counts
        raise _BadRecord(f"unreadable RLE: {exc}", "mask.counts", "encode the mask with pycocotools") from None
    c = rle["counts"]
    return {"mask_rle": c.decode() if isinstance(c, bytes) else c, "mask_size": (h, w),
            "x": bx, "y": by, "w": bw, "h": bh, "area": area}


def validate(frame: ObjectFrame, *, predictions: bool) -> Report:
    """Checks that need no store: finite positive boxes, confidences in [0, 1], spans, polygons.

    Polygons that intersect themselves are kept (the geometry kernels repair them with
    ``make_valid``) and reported as warnings.
    """
    from shapely import from_wkb, is_valid_reason

    rep = Report()
    kind = frame.kind.astype(str)
    box = np.isin(kind, [Kind.BBOX.value])
    bad_box = box & ~(np.isfinite(frame.x) & np.isfinite(frame.y) & np.isfinite(frame.w) & np.isfinite(frame.h))
    for i in np.flatnonzero(bad_box):
        rep.error("box has a NaN or infinite coordinate", frame.location[i], "bbox", "write finite numbers")
    small = box & ~bad_box & ((frame.w <= 0) | (frame.h <= 0))
    for i in np.flatnonzero(small):
        rep.error(f"box has width {frame.w[i]:g} and height {frame.h[i]:g}", frame.location[i], "bbox",
                  "width and height must be > 0 (boxes are x, y, w, h, not x1, y1, x2, y2)")
    conf = frame.confidence
    given = ~np.isnan(conf)
    bad_conf = np.isinf(conf) | (given & ((conf < 0) | (conf > 1)))
    for i in np.flatnonzero(bad_conf):
        rep.error(f"confidence {conf[i]:g} is outside [0, 1]", frame.location[i], "confidence",
                  "give a probability between 0 and 1")
    if not predictions:
        for i in np.flatnonzero(given):
            rep.error("ground truth cannot have a confidence", frame.location[i], "confidence",
                      "import it as a prediction, or drop the confidence")
    ner = kind == Kind.NER.value
    for i in np.flatnonzero(ner & ((frame.span_start < 0) | (frame.span_end <= frame.span_start))):
        rep.error(f"span [{frame.span_start[i]}, {frame.span_end[i]}) is empty or negative",
                  frame.location[i], "span", "give [start, end) with 0 <= start < end")
    for i in np.flatnonzero(kind == Kind.POLYGON.value):
        g = from_wkb(frame.geometry[i])
        if not g.is_valid:
            rep.warn(f"polygon is invalid ({is_valid_reason(g)}); kept and repaired with make_valid for IoU",
                     frame.location[i], "polygon", "fix the ring order if this was not intended")
    for j, probs in enumerate(frame.probabilities):
        if probs is not None and any(not math.isfinite(v) or v < 0 or v > 1 for v in probs):
            rep.error("class probabilities must be finite and in [0, 1]", frame.location[j],
                      "probabilities", "give one probability per option, each in [0, 1]")
    return rep


__all__ = ["ObjectFrame", "validate", "Problem"]
