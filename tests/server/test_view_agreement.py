"""The same view (a slice, a filter on top, a sort, thresholds) gives the same rows from the CLI, the SDK
and the API: all three resolve it with slicewise.view, and the filter is the slice's AND the text."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slicewise import slices
from slicewise.cli import app
from slicewise.query import count

CASES = [
    # (slice, extra filter, sort)
    ("Cam zero", "fp > 0", "-confidence.max"),
    ("Cam zero", "", None),
    ("False positives", "split = valid", None),  # an auto slice, with its own sort
    ("Cam zero", 'iou < 0.5 or annotation.count > 3', "global_key"),
]


@pytest.fixture(scope="module")
def slice_made(app_ws):
    if not any(s.name == "Cam zero" for s in slices.list_slices(app_ws)):
        slices.create_slice(app_ws, "Cam zero", 'metadata.camera = "cam-0"', sort="-metadata.brightness")
    return app_ws


@pytest.mark.parametrize("slice_name,text,sort", CASES)
def test_cli_sdk_and_api_agree(client, slice_made, indoor_path, slice_name, text, sort):
    from slicewise.view import View

    ws = slice_made
    run = ws.runs()[0]
    v = View(run=run, slice=slice_name, filter=text or None, sort=sort, confidence=0.5, iou=0.5).resolve(ws)
    sdk = [r.global_key for r in v.page(limit=500).rows]
    # the slice's filter AND the text: the count of the conjunction, computed without the View
    s = slices.resolve_slice(ws, slice_name, run)
    both = " and ".join(f"({f})" for f in (s.filter, text) if f)
    assert len(sdk) == count(ws, run, both or None, 0.5, 0.5)

    params = {"run": run.id, "slice": slice_name, "q": text, "confidence": 0.5, "iou": 0.5, "limit": 500}
    if sort:
        params["sort"] = sort
    api = [r["global_key"] for r in client.get("/api/rows", params=params).json()["rows"]]

    args = ["query", run.ref, text, "--slice", slice_name, "--confidence", "0.5", "--iou", "0.5", "--limit", "500",
            "--json", "-w", str(indoor_path)]
    if sort:
        args += ["--sort", sort]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    cli = [r["global_key"] for r in json.loads(res.output)["rows"]]
    assert sdk == api == cli
    assert sdk  # each case finds something
