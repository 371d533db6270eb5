"""Build the demo workspace through the public SDK, the same calls a user makes.

Two datasets, each with two model runs whose predictions come from models trained during the build:
``digits`` (scikit-learn's digits, a radio feature ``digit``, runs ``digits-classifier/logreg-v1`` and
``logreg-v2-more-scan-c``, trained with every train digit scanned again by the weak scanner C) and ``shapes``
(rendered scenes, box features circle/square/triangle/star, runs ``shapes-detector/proposals-trees-v1`` and
``proposals-trees-v2-more-night``, trained with extra night scenes): compare them with ``slicewise diff``. Images are PNG files in ``<stem>-media/`` next to the
workspace file, registered by paths relative to the workspace's folder (the server resolves them
there), so the folder can be moved as a whole.

Re-running is idempotent: a workspace that already holds this demo (same version, seed and row
counts) is reused as is; one holding an older or partial demo, or nothing, is rebuilt from scratch;
one holding anything else is refused, so a user's workspace is never overwritten.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from slicewise.demo import digits as dg
from slicewise.demo import pool as pl
from slicewise.demo import scenes as sc
from slicewise.demo.detector import _LEVELS, NIGHT_LEVELS, Detector, describe, is_dark
from slicewise.errors import ConflictError, Problem, ValidationError
from slicewise.workspace import open as open_workspace

DEMO_VERSION = 4  # bump when the data or the models change: older demo builds are then rebuilt
DIGITS_RUN = "digits-classifier/logreg-v1"
SHAPES_RUN = "shapes-detector/proposals-trees-v1"
# the second run of each dataset (compare it with the first: `slicewise diff`, the Compare page)
DIGITS_RUN_2 = "digits-classifier/logreg-v2-more-scan-c"
SHAPES_RUN_2 = "shapes-detector/proposals-trees-v2-more-night"
RUNS = (DIGITS_RUN, SHAPES_RUN, DIGITS_RUN_2, SHAPES_RUN_2)
NIGHT_EXTRA = 0.15  # extra night scenes the second detector trains on, as a share of the dataset's scenes
DATASETS = ("digits", "shapes", *pl.POOL_DATASETS)
DEFAULT_SHAPES = 300
_OWNER_FILE = ".slicewise-demo"  # in the media folder: this workspace and folder were made by build_demo

Progress = Callable[[str], None]


@dataclass
class DemoSummary:
    """What the build made, with the models' own figures (measured on the demo's data at build time)."""

    workspace: Path
    media: Path
    reused: bool
    seconds: float
    counts: dict[str, int]
    runs: list[str]
    digits_accuracy: dict[str, float] = field(default_factory=dict)  # per split
    shapes_predictions: int = 0
    metrics: dict[str, str] = field(default_factory=dict)  # run -> job state, or why there is none
    headlines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # see :func:`headlines`
    breakdown: list[dict[str, Any]] = field(default_factory=list)  # see :func:`breakdown`
    hints: list[str] = field(default_factory=list)  # see :func:`hints`
    embeddings: str = ""  # the image embedding job's state


def media_dir(workspace: Path) -> Path:
    """Where the demo writes its images: ``<stem>-media/`` beside the workspace file."""
    return workspace.parent / f"{workspace.stem}-media"


def build_demo(path: str | Path, *, rows: int | None = None, seed: int = 0, rebuild: bool = False,
               compute: bool = True, on_progress: Progress | None = None, pool: int | None = None,
               embed: bool = True) -> DemoSummary:
    """Build (or reuse) the demo workspace at ``path``; ``rows`` caps each dataset (digits at most 1,797).

    ``pool``: rows of each unlabeled pool dataset (default 1,000 digits and 500 scenes, or ``rows // 2``
    each when ``rows`` is given); ``embed`` computes the image embeddings (space ``image``).
    ``compute`` runs :func:`slicewise.metrics.compute_metrics` on both runs when that module exists.
    """
    say = on_progress or (lambda _m: None)
    t0 = time.perf_counter()
    path = Path(path).resolve()
    if rows is not None and rows < 10:
        raise ValidationError(Problem(f"rows={rows} is too few for a demo", field="rows",
                                      fix="use 10 rows or more (default: all 1,797 digits and 300 scenes)"))
    n_digits = min(rows or 1797, 1797)
    n_shapes = rows or DEFAULT_SHAPES
    if pool is not None:
        n_pool_d = n_pool_s = max(int(pool), 0)
    elif rows is not None:
        n_pool_d = n_pool_s = rows // 2
    else:
        n_pool_d, n_pool_s = pl.DEFAULT_POOL_DIGITS, pl.DEFAULT_POOL_SCENES
    marker = {"version": DEMO_VERSION, "seed": seed, "digits": n_digits, "shapes": n_shapes,
              "pool": [n_pool_d, n_pool_s]}
    state = _state(path, marker)
    if state == "current" and not rebuild:
        say("the workspace already holds this demo: reusing it")
        with open_workspace(path) as ws:
            summary = _summary(ws, path, reused=True, t0=t0)
            summary.digits_accuracy = ws.run(DIGITS_RUN).config.get("accuracy", {})
            summary.shapes_predictions = int(ws.sql("SELECT count(*) FROM predictions WHERE run_id = ?",
                                                    [ws.run(SHAPES_RUN).id]).fetchone()[0])
            if embed:
                summary.embeddings = pl.embed_images(ws, path.parent, say)  # resumes an interrupted build
            if compute:
                _analyse(ws, summary, say)
        summary.seconds = time.perf_counter() - t0
        return summary
    if state == "foreign":
        raise ConflictError(f"this workspace (or its media folder {media_dir(path).name}/) holds data that is not "
                            "the demo's, and the demo never overwrites it", where=str(path),
                            fix="give `slicewise demo` another --workspace path (e.g. demo-workspace/demo.duckdb)")
    if path.exists():
        say("removing the previous demo build")
        _remove(path)
    media = media_dir(path)
    (media / "digits").mkdir(parents=True, exist_ok=True)
    (media / "shapes").mkdir(parents=True, exist_ok=True)
    (media / _OWNER_FILE).write_text(json.dumps(marker) + "\n")  # first: a partial build is still ours
    with open_workspace(path) as ws:
        acc = _build_digits(ws, media / "digits", n_digits, seed, marker, say)
        n_pred = _build_shapes(ws, media / "shapes", n_shapes, seed, marker, say)
        pl.build_pool(ws, media, n_pool_d, n_pool_s, seed, _relative, say)
        embedded = pl.embed_images(ws, path.parent, say) if embed else "not computed"
        summary = _summary(ws, path, reused=False, t0=t0)
        summary.embeddings = embedded
        summary.digits_accuracy, summary.shapes_predictions = acc, n_pred
        if compute:
            _analyse(ws, summary, say)
    summary.seconds = time.perf_counter() - t0
    return summary


# -- the state of an existing workspace -------------------------------------------------------
def _state(path: Path, marker: dict[str, Any]) -> str:
    """``new`` (no file), ``current`` (this demo, complete), ``stale`` (empty, or a partial or other build
    of the demo: safe to rebuild) or ``foreign`` (anything else: never touched).

    A workspace counts as the demo's only when the demo's own marker file is in its media folder, so a
    user's workspace that happens to have a dataset named ``digits`` is never deleted."""
    media = media_dir(path)
    owned = (media / _OWNER_FILE).is_file()
    media_free = owned or not media.exists() or not any(media.iterdir())
    if not path.exists():
        return "new" if media_free else "foreign"
    with open_workspace(path) as ws:
        names = {d.name for d in ws.datasets()}
        runs = {r.ref: r for r in ws.runs()}
        models = {m.name for m in ws.models()}
        n_rows = ws.counts()["data_rows"]
        if not names and not runs and not models and not n_rows:
            return "stale" if media_free else "foreign"
        if not owned or not names <= set(DATASETS) or not set(runs) <= set(RUNS) \
                or not models <= {DIGITS_RUN.split("/")[0], SHAPES_RUN.split("/")[0]}:
            return "foreign"
        complete = set(runs) == set(RUNS) and all(
            r.config.get("demo") == marker and r.config.get("complete") for r in runs.values())
        if complete and n_rows == marker["digits"] + marker["shapes"] + sum(marker["pool"]):
            files = [path.parent / r[0] for r in ws.sql("SELECT row_data FROM data_rows").fetchall()]
            return "current" if all(f.is_file() for f in files) else "stale"  # images deleted: rebuild
        return "stale"


def _relative(file: Path, ws: Any) -> str:
    return file.relative_to(Path(ws.path).resolve().parent).as_posix()


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(media_dir(path), ignore_errors=True)


# -- digits ------------------------------------------------------------------------------------
def _build_digits(ws: Any, folder: Path, n: int, seed: int, marker: dict[str, Any], say: Progress) -> dict[str, float]:
    say(f"digits: scanning {n} images and training a classifier")
    d = dg.make_digits(n, seed)
    pred = dg.train_and_predict(d, seed)
    for key, img in zip(d.keys, d.images, strict=True):
        dg.write_png(img, folder / f"{key}.png")
    say("digits: adding data rows, labels and predictions")
    ws.create_dataset("digits", "scikit-learn's handwritten digits (8x8, shown at 128x128) from three scanners; "
                      "about 2% of the labels are wrong, as in real annotation", exist_ok=True)
    ws.define_metadata("scanner", "enum", list(dg.SCANNERS))
    for f in ("ink_density", "stroke_width", "slant"):
        ws.define_metadata(f, "number")
    ws.add_data_rows("digits", [
        {"global_key": k, "row_data": _relative(folder / f"{k}.png", ws), "width": 8 * dg.SCALE, "height": 8 * dg.SCALE,
         "split": s, "metadata": md} for k, s, md in zip(d.keys, d.splits, d.metadata, strict=True)])
    ws.create_feature("digit", "radio", dg.OPTIONS, exist_ok=True)
    ws.add_annotations([{"data_row": k, "feature": "digit", "answer": str(y)}
                        for k, y in zip(d.keys, d.labels, strict=True)], source="demo")
    model, name = DIGITS_RUN.split("/")
    config = {"model": "sklearn LogisticRegression(C=0.5) on the 64 pixels", "trained_on": "train split",
              "demo": marker}
    run = ws.create_run(model, name, config)
    ws.add_predictions(run, [
        {"data_row": k, "feature": "digit", "answer": str(int(p)), "confidence": float(pr[p]),
         "probabilities": [float(v) for v in pr]}
        for k, p, pr in zip(d.keys, pred.labels, pred.probabilities, strict=True)], source="demo")
    ws.update_run_config(run, accuracy={k: round(v, 4) for k, v in pred.accuracy.items()}, complete=True)
    say("digits: training the second classifier (with more scan-C data)")
    pred2 = dg.train_and_predict_more_scan_c(d, seed)
    model, name = DIGITS_RUN_2.split("/")
    run2 = ws.create_run(model, name, {"model": "sklearn LogisticRegression(C=0.5) on the 64 pixels",
                                       "trained_on": "train split + each train digit scanned again by scan-C",
                                       "demo": marker})
    ws.add_predictions(run2, [
        {"data_row": k, "feature": "digit", "answer": str(int(p)), "confidence": float(pr[p]),
         "probabilities": [float(v) for v in pr]}
        for k, p, pr in zip(d.keys, pred2.labels, pred2.probabilities, strict=True)], source="demo")
    ws.update_run_config(run2, accuracy={k: round(v, 4) for k, v in pred2.accuracy.items()}, complete=True)
    return pred.accuracy


# -- shapes ------------------------------------------------------------------------------------
def _build_shapes(ws: Any, folder: Path, n: int, seed: int, marker: dict[str, Any], say: Progress) -> int:
    say(f"shapes: rendering {n} scenes")
    scenes = [sc.render_scene(i, seed) for i in range(n)]
    keys = [f"scene-{i:04d}" for i in range(n)]
    rng = np.random.default_rng([seed, 0x5A1])
    splits = ["train" if u < 0.7 else "valid" for u in rng.uniform(size=n)]
    if "train" not in splits:
        splits[0] = "train"
    base = datetime(2024, 5, 1)
    rows = []
    pixels = []
    for i, (k, s, split) in enumerate(zip(keys, scenes, splits, strict=True)):
        file = folder / f"{k}.jpg"
        s.image.save(file, quality=90)  # what a camera writes; the detector reads back these very pixels
        with Image.open(file) as im:
            pixels.append(np.asarray(im.convert("RGB")))
        hour = {"day": 8 + i % 10, "dusk": 18 + i % 3, "night": (21 + i % 8) % 24}[s.metadata["lighting"]]
        taken = base + timedelta(days=i % 28, hours=hour, minutes=(7 * i) % 60)
        rows.append({"global_key": k, "row_data": _relative(file, ws), "width": sc.WIDTH, "height": sc.HEIGHT,
                     "split": split, "metadata": {**s.metadata, "captured_at": taken}})
    say("shapes: training the detector on the train split")
    described = [describe(p) for p in pixels]
    train = [i for i, sp in enumerate(splits) if sp == "train"]
    labels = [sc.annotate(s, i, seed) for i, s in enumerate(scenes)]  # with the annotators' few slips
    det = Detector(sc.CLASSES, seed).fit([described[i] for i in train], [np.array(labels[i][1]) for i in train],
                                         [labels[i][0] for i in train])
    found = det.detect(described)
    say("shapes: adding data rows, labels and predictions")
    ws.create_dataset("shapes", "scenes rendered by slicewise: circles, squares, triangles and stars under "
                      "day/dusk/night light, blur and three cameras; a few boxes have the wrong class or are "
                      "missing, as in real annotation", exist_ok=True)
    ws.define_metadata("lighting", "enum", list(sc.LIGHTING))
    ws.define_metadata("blur", "enum", list(sc.BLUR))
    ws.define_metadata("camera", "enum", list(sc.CAMERAS))
    for f in ("objects", "brightness", "contrast"):
        ws.define_metadata(f, "number")
    ws.define_metadata("captured_at", "datetime")
    ws.add_data_rows("shapes", rows)
    for cls in sc.CLASSES:
        ws.create_feature(cls, "bbox", exist_ok=True)
    ws.add_annotations([{"data_row": k, "feature": c, "bbox": list(b)}
                        for k, (cs, bs) in zip(keys, labels, strict=True) for c, b in zip(cs, bs, strict=True)],
                       source="demo")
    model, name = SHAPES_RUN.split("/")
    config = {"model": "segmentation proposals + sklearn ExtraTrees + NMS", "trained_on": "train split",
              "demo": marker}
    run = ws.create_run(model, name, config)
    preds = [{"data_row": k, "feature": d.cls, "bbox": list(d.box), "confidence": round(d.score, 6)}
             for k, ds in zip(keys, found, strict=True) for d in ds]
    ws.add_predictions(run, preds, source="demo")
    ws.add_run_rows(run, keys)  # scenes with no detection are still rows of the run (their objects are misses)
    ws.update_run_config(run, complete=True)
    say("shapes: training the second detector (night mode, more night scenes)")
    # v2 segments dark images at lower contrast levels too (the detector's night mode) and trains on extra
    # night scenes; day and dusk images are segmented as v1 does, so it differs there only by its training
    described = [describe(p, NIGHT_LEVELS) if is_dark(p) else d for p, d in zip(pixels, described, strict=True)]
    extra = _night_scenes(n, seed, max(4, round(n * NIGHT_EXTRA)))
    det2 = Detector(sc.CLASSES, seed + 1).fit([described[i] for i in train] + [e[0] for e in extra],
                                              [np.array(labels[i][1]) for i in train] + [e[2] for e in extra],
                                              [labels[i][0] for i in train] + [e[1] for e in extra])
    found2 = det2.detect(described)
    model, name = SHAPES_RUN_2.split("/")
    run2 = ws.create_run(model, name, {"model": "segmentation proposals (night mode: lower contrast levels on dark "
                                                "images) + sklearn ExtraTrees + NMS",
                                       "trained_on": f"train split + {len(extra)} extra night scenes", "demo": marker})
    ws.add_predictions(run2, [{"data_row": k, "feature": d.cls, "bbox": list(d.box), "confidence": round(d.score, 6)}
                              for k, ds in zip(keys, found2, strict=True) for d in ds], source="demo")
    ws.add_run_rows(run2, keys)
    ws.update_run_config(run2, complete=True)
    return len(preds)


def _night_scenes(n: int, seed: int, count: int) -> list[tuple[Any, list[str], np.ndarray]]:
    """``count`` night scenes beyond the dataset's (scene numbers from 10 * n + 1000 on), as the detector
    reads them (a JPEG round trip), with their annotations: (proposals, classes, boxes)."""
    import io

    out: list[tuple[Any, list[str], np.ndarray]] = []
    i = 10 * n + 1000
    while len(out) < count:
        s = sc.render_scene(i, seed)
        if s.metadata["lighting"] == "night":
            buf = io.BytesIO()
            s.image.save(buf, "JPEG", quality=90)
            with Image.open(io.BytesIO(buf.getvalue())) as im:
                px = np.asarray(im.convert("RGB"))
            cls, boxes = sc.annotate(s, i, seed)
            out.append((describe(px, NIGHT_LEVELS if is_dark(px) else _LEVELS), cls, np.array(boxes)))
        i += 1
    return out


# -- after the build ---------------------------------------------------------------------------
def _summary(ws: Any, path: Path, *, reused: bool, t0: float) -> DemoSummary:
    counts = ws.counts()
    for d in ws.datasets():
        counts[f"data_rows_{d.name}"] = int(ws.sql("SELECT count(*) FROM data_rows WHERE dataset_id = ?",
                                                   [d.id]).fetchone()[0])
    return DemoSummary(path, media_dir(path), reused, time.perf_counter() - t0, counts, [r.ref for r in ws.runs()])


def _analyse(ws: Any, summary: DemoSummary, say: Any) -> None:
    """Compute the runs' metrics and fill in the summary's headlines, breakdown and hints."""
    summary.metrics = _compute(ws, say)
    summary.headlines, summary.breakdown = headlines(ws), breakdown(ws)
    summary.hints = hints(ws, summary.breakdown)


def _compute(ws: Any, say: Progress) -> dict[str, str]:
    """Compute each run's metrics when slicewise.metrics is there; report why not otherwise."""
    try:
        from slicewise.metrics import compute_metrics
    except ImportError:
        return {r.ref: "not computed: slicewise.metrics is not available in this build" for r in ws.runs()}
    from slicewise.errors import SlicewiseError

    out = {}
    for r in ws.runs():
        say(f"computing metrics for {r.ref}")
        try:
            status = compute_metrics(ws, r)
            out[r.ref] = str(getattr(status, "state", status))
            if out[r.ref] == "ready":  # the first view's caches, as `slicewise metrics compute` leaves them
                from slicewise.query import warm

                warm(ws, r)
        except SlicewiseError as exc:
            out[r.ref] = f"failed: {exc}"
    return out


def headlines(ws: Any, confidence: float = 0.5, iou: float = 0.5) -> dict[str, list[dict[str, Any]]]:
    """Per-feature metrics of each run at the grid confidence nearest ``confidence`` (empty when the
    metrics are not computed or slicewise.metrics is absent)."""
    try:
        from slicewise.metrics import feature_metrics, grids, job_status
    except ImportError:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ws.runs():
        if str(getattr(job_status(ws, r), "state", "")) != "ready":
            continue
        conf_grid, _ = grids(ws, r)
        c = min(conf_grid, key=lambda v: abs(v - confidence))
        out[r.ref] = [{**f.to_dict(), "confidence": c, "iou_threshold": iou} for f in feature_metrics(ws, r, c, iou)]
    return out


#: the metadata fields whose values the demo's models are sensitive to, per run
SENSITIVE = {DIGITS_RUN: ("scanner",), SHAPES_RUN: ("lighting", "blur", "camera"), DIGITS_RUN_2: ("scanner",),
             SHAPES_RUN_2: ("lighting", "blur", "camera")}


def breakdown(ws: Any, confidence: float = 0.5, iou: float = 0.5) -> list[dict[str, Any]]:
    """Micro-averaged precision / recall / F1 of each demo run per value of the metadata fields its model
    is sensitive to, computed by slicewise's own query and metrics (empty when they are absent), with
    the filter text that shows those rows in the app."""
    try:
        from slicewise.metrics import feature_metrics, grids, job_status
        from slicewise.metrics.reduce import prf
        from slicewise.query import row_ids_sql
    except ImportError:
        return []
    out = []
    fields = ws.metadata_fields()
    for ref, names in SENSITIVE.items():
        run = ws.run(ref)
        if str(getattr(job_status(ws, run), "state", "")) != "ready":
            continue
        c = min(grids(ws, run)[0], key=lambda v: abs(v - confidence))
        for name in names:
            for value in fields.get(name, {}).get("options") or []:
                text = f'metadata.{name} = "{value}"'
                feats = feature_metrics(ws, run, c, iou, rows=row_ids_sql(ws, run, text, c, iou))
                tp, fp, fn = (sum(getattr(f, k) for f in feats) for k in ("tp", "fp", "fn"))
                p, r, f1 = prf(tp, fp, fn)
                out.append({"run": ref, "field": name, "value": value, "filter": text, "tp": tp, "fp": fp, "fn": fn,
                            "precision": p, "recall": r, "f1": f1, "confidence": c, "iou_threshold": iou})
    return out


def hints(ws: Any, items: list[dict[str, Any]] | None = None) -> list[str]:
    """What to look at first in the app, from slicewise's own slices and the :func:`breakdown` ``items``."""
    out = []
    try:
        from slicewise.slices import auto_slices

        s = next(a for a in auto_slices(ws, ws.run(DIGITS_RUN)) if a.auto_key == "candidate-mislabels")
        if s.count:
            out.append(f"{DIGITS_RUN}: the auto slice \"{s.name}\" holds {s.count} rows where a confident "
                       "prediction disagrees with the label; about 2% of the digit labels are wrong on purpose")
    except Exception:  # noqa: BLE001 - a hint is optional (slices may be absent): never fail the demo for it
        pass
    by = {(b["run"], b["field"], b["value"]): b for b in items or []}
    day, night = by.get((SHAPES_RUN, "lighting", "day")), by.get((SHAPES_RUN, "lighting", "night"))
    if day and night and day["recall"] is not None and night["recall"] is not None:
        out.append(f"{SHAPES_RUN}: filter `{night['filter']}`: recall {night['recall']:.0%} at night "
                   f"against {day['recall']:.0%} by day; then sort by recall, ascending")
    for r1, r2, name in ((SHAPES_RUN, SHAPES_RUN_2, "lighting"), (DIGITS_RUN, DIGITS_RUN_2, "scanner")):
        worst = min((b for b in items or [] if b["run"] == r1 and b["field"] == name and b["recall"] is not None),
                    key=lambda b: b["recall"], default=None)
        if worst is not None and (got := by.get((r2, name, worst["value"]))) and got["recall"] is not None:
            out.append(f"Compare {r2} with {r1} (`slicewise diff {r1} {r2}`, the Compare tab): recall where {name} is "
                       f"{worst['value']} {worst['recall']:.0%} -> {got['recall']:.0%}")
    try:
        from slicewise.embeddings import spaces

        if any(s.name == pl.SPACE for s in spaces(ws)):
            out.append("Find similar: select a few night misses of the detector, search the catalog with "
                       "`annotation is none`: the unlabeled pool's night scenes come first; save it as a slice")
    except Exception:  # noqa: BLE001 - a hint is optional
        pass
    return out
