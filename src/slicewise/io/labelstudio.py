"""Label Studio: a batch as import tasks with pre-annotations, and Label Studio's JSON export read back.

Tasks follow Label Studio's documented task format (``data`` + ``predictions``, see
https://labelstud.io/guide/predictions): ``data.image`` (or ``data.text``) is the row's file (or text),
``data.global_key`` keeps the row's key (Label Studio keeps ``data`` in its exports, so the labels find
their row again); ``predictions[0].result`` holds the pre-annotations, in percent of the image for
images: ``rectanglelabels`` (x, y, width, height; ``from_name`` "label"), ``polygonlabels`` (points;
"polygon"), ``keypointlabels`` ("keypoint"), ``choices`` for classifications (``from_name`` = the
feature, the question), ``labels`` for NER spans on text (start, end). Masks are not sent (Label Studio's
brush RLE is its own format): each is counted in ``skipped``. :func:`label_config` writes the labelling
interface (XML) that matches these names.

Reading back (Label Studio's "JSON" export: a list of tasks with ``annotations[].result``): per task, the
latest annotation that was not cancelled; tasks without one are not labelled yet and are left out.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from slicewise.errors import Report

REGION_FROM = {"rectanglelabels": "label", "polygonlabels": "polygon", "keypointlabels": "keypoint", "labels": "label"}


def _pct(v: float, size: int) -> float:
    return round(float(v) / size * 100.0, 6)


def task_results(obj_list: list[dict[str, Any]], width: int | None, height: int | None, text: str | None,
                 *, with_score: bool) -> tuple[list[dict[str, Any]], int]:
    """Label Studio results for one row's objects, and how many objects could not be written."""
    out: list[dict[str, Any]] = []
    skipped = 0
    choices: dict[str, list[str]] = {}
    score: dict[str, float] = {}
    for o in obj_list:
        kind = o["kind"]
        base: dict[str, Any] = {"id": f"sw{o['id']}", "to_name": "text" if text is not None else "image"}
        if with_score and o.get("confidence") is not None:
            base["score"] = float(o["confidence"])
        if kind in ("radio", "checklist"):
            choices.setdefault(o["feature"], []).append(str(o["answer"]))
            if with_score and o.get("confidence") is not None:
                score[o["feature"]] = max(score.get(o["feature"], 0.0), float(o["confidence"]))
            continue
        if kind == "ner" and text is not None:
            s, e = o["span"]
            out.append({**base, "from_name": "label", "type": "labels",
                        "value": {"start": s, "end": e, "text": text[s:e], "labels": [o["feature"]]}})
            continue
        if not width or not height or kind not in ("bbox", "polygon", "point"):
            skipped += 1
            continue
        size = {"original_width": int(width), "original_height": int(height), "image_rotation": 0}
        if kind == "bbox":
            x, y, w, h = o["bbox"]
            out.append({**base, **size, "from_name": "label", "type": "rectanglelabels",
                        "value": {"x": _pct(x, width), "y": _pct(y, height), "width": _pct(w, width),
                                  "height": _pct(h, height), "rotation": 0, "rectanglelabels": [o["feature"]]}})
        elif kind == "polygon":
            for j, ring in enumerate(o.get("polygon") or []):
                out.append({**base, **size, "id": f"sw{o['id']}-{j}" if j else base["id"], "from_name": "polygon",
                            "type": "polygonlabels",
                            "value": {"points": [[_pct(px, width), _pct(py, height)] for px, py in ring],
                                      "polygonlabels": [o["feature"]]}})
        else:
            px, py = o["point"]
            out.append({**base, **size, "from_name": "keypoint", "type": "keypointlabels",
                        "value": {"x": _pct(px, width), "y": _pct(py, height), "width": 0.5,
                                  "keypointlabels": [o["feature"]]}})
    for feat, answers in choices.items():
        r: dict[str, Any] = {"id": f"sw-{feat}", "from_name": feat, "to_name": "text" if text is not None else "image",
                             "type": "choices", "value": {"choices": answers}}
        if feat in score:
            r["score"] = score[feat]
        out.append(r)
    return out, skipped


def label_config(features: list[Any], answers: dict[str, list[str]], *, text: bool = False) -> str:
    """The Label Studio labelling interface (XML) for these features: one control per kind, named as
    :func:`task_results` names them."""
    obj = '  <Text name="text" value="$text"/>' if text else '  <Image name="image" value="$image"/>'
    to = "text" if text else "image"
    lines = ["<View>", obj]
    groups = {"bbox": ("RectangleLabels", "label"), "polygon": ("PolygonLabels", "polygon"),
              "point": ("KeyPointLabels", "keypoint"), "ner": ("Labels", "label")}
    for kind, (tag, name) in groups.items():
        names = [f.name for f in features if f.kind == kind]
        if names and (kind == "ner") == text:
            lines.append(f'  <{tag} name="{name}" toName="{to}">')
            lines += [f"    <Label value={quoteattr(n)}/>" for n in names]
            lines.append(f"  </{tag}>")
    for f in features:
        if f.kind in ("radio", "checklist"):
            opts = list(dict.fromkeys(list(f.options or []) + answers.get(f.name, [])))
            choice = "single" if f.kind == "radio" else "multiple"
            lines.append(f"  <Header value={quoteattr(f.name)}/>")
            lines.append(f'  <Choices name={quoteattr(f.name)} toName="{to}" choice="{choice}">')
            lines += [f"    <Choice value={quoteattr(o)}/>" for o in opts]
            lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def parse_export(doc: Any, name: str, rep: Report) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """Label Studio's JSON export -> (row name, where, who, records) per labelled task. A record is what
    ``ObjectFrame.from_records`` takes, with ``data_row`` set to the row name (mapped to a data row later)
    and, for boxes and polygons given in percent, the image size it was measured against."""
    if isinstance(doc, dict) and isinstance(doc.get("tasks"), list):
        doc = doc["tasks"]
    if not isinstance(doc, list):
        rep.error("a Label Studio export is a JSON list of tasks", name, "", "export the project as \"JSON\"")
        return []
    out = []
    for i, task in enumerate(doc):
        loc = f"{name} task[{i}]"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            rep.error("a task must be an object with \"data\"", loc, "data", "export the project as \"JSON\"")
            continue
        data = task["data"]
        row = data.get("global_key") or data.get("image") or data.get("text")
        if not isinstance(row, str) or not row:
            rep.error("the task's data names no row (global_key, image or text)", loc, "data.global_key",
                      "export the batch from slicewise again: its tasks carry data.global_key")
            continue
        anns = task.get("annotations") if task.get("annotations") is not None else task.get("completions", [])
        if not isinstance(anns, list):
            rep.error("annotations must be a list", loc, "annotations", "export the project as \"JSON\"")
            continue
        done = [(j, a) for j, a in enumerate(anns) if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            continue  # not labelled yet
        j, ann = max(done, key=lambda ja: (bool(ja[1].get("ground_truth")), str(ja[1].get("updated_at")
                                                                                  or ja[1].get("created_at") or ""), ja[0]))
        who = ann.get("completed_by")
        if isinstance(who, dict):
            who = who.get("email") or who.get("username") or who.get("id")
        by = f"labelstudio:{who}" if who not in (None, "") else "labelstudio"
        results = ann.get("result")
        if not isinstance(results, list):
            rep.error("annotation has no result list", f"{loc} annotations[{j}]", "result", "export the project as \"JSON\"")
            continue
        recs: list[dict[str, Any]] = []
        for k, r in enumerate(results):
            rloc = f"{loc} annotations[{j}].result[{k}]"
            recs += _result(r, row, rloc, data, rep)
        out.append((row, loc, by, recs))
    return out


def _result(r: Any, row: str, loc: str, data: dict[str, Any], rep: Report) -> list[dict[str, Any]]:
    if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
        rep.error("a result must be an object with a value", loc, "value", "see Label Studio's result format")
        return []
    t, v = r.get("type"), r["value"]
    rec: dict[str, Any] = {"data_row": row, "location": loc}
    size = (r.get("original_width"), r.get("original_height"))
    if t in ("rectanglelabels", "polygonlabels", "keypointlabels", "labels"):
        labels = v.get(t) if t != "labels" else v.get("labels")
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            rep.error(f"{t} must name one label", loc, f"value.{t}", "give one class per region")
            return []
        rec["feature"] = labels[0]
        if t == "labels":
            if not isinstance(v.get("start"), int) or not isinstance(v.get("end"), int):
                rep.error("a text span needs integer start and end", loc, "value.start", "label spans of text")
                return []
            rec["span"] = [v["start"], v["end"]]
            return [rec]
        rec["_size"] = size
        try:
            if t == "rectanglelabels":
                if float(v.get("rotation") or 0) != 0:
                    rep.error("rotated boxes are not supported", loc, "value.rotation", "draw the box unrotated")
                    return []
                rec["_pct_box"] = [float(v[k]) for k in ("x", "y", "width", "height")]
            elif t == "polygonlabels":
                pts = v.get("points")
                if not isinstance(pts, list) or len(pts) < 3:
                    rep.error("a polygon needs at least 3 points", loc, "value.points", "draw at least 3 points")
                    return []
                rec["_pct_poly"] = [[float(p[0]), float(p[1])] for p in pts]
            else:
                rec["_pct_point"] = [float(v["x"]), float(v["y"])]
        except (KeyError, TypeError, ValueError, IndexError):
            rep.error(f"{t} value is missing a coordinate or has a non-number", loc, "value",
                      "give x, y, width, height (or points) as numbers in percent")
            return []
        return [rec]
    if t == "choices":
        ch = v.get("choices")
        feat = r.get("from_name")
        if not isinstance(ch, list) or not ch or not all(isinstance(c, str) for c in ch) or not isinstance(feat, str):
            rep.error("choices must be a list of option names", loc, "value.choices", "choose at least one option")
            return []
        return [{**rec, "feature": feat, "answer": c, "_choices": len(ch), "location": f"{loc}#{m}" if len(ch) > 1 else loc}
                for m, c in enumerate(ch)]
    if t in ("relation",):
        return []
    rep.error(f"result type {t!r} is not supported", loc, "type",
              "use rectanglelabels, polygonlabels, keypointlabels, choices or labels (NER)")
    return []
