"""CVAT: a batch as "CVAT for images 1.1" XML or as a "COCO 1.0" zip (the two formats CVAT imports
annotations from), and CVAT's exports in those formats read back.

CVAT for images 1.1 (https://docs.cvat.ai/docs/manual/advanced/formats/format-cvat/)::

    <annotations><version>1.1</version><meta><task>... <labels><label><name>car</name>...</labels></task></meta>
      <image id="0" name="img1.jpg" width="640" height="480">
        <box label="car" source="auto" occluded="0" xtl="10.00" ytl="20.00" xbr="110.00" ybr="80.00" z_order="0"/>
        <polygon label="car" source="auto" occluded="0" points="1.00,2.00;30.00,2.00;30.00,40.00" z_order="0"/>
        <points label="nose" source="auto" occluded="0" points="5.00,6.00" z_order="0"/>
        <tag label="day" source="auto"/>
      </image>
    </annotations>

An image's ``name`` is its file's base name when that is unique in the batch (the name CVAT gives an
uploaded image), else its global key; reading back matches either. Classifications are image tags whose
label is the answer (CVAT has no questions): reading back finds the radio / checklist feature that has
that answer. Every image of a CVAT export counts as labelled (an image without shapes: labelled empty).
XML is parsed with defusedxml (no DTD, no entities).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.etree import ElementTree as ET

from slicewise.errors import Report

COCO_ZIP_PATH = "annotations/instances_default.json"


def _f(v: float) -> str:
    return f"{float(v):.2f}"


def cvat_xml(batch_name: str, rows: list[Any], names: dict[int, str], objects: dict[str, list[dict[str, Any]]],
             labels: list[tuple[str, str]], *, source: str) -> tuple[bytes, int]:
    """The XML of a batch (``labels``: (name, type) of every label) and how many objects it could not hold."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = batch_name
    ET.SubElement(task, "size").text = str(len(rows))
    ET.SubElement(task, "mode").text = "annotation"
    lab = ET.SubElement(task, "labels")
    for name, typ in labels:
        le = ET.SubElement(lab, "label")
        ET.SubElement(le, "name").text = name
        ET.SubElement(le, "type").text = typ
        ET.SubElement(le, "attributes")
    skipped = 0
    for i, r in enumerate(rows):
        attrs = {"id": str(i), "name": names[r.id]}
        if r.width and r.height:
            attrs |= {"width": str(r.width), "height": str(r.height)}
        im = ET.SubElement(root, "image", attrs)
        for o in objects.get(r.key, []):
            common = {"label": str(o.get("answer") if o["kind"] in ("radio", "checklist") else o["feature"]),
                      "source": source}
            if o["kind"] in ("radio", "checklist"):
                ET.SubElement(im, "tag", common)
                continue
            shape = {**common, "occluded": "0", "z_order": "0"}
            if o["kind"] == "bbox":
                x, y, w, h = o["bbox"]
                ET.SubElement(im, "box", {**shape, "xtl": _f(x), "ytl": _f(y), "xbr": _f(x + w), "ybr": _f(y + h)})
            elif o["kind"] == "polygon":
                for ring in o.get("polygon") or []:
                    ET.SubElement(im, "polygon", {**shape, "points": ";".join(f"{_f(px)},{_f(py)}" for px, py in ring)})
            elif o["kind"] == "point":
                ET.SubElement(im, "points", {**shape, "points": f"{_f(o['point'][0])},{_f(o['point'][1])}"})
            elif o["kind"] == "polyline":
                ET.SubElement(im, "polyline", {**shape, "points": ";".join(f"{_f(px)},{_f(py)}" for px, py in o["line"])})
            else:
                skipped += 1
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8"), skipped


def coco_zip(doc: dict[str, Any]) -> bytes:
    """A COCO 1.0 archive as CVAT imports and exports it (``annotations/instances_default.json``)."""
    import orjson

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(COCO_ZIP_PATH, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return buf.getvalue()


def parse_xml(data: bytes, name: str, rep: Report) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """A CVAT for images 1.1 export -> (image name, where, who, records) per image. Tags come back as
    records with ``_tag`` (the label) for the caller to resolve to a feature."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ParseError as exc:
        rep.error(f"XML syntax error: {exc}", f"{name}:{exc.position[0]}", "", "fix the XML at that line")
        return []
    except DefusedXmlException as exc:
        rep.error(f"the XML declares a DTD or entities, which slicewise refuses ({exc.__class__.__name__})", name, "",
                  "remove the <!DOCTYPE ...> and <!ENTITY ...> declarations")
        return []
    if root.tag != "annotations":
        rep.error(f"the root element is <{root.tag}>, not <annotations>", name, "", "export the task as "
                  "\"CVAT for images 1.1\"")
        return []
    if root.find("track") is not None:
        rep.error("the file holds tracks (CVAT for video)", name, "track", "export the task as \"CVAT for images 1.1\"")
        return []
    out = []
    for i, im in enumerate(root.iter("image")):
        img = im.get("name")
        loc = f"{name} <image id={im.get('id', i)!s}>"
        if not img:
            rep.error("an image has no name", loc, "name", "export the task as \"CVAT for images 1.1\"")
            continue
        recs: list[dict[str, Any]] = []
        whos = set()
        for j, el in enumerate(im):
            eloc = f"{name} <image name={img!r}> <{el.tag}> #{j}"
            label = el.get("label")
            if el.tag in ("box", "polygon", "points", "polyline", "tag", "mask", "ellipse", "cuboid", "skeleton") \
                    and not label:
                rep.error(f"<{el.tag}> has no label", eloc, "label", "give every shape a label")
                continue
            if el.get("source"):
                whos.add(el.get("source"))
            rec: dict[str, Any] = {"data_row": img, "feature": label, "location": eloc}
            try:
                if el.tag == "box":
                    if float(el.get("rotation") or 0) != 0:
                        rep.error("rotated boxes are not supported", eloc, "rotation", "draw the box unrotated")
                        continue
                    x1, y1, x2, y2 = (float(el.get(k) or "nan") for k in ("xtl", "ytl", "xbr", "ybr"))
                    rec["bbox"] = [x1, y1, x2 - x1, y2 - y1]
                elif el.tag in ("polygon", "polyline", "points"):
                    pts = [[float(c) for c in p.split(",")] for p in (el.get("points") or "").split(";") if p.strip()]
                    if any(len(p) != 2 for p in pts):
                        raise ValueError
                    if el.tag == "polygon":
                        rec["polygon"] = pts
                    elif el.tag == "polyline":
                        rec["line"] = pts
                    else:
                        if len(pts) != 1:
                            rep.error(f"<points> has {len(pts)} points", eloc, "points", "give one point per shape")
                            continue
                        rec["point"] = pts[0]
                elif el.tag == "tag":
                    rec = {"data_row": img, "_tag": label, "location": eloc}
                elif el.tag in ("mask", "ellipse", "cuboid", "skeleton"):
                    rep.error(f"<{el.tag}> shapes are not supported", eloc, el.tag, "use boxes, polygons, points or tags")
                    continue
                else:
                    continue
            except (TypeError, ValueError):
                rep.error(f"<{el.tag}> has a coordinate that is not a number", eloc, "points" if el.tag != "box" else "xtl",
                          "give numbers, e.g. points=\"1.0,2.0;3.0,4.0\"")
                continue
            recs.append(rec)
        by = "cvat:" + ",".join(sorted(w for w in whos if w)) if whos else "cvat"
        out.append((img, loc, by, recs))
    return out


def read_archive(data: bytes, name: str, rep: Report) -> tuple[str, bytes] | None:
    """The annotations file inside a CVAT export archive: ("xml", its bytes) for CVAT for images 1.1,
    ("coco", ...) for COCO 1.0; None (with a problem) when it holds neither."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        rep.error("not a zip archive", name, "", "give CVAT's export archive, or the XML / JSON inside it")
        return None
    names = z.namelist()
    xml = [n for n in names if n.endswith("annotations.xml")]
    coco = sorted(n for n in names if n.startswith("annotations/instances_") and n.endswith(".json"))
    pick = ("xml", xml[0]) if xml else ("coco", coco[0]) if coco else None
    if pick is None:
        rep.error("the archive holds neither annotations.xml nor annotations/instances_*.json", name, "",
                  "export the task as \"CVAT for images 1.1\" or \"COCO 1.0\"")
        return None
    info = z.getinfo(pick[1])
    if info.file_size > 2 << 30:
        rep.error(f"{pick[1]} is larger than 2 GiB", name, pick[1], "split the task")
        return None
    return pick[0], z.read(pick[1])
