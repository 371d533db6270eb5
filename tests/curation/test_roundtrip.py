"""The curation loop's round trip: a batch exported to Label Studio and CVAT, labels changed in the exported
files as a labeller would, re-imported; the ground truth, the run's metrics and the queue states change
exactly as the hand-worked tables below say.

The scene (images 200 x 100, run det/v1, confidence 0.5, IoU 0.5, class-agnostic greedy matching):

    row  ground truth                 prediction
    a    car [20, 10, 50, 40]         car [20, 10, 50, 40] 0.9      -> car TP
    b    -                            person [100, 20, 40, 60] 0.8  -> person FP
    c    car [10, 10, 30, 30]         -                             -> car FN
    d    -                            car [150, 50, 40, 40] 0.7     -> car FP
    e    -                            car [0, 0, 20, 20] 0.3        -> dropped at 0.5

so car TP 1 FP 1 FN 1, person TP 0 FP 1 FN 0.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from defusedxml.ElementTree import fromstring

from slicewise.curation import batches, export, labels, queue
from slicewise.errors import ConflictError, NotFoundError, QueryError, ValidationError
from slicewise.view import View

from .conftest import counts


def test_label_studio_round_trip(ws, scene, tmp_path):
    run = scene
    b = batches.create_batch(ws, "fix-fp", View(run=run, filter="fp > 0 or fn > 0", sort="global_key"),
                             priority=2, note="check the false positives")
    assert (b.count, b.status, b.states) == (3, "new", {"to_label": 3})
    assert batches.batch_keys(ws, "fix-fp") == ["b", "c", "d"]
    out = export.export_batch(ws, "fix-fp", "labelstudio", run=run)
    tasks = json.loads(out.data)
    assert [t["data"]["global_key"] for t in tasks] == ["b", "c", "d"]
    assert [t["data"]["image"] for t in tasks] == ["/data/img/b.jpg", "/data/img/c.jpg", "/data/img/d.jpg"]
    pre = {t["data"]["global_key"]: t["predictions"][0]["result"] for t in tasks}
    assert pre["c"] == []
    (rb,) = pre["b"]  # person [100, 20, 40, 60] in percent of 200 x 100
    assert rb["type"] == "rectanglelabels" and rb["score"] == 0.8
    assert rb["value"] == {"x": 50.0, "y": 20.0, "width": 20.0, "height": 60.0, "rotation": 0,
                           "rectanglelabels": ["person"]}
    assert (rb["original_width"], rb["original_height"]) == (200, 100)
    assert batches.get_batch(ws, "fix-fp").status == "exported"

    # the labeller, in Label Studio: b keeps the person box, d's car is right too but drawn a little larger,
    # c is skipped (no annotation); Label Studio's JSON export carries the task data and annotations[].result
    exported = []
    for i, t in enumerate(tasks):
        key = t["data"]["global_key"]
        result = [dict(r) for r in t["predictions"][0]["result"]]
        for r in result:
            r.pop("score", None)
        if key == "d":
            result[0] = {**result[0], "value": {**result[0]["value"], "width": 22.5}}  # 40 px -> 45 px
        anns = [] if key == "c" else [{"id": 10 + i, "completed_by": 3, "was_cancelled": False, "result": result,
                                       "created_at": "2026-12-01T10:00:00Z"}]
        if key == "b":  # a first try that the labeller cancelled is not taken
            anns.insert(0, {"id": 99, "completed_by": 4, "was_cancelled": True, "result": []})
        exported.append({"id": 100 + i, "data": t["data"], "annotations": anns, "predictions": t["predictions"]})
    path = tmp_path / "project-1-at-2026-12-01.json"
    path.write_text(json.dumps(exported))

    res = labels.import_labels(ws, path, batch="fix-fp")
    assert (res.format, res.rows, res.annotations, res.unlabelled) == ("labelstudio", 2, 2, 1)
    assert res.moved == {"in_review": 2} and res.runs == ["det/v1"] and res.recomputed == ["det/v1"]
    gt = {k: [(a["feature"], a["bbox"]) for a in ws.annotations(k)] for k in "abcde"}
    assert gt == {"a": [("car", [20.0, 10.0, 50.0, 40.0])], "b": [("person", [100.0, 20.0, 40.0, 60.0])],
                  "c": [("car", [10.0, 10.0, 30.0, 30.0])], "d": [("car", [150.0, 50.0, 45.0, 40.0])], "e": []}
    # d: IoU of [150, 50, 40, 40] and [150, 50, 45, 40] = 1600 / 1800 > 0.5 -> TP
    assert counts(ws, run) == {"car": (2, 0, 1), "person": (1, 0, 0)}
    states = {e.global_key: (e.state, e.by, e.batch) for e in queue.queue_states(ws)}
    assert states["b"] == ("in_review", "labelstudio:3", "fix-fp")
    assert states["d"] == ("in_review", "labelstudio:3", "fix-fp")
    assert states["c"][0] == "to_label"
    b = batches.get_batch(ws, "fix-fp")
    assert (b.status, b.states) == ("in progress", {"to_label": 1, "in_review": 2})
    assert View(run=run, filter="queue:review").resolve(ws).count() == 2
    assert View(run=run, filter="batch:fix-fp and queue:to_label").resolve(ws).page().rows[0].global_key == "c"
    f = View(run=run).resolve(ws).facets()
    assert f.batches == {"fix-fp": 3} and f.queue == {"to_label": 1, "in_review": 2}
    # re-importing the same export again is idempotent for the labels; the rows are already in review
    again = labels.import_labels(ws, path, batch="fix-fp")
    assert again.moved == {} and counts(ws, run) == {"car": (2, 0, 1), "person": (1, 0, 0)}
    assert [h["to"] for h in queue.history(ws, "b")] == ["to_label", "in_review"]


def test_rework_through_cvat_xml(ws, scene, tmp_path):
    run = scene
    ws.add_tags(["a"], ["re-label"])
    assert queue.send_to_rework(ws, View(filter="tag:re-label"), by="ana", note="box too wide") == 1
    b = batches.create_batch(ws, "rework-1", View(filter="queue:rework"))
    assert b.states == {"rework": 1} and b.source == "filter:queue:rework"
    out = export.export_batch(ws, "rework-1", "cvat", run=None)  # rework: the current labels to correct
    assert out.pre == "labels"
    root = fromstring(out.data)
    assert root.findtext("version") == "1.1"
    assert [lab.findtext("name") for lab in root.iter("label")] == ["car", "person"]
    (img,) = root.iter("image")
    assert (img.get("name"), img.get("width"), img.get("height")) == ("a.jpg", "200", "100")
    (box,) = img.iter("box")
    assert {k: box.get(k) for k in ("label", "xtl", "ytl", "xbr", "ybr")} == {
        "label": "car", "xtl": "20.00", "ytl": "10.00", "xbr": "70.00", "ybr": "50.00"}

    # the labeller, in CVAT: the car box made narrower (50 -> 20 px wide) and a person added; CVAT's export
    # has the task's meta and the images with their shapes
    text = out.data.decode().replace('xbr="70.00"', 'xbr="40.00"').replace(
        "</image>", '<box label="person" source="manual" occluded="0" xtl="0" ytl="0" xbr="10" ybr="10" z_order="0">'
                    "</box></image>")
    path = tmp_path / "annotations.xml"
    path.write_text(text)
    res = labels.import_labels(ws, path)  # no batch: the file names are matched among all rows
    assert (res.format, res.rows, res.annotations) == ("cvat", 1, 2)
    assert sorted((a["feature"], a["bbox"]) for a in ws.annotations("a")) == [
        ("car", [20.0, 10.0, 20.0, 40.0]), ("person", [0.0, 0.0, 10.0, 10.0])]
    # a: the car prediction [20, 10, 50, 40] against the car [20, 10, 20, 40]: IoU 800 / 2000 = 0.4 < 0.5
    # -> FP and FN; the person is missed -> person FN
    assert counts(ws, run) == {"car": (0, 2, 2), "person": (0, 1, 1)}
    (e,) = queue.queue_states(ws, rows=[ws.data_row("a").id])
    assert (e.state, e.by) == ("in_review", "cvat:manual")
    assert [(h["from"], h["to"], h["by"]) for h in queue.history(ws, "a")] == [
        (None, "rework", "ana"), ("rework", "in_review", "cvat:manual")]
    # the reviewer accepts it
    assert queue.move(ws, ["a"], "done", by="bo", only_from=["in_review"]) == 1
    assert batches.get_batch(ws, "rework-1").status == "done"


def test_cvat_coco_zip_round_trip(ws, scene, tmp_path):
    run = scene
    batches.create_batch(ws, "pool", ["d", "e"])
    out = export.export_batch(ws, "pool", "cvat-coco", run=run)
    z = zipfile.ZipFile(io.BytesIO(out.data))
    doc = json.loads(z.read("annotations/instances_default.json"))
    assert [im["file_name"] for im in doc["images"]] == ["d.jpg", "e.jpg"]
    assert len(doc["annotations"]) == 1  # e's car at 0.3 is below the run's threshold 0.5
    # the labeller turns d's car into a person; CVAT exports COCO 1.0 as a zip again
    cats = {c["name"]: c["id"] for c in doc["categories"]}
    doc["annotations"][0]["category_id"] = cats["person"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zz:
        zz.writestr("annotations/instances_default.json", json.dumps(doc))
    (tmp_path / "task.zip").write_bytes(buf.getvalue())
    res = labels.import_labels(ws, tmp_path / "task.zip", batch="pool", state="done", by="lee")
    assert (res.format, res.rows, res.annotations) == ("coco", 2, 1)
    assert [(a["feature"], a["bbox"]) for a in ws.annotations("d")] == [("person", [150.0, 50.0, 40.0, 40.0])]
    assert ws.annotations("e") == []
    # d: a car predicted on a person at IoU 1: a confusion, car FP (as before) and now person FN
    assert counts(ws, run) == {"car": (1, 1, 1), "person": (0, 1, 1)}
    assert {e.global_key: (e.state, e.by) for e in queue.queue_states(ws)} == {"d": ("done", "lee"), "e": ("done", "lee")}


def test_other_formats(ws, scene):
    run = scene
    batches.create_batch(ws, "all", list("abcde"), note="everything")
    nd = export.export_batch(ws, "all", "labelbox", run=run).data.decode().splitlines()
    lines = [json.loads(x) for x in nd]
    assert [(x["dataRow"]["globalKey"], x["name"], x["bbox"], x["confidence"]) for x in lines] == [
        ("a", "car", {"top": 10.0, "left": 20.0, "height": 40.0, "width": 50.0}, 0.9),
        ("b", "person", {"top": 20.0, "left": 100.0, "height": 60.0, "width": 40.0}, 0.8),
        ("d", "car", {"top": 50.0, "left": 150.0, "height": 40.0, "width": 40.0}, 0.7)]
    coco = json.loads(export.export_batch(ws, "all", "coco").data)  # the ground truth
    assert [im["file_name"] for im in coco["images"]] == list("abcde")
    assert sorted(a["bbox"] for a in coco["annotations"]) == [[10.0, 10.0, 30.0, 30.0], [20.0, 10.0, 50.0, 40.0]]
    csv_lines = export.export_batch(ws, "all", "csv", run=run).data.decode().splitlines()
    assert csv_lines[0].startswith("global_key,row_data,dataset,split,width,height,queue_state,batch,priority")
    assert csv_lines[1] == "a,/data/img/a.jpg,scenes,none,200,100,to_label,all,0,1,car"
    cfg = export.export_batch(ws, "all", "labelstudio-config").data.decode()
    assert '<RectangleLabels name="label" toName="image">' in cfg and '<Label value="person"/>' in cfg


def test_batch_errors(ws, scene):
    batches.create_batch(ws, "one", ["a"])
    with pytest.raises(ConflictError, match="already exists"):
        batches.create_batch(ws, "ONE", ["b"])
    with pytest.raises(ValidationError, match="no rows"):
        batches.create_batch(ws, "none", View(filter="global_key = zzz"))
    with pytest.raises(NotFoundError, match="unknown data row key"):
        batches.create_batch(ws, "two", ["a", "nope"])
    with pytest.raises(NotFoundError, match="unknown data row id"):
        batches.create_batch(ws, "two", [1, 99999])
    with pytest.raises(ValidationError, match="priority"):
        batches.create_batch(ws, "two", ["a"], priority="high")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="no batch 'onw'") as e:
        View(filter="batch:onw").resolve(ws).count()
    assert "did you mean 'one'" in str(e.value)
    with pytest.raises(QueryError, match="unknown queue state"):
        View(filter="queue:finished").resolve(ws).count()
    assert [b.name for b in batches.list_batches(ws)] == ["one"]
    b = batches.add_rows(ws, "one", ["c", "a", "b"])
    assert (b.count, batches.batch_keys(ws, "one")) == (3, ["a", "c", "b"])
    batches.drop_batch(ws, "one")
    assert batches.list_batches(ws) == [] and queue.queue_counts(ws) == {"to_label": 3}


def test_bad_label_files_change_nothing(ws, scene, tmp_path, table_snapshot):
    batches.create_batch(ws, "b1", ["b", "d"])
    before = table_snapshot(ws)
    task = {"data": {"global_key": "b"}, "annotations": [{"result": [
        {"type": "rectanglelabels", "original_width": 200, "original_height": 100,
         "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["bus"]}}]}]}
    (tmp_path / "ls.json").write_text(json.dumps([task]))
    with pytest.raises(ValidationError) as e:
        labels.import_labels(ws, tmp_path / "ls.json", batch="b1")
    assert "ls.json task[0] annotations[0].result[0] [label]: unknown class 'bus'" in str(e.value)
    (tmp_path / "ls2.json").write_text(json.dumps([{**task, "data": {"global_key": "zz"}}]))
    with pytest.raises(ValidationError, match=r"ls2.json task\[0\] \[name\]: 'zz' is not a data row of the batch"):
        labels.import_labels(ws, tmp_path / "ls2.json", batch="b1")
    (tmp_path / "bad.xml").write_text('<annotations><image id="0" name="b.jpg"><box label="car" xtl="x" ytl="1" '
                                      'xbr="5" ybr="5"/></image></annotations>')
    with pytest.raises(ValidationError, match=r"<image name='b.jpg'> <box> #0 \[xtl\]: <box> has a coordinate"):
        labels.import_labels(ws, tmp_path / "bad.xml")
    (tmp_path / "dtd.xml").write_text('<!DOCTYPE x [<!ENTITY a "b">]><annotations/>')
    with pytest.raises(ValidationError, match="DTD or entities"):
        labels.import_labels(ws, tmp_path / "dtd.xml")
    (tmp_path / "box.xml").write_text('<annotations><image id="0" name="b.jpg"><box label="car" xtl="10" ytl="1" '
                                      'xbr="5" ybr="5"/></image></annotations>')
    with pytest.raises(ValidationError, match="b.jpg"):  # a box with a negative width
        labels.import_labels(ws, tmp_path / "box.xml")
    assert table_snapshot(ws) == before


def test_classification_round_trip(ws, tmp_path):
    """Radio classifications: Label Studio `choices` (from_name = the question) and CVAT tags (the answer)."""
    ws.add_data_rows("digits", [{"global_key": f"d{i}", "row_data": f"/digits/{i}.png", "width": 8, "height": 8}
                                for i in range(3)])
    ws.create_feature("digit", "radio", options=["0", "1", "7"])
    ws.add_annotations([{"data_row": "d0", "feature": "digit", "answer": "1"}])
    run = ws.create_run("clf", "v1")
    ws.add_predictions(run, [{"data_row": f"d{i}", "feature": "digit", "answer": a, "confidence": c}
                             for i, (a, c) in enumerate([("1", 0.9), ("7", 0.6), ("0", 0.8)])])
    batches.create_batch(ws, "digits", ["d1", "d2"])
    tasks = json.loads(export.export_batch(ws, "digits", "labelstudio", run=run).data)
    (r1,) = tasks[0]["predictions"][0]["result"]
    assert {k: r1[k] for k in ("from_name", "to_name", "type", "value", "score")} == {
        "from_name": "digit", "to_name": "image", "type": "choices", "value": {"choices": ["7"]}, "score": 0.6}
    # the labeller: d1 is a 1 (the model said 7), d2 stays unlabelled in Label Studio
    tasks[0]["annotations"] = [{"completed_by": {"email": "x@y.z"}, "result": [{**r1, "value": {"choices": ["1"]}}]}]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    res = labels.import_labels(ws, tmp_path / "ls.json", batch="digits")
    assert (res.rows, res.unlabelled) == (1, 1)
    assert [(a["feature"], a["answer"]) for a in ws.annotations("d1")] == [("digit", "1")]
    assert queue.queue_states(ws, state="in_review")[0].by == "labelstudio:x@y.z"
    # CVAT: the answer is the tag's label; d2 labelled 0
    xml = export.export_batch(ws, "digits", "cvat", run=run).data.decode()
    assert '<tag label="0" source="auto"' in xml
    (tmp_path / "c.xml").write_text(xml.replace('<tag label="7" source="auto" />', '<tag label="1" source="manual" />'))
    labels.import_labels(ws, tmp_path / "c.xml", batch="digits", state="done")
    assert [a["answer"] for a in ws.annotations(["d1", "d2"])] == ["1", "0"]
    assert queue.queue_counts(ws) == {"done": 2}
