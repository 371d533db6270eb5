"""``slicewise metrics ...``: compute, inspect and export a run's metrics (thin over slicewise.metrics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    Table,
    WorkspaceOpt,
    console,
    esc,
    open_workspace,
    print_job_state,
    progress,
    typed_path,
)

metrics_app = typer.Typer(help="Compute and inspect model-run metrics: per-class tables, confusion matrix, "
                               "PR curves, COCO mAP, custom metrics.", no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help="The run: model/run, its name, or its id")]
ConfOpt = Annotated[float, typer.Option("--confidence", "-c", help="Confidence threshold (a value of the grid)")]
IouOpt = Annotated[float, typer.Option("--iou", "-t", help="IoU threshold")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def register(app: typer.Typer) -> None:
    app.add_typer(metrics_app, name="metrics")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


@metrics_app.command("compute")
def compute(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
            full: Annotated[bool, typer.Option(help="Recompute every row, not only the stale ones")] = False) -> None:
    """Match the run's predictions to the labels at every confidence threshold and store the records."""
    from slicewise.metrics import compute_metrics

    with open_workspace(workspace) as ws, progress("matching rows") as advance:
        last = [0]

        def on_progress(done: int, total: int) -> None:
            advance(done - last[0], total=total)
            last[0] = done

        st = compute_metrics(ws, run, on_progress=on_progress, full=full)
        if st.state == "ready":
            from slicewise.query import warm

            warm(ws, run)  # the row cache and its metrics at the run's thresholds, ready for the first view
    console.print(f"metrics of run {esc(run)}: {st.state} ({st.done:,} data rows)")


@metrics_app.command("status")
def status(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, as_json: JsonOpt = False) -> None:
    """The metrics job: pending, running, ready, failed (with its error) or stale."""
    from slicewise.metrics import job_status

    with open_workspace(workspace, read_only=True) as ws:
        st = job_status(ws, run)
    if as_json:
        console.print_json(json.dumps(st.to_dict()))
        return
    extra = f", {st.stale_rows:,} rows to update" if st.state == "stale" else ""
    console.print(esc(f"{st.state}: {st.done:,}/{st.total:,} data rows{extra}" + (f"\nerror: {st.error}" if st.error else "")))


@metrics_app.command("retry")
def retry(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Re-run a run's metrics job (after a failure)."""
    from slicewise.metrics import retry as do_retry

    with open_workspace(workspace) as ws:
        st = do_retry(ws, run)
    console.print(f"metrics of run {esc(run)}: {st.state}")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        from slicewise.errors import MetricsError

        raise MetricsError(f"cannot read the grid {text!r}", where="grid", fix="write numbers separated by commas") from None


@metrics_app.command("grids")
def grids_cmd(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
              confidence: Annotated[str | None, typer.Option(help="New confidence grid, e.g. 0.5,0.55,0.6")] = None,
              iou: Annotated[str | None, typer.Option(help="New IoU grid")] = None) -> None:
    """Show, or replace, a run's confidence and IoU grids."""
    from slicewise.metrics import grids, set_grids

    with open_workspace(workspace, read_only=confidence is None and iou is None) as ws:
        if confidence is None and iou is None:
            c, t = grids(ws, run)
        else:
            c, t = set_grids(ws, run, confidence=_floats(confidence) if confidence else None,
                             iou=_floats(iou) if iou else None)
    console.print(f"confidence: {', '.join(map(str, c))}\niou: {', '.join(map(str, t))}")


@metrics_app.command("show")
def show(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, confidence: ConfOpt = 0.5, iou: IouOpt = 0.5,
         as_json: JsonOpt = False,
         classes: Annotated[bool, typer.Option("--classes", help="One row per class: each radio answer and "
                                               "checklist option apart, with micro and macro overall rows")] = False,
         calibration: Annotated[bool, typer.Option("--calibration", help="ECE and MCE of the predictions kept at "
                                                   "the confidence (correct: a TP), overall and per class")] = False,
         bins: Annotated[int, typer.Option("--bins", help="Reliability bins (with --calibration)")] = 10,
         ap: Annotated[bool, typer.Option("--ap", help="Add COCO AP, AP50, AP75 and AR columns for box, polygon and "
                                          "mask features (over all the run's rows) and their means (mAP)")] = False,
         ) -> None:
    """The per-feature table at the chosen thresholds (and a yellow line when the metrics are not up to date)."""
    from slicewise.metrics import class_metrics, feature_ap, feature_metrics

    if calibration:
        _calibration(run, workspace, confidence, iou, bins, as_json)
        return
    with open_workspace(workspace, read_only=True) as ws:
        res: Any = class_metrics(ws, run, confidence, iou, warn=False) if classes else \
            feature_metrics(ws, run, confidence, iou, warn=False)
        aps, mean = feature_ap(ws, run) if ap and not classes else ({}, None)
    ap_cols = ("ap", "ap50", "ap75", "ar") if ap and not classes else ()
    if as_json:  # the job's state is in the JSON; the line goes to stderr
        out = res.to_dict()
        if ap_cols:
            out["ap"] = {"features": {k: v.to_dict() for k, v in aps.items()}, "mean": mean.to_dict() if mean else None}
        console.print_json(json.dumps(out))
        print_job_state(res.job, run, err=True)
        return
    t = Table(title=f"{run} at confidence {confidence}, IoU {iou}")
    if classes:
        cols: tuple[str, ...] = ("name", "kind", "tp", "fp", "fn", "precision", "recall", "f1", "support")
        items = res.classes
    else:
        cols = ("feature", "kind", "tp", "fp", "fn", "tn", "precision", "recall", "f1", "iou", "n_rows")
        items = res.features
    for c in cols + ap_cols:
        t.add_column(c.upper() if c in ap_cols else c, justify="left" if c in ("feature", "name", "kind") else "right")
    for r in items:  # names may hold [...]: no markup
        got = aps.get(r.feature) if ap_cols else None
        t.add_row(*[_fmt(getattr(r, c)) for c in cols], *[_fmt(getattr(got, c) if got else None) for c in ap_cols])
    if ap_cols and mean is not None:
        t.add_row(*["mean (mAP)" if c == "feature" else "" for c in cols], *[_fmt(getattr(mean, c)) for c in ap_cols],
                  style="bold")
    if classes:
        o = res.overall
        for label in ("micro", "macro"):
            vals = {"name": f"overall ({label})", "kind": "", "tp": o.tp, "fp": o.fp, "fn": o.fn, "support": o.tp + o.fn,
                    **{m: getattr(o, f"{label}_{m}") for m in ("precision", "recall", "f1")}}
            t.add_row(*[_fmt(vals[c]) for c in cols], style="bold")
    console.print(t)
    print_job_state(res.job, run)


def _calibration(run: str, workspace: Path, confidence: float, iou: float, bins: int, as_json: bool) -> None:
    from slicewise.metrics import calibration

    with open_workspace(workspace, read_only=True) as ws:
        cal = calibration(ws, run, confidence, iou, n_bins=bins, warn=False)
    if as_json:
        console.print_json(json.dumps(cal.to_dict()))
        print_job_state(cal.job, run, err=True)
        return
    t = Table(title=f"calibration of {run} at confidence {confidence}, IoU {iou} ({bins} bins)")
    for c in ("class", "predictions", "ECE", "MCE"):
        t.add_column(c, justify="left" if c == "class" else "right")
    for r in (cal.overall, *cal.classes):
        t.add_row(r.name, str(r.n), _fmt(r.ece), _fmt(r.mce), style="bold" if r is cal.overall else None)
    console.print(t)
    d = Table(title="reliability diagram (all predictions)")
    for c in ("confidence bin", "predictions", "mean confidence", "accuracy"):
        d.add_column(c, justify="right")
    for b in cal.overall.bins:
        if b.n:
            d.add_row(f"{b.lo:.2f}-{b.hi:.2f}", str(b.n), _fmt(b.confidence), _fmt(b.accuracy))
    console.print(d)
    print_job_state(cal.job, run)


@metrics_app.command("errors")
def errors_cmd(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
               confidence: Annotated[float | None, typer.Option("--confidence", "-c", help="Confidence threshold "
                                                                "(default: the run's view setting)")] = None,
               iou: Annotated[float | None, typer.Option("--iou", "-t", help="Foreground IoU t_f (default: the run's "
                                                         "view setting)")] = None,
               background: Annotated[float, typer.Option("--background-iou", help="Background IoU t_b")] = 0.1,
               cls: Annotated[str | None, typer.Option("--class", help="Only this class's row")] = None,
               slice_: Annotated[str | None, typer.Option("--slice", help="Over the rows of this slice")] = None,
               filter_: Annotated[str | None, typer.Option("--filter", help="Over the rows matching this filter")] = None,
               as_json: JsonOpt = False) -> None:
    """TIDE error types of the run's detections (classification, localization, both, duplicate,
    background, missed): how many, and the AP each costs (dAP: COCO AP at t_f gained when fixed)."""
    from slicewise.errors import NotFoundError
    from slicewise.metrics.tide import ERROR_TYPES, SHORT, error_types
    from slicewise.view import View

    with open_workspace(workspace, read_only=True) as ws:
        v = View(run=run, confidence=confidence, iou=iou, slice=slice_, filter=filter_).resolve(ws)
        assert v.confidence is not None and v.iou is not None
        res = error_types(ws, run, v.confidence, v.iou, rows=v.rows_sql(), background_iou=background)
    rows = [res.overall, *res.classes]
    if cls is not None:
        rows = [r for r in res.classes if r.name == cls]
        if not rows:
            raise NotFoundError(f"no class {cls!r} among the run's detections", where="--class",
                                fix="classes: " + (", ".join(r.name for r in res.classes) or "none"))
    if as_json:
        d = res.to_dict()
        if cls is not None:
            d["classes"] = [r.to_dict() for r in rows]
        console.print_json(json.dumps(d))
        return
    scope = f" over {v.text}" if v.text else ""
    head = rows[0]
    t = Table(title=f"TIDE error types of {run}{'' if cls is None else ', class ' + cls} at confidence "
                    f"{res.confidence:g}, IoU {res.iou:g} (background {res.background_iou:g}){scope}: "
                    f"{res.n_rows:,} rows, {head.n_labels:,} labels, {head.n_predictions:,} predictions, "
                    f"AP {_fmt(head.ap)}")
    for c in ("error type", "count", "dAP"):
        t.add_column(c, justify="left" if c == "error type" else "right")
    for e in ERROR_TYPES:
        t.add_row(e, f"{head.counts[e]:,}", _fmt(head.dap[e]))
    console.print(t)
    if cls is None and res.classes:
        p = Table(title="per class: count / dAP")
        p.add_column("class", justify="left")
        p.add_column("labels", justify="right")
        p.add_column("AP", justify="right")
        for e in ERROR_TYPES:
            p.add_column(SHORT[e], justify="right")
        for r in res.classes:
            p.add_row(r.name, str(r.n_labels), _fmt(r.ap), *[f"{r.counts[e]}/{_fmt(r.dap[e])}" for e in ERROR_TYPES])
        console.print(p)
    console.print("dAP: the COCO AP at the IoU gained when every error of that type is fixed (TIDE's oracle)",
                  style="dim")


@metrics_app.command("ontology")
def ontology_cmd(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
                 features: Annotated[str | None, typer.Option("--set", help="Comma-separated feature names: the "
                                                              "run's ontology (media types by kind)")] = None,
                 datasets: Annotated[str | None, typer.Option("--datasets", help="Comma-separated dataset names "
                                                              "the features apply to (with --set)")] = None,
                 derived: Annotated[bool, typer.Option("--derived", help="Go back to the ontology derived from "
                                                       "the run's predictions and labels")] = False,
                 as_json: JsonOpt = False) -> None:
    """The run's ontology: the features it predicts, each with the media types and datasets it applies to
    (a row's TN counts only those)."""
    from slicewise.metrics import ontology, set_ontology

    split = lambda v: [x.strip() for x in v.split(",") if x.strip()]  # noqa: E731
    with open_workspace(workspace, read_only=not (features or derived)) as ws:
        if derived:
            onto = set_ontology(ws, run, None)
        elif features:
            onto = set_ontology(ws, run, split(features), datasets=split(datasets) if datasets else None)
        else:
            onto = ontology(ws, run)
    if as_json:
        console.print_json(json.dumps(onto.to_dict()))
        return
    t = Table(title=f"ontology of {run} ({'set' if onto.explicit else 'derived from its predictions and labels'})")
    for c in ("feature", "kind", "media types", "datasets"):
        t.add_column(c)
    for f in onto.features:
        t.add_row(f.feature, f.kind, ", ".join(f.media_types),
                  "any" if f.datasets is None else ", ".join(f.datasets))
    console.print(t)


@metrics_app.command("confusion")
def confusion(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, confidence: ConfOpt = 0.5,
              iou: IouOpt = 0.5, as_json: JsonOpt = False) -> None:
    """The confusion matrix (rows: true class, columns: predicted class; 'None' = unmatched)."""
    from slicewise.metrics import confusion_matrix

    with open_workspace(workspace, read_only=True) as ws:
        cm = confusion_matrix(ws, run, confidence, iou, warn=False)
    print_job_state(cm.job, run, err=as_json)
    if as_json:
        console.print_json(json.dumps(cm.to_dict()))
        return
    title = f"confusion matrix of {run} (confidence {confidence}, IoU {iou})"
    width_needed = 14 + sum(max(len(c), 5) + 3 for c in cm.classes)
    if width_needed <= console.width:
        t = Table(title=title + "; rows: true, columns: predicted")
        t.add_column("true \\ pred")
        for c in cm.classes:
            t.add_column(c, justify="right")
        for name, row in zip(cm.classes, cm.counts, strict=True):
            t.add_row(name, *[str(v) if v else "." for v in row])
        console.print(t)
        return
    # too many classes for a grid on this terminal: every non-empty cell, largest first
    cells = sorted(((v, tc, pc) for tc, row in zip(cm.classes, cm.counts, strict=True)
                    for pc, v in zip(cm.classes, row, strict=True) if v), key=lambda c: (-c[0], c[1], c[2]))
    t = Table(title=title + f"; {len(cm.classes)} classes, non-empty cells (--json for the matrix)")
    for col, just in (("true", "left"), ("predicted", "left"), ("count", "right"), ("", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for v, tc, pc in cells:
        t.add_row(tc, pc, str(v), "TP" if tc == pc else ("missed" if pc == "None" else
                                                          "spurious" if tc == "None" else "confusion"))
    console.print(t)


@metrics_app.command("pr")
def pr(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
       feature: Annotated[str | None, typer.Option(help="One feature (default: all)")] = None,
       iou: IouOpt = 0.5, as_json: JsonOpt = False) -> None:
    """Precision and recall at every confidence of the grid, and the F1-optimal confidence."""
    from slicewise.metrics import pr_curve

    with open_workspace(workspace, read_only=True) as ws:
        c = pr_curve(ws, run, feature=feature, iou=iou, warn=False)
    print_job_state(c.job, run, err=as_json)
    if as_json:
        console.print_json(json.dumps(c.to_dict()))
        return
    t = Table(title=f"precision-recall of {run}, {feature or 'all features'}, IoU {iou}")
    for col in ("confidence", "precision", "recall", "f1", "tp", "fp", "fn"):
        t.add_column(col, justify="right")
    for i, conf in enumerate(c.confidence):
        t.add_row(_fmt(conf), _fmt(c.precision[i]), _fmt(c.recall[i]), _fmt(c.f1[i]), str(c.tp[i]), str(c.fp[i]),
                  str(c.fn[i]))
    console.print(t)
    console.print(f"F1-optimal confidence: {_fmt(c.best_confidence)} (F1 {_fmt(c.best_f1)})")


@metrics_app.command("export")
def export(run: RunArg, out: Annotated[Path, typer.Argument(help="Output file, .parquet or .csv")],
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE, confidence: ConfOpt = 0.5, iou: IouOpt = 0.5,
           per_feature: Annotated[bool, typer.Option(help="One line per (data row, feature)")] = False) -> None:
    """Export the per-row metrics at the chosen thresholds to Parquet or CSV."""
    from slicewise.metrics import export_row_metrics

    with open_workspace(workspace, read_only=True) as ws:
        n = export_row_metrics(ws, run, confidence, iou, out, per_feature=per_feature)
    console.print(f"wrote {n:,} rows to {esc(typed_path(out))}")


@metrics_app.command("outcomes")
def outcomes(run: RunArg, row: Annotated[str, typer.Argument(help="The data row's global key")],
             workspace: WorkspaceOpt = DEFAULT_WORKSPACE, confidence: ConfOpt = 0.5, iou: IouOpt = 0.5,
             as_json: JsonOpt = False) -> None:
    """Each object of one data row with its outcome at (c, t): TP, FP, FN, confusion or dropped (what the
    gallery's overlays colour by outcome)."""
    from slicewise.errors import NotFoundError
    from slicewise.metrics import row_matches

    with open_workspace(workspace, read_only=True) as ws:
        found = ws.data_rows(keys=[row])
        if not found:
            raise NotFoundError(f"no data row with global key {row!r}", where="row", fix="see `slicewise rows`")
        objs = row_matches(ws, run, found[0].id, confidence, iou)
    if as_json:
        console.print_json(json.dumps(objs))
        return
    t = Table(title=f"{row} in {run} at confidence {confidence}, IoU {iou}")
    cols = ("object_id", "source", "class", "confidence", "match_id", "iou", "outcome")
    for c in cols:
        t.add_column(c, justify="right" if c in ("object_id", "confidence", "match_id", "iou") else "left")
    for o in objs:
        t.add_row(*[_fmt(o[c]) for c in cols])
    console.print(t)


@metrics_app.command("coco")
def coco(run: RunArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
         iou_type: Annotated[str, typer.Option(help="bbox or segm")] = "bbox",
         per_class: Annotated[bool, typer.Option(help="Also print the AP of each class")] = False,
         as_json: JsonOpt = False) -> None:
    """The COCO protocol (pycocotools-identical): AP/AR stats and per-class AP."""
    from slicewise.metrics import coco_eval
    from slicewise.metrics.results import STAT_NAMES

    with open_workspace(workspace, read_only=True) as ws:
        res = coco_eval(ws, run, iou_type)
    if as_json:
        console.print_json(json.dumps(res.to_dict()))
        return
    t = Table(title=f"COCO {iou_type} of {run}")
    t.add_column("stat")
    t.add_column("value", justify="right")
    for name, v in zip(STAT_NAMES, res.stats, strict=True):
        t.add_row(name, f"{v:.4f}")
    console.print(t)
    if per_class:
        t = Table(title="AP per class")
        t.add_column("class")
        t.add_column("AP", justify="right")
        for name, ap in res.per_class_ap.items():
            t.add_row(name, "-" if ap is None else f"{ap:.4f}")
        console.print(t)


@metrics_app.command("custom")
def custom(run: RunArg, path: Annotated[Path, typer.Argument(help="CSV or Parquet: data_row, name, value[, feature]")],
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Upload custom metrics for a run from a CSV or Parquet file."""
    from slicewise.metrics import add_custom_metrics

    with open_workspace(workspace) as ws:
        n = add_custom_metrics(ws, run, path)
    console.print(f"stored {n:,} custom metric values")
