"""``slicewise import <format> ...`` and ``slicewise export <format> ...``: thin calls into slicewise.io.

Every import is one transaction: by default any invalid record imports nothing; ``--skip-invalid``
imports the rest and writes one line per rejected record to the rejects file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    WorkspaceOpt,
    cli_path,
    console,
    esc,
    open_workspace,
    print_problems,
    progress,
    typed_path,
)

imp = typer.Typer(help="Import data rows, ground truth and predictions (one transaction per file).",
                  no_args_is_help=True)
exp = typer.Typer(help="Export ground truth, predictions or any table.", no_args_is_help=True)

SkipOpt = Annotated[bool, typer.Option("--skip-invalid", help="Import the valid records; write the others to --rejects")]
RejectsOpt = Annotated[Path | None, typer.Option("--rejects", help="Rejects file (JSON lines); default <input>.rejects.jsonl")]
CreateOpt = Annotated[bool, typer.Option("--create-features", help="Create classes the workspace does not know")]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", "-d", help="Dataset name (default: from the file/folder)")]
RunOpt = Annotated[str, typer.Option("--run", "-r", help="The model run, as model/run (created if missing)")]
ImagesOpt = Annotated[Path | None, typer.Option(
    help="Folder of the images: every image path of the file must lie inside it and exist (no '..', no link "
         "out of it)")]
MediaLaterOpt = Annotated[bool, typer.Option(
    "--media-later", help="Do not require the image files to exist yet (remote, or copied later); paths must "
                          "still lie inside --images")]


def _rows_help(default: str) -> str:
    return ("Which data rows the run covers (rows with no prediction count their labels as false negatives): "
            "dataset:NAME, split:NAME, dataset:NAME/split:NAME, all, predicted, same-dataset, same-split. "
            f"Default: {default}")


CocoRowsOpt = Annotated[str | None, typer.Option(
    "--rows", metavar="SPEC", help=_rows_help("same-dataset, every row of the predicted images' dataset, i.e. every "
                                              "image of the instances file they came from"))]
YoloRowsOpt = Annotated[str | None, typer.Option(
    "--rows", metavar="SPEC", help=_rows_help("same-split, every row of the predicted images' dataset and split"))]
NdjsonRowsOpt = Annotated[str | None, typer.Option(
    "--rows", metavar="SPEC", help=_rows_help("predicted, only the rows that got a prediction"))]


def register(app: typer.Typer) -> None:
    app.add_typer(imp, name="import")
    app.add_typer(exp, name="export")
    app.command("media-roots")(media_roots)


def _run_import(workspace: Path, source: Path, skip_invalid: bool, rejects: Path | None,
                call: Callable[..., Any]) -> None:
    from slicewise.io import write_rejects

    created = not cli_path(workspace).exists()
    try:
        with open_workspace(workspace) as ws, progress(f"importing {source.name}") as advance:
            res = call(ws, skip_invalid=skip_invalid, progress=advance)
    except BaseException:
        if created:  # the import made the file: a failed import leaves no empty workspace behind
            remove_new_workspace(cli_path(workspace))
        raise
    console.print(esc(res.summary()))
    if res.warnings:
        print_problems(res.warnings, "warning")
    if res.rejected:
        out = rejects or Path(f"{source.name}.rejects.jsonl")
        write_rejects(cli_path(out), res.rejected)
        print_problems(res.rejected, "rejected", limit=5)
        console.print(f"{len(res.rejected):,} rejected records written to {esc(typed_path(out))}")


def remove_new_workspace(path: Path) -> None:
    """Remove a workspace file this command created, with its sidecars (WAL, caches); only when it holds
    no data row (a workspace with data is never removed)."""
    import contextlib
    import shutil

    from slicewise.state import cache_path
    from slicewise.store.ledger import marks_path, wal_path

    try:
        import duckdb

        with duckdb.connect(str(path), read_only=True) as con:
            if con.execute("SELECT count(*) FROM data_rows").fetchone()[0]:  # type: ignore[index]
                return
    except Exception:  # noqa: BLE001 - unreadable: it is ours and half-made; remove it
        pass
    for p in (path, wal_path(path), marks_path(path)):
        with contextlib.suppress(OSError):
            p.unlink()
    shutil.rmtree(cache_path(path).parent, ignore_errors=True)


@imp.command("coco")
def coco(path: Path, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, dataset: DatasetOpt = None,
         images: ImagesOpt = None,
         split: Annotated[str, typer.Option(help="Split of these images: train, valid, test or none")] = "none",
         skip_invalid: SkipOpt = False, rejects: RejectsOpt = None, media_later: MediaLaterOpt = False) -> None:
    """COCO instances JSON: images, categories and annotations (boxes, polygons, RLE, crowd).

    With --images, each file_name must lie inside that folder and exist (unless --media-later); without
    it, file names are kept as written (relative to the workspace's folder) and not checked."""
    from slicewise.io import import_coco

    _run_import(workspace, path, skip_invalid, rejects, lambda ws, **kw: import_coco(
        ws, path, dataset=dataset, images=images, split=split, check_media=not media_later, **kw))


@imp.command("coco-results")
def coco_results(path: Path, run: RunOpt, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
                 skip_invalid: SkipOpt = False, rejects: RejectsOpt = None, create_features: CreateOpt = False,
                 rows: CocoRowsOpt = None) -> None:
    """COCO results JSON (bbox and/or segmentation) as a run's predictions.

    The run covers every image of the COCO instances file (dataset) the predicted images came from,
    also those with no detection, unless --rows says otherwise."""
    from slicewise.io import import_coco_results

    _run_import(workspace, path, skip_invalid, rejects, lambda ws, **kw: import_coco_results(
        ws, path, run, create_features=create_features, rows=rows, **kw))


@imp.command("yolo")
def yolo(folder: Annotated[Path, typer.Argument(help="The folder holding data.yaml")],
         workspace: WorkspaceOpt = DEFAULT_WORKSPACE, dataset: DatasetOpt = None,
         skip_invalid: SkipOpt = False, rejects: RejectsOpt = None) -> None:
    """YOLO export: data.yaml, <split>/images and <split>/labels (boxes or polygons)."""
    from slicewise.io import import_yolo

    _run_import(workspace, folder, skip_invalid, rejects,
                lambda ws, **kw: import_yolo(ws, folder, dataset=dataset, **kw))


@imp.command("yolo-predictions")
def yolo_predictions(path: Annotated[Path, typer.Argument(help="COCO-style JSON, or a folder of txt files")],
                     run: RunOpt, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, skip_invalid: SkipOpt = False,
                     rejects: RejectsOpt = None, create_features: CreateOpt = False,
                     rows: YoloRowsOpt = None) -> None:
    """YOLO predictions (image_id = file stem, category_id = class index).

    The run covers every image of the predicted images' dataset and split (e.g. the whole valid split),
    also those with no detection, unless --rows says otherwise."""
    from slicewise.io import import_yolo_predictions

    _run_import(workspace, path, skip_invalid, rejects, lambda ws, **kw: import_yolo_predictions(
        ws, path, run, create_features=create_features, rows=rows, **kw))


@imp.command("voc")
def voc(folder: Path, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, dataset: DatasetOpt = None,
        images: ImagesOpt = None, split: str = "none", skip_invalid: SkipOpt = False, rejects: RejectsOpt = None,
        media_later: MediaLaterOpt = False) -> None:
    """Pascal VOC XML files (DTDs and entities are refused). Images: --images, or JPEGImages/ beside them."""
    from slicewise.io import import_voc

    _run_import(workspace, folder, skip_invalid, rejects, lambda ws, **kw: import_voc(
        ws, folder, dataset=dataset, images=images, split=split, check_media=not media_later, **kw))


@imp.command("indoor")
def indoor(folder: Annotated[Path, typer.Argument(help="Folder with ground-truth/ [detection-results/] [images]")],
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE, dataset: DatasetOpt = None,
           run: Annotated[str | None, typer.Option("--run", "-r", help="Run of detection-results/ (model/run)")] = None,
           images: ImagesOpt = None,
           skip_invalid: SkipOpt = False, rejects: RejectsOpt = None, create_features: CreateOpt = False) -> None:
    """Per-image text files: `class left top right bottom` (GT), `class conf left top right bottom` (predictions)."""
    from slicewise.io import import_indoor

    _run_import(workspace, folder, skip_invalid, rejects, lambda ws, **kw: import_indoor(
        ws, folder, dataset=dataset, run=run, images=images, create_features=create_features, **kw))


@imp.command("ndjson")
def ndjson(path: Path, workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
           run: Annotated[str | None, typer.Option("--run", "-r", help="Import as this run's predictions")] = None,
           skip_invalid: SkipOpt = False, rejects: RejectsOpt = None, create_features: CreateOpt = False,
           rows: NdjsonRowsOpt = None) -> None:
    """Labelbox NDJSON lines (bbox, polygon, mask, point, line, NER, radio, checklist), GT or predictions."""
    from slicewise.io import import_ndjson

    _run_import(workspace, path, skip_invalid, rejects, lambda ws, **kw: import_ndjson(
        ws, path, run=run, create_features=create_features, rows=rows, **kw))


@imp.command("rows")
def rows(path: Path, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, dataset: DatasetOpt = None,
         images: ImagesOpt = None, skip_invalid: SkipOpt = False, rejects: RejectsOpt = None,
         media_later: MediaLaterOpt = False) -> None:
    """Data rows from JSON or NDJSON (global_key, row_data, media_type, width, height, split, metadata).

    With --images, each local row_data of an image row must lie inside that folder and exist (unless
    --media-later). URLs (http, https, s3, gs) are kept and never downloaded."""
    from slicewise.io import import_rows

    _run_import(workspace, path, skip_invalid, rejects, lambda ws, **kw: import_rows(
        ws, path, dataset=dataset, images=images, check_media=not media_later, **kw))


@imp.command("table")
def table(path: Annotated[Path, typer.Argument(help="CSV or Parquet")], workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
          run: Annotated[str | None, typer.Option("--run", "-r", help="Run for the predicted class (model/run)")] = None,
          key: Annotated[str, typer.Option(help="Data row key column")] = "global_key",
          label: Annotated[str, typer.Option(help="Ground-truth class column")] = "label",
          prediction: Annotated[str, typer.Option(help="Predicted class column")] = "prediction",
          confidence: Annotated[str, typer.Option(help="Confidence column")] = "confidence",
          probabilities: Annotated[str | None, typer.Option(help="Prefix of per-class probability columns")] = None,
          metadata: Annotated[list[str] | None, typer.Option(help="Metadata column (repeat); default: the rest")] = None,
          feature: Annotated[str, typer.Option(help="Name of the classification feature")] = "class",
          media_type: Annotated[str, typer.Option(help="image or text")] = "image",
          dataset: DatasetOpt = None, skip_invalid: SkipOpt = False, rejects: RejectsOpt = None) -> None:
    """Tabular classification: key, ground-truth class, predicted class, confidence, probabilities, metadata."""
    from slicewise.io import import_table

    _run_import(workspace, path, skip_invalid, rejects, lambda ws, **kw: import_table(
        ws, path, run=run, key=key, label=label, prediction=prediction, confidence=confidence,
        probabilities=probabilities, metadata=metadata, feature=feature, media_type=media_type, dataset=dataset, **kw))


@exp.command("coco")
def export_coco(out: Path, workspace: WorkspaceOpt = DEFAULT_WORKSPACE, dataset: DatasetOpt = None,
                run: Annotated[str | None, typer.Option("--run", "-r", help="Export this run's predictions as "
                                                        "COCO results instead of the ground truth")] = None) -> None:
    """Ground truth as COCO instances JSON, or (--run) a run's predictions as COCO results JSON."""
    from slicewise import io

    with open_workspace(workspace, read_only=True) as ws:
        n = io.export_coco_results(ws, run, out) if run else io.export_coco(ws, out, dataset=dataset)
    console.print(f"wrote {n:,} {'predictions' if run else 'annotations'} to {esc(typed_path(out))}")


@exp.command("parquet")
def export_parquet(table_name: Annotated[str, typer.Argument(metavar="TABLE", help="e.g. predictions")], out: Path,
                   workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Any table of the workspace as a Parquet file."""
    from slicewise.io import export_parquet as _export

    with open_workspace(workspace, read_only=True) as ws:
        n = _export(ws, table_name, out)
    console.print(f"wrote {n:,} rows of {esc(table_name)} to {esc(typed_path(out))}")


def media_roots(dataset: Annotated[str, typer.Argument(help="The dataset")],
               folders: Annotated[list[Path] | None, typer.Argument(help="Folders to record (none: list them)")] = None,
               workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """List or record the folders a dataset's images may be served from (its media roots).

    Imports record their images folder; record another one after moving the images, or for a workspace
    made before roots were recorded. The server shows a row's image only when it lies inside one."""
    with open_workspace(workspace, read_only=not folders) as ws:
        roots = ws.add_media_roots(dataset, [str(cli_path(f).resolve()) for f in folders]) if folders \
            else ws.media_roots(dataset)
    for r in roots:
        console.print(r, markup=False, highlight=False)
    if not roots:
        console.print(f"dataset {dataset} has no media root", markup=False, highlight=False)
