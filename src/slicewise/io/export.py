"""Exporters: COCO ground truth, a run's predictions as COCO results, and Parquet of any table.

``export_coco`` writes back what ``import_coco`` read: image ids (``coco_image_id`` metadata, else
fresh ids), file names (global keys), sizes, and each annotation's id, bbox, area, iscrowd and
segmentation (polygons as flat coordinate lists, crowd RLEs uncompressed as COCO writes them, other
masks compressed). Categories are the region features (bbox, polygon, mask) with their external ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from slicewise.errors import NotFoundError, Problem, ValidationError
from slicewise.io.coco import IMAGE_ID_FIELD
from slicewise.types.ids import ascii_int

REGION = ("bbox", "polygon", "mask")


def _categories(ws: Any) -> tuple[list[dict[str, Any]], dict[int, int]]:
    feats = [f for f in ws.features() if f.kind in REGION]
    used = {n for f in feats if (n := ascii_int(f.external_id, negative=True)) is not None}
    nxt = max(used, default=0) + 1
    cats, fid_to_cat = [], {}
    for f in feats:
        if (n := ascii_int(f.external_id, negative=True)) is not None:
            cid = n
        else:
            cid, nxt = nxt, nxt + 1
        fid_to_cat[f.id] = cid
        cats.append({"id": cid, "name": f.name, "supercategory": ""})
    cats.sort(key=lambda c: c["id"])
    return cats, fid_to_cat


def _images(ws: Any, dataset: str | None) -> tuple[list[dict[str, Any]], dict[int, int]]:
    params: list[Any] = [IMAGE_ID_FIELD]
    cond = ""
    if dataset is not None:
        cond = "AND r.dataset_id = ?"
        params.append(ws.dataset(dataset).id)
    rows = ws.store.cursor().execute(f"""
        SELECT r.id, r.global_key, r.width, r.height, m.value_number FROM data_rows r
        LEFT JOIN row_metadata m ON m.data_row_id = r.id AND m.field = ?
        WHERE r.media_type = 'image' {cond} ORDER BY r.id""", params).fetchall()
    used = {int(v) for *_, v in rows if v is not None}
    nxt = max(used, default=0) + 1
    images, row_to_img = [], {}
    for rid, key, w, h, coco_id in rows:
        if coco_id is None:
            coco_id, nxt = nxt, nxt + 1
        row_to_img[rid] = int(coco_id)
        images.append({"id": int(coco_id), "file_name": key, "width": w, "height": h})
    return images, row_to_img


def _segmentation(kind: str, geometry: bytes | None, rle: str | None, h: int, w: int, iscrowd: bool) -> Any:
    if kind == "polygon" and geometry is not None:
        from shapely import from_wkb

        g = from_wkb(geometry)
        parts = list(g.geoms) if hasattr(g, "geoms") else [g]
        return [np.asarray(p.exterior.coords)[:-1].ravel().tolist() for p in parts]
    if kind == "mask" and rle is not None:
        if iscrowd:
            return {"size": [h, w], "counts": uncompressed_counts(rle, h, w)}
        return {"size": [h, w], "counts": rle}
    return None


def uncompressed_counts(rle: str, h: int, w: int) -> list[int]:
    """The run lengths of a compressed COCO RLE (column-major, starting with a run of zeros).

    >>> from pycocotools import mask as mu
    >>> m = np.zeros((3, 2), np.uint8, order="F"); m[1:, 1] = 1
    >>> uncompressed_counts(mu.encode(m)["counts"].decode(), 3, 2)
    [4, 2]
    """
    from pycocotools import mask as mask_utils

    m = mask_utils.decode({"size": [h, w], "counts": rle.encode()}).ravel(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(m)) + 1, [m.size]])
    counts = np.diff(bounds).tolist()
    return ([0] + counts) if m.size and m[0] else counts


def coco_dict(ws: Any, *, dataset: str | None = None) -> dict[str, Any]:
    """The ground truth of the workspace (or one dataset) as a COCO instances dict."""
    cats, fid_to_cat = _categories(ws)
    images, row_to_img = _images(ws, dataset)
    rows = ws.store.cursor().execute("""
        SELECT a.data_row_id, a.feature_id, a.kind, a.x, a.y, a.w, a.h, a.geometry, a.mask_rle, a.area,
               a.iscrowd, a.external_id, r.width, r.height
        FROM annotations a JOIN data_rows r ON r.id = a.data_row_id
        WHERE list_contains(?, a.kind) ORDER BY a.id""", [list(REGION)]).fetchall()
    used = {n for r in rows if (n := ascii_int(r[11])) is not None}
    nxt = max(used, default=0) + 1
    anns = []
    for rid, fid, kind, x, y, w, h, geom, rle, area, crowd, ext, iw, ih in rows:
        if rid not in row_to_img or fid not in fid_to_cat:
            continue
        if (n := ascii_int(ext)) is not None:
            aid = n
        else:
            aid, nxt = nxt, nxt + 1
        seg = _segmentation(kind, geom, rle, ih, iw, bool(crowd))
        ann: dict[str, Any] = {"id": aid, "image_id": row_to_img[rid], "category_id": fid_to_cat[fid],
                               "bbox": [x, y, w, h], "area": area if area is not None and area == area else w * h,
                               "iscrowd": int(bool(crowd))}
        if seg is not None:
            ann["segmentation"] = seg
        anns.append(ann)
    return {"images": images, "annotations": anns, "categories": cats}


def export_coco(ws: Any, path: str | Path, *, dataset: str | None = None) -> int:
    """Write the ground truth as a COCO instances JSON; returns the number of annotations."""
    doc = coco_dict(ws, dataset=dataset)
    Path(path).write_bytes(orjson.dumps(doc))
    return len(doc["annotations"])


def coco_results(ws: Any, run: Any) -> list[dict[str, Any]]:
    """A run's region predictions as a COCO results list."""
    r = ws.run(run)
    _, fid_to_cat = _categories(ws)
    _, row_to_img = _images(ws, None)
    rows = ws.store.cursor().execute("""
        SELECT p.data_row_id, p.feature_id, p.kind, p.x, p.y, p.w, p.h, p.geometry, p.mask_rle, p.confidence,
               d.width, d.height
        FROM predictions p JOIN data_rows d ON d.id = p.data_row_id
        WHERE p.run_id = ? AND list_contains(?, p.kind) ORDER BY p.id""", [r.id, list(REGION)]).fetchall()
    out = []
    for rid, fid, kind, x, y, w, h, geom, rle, conf, iw, ih in rows:
        if rid not in row_to_img or fid not in fid_to_cat:
            continue
        rec: dict[str, Any] = {"image_id": row_to_img[rid], "category_id": fid_to_cat[fid],
                               "bbox": [x, y, w, h], "score": conf}
        seg = _segmentation(kind, geom, rle, ih, iw, False)
        if seg is not None:
            rec["segmentation"] = seg
        out.append(rec)
    return out


def export_coco_results(ws: Any, run: Any, path: str | Path) -> int:
    out = coco_results(ws, run)
    Path(path).write_bytes(orjson.dumps(out))
    return len(out)


def export_parquet(ws: Any, table: str, path: str | Path) -> int:
    """Write one table of the workspace (any table, including the metric tables) to a Parquet file."""
    import pyarrow.parquet as pq

    cur = ws.store.cursor()
    names = [r[0] for r in cur.execute(
        "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    if table not in names:
        import difflib

        close = difflib.get_close_matches(table, names, n=3)
        raise NotFoundError(f"no table {table!r} in the workspace",
                            fix=("did you mean " + " or ".join(close) + "? ") if close else "tables: " + ", ".join(names))
    reader = cur.execute(f'SELECT * FROM "{table}"').to_arrow_reader(100_000)
    n = 0
    try:
        with pq.ParquetWriter(str(path), reader.schema) as writer:
            for b in reader:
                writer.write_batch(b)
                n += b.num_rows
    except OSError as exc:
        raise ValidationError(Problem(f"cannot write {path}: {exc}", str(path), "", "check the folder exists and is writable")) from None
    return n
