"""Test worlds for the query and slices tests: a workspace plus a plain-Python model of the same data.

``indoor_world`` loads ../shared/data/indoor-85 (parsed here, independently of slicewise.io) and adds
generated metadata, tags and splits; ``generated_world`` builds random rows. ``install_fake_metrics``
replaces the metrics engine's table functions with tables of known values (kept in ``world.metrics``),
so metric filters are checked against values the test chose, whatever the engine computes.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

HOSTILE = "o'brien\"; DROP TABLE data_rows; --"
METRIC_COLS = ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "iou")


@dataclass
class Row:
    id: int
    key: str
    split: str
    dataset: str
    md: dict[str, Any]
    tags: set[str]
    gt: Counter
    pred: list[tuple[str, float]]
    created_at: datetime | None = None


@dataclass
class World:
    ws: Any
    run: Any
    rows: dict[int, Row]
    run_ids: set[int]
    metrics: dict[float, dict[int, dict[str, Any]]] = field(default_factory=dict)  # c -> row -> values
    fmetrics: dict[float, dict[tuple[int, str], dict[str, Any]]] = field(default_factory=dict)
    ensure: Any = None  # ensure(c): make the fake metric values at confidence c
    draws: int = 0  # how many times the fake values were drawn afresh (reset_fake_metrics)

    def metric(self, row_id: int, name: str, feature: str | None = None, c: float = 0.5) -> Any:
        self.ensure(c)
        if feature is None:
            return self.metrics[c][row_id][name]
        return self.fmetrics[c].get((row_id, feature), {}).get(name)

    def run_rows(self) -> list[Row]:
        return [r for i, r in sorted(self.rows.items()) if i in self.run_ids]


def _indoor_files(shared: Path) -> list[tuple[str, list[tuple[str, list[float]]], list[tuple[str, float, list[float]]]]]:
    base = shared / "indoor-85" / "input"
    out = []
    for gt_file in sorted((base / "ground-truth").glob("*.txt")):
        gts = []
        for line in gt_file.read_text().splitlines():
            p = line.split()
            if len(p) == 5:
                gts.append((p[0], [float(v) for v in p[1:]]))
        preds = []
        det = base / "detection-results" / gt_file.name
        if det.exists():
            for line in det.read_text().splitlines():
                p = line.split()
                if len(p) == 6:
                    preds.append((p[0], float(p[1]), [float(v) for v in p[2:]]))
        out.append((gt_file.stem, gts, preds))
    return out


def indoor_world(ws: Any, shared: Path) -> World:
    files = _indoor_files(shared)
    classes = sorted({c for _, g, p in files for c, *_ in g + p})
    for c in classes:
        ws.create_feature(c, "bbox")
    ws.define_metadata("weather", "enum", ["sunny", "cloudy", "rain"])
    rows_in = []
    for i, (key, _, _) in enumerate(files):
        md: dict[str, Any] = {"camera": f"camera-0{i % 4}", "weather": ["sunny", "cloudy", "rain"][i % 3],
                              "captured": datetime(2024, 1, 1) + timedelta(days=3 * i)}
        if i % 7:
            md["brightness"] = (i * 37 % 100) / 10
        if i == 5:
            md["camera"] = HOSTILE
        rows_in.append({"global_key": key, "row_data": f"{key}.jpg", "width": 640, "height": 480,
                        "split": ["train", "valid", "test", "none"][i % 4], "metadata": md,
                        "tags": (["reviewed"] if i % 3 == 0 else []) + (["re-label"] if i % 5 == 0 else [])})
    ws.add_data_rows("indoor", rows_in)
    ann = [{"data_row": k, "feature": c, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]} for k, g, _ in files
           for c, b in g if b[2] > b[0] and b[3] > b[1]]
    ws.add_annotations(ann)
    run = ws.create_run("yolo", "indoor")
    preds = [{"data_row": k, "feature": c, "confidence": s, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
             for k, _, p in files for c, s, b in p if b[2] > b[0] and b[3] > b[1]]
    ws.add_predictions(run, preds)
    ws.add_run_rows(run, [k for k, _, _ in files])
    return _model(ws, run)


def generated_world(ws: Any, n: int = 300, seed: int = 7) -> World:
    rng = random.Random(seed)
    feats = ["cat", "dog", "person", "traffic light"]
    for f in feats:
        ws.create_feature(f, "bbox")
    rows_in, ann, preds = [], [], []
    for i in range(n):
        key = f"g{i:04d}"
        md: dict[str, Any] = {}
        if rng.random() < 0.9:
            md["camera"] = rng.choice(["camera-01", "camera-02", "cam 3", HOSTILE])
        if rng.random() < 0.8:
            md["speed"] = round(rng.uniform(-5, 50), 2)
        rows_in.append({"global_key": key, "row_data": f"{key}.jpg", "width": 100, "height": 100,
                        "split": rng.choice(["train", "valid", "test", "none"]), "metadata": md,
                        "tags": rng.sample(["reviewed", "night", "re-label"], rng.randint(0, 2))})
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            ann.append({"data_row": key, "feature": rng.choice(feats), "bbox": [1, 1, 10 + rng.random() * 50, 10]})
        for _ in range(rng.choice([0, 1, 2, 4])):
            preds.append({"data_row": key, "feature": rng.choice(feats), "bbox": [2, 2, 20, 10],
                          "confidence": round(rng.random(), 3)})
    ws.add_data_rows("gen", rows_in[: n // 2])
    ws.add_data_rows("gen2", rows_in[n // 2:])
    ws.add_annotations(ann)
    run = ws.create_run("m", "r1")
    ws.add_predictions(run, preds)
    ws.add_run_rows(run, [r["global_key"] for r in rows_in if int(r["global_key"][1:]) % 10])  # 10% not in run
    return _model(ws, run)


def _model(ws: Any, run: Any) -> World:
    """The plain-Python model, read back with simple per-table SELECTs (no filtering logic)."""
    cur = ws.store.cursor()
    dsn = dict(cur.execute("SELECT id, name FROM datasets").fetchall())
    fname = dict(cur.execute("SELECT id, name FROM features").fetchall())
    rows = {}
    for rid, key, ds, split, created in cur.execute(
            "SELECT id, global_key, dataset_id, split, created_at FROM data_rows").fetchall():
        rows[rid] = Row(rid, key, split, dsn[ds], {}, set(), Counter(), [], created)
    for rid, f, s, n, t in cur.execute("SELECT data_row_id, field, value_string, value_number, value_datetime "
                                       "FROM row_metadata").fetchall():
        rows[rid].md[f] = s if s is not None else (n if n is not None else t)
    for rid, tag in cur.execute("SELECT data_row_id, tag FROM tags").fetchall():
        rows[rid].tags.add(tag)
    for rid, fid in cur.execute("SELECT data_row_id, feature_id FROM annotations").fetchall():
        rows[rid].gt[fname[fid]] += 1
    for rid, fid, conf in cur.execute("SELECT data_row_id, feature_id, confidence FROM predictions WHERE run_id = ?",
                                      [run.id]).fetchall():
        rows[rid].pred.append((fname[fid], conf))
    run_ids = {r[0] for r in cur.execute("SELECT data_row_id FROM run_rows WHERE run_id = ?", [run.id]).fetchall()}
    return World(ws, run, rows, run_ids)


_FAKES: dict[str, dict[str, Any]] = {}  # workspace path -> that world's fake functions


def install_fake_metrics(monkeypatch: Any, world: World, seed: int = 3) -> None:
    """Replace row_metrics_table / row_feature_metrics_table / feature_metrics with tables of chosen values
    (per workspace, so several worlds can be alive at once)."""
    from slicewise import metrics

    ws = world.ws
    fid = dict(ws.sql("SELECT name, id FROM features").fetchall())

    def values(c: float) -> None:
        if c in world.metrics:
            return
        rng = random.Random(f"{seed}-{c}")
        per_row: dict[int, dict[str, Any]] = {}
        per_feat: dict[tuple[int, str], dict[str, Any]] = {}
        for r in world.run_rows():
            feats = sorted(set(r.gt) | {f for f, s in r.pred if s >= c})
            tot = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
            for f in feats:
                tp, fp, fn = rng.randint(0, 2), rng.randint(0, 2), rng.randint(0, 2)
                p = tp / (tp + fp) if tp + fp else None
                rc = tp / (tp + fn) if tp + fn else None
                f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
                v = {"tp": tp, "fp": fp, "fn": fn, "tn": 0, "precision": p, "recall": rc, "f1": f1,
                     "iou": round(rng.random(), 3) if rng.random() < 0.9 else None}
                per_feat[(r.id, f)] = v
                for k in tot:
                    tot[k] += v[k]
            tot["tn"] = rng.randint(0, 3)
            row = dict(tot)
            for k in ("precision", "recall", "f1", "iou"):
                vals = [per_feat[(r.id, f)][k] for f in feats if per_feat[(r.id, f)][k] is not None]
                row[k] = sum(vals) / len(vals) if vals else None
            per_row[r.id] = row
        world.metrics[c] = per_row
        world.fmetrics[c] = per_feat

    world.ensure = values

    def make(c: float, per_feature: bool) -> str:
        values(c)
        name = f"fake_{'rfm' if per_feature else 'rm'}_{int(round(c * 1000))}"
        if ws.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0]:
            return name
        if per_feature:
            items = sorted(world.fmetrics[c].items())
            cols: dict[str, Any] = {"data_row_id": pa.array([k[0] for k, _ in items], pa.int64()),
                                    "feature_id": pa.array([fid[k[1]] for k, _ in items], pa.int32())}
            src = [v for _, v in items]
        else:
            items2 = sorted(world.metrics[c].items())
            cols = {"data_row_id": pa.array([k for k, _ in items2], pa.int64())}
            src = [v for _, v in items2]
        for m in METRIC_COLS:
            cols[m] = pa.array([v[m] for v in src], pa.int32() if m in ("tp", "fp", "fn", "tn") else pa.float64())
        with ws.store.transaction() as con:
            con.register("_fake", pa.table(cols))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _fake")
            con.unregister("_fake")
        return name

    def row_metrics_table(ws_: Any, run: Any, confidence: float, iou: float) -> str:
        return make(float(confidence), False)

    def row_feature_metrics_table(ws_: Any, run: Any, confidence: float, iou: float) -> str:
        return make(float(confidence), True)

    def row_metrics_source(ws_: Any, run: Any, confidence: float, iou: float) -> Any:
        c = float(confidence)
        values(c)

        def columns() -> dict[str, np.ndarray]:
            items = sorted(world.metrics[c].items())
            cols = {"data_row_id": np.array([k for k, _ in items], np.int64)}
            for m in METRIC_COLS:
                if m in ("tp", "fp", "fn", "tn"):
                    cols[m] = np.array([v[m] for _, v in items], np.int32)
                else:
                    cols[m] = np.array([np.nan if v[m] is None else v[m] for _, v in items], np.float64)
            return cols
        return f"fake_{int(round(c * 1000))}_{world.draws}", columns

    def feature_metrics(ws_: Any, run: Any, confidence: float, iou: float, rows: Any = None,
                        warn: bool = True) -> Any:
        from slicewise.metrics import FeatureMetrics, FeatureRow, JobStatus

        values(float(confidence))
        keep = None
        if rows is not None:
            keep = {r[0] for r in ws.sql(rows[0], rows[1]).fetchall()}
        agg: dict[str, dict[str, int]] = {}
        for (rid, f), v in world.fmetrics[float(confidence)].items():
            if keep is None or rid in keep:
                a = agg.setdefault(f, {"tp": 0, "fp": 0, "fn": 0, "n": 0})
                for k in ("tp", "fp", "fn"):
                    a[k] += v[k]
                a["n"] += 1
        out = []
        for f, a in sorted(agg.items()):
            p = a["tp"] / (a["tp"] + a["fp"]) if a["tp"] + a["fp"] else None
            r = a["tp"] / (a["tp"] + a["fn"]) if a["tp"] + a["fn"] else None
            out.append(FeatureRow(fid[f], f, "bbox", a["tp"], a["fp"], a["fn"], p, r, None, None, a["n"],
                                  a["tp"] + a["fp"], a["tp"] + a["fn"]))
        n = len(world.run_ids)
        return FeatureMetrics(tuple(out), float(confidence), float(iou), JobStatus(world.run.id, "ready", n, n))

    def confusion_matrix(ws_: Any, run: Any, confidence: float, iou: float, rows: Any = None,
                         warn: bool = True) -> dict[str, Any]:
        n = len({r[0] for r in ws.sql(rows[0], rows[1]).fetchall()}) if rows is not None else -1
        return {"rows_seen": n}

    def grids(ws_: Any, run: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
        g = tuple(round(i / 10, 1) for i in range(11))
        return g, g

    fakes = {"row_metrics_table": row_metrics_table, "row_feature_metrics_table": row_feature_metrics_table,
             "row_metrics_source": row_metrics_source,
             "feature_metrics": feature_metrics, "confusion_matrix": confusion_matrix, "grids": grids}
    _FAKES[str(ws.path)] = fakes
    for name in fakes:
        monkeypatch.setattr(metrics, name, _dispatch(name), raising=False)


def _dispatch(name: str) -> Any:
    def fn(ws_: Any, *args: Any, **kw: Any) -> Any:
        return _FAKES[str(ws_.path)][name](ws_, *args, **kw)
    return fn


def reset_fake_metrics(world: World) -> None:
    """Forget the fake values and drop their tables (as a recompute would)."""
    ws = world.ws
    names = [r[0] for r in ws.sql("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'fake_%'"
                                  ).fetchall()]
    with ws.store.transaction() as con:
        for n in names:
            con.execute(f"DROP TABLE {n}")
    world.metrics.clear()
    world.fmetrics.clear()
    world.draws += 1
