"""Annotations and predictions ("objects") in the store: checks against what is stored, the
replace-by-source write, run membership, and the dict form the SDK hands back.

The workspace calls :func:`check_objects` outside any transaction (it only reads) and then
:func:`write_objects` inside one, so a refused batch never takes the writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from slicewise.errors import Report, did_you_mean
from slicewise.store.database import Store
from slicewise.types.domain import Feature
from slicewise.types.frame import ObjectFrame
from slicewise.types.kinds import Kind

#: region kinds may share one feature: COCO keeps polygons and crowd RLEs under one category, and
#: a detector's boxes (or masks) are compared with them (box IoU for bbox, masks for segm)
REGION_KINDS = frozenset({"bbox", "polygon", "mask"})


def utc_now() -> datetime:
    """Now, as the naive UTC timestamp the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def kinds_fit(feature_kind: str, kind: str) -> bool:
    """Whether an object of ``kind`` may belong to a feature of ``feature_kind``."""
    return feature_kind == kind or (feature_kind == "checklist" and kind == "radio") or (
        feature_kind in REGION_KINDS and kind in REGION_KINDS)


@dataclass
class CheckedObjects:
    """A batch after :func:`check_objects`: the records to write and where they go."""

    good: ObjectFrame
    row_ids: np.ndarray  # data row id of each good record
    to_create: dict[str, str]  # features to create first: name -> kind


def check_objects(cur: Any, frame: ObjectFrame, features: Mapping[str, Feature], rep: Report, *,
                  predictions: bool, create_features: bool) -> CheckedObjects:
    """Every check of a batch, the frame's own and those against the store, reported into ``rep``.

    Distinct (feature, kind, answer) combinations are checked once and rows are looked up with one
    join, so a million boxes cost a few vectorised passes. All records of an errored location are
    dropped (several objects may come from one line).
    """
    rep.problems += frame.problems(predictions=predictions).problems
    n_all = len(frame)
    # data rows: factorise the keys, look the distinct ones up with one join
    key_code, keys = factorize(frame.data_row)
    info = row_info(cur, keys)
    row_of_key = np.array([info.get(k, (-1,))[0] for k in keys], dtype=np.int64)
    row_ids = row_of_key[key_code] if n_all else np.zeros(0, np.int64)
    what = "prediction" if predictions else "annotation"
    for i in np.flatnonzero(row_ids < 0):
        rep.error(f"{what} for unknown data row {frame.data_row[i]!r}", frame.location[i], "data_row",
                  "import the data rows first, or check the key/file name")
    # features: check each distinct (feature, kind, answer) once, then the records that carry a bad one
    to_create: dict[str, str] = {}
    f_code, _ = factorize(frame.feature)
    k_code, k_vals = factorize(frame.kind)
    a_code, a_vals = factorize(frame.answer)
    combo = (f_code * len(k_vals) + k_code) * max(len(a_vals), 1) + a_code
    uniq, first, pair_code = np.unique(combo, return_index=True, return_inverse=True)
    triples = [(frame.feature[i], frame.kind[i], frame.answer[i]) for i in first]
    for name, kind, _ in triples:
        if features.get(name) is None and create_features:
            if to_create.get(name, kind) != kind:
                rep.error(f"class {name!r} is used with two kinds ({to_create[name]}, {kind})", "", "feature",
                          "give each class one kind")
            to_create[name] = kind
    bad_pair = np.zeros(len(uniq), bool)
    for j, (name, kind, answer) in enumerate(triples):
        have = features.get(name)
        bad_pair[j] = (have is None and name not in to_create) or (have is not None and (
            not kinds_fit(have.kind, kind) or bool(have.options and answer is not None
                                                   and answer not in have.options)))
    for i in np.flatnonzero(bad_pair[pair_code]) if n_all else []:
        name, kind = frame.feature[i], frame.kind[i]
        have = features.get(name)
        if have is None and name not in to_create:
            rep.error(f"unknown class {name!r}", frame.location[i], "feature",
                      did_you_mean(name, list(features)) or "define it with create_feature (or --create-features)")
        elif have is not None and not kinds_fit(have.kind, kind):
            rep.error(f"class {name!r} is a {have.kind} feature, not {kind}", frame.location[i], "feature",
                      f"give a {have.kind} geometry for it")
        elif have is not None and have.options and frame.answer[i] is not None and frame.answer[i] not in have.options:
            rep.error(f"answer {frame.answer[i]!r} is not an option of {name!r}", frame.location[i], "answer",
                      "use one of: " + ", ".join(have.options))
    # checks against the row: NER spans inside the text, RLE at the image's size
    kinds = frame.kind
    for i in np.flatnonzero((kinds == Kind.NER.value) | (kinds == Kind.MASK.value)):
        got = info.get(frame.data_row[i])
        if got is None:
            continue
        _, media, width, height, textlen = got
        if kinds[i] == Kind.NER.value:
            if media != "text":
                rep.error("a NER span needs a text data row", frame.location[i], "span", "attach it to a text row")
            elif frame.span_end[i] > textlen:
                rep.error(f"span [{frame.span_start[i]}, {frame.span_end[i]}) is outside the text ({textlen} characters)",
                          frame.location[i], "span", "offsets count characters of the row's text, end exclusive")
        elif frame.mask_size[i] is not None and width and height and tuple(frame.mask_size[i]) != (height, width):
            rep.error(f"RLE size {list(frame.mask_size[i])} differs from the image's [{height}, {width}]",
                      frame.location[i], "mask.size", "encode the mask at the image's height x width")
    _check_boxes_in_image(frame, info, keys, key_code, rep)
    bad = np.zeros(n_all, bool)
    if rep.errors:
        bad_locs = {p.location for p in rep.errors}
        bad |= np.array([loc in bad_locs for loc in frame.location], bool)
    return CheckedObjects(frame.take(~bad) if bad.any() else frame, row_ids[~bad], to_create)


def write_objects(store: Store, checked: CheckedObjects, *, run_id: int | None, source: str) -> tuple[int, int]:
    """Write a checked batch (the caller holds the writer). Objects of the same ``source`` on the
    same data rows are replaced first, which makes re-importing a file idempotent. Bumps
    ``label_rev`` / ``pred_rev`` so metrics know what went stale. Returns (replaced, inserted)."""
    con = store.con
    for name, kind in checked.to_create.items():
        con.execute("INSERT INTO features VALUES (?, ?, ?, NULL, NULL, ?)",
                    [store.next_id("features"), name, kind, utc_now()])
    if checked.to_create:
        store.touch("features")
    fid = dict(con.execute("SELECT name, id FROM features").fetchall())
    good, rid = checked.good, checked.row_ids
    table = "predictions" if run_id is not None else "annotations"
    touched = np.unique(rid)
    con.register("_sw_touched", pa.table({"data_row_id": touched.astype(np.int64)}))
    try:
        cond = "source = ? AND data_row_id IN (SELECT data_row_id FROM _sw_touched)" + (
            " AND run_id = ?" if run_id is not None else "")
        params: list[Any] = [source] + ([run_id] if run_id is not None else [])
        replaced = int(con.execute(f"SELECT count(*) FROM {table} WHERE {cond}", params).fetchone()[0])  # type: ignore[index]
        if replaced:
            con.execute(f"DELETE FROM {table} WHERE {cond}", params)
        if run_id is None and len(touched):
            con.execute("UPDATE data_rows SET label_rev = label_rev + 1 "
                        "WHERE id IN (SELECT data_row_id FROM _sw_touched)")
    finally:
        con.unregister("_sw_touched")
    n = len(good)
    start = store.next_id(table)
    cols: dict[str, Any] = {
        "id": np.arange(start, start + n, dtype=np.int64), "data_row_id": rid,
        "feature_id": pa.array([fid[f] for f in good.feature], pa.int32()),
        "kind": pa.array(good.kind.tolist(), pa.string()),
        "answer": pa.array(good.answer.tolist(), pa.string()),
        "x": nullable(good.x), "y": nullable(good.y), "w": nullable(good.w), "h": nullable(good.h),
        "geometry": pa.array(good.geometry.tolist(), pa.binary()),
        "mask_rle": pa.array(good.mask_rle.tolist(), pa.string()),
        "span_start": pa.array(good.span_start, pa.int32(), mask=good.span_start < 0),
        "span_end": pa.array(good.span_end, pa.int32(), mask=good.span_end < 0),
        "area": nullable(good.area), "external_id": pa.array(good.external_id.tolist(), pa.string()),
        "source": pa.repeat(pa.scalar(source, pa.string()), n),
        "created_at": pa.repeat(pa.scalar(utc_now(), pa.timestamp("us")), n),
    }
    if run_id is not None:
        conf = np.where(np.isnan(good.confidence), 1.0, good.confidence)
        cols |= {"run_id": pa.repeat(pa.scalar(run_id, pa.int32()), n), "confidence": conf,
                 "probabilities": pa.array(good.probabilities.tolist(), pa.list_(pa.float64()))}
    else:
        cols["iscrowd"] = good.iscrowd
    store.insert_arrow(table, pa.table(cols))
    if run_id is not None:
        ensure_run_rows(store, run_id, touched, bump=True)
        store.touch("predictions", run=run_id, rows=touched)
    else:
        store.touch("labels", rows=touched)
    return replaced, n


def ensure_run_rows(store: Store, run_id: int, ids: np.ndarray, *, bump: bool) -> int:
    """Put data rows in a run; with ``bump``, mark those already in it as changed. Returns how many were new."""
    if not len(ids):
        return 0
    con = store.con
    store.touch("run_rows", run=run_id, rows=ids)
    con.register("_sw_ids", pa.table({"data_row_id": np.asarray(ids, np.int64)}))
    try:
        if bump:
            con.execute("UPDATE run_rows SET pred_rev = pred_rev + 1 WHERE run_id = ? "
                        "AND data_row_id IN (SELECT data_row_id FROM _sw_ids)", [run_id])
        n = con.execute("""INSERT INTO run_rows SELECT ?, i.data_row_id, 1 FROM _sw_ids i
                           WHERE i.data_row_id NOT IN (SELECT data_row_id FROM run_rows WHERE run_id = ?)""",
                        [run_id, run_id]).fetchone()
    finally:
        con.unregister("_sw_ids")
    return int(n[0]) if n else 0


def read_objects(cur: Any, table: str, run_id: int | None, key: str | Sequence[str] | None) -> list[dict[str, Any]]:
    """Objects as the dicts :meth:`ObjectFrame.from_records` accepts (plus id, source, ...)."""
    from shapely import from_wkb

    assert table in ("annotations", "predictions")
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    rows: dict[int, tuple[str, int | None, int | None]] | None = None
    if key is not None:  # the rows first, then their objects through the objects' index (joins would scan)
        keys = [key] if isinstance(key, str) else list(key)
        rows = {int(r[0]): (r[1], r[2], r[3]) for r in cur.execute(
            "SELECT id, global_key, width, height FROM data_rows WHERE global_key IN (SELECT unnest(?))",
            [keys]).fetchall()}
        where.append("data_row_id IN (SELECT unnest(?))")
        params.append(list(rows))
    extra = "confidence, probabilities" if table == "predictions" else "iscrowd"
    rel = cur.execute(f"""
        SELECT id, data_row_id, feature_id, kind, answer, x, y, w, h, geometry, mask_rle, span_start, span_end, area,
               external_id, source, {extra}
        FROM {table} WHERE {' AND '.join(where)} ORDER BY id""", params)
    names = [d[0] for d in rel.description]
    found = rel.fetchall()
    features = dict(cur.execute("SELECT id, name FROM features").fetchall())
    if rows is None:
        used = sorted({int(r[1]) for r in found})
        rows = {int(r[0]): (r[1], r[2], r[3]) for r in cur.execute(
            "SELECT id, global_key, width, height FROM data_rows WHERE id IN (SELECT unnest(?))", [used]).fetchall()}
    out = []
    for row in found:
        d = dict(zip(names, row, strict=True))
        d["data_row"], d["width"], d["height"] = rows[int(d["data_row_id"])]
        d["feature"] = features[d["feature_id"]]
        kind = d["kind"]
        obj: dict[str, Any] = {"id": d["id"], "data_row": d["data_row"], "feature": d["feature"], "kind": kind}
        if kind in ("bbox", "polygon", "mask", "polyline"):
            obj["bbox"] = [d["x"], d["y"], d["w"], d["h"]]
        if kind in ("polygon", "polyline", "point") and d["geometry"] is not None:
            g = from_wkb(d["geometry"])
            if kind == "point":
                obj["point"] = [g.x, g.y]
            elif kind == "polyline":
                obj["line"] = [list(c) for c in g.coords]
            else:
                polys = list(g.geoms) if hasattr(g, "geoms") else [g]
                obj["polygon"] = [[list(c) for c in p.exterior.coords[:-1]] for p in polys]
        if kind == "mask":
            obj["mask"] = {"size": [d["height"], d["width"]], "counts": d["mask_rle"]}
        if kind == "ner":
            obj["span"] = [d["span_start"], d["span_end"]]
        if kind in ("radio", "checklist"):
            obj["answer"] = d["answer"]
        for k in ("area", "external_id", "confidence", "probabilities", "iscrowd"):
            if k in d and d[k] is not None and not (isinstance(d[k], float) and np.isnan(d[k])):
                obj[k] = d[k]
        obj["source"] = d["source"]
        out.append(obj)
    return out


#: how far beyond an edge of its image a box may reach, as a share of the image's width or height
BOX_SLACK = 0.5


def _check_boxes_in_image(frame: ObjectFrame, info: Mapping[str, tuple[Any, ...]], keys: Sequence[str],
                          key_code: np.ndarray, rep: Report) -> None:
    """Boxes (and the bounding boxes of polygons, lines and points) against their image, when its size
    is known: a box with an area entirely outside the image, or anything reaching more than
    :data:`BOX_SLACK` of the image's width/height beyond an edge, is refused (a pixel box such as [1, 2, 1e308, 1e308] is finite and
    still nonsense). Detectors often reach a few pixels beyond the image: that is accepted. Without a
    known size only the frame's own checks apply (finite numbers, positive width and height)."""
    if not len(frame):
        return
    wk = np.array([float((info.get(k) or (0, 0, None))[2] or np.nan) for k in keys], np.float64)
    hk = np.array([float((info.get(k) or (0, 0, None, None))[3] or np.nan) for k in keys], np.float64)
    W, H = wk[key_code], hk[key_code]
    x0, y0 = frame.x, frame.y
    with np.errstate(invalid="ignore", over="ignore"):
        x1, y1 = x0 + frame.w, y0 + frame.h
        known = np.isfinite(W) & np.isfinite(H) & np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
        # (a point has no area: one just outside the frame, e.g. an occluded keypoint, is kept)
        outside = ((x0 > W) | (x1 < 0) | (y0 > H) | (y1 < 0)) & (frame.w > 0) & (frame.h > 0)
        far = (x0 < -BOX_SLACK * W) | (x1 > (1 + BOX_SLACK) * W) | (y0 < -BOX_SLACK * H) | (y1 > (1 + BOX_SLACK) * H)
    for i in np.flatnonzero(known & (outside | far)):
        box = f"[{x0[i]:g}, {y0[i]:g}, {frame.w[i]:g}, {frame.h[i]:g}]"
        how = "lies entirely outside" if outside[i] else f"reaches more than {BOX_SLACK:.0%} of its size beyond"
        rep.error(f"box {box} {how} the image ({W[i]:g} x {H[i]:g} pixels)", frame.location[i], _box_field(frame, int(i)),
                  f"write [x, y, width, height] in pixels of the image; a box may reach at most {BOX_SLACK:.0%} of "
                  "the image's width/height beyond its edges")


def _box_field(frame: ObjectFrame, i: int) -> str:
    kind = frame.kind[i]
    return "bbox" if kind in ("bbox", "mask") else {"polyline": "line"}.get(kind, kind)


def row_info(cur: Any, keys: Sequence[str]) -> dict[str, tuple[int, str, int | None, int | None, int]]:
    """global key -> (id, media type, width, height, text length) for the keys that exist."""
    if not len(keys):
        return {}
    cur.register("_sw_keys", pa.table({"k": pa.array(list(keys), pa.string())}))
    try:
        rows = cur.execute("SELECT global_key, id, media_type, width, height, length(row_data) "
                           "FROM data_rows JOIN _sw_keys ON k = global_key").fetchall()
    finally:
        cur.unregister("_sw_keys")
    return {r[0]: tuple(r[1:]) for r in rows}


def factorize(values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """(code per value, distinct values) of an object array of str/None, hashed in Arrow (C++).

    >>> factorize(np.array(["b", None, "b", "a"], dtype=object))
    (array([0, 2, 0, 1]), ['b', 'a', None])
    """
    import pyarrow.compute as pc

    enc = pa.array(values, pa.string()).dictionary_encode()
    distinct: list[Any] = enc.dictionary.to_pylist()
    idx = enc.indices
    if idx.null_count:
        idx = pc.fill_null(idx, len(distinct))
        distinct.append(None)
    return idx.to_numpy().astype(np.int64), distinct


def nullable(a: np.ndarray) -> pa.Array:
    """A float column with NaN as SQL NULL."""
    a = np.asarray(a, dtype=np.float64)
    return pa.array(a, pa.float64(), mask=np.isnan(a))
