"""COCO: instances JSON as data rows + ground truth, results JSON as a run's predictions.

What is kept so that :func:`slicewise.io.export_coco` gives the same annotations back: the image id
(metadata ``coco_image_id``), file name (the global key), width and height; per annotation its id
(``external_id``), the exact ``bbox``, ``area``, ``iscrowd`` and the segmentation (polygons as WKB with
their exact coordinates, one part per COCO polygon; RLE as a compressed string); categories become
features whose ``external_id`` is the category id.

Results records are matched to data rows by ``image_id``: the ``coco_image_id`` metadata when the
id is a number, else the global key or the global key's file stem (YOLO-style exports use the stem);
``category_id`` is matched to a feature's ``external_id``.

Which rows a results import puts in the run (``rows=``, see :mod:`slicewise.io.runrows`): by default
every data row of the dataset(s) of the predicted images. :func:`import_coco` makes one dataset per
instances file, so that is every image of the instances file the results are for, also the images
where the model found nothing (their labels count as false negatives, as in pycocotools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import Problem, Report, ValidationError
from slicewise.io.common import (
    Batch,
    ImportResult,
    Progress,
    commit,
    num,
    read_json,
    source_name,
    unknown_rows_first,
)
from slicewise.io.media import MediaFolder
from slicewise.io.runrows import parse_spec
from slicewise.types.frame import ObjectFrame

IMAGE_ID_FIELD = "coco_image_id"


def import_coco(ws: Any, path: str | Path, *, dataset: str | None = None, images: str | Path | None = None,
                split: str = "none", skip_invalid: bool = False, progress: Progress | None = None,
                check_media: bool = True) -> ImportResult:
    """Import a COCO instances file: images -> data rows, categories -> features, annotations -> ground truth.

    ``images``: the folder of the images; every ``file_name`` must then lie inside it and exist (see
    :mod:`slicewise.io.media`; ``check_media=False`` skips the existence check for images that come later)."""
    path = Path(path)
    batch = parse_instances(read_json(path), path.name, images=images, split=split, check_media=check_media)
    batch.dataset = dataset or path.stem
    batch.source = source_name("coco", path)
    return commit(ws, batch, skip_invalid=skip_invalid, progress=progress)


def parse_instances(doc: Any, name: str, *, images: str | Path | None = None, split: str = "none",
                    check_media: bool = True) -> Batch:
    rep = Report()
    media = MediaFolder(Path(images) if images else None, check=check_media)
    if (bad := media.folder_problem(name)) is not None:
        raise ValidationError(bad)
    if not isinstance(doc, dict):
        raise ValidationError(Problem("a COCO instances file is a JSON object with images, annotations and "
                                      "categories", name, "", "for detection results use `import coco-results`"))
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise ValidationError(Problem(f"missing the {key!r} list", name, key, f"add \"{key}\": [...]"))
    if not doc["images"]:
        raise ValidationError(Problem("the file has no images", name, "images", "export the dataset again"))
    batch = Batch(report=rep)
    # categories -> features
    cats: dict[int, str] = {}
    cat_names: set[str] = set()
    for i, c in enumerate(doc["categories"]):
        loc = f"{name} categories[{i}]"
        cid, cname = (c.get("id"), c.get("name")) if isinstance(c, dict) else (None, None)
        if not isinstance(cid, int) or isinstance(cid, bool) or not isinstance(cname, str) or not cname:
            raise ValidationError(Problem("a category needs an integer id and a name", loc, "id" if cname else "name",
                                          "write {\"id\": 1, \"name\": \"person\"}"))
        if cid in cats or cname in cat_names:
            raise ValidationError(Problem(f"category {cid} / {cname!r} appears twice", loc, "id",
                                          "give each category a unique id and name"))
        cats[cid] = cname
        cat_names.add(cname)
    # images -> data rows
    img_key: dict[int, str] = {}
    img_size: dict[int, tuple[int, int]] = {}
    batch.media_roots = [media.root]
    refused: dict[int, str] = {}  # image id -> where the image was refused
    for i, im in enumerate(doc["images"]):
        loc = f"{name} images[{i}]"
        if not isinstance(im, dict):
            rep.error("an image must be an object", loc, "", "write {\"id\", \"file_name\", \"width\", \"height\"}")
            continue
        iid, fname, w, h = im.get("id"), im.get("file_name"), im.get("width"), im.get("height")
        missing = [k for k, v in (("id", iid), ("file_name", fname), ("width", w), ("height", h)) if v is None]
        if missing:
            rep.error(f"image has no {missing[0]}", loc, missing[0], "every image needs id, file_name, width and height")
            continue
        if not isinstance(iid, int) or isinstance(iid, bool):
            rep.error(f"image id {iid!r} is not an integer", loc, "id", "use integer image ids")
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            rep.error(f"image size {w}x{h} is not two positive integers", loc, "width", "write the pixel width and height")
            continue
        if iid in img_key:
            rep.error(f"image id {iid} appears twice", loc, "id", "give each image a unique id")
            continue
        row_data, bad = media.place(str(fname), loc, "file_name")
        if bad is not None:
            rep.problems.append(bad)
            refused[iid] = loc
            continue
        img_key[iid] = str(fname)
        img_size[iid] = (int(h), int(w))  # type: ignore[arg-type]
        batch.rows.append({"global_key": str(fname), "row_data": row_data,
                           "width": w, "height": h, "split": split, "metadata": {IMAGE_ID_FIELD: iid},
                           "location": loc})
    if (none := media.none_found(name)) is not None:
        raise ValidationError(none)
    # annotations -> ground truth
    used_kind: dict[str, str] = {}
    cols = _Columns()
    for i, a in enumerate(doc["annotations"]):
        loc = f"{name} annotations[{i}]"
        if not isinstance(a, dict):
            rep.error("an annotation must be an object", loc, "", "write {\"image_id\", \"category_id\", \"bbox\", ...}")
            continue
        try:
            iid = a.get("image_id")
            if iid is None:
                raise _Bad("annotation has no image_id", "image_id", "name the image it belongs to")
            if iid in refused:
                raise _Bad(f"the image of image_id {iid} was refused ({refused[iid]})", "image_id",
                           "fix that image first; this annotation is then imported with it")
            if iid not in img_key:
                raise _Bad(f"image_id {iid!r} is not in the file's images list", "image_id",
                           "add the image to \"images\", or drop the annotation")
            cid = a.get("category_id")
            if cid is None:
                raise _Bad("annotation has no category_id", "category_id", "give the category's id")
            if cid not in cats:
                raise _Bad(f"category id {cid!r} is not in the file's category list", "category_id",
                           "add the category to \"categories\", or fix the id")
            kind = cols.add(a, img_key[iid], cats[cid], img_size[iid], loc)
            used_kind.setdefault(cats[cid], kind)
            if kind == "polygon":
                used_kind[cats[cid]] = "polygon"
        except _Bad as exc:
            rep.error(exc.reason, loc, exc.field, exc.fix)
    batch.annotations = cols.frame(predictions=False)
    batch.features = [(n, used_kind.get(n, "bbox"), str(c)) for c, n in cats.items()]
    return batch


class _Bad(Exception):
    def __init__(self, reason: str, field: str = "", fix: str = "") -> None:
        super().__init__(reason)
        self.reason, self.field, self.fix = reason, field, fix


class _Columns:
    """Column lists for a frame built record by record (GT and segmentation results)."""

    def __init__(self) -> None:
        self.c: dict[str, list[Any]] = {k: [] for k in (
            "data_row", "feature", "kind", "x", "y", "w", "h", "geometry", "mask_rle", "mask_size", "confidence",
            "iscrowd", "area", "external_id", "location")}

    def add(self, a: dict[str, Any], key: str, feature: str, size: tuple[int, int] | None, loc: str,
            confidence: float = np.nan) -> str:
        box = a.get("bbox")
        seg = a.get("segmentation")
        if box is not None:
            if not isinstance(box, list) or len(box) != 4 or any(num(v) is None for v in box):
                raise _Bad(f"bbox {box!r} is not four numbers", "bbox", "write [x, y, width, height] in pixels")
        elif seg is None:
            raise _Bad("annotation has neither bbox nor segmentation", "bbox", "give [x, y, width, height]")
        geometry = mask = msize = None
        area = num(a.get("area"))
        if seg is None or seg == []:
            kind = "bbox"
        elif isinstance(seg, list):
            kind, geometry, bounds = "polygon", *_polygon(seg)
            if box is None:
                box = bounds
        elif isinstance(seg, dict):
            kind = "mask"
            mask, msize, mbox, marea = _rle(seg, size)
            if box is None:
                box = mbox
            if area is None:
                area = marea
        else:
            raise _Bad("segmentation must be polygons [[x1,y1,...], ...] or an RLE {size, counts}", "segmentation",
                       "write it as pycocotools does")
        iscrowd = a.get("iscrowd", 0)
        if iscrowd not in (0, 1, True, False):
            raise _Bad(f"iscrowd {iscrowd!r} is not 0 or 1", "iscrowd", "write 0 or 1")
        ann_id = a.get("id")
        c = self.c
        c["data_row"].append(key)
        c["feature"].append(feature)
        c["kind"].append(kind)
        for k, v in zip("xywh", box or [], strict=True):
            c[k].append(float(v))
        c["geometry"].append(geometry)
        c["mask_rle"].append(mask)
        c["mask_size"].append(msize)
        c["confidence"].append(confidence)
        c["iscrowd"].append(bool(iscrowd))
        c["area"].append(np.nan if area is None else area)
        c["external_id"].append(None if ann_id is None else str(ann_id))
        c["location"].append(loc)
        return kind

    def frame(self, *, predictions: bool) -> ObjectFrame:
        c = dict(self.c)
        return ObjectFrame.from_columns(**c)  # type: ignore[arg-type]


def _polygon(seg: list[Any]) -> tuple[bytes, list[float]]:
    """COCO polygons (one flat list per part) as WKB, and their bounding box."""
    from shapely import MultiPolygon, Polygon, to_wkb

    parts = []
    for j, ring in enumerate(seg):
        if not isinstance(ring, list) or any(num(v) is None for v in ring):
            raise _Bad(f"polygon part {j} is not a flat list of numbers", "segmentation",
                       "write each part as [x1, y1, x2, y2, ...]")
        if len(ring) % 2:
            raise _Bad(f"polygon part {j} has an odd number of coordinates ({len(ring)})", "segmentation",
                       "write x, y pairs")
        if len(ring) < 6:
            raise _Bad(f"polygon part {j} has {len(ring) // 2} points", "segmentation",
                       "a polygon needs at least 3 points; drop the part or the annotation")
        xy = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(xy).all():
            raise _Bad(f"polygon part {j} has a NaN or infinite coordinate", "segmentation", "write finite numbers")
        parts.append(Polygon(xy))
    geom = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    x0, y0, x1, y1 = geom.bounds
    return to_wkb(geom), [x0, y0, x1 - x0, y1 - y0]


def _rle(seg: dict[str, Any], size: tuple[int, int] | None) -> tuple[str, tuple[int, int], list[float], float]:
    from pycocotools import mask as mask_utils

    sz, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(sz, list) and len(sz) == 2 and all(isinstance(v, int) and v > 0 for v in sz)) or counts is None:
        raise _Bad("an RLE needs size [height, width] and counts", "segmentation", "encode it with pycocotools")
    h, w = sz
    if size is not None and (h, w) != tuple(size):
        raise _Bad(f"RLE size [{h}, {w}] differs from the image's [{size[0]}, {size[1]}]", "segmentation.size",
                   "encode the mask at the image's height x width")
    try:
        if isinstance(counts, list):
            if sum(counts) != h * w or any(not isinstance(v, int) or v < 0 for v in counts):
                raise _Bad(f"uncompressed RLE counts sum to {sum(counts)}, not {h}x{w} = {h * w}",
                           "segmentation.counts", "the run lengths must cover the whole image")
            rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        elif isinstance(counts, str):
            rle = {"size": [h, w], "counts": counts.encode()}
        else:
            raise _Bad("RLE counts must be a string or a list of run lengths", "segmentation.counts",
                       "encode it with pycocotools")
        area = float(mask_utils.area(rle))
        box = [float(v) for v in mask_utils.toBbox(rle)]
    except _Bad:
        raise
    except Exception as exc:  # pycocotools raises bare exceptions on corrupt strings
        raise _Bad(f"unreadable RLE ({exc})", "segmentation.counts", "encode it with pycocotools") from None
    return rle["counts"].decode(), (h, w), box, area


# -- results ------------------------------------------------------------------------------------
def import_coco_results(ws: Any, path: str | Path, run: str, *, skip_invalid: bool = False,
                        create_features: bool = False, progress: Progress | None = None,
                        run_config: dict[str, Any] | None = None, rows: str | None = None) -> ImportResult:
    """Import a COCO results file (a JSON list of {image_id, category_id, bbox|segmentation, score}).
    ``rows``: which rows the run covers (default: every row of the predicted images' datasets)."""
    spec = parse_spec(rows, default="same-dataset")
    path = Path(path)
    batch = parse_results_file(ws, path, create_features=create_features)
    batch.run, batch.run_config, batch.source = run, run_config, source_name("coco-results", path)
    batch.run_rows = spec
    return commit(ws, batch, skip_invalid=skip_invalid, create_features=create_features, progress=progress)


def image_keys(ws: Any) -> tuple[dict[Any, str], dict[str, tuple[int, int] | None]]:
    """How results name images -> global keys: coco_image_id, global key and file stem; and row sizes."""
    cur = ws.store.cursor()
    by_id: dict[Any, str] = {}
    sizes: dict[str, tuple[int, int] | None] = {}
    rows = cur.execute("SELECT global_key, width, height FROM data_rows").fetchall()
    for key, w, h in rows:
        sizes[key] = (h, w) if w and h else None
        stem = key.rsplit("/", 1)[-1]
        stem = stem.rsplit(".", 1)[0] if "." in stem else stem
        by_id.setdefault(stem, key)
    for key, _w, _h in rows:
        by_id[key] = key
    for key, value in cur.execute(
            "SELECT r.global_key, m.value_number FROM row_metadata m JOIN data_rows r ON r.id = m.data_row_id "
            "WHERE m.field = ?", [IMAGE_ID_FIELD]).fetchall():
        if value is not None and float(value).is_integer():
            by_id[int(value)] = key
    return by_id, sizes


def feature_by_category(ws: Any) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for f in ws.features():
        if f.external_id is not None:
            out[f.external_id] = f.name
            if f.external_id.lstrip("-").isdigit():
                out[int(f.external_id)] = f.name
    return out


def parse_results_file(ws: Any, path: Path, *, create_features: bool = False) -> Batch:
    """A results file: DuckDB's columnar JSON reader for plain box files (no Python object per record);
    anything else, or anything wrong, goes the careful way, which names each bad record."""
    fast = _duckdb_boxes(ws, path)
    if fast is not None:
        return Batch(predictions=fast)
    return parse_results(ws, read_json(path), path.name, create_features=create_features)


def _duckdb_boxes(ws: Any, path: Path) -> ObjectFrame | None:
    import duckdb

    if not path.is_file() or path.stat().st_size < 1_000_000:
        return None  # small files: the careful path is fast enough
    con = duckdb.connect()
    try:
        t = con.execute(
            "SELECT * FROM read_json(?, format = 'array', columns = {image_id: 'VARCHAR', category_id: 'BIGINT', "
            "bbox: 'DOUBLE[]', score: 'DOUBLE', segmentation: 'JSON', keypoints: 'JSON'})", [str(path)]).to_arrow_table()
    except duckdb.Error:
        return None
    finally:
        con.close()
    if t.column("segmentation").null_count != t.num_rows or t.column("keypoints").null_count != t.num_rows:
        return None
    if any(t.column(c).null_count for c in ("image_id", "category_id", "bbox", "score")):
        return None
    bbox = t.column("bbox").combine_chunks()
    lengths = bbox.value_lengths().to_numpy()
    if len(lengths) and (lengths.min() != 4 or lengths.max() != 4 or bbox.flatten().null_count):
        return None
    box = bbox.flatten().to_numpy().reshape(-1, 4)
    score = t.column("score").to_numpy()
    img = t.column("image_id").combine_chunks().dictionary_encode()  # ids: numbers and stems alike, as text
    cat = t.column("category_id").combine_chunks().dictionary_encode()
    by_id, _ = image_keys(ws)
    return _box_frame(path.name, (np.asarray(img.dictionary.to_pylist(), dtype=object), img.indices.to_numpy()),
                      (np.asarray(cat.dictionary.to_pylist(), dtype=object), cat.indices.to_numpy()), box, score,
                      by_id, feature_by_category(ws))


def parse_results(ws: Any, doc: Any, name: str, *, create_features: bool = False) -> Batch:
    if isinstance(doc, dict) and isinstance(doc.get("annotations"), list):
        doc = doc["annotations"]  # a GT-shaped file holding predictions
    if not isinstance(doc, list):
        raise ValidationError(Problem("a COCO results file is a JSON list of detections", name, "",
                                      "write [{\"image_id\", \"category_id\", \"bbox\", \"score\"}, ...]"))
    by_id, sizes = image_keys(ws)
    cats = feature_by_category(ws)
    fast = _fast_boxes(doc, name, by_id, cats)
    if fast is not None:
        return Batch(predictions=fast)
    if doc:
        _unknown_images_first(doc, name, by_id)
    rep = Report()
    cols = _Columns()
    for i, r in enumerate(doc):
        loc = f"{name} record {i}"
        try:
            if not isinstance(r, dict):
                raise _Bad("a detection must be an object", "", "write {\"image_id\", \"category_id\", \"bbox\", \"score\"}")
            for k in ("image_id", "category_id"):
                if r.get(k) is None:
                    raise _Bad(f"detection has no {k}", k, "every detection needs image_id and category_id")
            key = by_id.get(r["image_id"])
            if key is None:
                raise _Bad(f"prediction for unknown image {r['image_id']!r}", "image_id",
                           "import the images first (coco/yolo import), or check the image ids")
            cid = r["category_id"]
            feature = cats.get(cid)
            if feature is None:
                if not create_features:
                    raise _Bad(f"category id {cid!r} is not the external id of any feature", "category_id",
                               "import the ground truth first, or pass --create-features")
                feature = str(cid)
            score = r.get("score")
            if score is None:
                conf = np.nan
            else:
                c = num(score)
                if c is None or c != c:
                    raise _Bad(f"score {score!r} is not a number", "score", "give a probability in [0, 1]")
                conf = c
            cols.add(r, key, feature, sizes.get(key), loc, confidence=conf)
        except _Bad as exc:
            rep.error(exc.reason, loc, exc.field, exc.fix)
    return Batch(predictions=cols.frame(predictions=True), report=rep)


def _unknown_images_first(doc: list[Any], name: str, by_id: dict[Any, str]) -> None:
    """One refusal when most detections name images the workspace does not have: the images were not
    imported yet (rather than one 'unknown image' line per detection)."""
    ids = [r.get("image_id") for r in doc if isinstance(r, dict) and r.get("image_id") is not None]
    unknown: dict[Any, None] = {}
    for v in ids:
        try:
            known = v in by_id or (isinstance(v, str) and v.isdigit() and int(v) in by_id)
        except TypeError:  # an unhashable image_id: the careful path names it
            continue
        if not known:
            unknown[v] = None
    unknown_rows_first(list(unknown), len(set(map(repr, ids))), name, "image_id", not by_id)


def _fast_boxes(doc: list[Any], name: str, by_id: dict[Any, str], cats: dict[Any, str]) -> ObjectFrame | None:
    """Columnar path for box-only results; None when any record needs the careful path."""
    try:
        if any(len(r) != 4 for r in doc):
            return None
        img = np.asarray([r["image_id"] for r in doc])
        cat = np.asarray([r["category_id"] for r in doc])
        box = np.asarray([r["bbox"] for r in doc])
        score = np.asarray([r["score"] for r in doc])
    except (KeyError, TypeError, ValueError):
        return None
    n = len(doc)
    if (img.dtype.kind not in "iuU" or cat.dtype.kind not in "iu" or box.shape != (n, 4)
            or box.dtype.kind not in "iuf" or score.shape != (n,) or score.dtype.kind not in "iuf"):
        return None
    return _box_frame(name, np.unique(img, return_inverse=True), np.unique(cat, return_inverse=True),
                      box.astype(np.float64), score.astype(np.float64), by_id, cats)


def _box_frame(name: str, img: tuple[np.ndarray, np.ndarray], cat: tuple[np.ndarray, np.ndarray], box: np.ndarray,
               score: np.ndarray, by_id: dict[Any, str], cats: dict[Any, str]) -> ObjectFrame | None:
    """Boxes from (distinct image ids, code per record), (distinct category ids, codes), boxes, scores."""
    if not np.isfinite(score).all():
        return None
    (uimg, inv_img), (ucat, inv_cat) = img, cat
    keys = np.array([by_id.get(_native(v), by_id.get(int(v)) if isinstance(v, str) and v.isdigit() else None)
                     for v in uimg], dtype=object)
    feats = np.array([cats.get(_native(v)) for v in ucat], dtype=object)
    if any(k is None for k in keys) or any(f is None for f in feats):
        return None  # the careful path names each bad record
    n = len(inv_img)
    locs = np.array([f"{name} record {i}" for i in range(n)], dtype=object)
    return ObjectFrame.from_columns(data_row=keys[inv_img], feature=feats[inv_cat], kind="bbox",
                                    x=box[:, 0], y=box[:, 1], w=box[:, 2], h=box[:, 3], confidence=score,
                                    location=locs)


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
