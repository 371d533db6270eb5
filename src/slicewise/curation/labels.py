"""Labels back from the labelling tools: Label Studio's JSON export, CVAT's exports (CVAT for images 1.1
XML, COCO 1.0, or their zip archives), and COCO instances files.

Each labelled item of the file names a data row (a global key, or a file name of the batch's rows, see
:func:`slicewise.curation.rows.match_rows`). Its labels **replace** the row's ground truth (every source:
the labeller saw the pre-annotations and corrected them), the rows' ``label_rev`` moves so the metrics of
every run holding them go stale, and those whose metrics had been computed are brought up to date (only the
changed rows are matched again). The rows move in the labelling queue to ``in_review`` (or ``state``).
One transaction: a bad file changes nothing, and the error says which item, field and how to fix it.

>>> import tempfile, os, json, slicewise
>>> from slicewise.curation import batches, labels, queue
>>> d = tempfile.mkdtemp()
>>> ws = slicewise.open(os.path.join(d, "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": "a", "row_data": "/img/a.jpg", "width": 200, "height": 100}])
>>> _ = ws.create_feature("car", "bbox")
>>> _ = batches.create_batch(ws, "first", ["a"])
>>> export = [{"data": {"image": "/img/a.jpg", "global_key": "a"}, "annotations": [{"completed_by": 7, "result": [
...     {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 200,
...      "original_height": 100, "value": {"x": 10, "y": 10, "width": 25, "height": 40, "rectanglelabels": ["car"]}}]}]}]
>>> p = os.path.join(d, "ls.json"); _ = open(p, "w").write(json.dumps(export))
>>> res = labels.import_labels(ws, p, batch="first")
>>> res.rows, res.annotations, res.moved, [a["bbox"] for a in ws.annotations("a")]
(1, 1, {'in_review': 1}, [[20.0, 10.0, 50.0, 40.0]])
>>> [(e.state, e.by) for e in queue.queue_states(ws)]
[('in_review', 'labelstudio:7')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from slicewise.errors import Problem, Report, ValidationError

FORMATS = ("labelstudio", "cvat", "coco")


@dataclass(frozen=True)
class LabelImport:
    """What :func:`import_labels` did."""

    format: str
    rows: int  # rows whose ground truth was replaced
    annotations: int  # objects written
    replaced: int  # objects removed (the rows' previous ground truth)
    unlabelled: int  # items of the file that nobody labelled (left as they were)
    moved: dict[str, int]  # queue state -> rows moved there
    runs: list[str]  # runs holding the rows (their metrics went stale)
    recomputed: list[str]  # those brought up to date
    warnings: list[Problem] = field(default_factory=list)


def _detect(data: bytes, name: str) -> str:
    low = name.lower()
    head = data.lstrip()[:1]
    if low.endswith(".zip") or data[:4] == b"PK\x03\x04":
        return "zip"
    if low.endswith(".xml") or head == b"<":
        return "cvat"
    if head == b"[":
        return "labelstudio"
    if head == b"{":
        return "coco"
    raise ValidationError(Problem("cannot tell the file's format", name, "format",
                                  "give a Label Studio JSON export (.json), a CVAT export (.xml or .zip) or a COCO "
                                  "file, or name the format"))


def _norm_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    f = str(fmt).strip().lower().replace("_", "-")
    f = {"label-studio": "labelstudio", "ls": "labelstudio", "cvat-xml": "cvat", "cvat-coco": "coco",
         "cvat-images": "cvat"}.get(f, f)
    if f not in FORMATS:
        raise ValidationError(Problem(f"unknown label format {fmt!r}", field="format", fix="use " + ", ".join(FORMATS)))
    return f


def import_labels(ws: Any, path: str | Path | bytes, *, fmt: str | None = None, name: str | None = None,
                  batch: str | int | None = None, state: str = "in_review", by: str | None = None,
                  recompute: bool = True, create_features: bool = False) -> LabelImport:
    """Read labelled results back (see the module docstring). ``path``: a file, or its bytes with ``name``;
    ``fmt``: labelstudio, cvat or coco (default: from the file); ``batch``: the batch it was exported from
    (file names are then matched among its rows); ``state``: where the labelled rows go in the queue
    (``in_review`` or ``done``); ``by``: who (default: the tool's annotator, else the current user);
    ``recompute``: bring the metrics of runs that had them up to date now (the server starts them in the
    background instead)."""
    from slicewise.curation.batches import get_batch
    from slicewise.curation.queue import state_name
    from slicewise.io.common import parse_json

    if isinstance(path, bytes | bytearray):
        data, fname = bytes(path), name or "upload"
    else:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ValidationError(Problem(f"cannot read the file: {exc.strerror}", str(p), "",
                                          "check the path and its permissions")) from None
        fname = name or p.name
    target = state_name(state)
    bid = get_batch(ws, batch).id if batch is not None else None
    f = _norm_format(fmt)
    kind = f or _detect(data, fname)
    rep = Report()
    if kind == "zip":
        from slicewise.io.cvat import read_archive

        inner = read_archive(data, fname, rep)
        if inner is None:
            raise ValidationError(rep.errors)
        kind, data = inner
        fname = f"{fname}!{'annotations.xml' if kind == 'cvat' else 'instances'}"
    if kind == "labelstudio":
        from slicewise.io.labelstudio import parse_export

        doc = parse_json(data, fname)
        items = parse_export(doc, fname, rep)
        n_items = len(doc) if isinstance(doc, list) else len(doc.get("tasks", [])) if isinstance(doc, dict) else 0
    elif kind == "cvat":
        from slicewise.io.cvat import parse_xml

        items = parse_xml(data, fname, rep)
        n_items = len(items)
    else:
        items = _coco_items(parse_json(data, fname), fname, rep)
        n_items = len(items)
    if rep.errors:
        raise ValidationError(rep.errors)
    if not items:
        raise ValidationError(Problem("the file has no labelled item", fname, "annotations",
                                      "label some tasks / images before exporting them from the tool"))
    ids, problems = _match(ws, items, bid)
    if problems:
        raise ValidationError(problems)
    records = _resolve(ws, items, ids, rep, create_features=create_features)
    if rep.errors:
        raise ValidationError(rep.errors)
    return _write(ws, kind, fname, items, ids, records, rep, target=target, by=by, recompute=recompute,
                  create_features=create_features, unlabelled=n_items - len(items))


def _coco_items(doc: Any, name: str, rep: Report) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """A COCO instances file (CVAT's COCO 1.0 export, or any) -> items per image, via the COCO importer's parser."""
    from slicewise.io.coco import parse_instances

    b = parse_instances(doc, name, check_media=False)
    rep.problems += b.report.problems
    per: dict[str, list[dict[str, Any]]] = {str(r["global_key"]): [] for r in b.rows}
    frame = b.annotations
    if frame is not None:
        kinds = {n: k for n, k, _ in b.features}
        for i in range(len(frame)):
            key = str(frame.data_row[i])
            rec: dict[str, Any] = {"data_row": key, "feature": str(frame.feature[i]), "location": str(frame.location[i]),
                                   "_frame": (frame, i), "_kind": kinds.get(str(frame.feature[i]))}
            per.setdefault(key, []).append(rec)
    locs = {str(r["global_key"]): str(r.get("location") or name) for r in b.rows}
    return [(k, locs.get(k, name), "coco", recs) for k, recs in per.items()]


def _match(ws: Any, items: list[tuple[str, str, str, list[dict[str, Any]]]], bid: int | None) -> tuple[dict[str, int], list[Problem]]:
    from slicewise.curation.rows import match_rows

    ids, problems = match_rows(ws, [(n, loc) for n, loc, _, _ in items], bid)
    seen: dict[int, str] = {}
    for n, loc, _, _ in items:
        rid = ids.get(n)
        if rid is not None and rid in seen and seen[rid] != loc:
            problems.append(Problem(f"{n!r} is labelled twice in the file (also at {seen[rid]})", loc, "name",
                                    "keep one item per data row"))
        elif rid is not None:
            seen[rid] = loc
    return ids, problems


def _resolve(ws: Any, items: list[tuple[str, str, str, list[dict[str, Any]]]], ids: dict[str, int], rep: Report,
             *, create_features: bool) -> list[dict[str, Any]]:
    """Records with the data row's global key, pixel coordinates, and classifications' features."""
    info = {int(r[0]): (r[1], r[2], r[3]) for r in ws.sql(
        "SELECT id, global_key, width, height FROM data_rows WHERE id IN (SELECT unnest(?))",
        [sorted(set(ids.values()))]).fetchall()}
    feats = {f.name: f for f in ws.features()}
    by_answer: dict[str, set[str]] = {}
    for f in feats.values():
        if f.kind in ("radio", "checklist"):
            for o in f.options or []:
                by_answer.setdefault(o, set()).add(f.name)
    for fname, ans in ws.sql("""SELECT DISTINCT f.name, o.answer FROM (SELECT feature_id, answer FROM annotations UNION
                                SELECT feature_id, answer FROM predictions) o JOIN features f ON f.id = o.feature_id
                                WHERE o.answer IS NOT NULL""").fetchall():
        by_answer.setdefault(ans, set()).add(fname)
    out: list[dict[str, Any]] = []
    for n, _, _, recs in items:
        key, width, height = info[ids[n]]
        for rec in recs:
            r = {k: v for k, v in rec.items() if not k.startswith("_")}
            r["data_row"] = key
            loc = rec["location"]
            if "_frame" in rec:
                r = _from_frame(rec["_frame"], key)
            elif "_tag" in rec:
                owners = sorted(by_answer.get(rec["_tag"], set()))
                if len(owners) != 1:
                    rep.error(f"tag {rec['_tag']!r} is " + ("an answer of no classification feature" if not owners else
                              f"an answer of {len(owners)} features ({', '.join(owners)})"), loc, "label",
                              "create the radio feature with this option (ws.create_feature(NAME, 'radio', options=[...]))"
                              if not owners else "rename the option so that one feature has it")
                    continue
                f = feats[owners[0]]
                r |= {"feature": f.name, "answer": rec["_tag"], "kind": f.kind}
            elif "answer" in rec:
                f = feats.get(rec["feature"])
                if f is not None and f.kind == "checklist" or f is None and rec.get("_choices", 1) > 1:
                    r["kind"] = "checklist"
                elif f is not None and f.kind == "radio" and rec.get("_choices", 1) > 1:
                    rep.error(f"{rec['_choices']} choices for the single-choice feature {f.name!r}", loc, "value.choices",
                              "choose one option")
                    continue
            elif any(k in rec for k in ("_pct_box", "_pct_poly", "_pct_point")):
                sw, sh = rec.get("_size") or (None, None)
                w, h = (sw or width), (sh or height)
                if not w or not h:
                    rep.error("the region is in percent and the image's size is unknown", loc, "original_width",
                              "keep original_width/original_height in the export, or import the row with its size")
                    continue
                if "_pct_box" in rec:
                    x, y, bw, bh = rec["_pct_box"]
                    r["bbox"] = [x * w / 100, y * h / 100, bw * w / 100, bh * h / 100]
                elif "_pct_poly" in rec:
                    r["polygon"] = [[px * w / 100, py * h / 100] for px, py in rec["_pct_poly"]]
                else:
                    r["point"] = [rec["_pct_point"][0] * w / 100, rec["_pct_point"][1] * h / 100]
            if not create_features and r.get("feature") not in feats:
                from slicewise.errors import did_you_mean

                rep.error(f"unknown class {r.get('feature')!r}", loc, "label",
                          did_you_mean(str(r.get("feature")), list(feats)) or
                          "add it to the ontology first, or import with create_features")
                continue
            out.append(r)
    return out


def _from_frame(fr: tuple[Any, int], key: str) -> dict[str, Any]:
    frame, i = fr
    r: dict[str, Any] = {"data_row": key, "feature": str(frame.feature[i]), "location": str(frame.location[i])}
    kind = str(frame.kind[i])
    r["kind"] = kind
    for col in ("x", "y", "w", "h", "area"):
        v = float(getattr(frame, col)[i])
        if v == v:
            r[col] = v
    r["_geometry"], r["_mask"] = frame.geometry[i], frame.mask_rle[i]
    r["iscrowd"] = bool(frame.iscrowd[i])
    return r


def _frame_of(records: list[dict[str, Any]], rep: Report) -> Any:
    from slicewise.types.frame import ObjectFrame

    plain = [r for r in records if "_geometry" not in r]
    coco = [r for r in records if "_geometry" in r]
    frames = []
    if plain:
        frames.append(ObjectFrame.from_records(plain, report=rep))
    if coco:
        frames.append(ObjectFrame.from_columns(
            data_row=[r["data_row"] for r in coco], feature=[r["feature"] for r in coco], kind=[r["kind"] for r in coco],
            x=[r.get("x", np.nan) for r in coco], y=[r.get("y", np.nan) for r in coco],
            w=[r.get("w", np.nan) for r in coco], h=[r.get("h", np.nan) for r in coco],
            geometry=[r["_geometry"] for r in coco], mask_rle=[r["_mask"] for r in coco],
            area=[r.get("area", np.nan) for r in coco], iscrowd=np.array([r["iscrowd"] for r in coco], bool),
            location=[r["location"] for r in coco]))
    if not frames:
        return ObjectFrame.empty()
    return frames[0] if len(frames) == 1 else ObjectFrame.concat(frames)


def _write(ws: Any, kind: str, fname: str, items: list[tuple[str, str, str, list[dict[str, Any]]]],
           ids: dict[str, int], records: list[dict[str, Any]], rep: Report, *, target: str, by: str | None,
           recompute: bool, create_features: bool, unlabelled: int) -> LabelImport:
    from slicewise import metrics
    from slicewise.curation.queue import _move, actor

    frame = _frame_of(records, rep)
    if rep.errors:
        raise ValidationError(rep.errors)
    rows = np.unique(np.asarray(list(ids.values()), dtype=np.int64))
    who: dict[str, list[int]] = {}
    for item_name, _, tool_by, _ in items:
        who.setdefault(actor(by) if by else tool_by, []).append(ids[item_name])
    source = f"labels:{kind}:{Path(fname).name}"
    moved: dict[str, int] = {}
    with ws.store.transaction() as con:
        con.register("_sw_labelled", pa.table({"data_row_id": rows}))
        try:
            replaced = int(con.execute("SELECT count(*) FROM annotations WHERE data_row_id IN "
                                       "(SELECT data_row_id FROM _sw_labelled)").fetchone()[0])
            con.execute("DELETE FROM annotations WHERE data_row_id IN (SELECT data_row_id FROM _sw_labelled)")
            con.execute("UPDATE data_rows SET label_rev = label_rev + 1 WHERE id IN (SELECT data_row_id FROM _sw_labelled)")
        finally:
            con.unregister("_sw_labelled")
        ws.store.touch("labels", rows=rows)
        written = 0
        if len(frame):
            res = ws.add_annotations(frame, source=source, create_features=create_features)
            written = res.inserted
            rep.problems += res.warnings
        for person, rids in who.items():
            k = _move(ws, con, np.unique(np.asarray(rids, dtype=np.int64)), target, person, f"labels from {fname}", None)
            if k:
                moved[target] = moved.get(target, 0) + k
        run_ids = [int(r[0]) for r in con.execute(
            "SELECT DISTINCT run_id FROM run_rows WHERE data_row_id IN (SELECT unnest(?)) ORDER BY 1",
            [rows.tolist()]).fetchall()]
    runs = [ws.run(r) for r in run_ids]
    recomputed = []
    if recompute:
        for r in runs:
            if metrics.job_status(ws, r).state in ("stale", "ready", "failed"):
                metrics.compute_metrics(ws, r)
                recomputed.append(r.ref)
    return LabelImport(kind, len(rows), written, replaced, unlabelled, moved, [r.ref for r in runs], recomputed,
                       list(rep.warnings))
