"""Fuzz the HTTP API with schemathesis: requests generated from the server's own ``/openapi.json`` (valid and
invalid values of every parameter and body) against the app on a real workspace, every operation.

    .venv/bin/python benchmarks/fuzz_api.py [--examples 200] [--workspace demo-workspace/demo.duckdb] [--seed 0]

Without ``--workspace`` it builds a small workspace (rows with metadata and tags, three features, a run with
computed metrics, slices) in a temporary folder; with one, it fuzzes a copy of that file (the fuzzer
writes: tags, slices, grids, imports). Prints, per operation and in total, the cases tried, the responses
with a 5xx status and the responses that do not match the schema (status code, content type or body), and
the first failures in full. Exit status 1 when there is any. Target: 0 and 0.

``tests/server/test_fuzz_api.py`` runs the same fuzzing with a few cases per operation in CI.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def build_workspace(path: Path) -> Path:
    """A small workspace with everything the API serves: rows (images on disk), metadata of each kind,
    tags, features, ground truth, a run with predictions and computed metrics, slices."""
    from PIL import Image

    import slicewise
    from slicewise import metrics, slices

    media = path.parent
    rows, anns, preds = [], [], []
    classes = ["cat", "dog", "bird"]
    for i in range(12):
        f = media / f"img{i}.png"
        Image.new("RGB", (64, 48), (40 * (i % 6), 90, 120)).save(f)
        key = f"row-{i}" if i % 5 else f'<b>"row" {i}</b>'
        rows.append({"global_key": key, "row_data": str(f), "width": 64, "height": 48,
                     "split": ["train", "valid", "test"][i % 3],
                     "metadata": {"camera": f"cam-{i % 3}", "speed": i / 3, "when": f"2024-05-0{1 + i % 9}"}})
        anns.append({"data_row": key, "feature": classes[i % 3], "bbox": [4, 4, 30, 20]})
        preds.append({"data_row": key, "feature": classes[(i // 2) % 3], "bbox": [5, 3, 30, 22],
                      "confidence": round(0.3 + i / 20, 2)})
    with slicewise.open(path) as ws:
        ws.add_data_rows("shapes", rows)
        for name in classes:
            ws.create_feature(name, "bbox", exist_ok=True)
        ws.add_annotations(anns)
        run = ws.create_run("detector", "v1")
        ws.add_predictions(run, preds)
        metrics.compute_metrics(ws, run)
        ws.add_tags([r["global_key"] for r in rows[:4]], ["reviewed", "hard case"])
        slices.create_slice(ws, "valid rows", "split = valid", sort="-iou")
        slices.create_slice(ws, "low iou", "iou < 0.5")
    return path


@dataclass
class OperationResult:
    label: str
    cases: int = 0
    server_errors: int = 0
    mismatches: int = 0
    failures: list[str] = field(default_factory=list)  # the first few, in full


@dataclass
class FuzzReport:
    operations: list[OperationResult]
    seconds: float

    @property
    def cases(self) -> int:
        return sum(o.cases for o in self.operations)

    @property
    def server_errors(self) -> int:
        return sum(o.server_errors for o in self.operations)

    @property
    def mismatches(self) -> int:
        return sum(o.mismatches for o in self.operations)

    def failures(self) -> list[str]:
        return [f for o in self.operations for f in o.failures]


def fuzz(app: Any, examples: int, *, seed: int = 0, keep: int = 5) -> FuzzReport:
    """Run ``examples`` generated cases against every operation of ``app``'s OpenAPI schema (in process,
    through ASGI) and count what went wrong. Cases that fail are recorded, not shrunk."""
    import schemathesis
    from schemathesis.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    conformance = [status_code_conformance, content_type_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = []
    t0 = time.perf_counter()
    for got in schema.get_all_operations():
        op = got.ok()
        results.append(_fuzz_operation(op, examples, seed, keep, conformance))
    return FuzzReport(results, time.perf_counter() - t0)


def _fuzz_operation(op: Any, examples: int, seed: int, keep: int, conformance: list[Any]) -> OperationResult:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure, FailureGroup

    res = OperationResult(op.label)

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        res.cases += 1
        try:
            response = case.call()
        except Exception as exc:  # noqa: BLE001 - an exception the app let through is a 500 for a client
            res.server_errors += 1
            if len(res.failures) < keep:
                res.failures.append(f"{op.label}\n  request: {case.as_curl_command()[:400]}\n  raised {exc!r}")
            return
        problems = []
        if response.status_code >= 500:
            res.server_errors += 1
            problems.append(f"status {response.status_code}: {response.text[:300]}")
        try:
            case.validate_response(response, checks=[not_a_server_error, *conformance])
        except (Failure, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            schema_fails = [f for f in found if "server error" not in f.title.lower()]
            if schema_fails:
                res.mismatches += 1
            problems += [f"{f.title}: {f.message[:400]}" for f in schema_fails]
        if problems and len(res.failures) < keep:
            res.failures.append(f"{op.label}\n  request: {case.as_curl_command()[:400]}\n  "
                                + "\n  ".join(problems))

    run()
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=200, help="generated cases per operation")
    ap.add_argument("--workspace", type=Path, help="fuzz a copy of this workspace (default: a small built one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from slicewise.server import create_app

    with tempfile.TemporaryDirectory(prefix="sw-fuzz-") as tmp:
        path = Path(tmp) / "fuzz.duckdb"
        if args.workspace:
            shutil.copy(args.workspace, path)
        else:
            build_workspace(path)
        app = create_app(path)
        try:
            report = fuzz(app, args.examples, seed=args.seed)
        finally:
            app.state.sw.ws.close()
    width = max(len(o.label) for o in report.operations)
    print(f"{'operation':<{width}}  cases  5xx  mismatches")
    for o in report.operations:
        print(f"{o.label:<{width}}  {o.cases:5d}  {o.server_errors:3d}  {o.mismatches:10d}")
    kinds = Counter(f.split("\n")[-1].split(":")[0].strip() for f in report.failures())
    print(f"\noperations: {len(report.operations)}  cases tried: {report.cases}  5xx responses: {report.server_errors}"
          f"  schema mismatches: {report.mismatches}  ({report.seconds:.0f} s)")
    for f in report.failures()[:20]:
        print("\n" + f)
    if kinds:
        print("\nkinds:", dict(kinds))
    return 1 if report.server_errors or report.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
