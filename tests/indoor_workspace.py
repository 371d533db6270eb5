"""The indoor-85 workspace the API and browser tests share: real photos and detector output from
../shared/data/indoor-85, with made-up camera/brightness metadata and train/valid splits so that
metadata filters, sorts and split comparisons have something to find, and its metrics computed."""

from __future__ import annotations

from pathlib import Path


def build_indoor(path: Path, shared_data: Path) -> Path:
    import slicewise
    from slicewise import metrics
    from slicewise.io import import_indoor

    with slicewise.open(path) as ws:
        import_indoor(ws, shared_data / "indoor-85")
        run = ws.runs()[0]
        keys = [r.global_key for r in ws.data_rows()]
        # some metadata and splits, so that filters and sorts on them have something to find
        ws.update_metadata({k: {"camera": f"cam-{i % 3}", "brightness": float(i % 10) / 10} for i, k in enumerate(keys)})
        ws.set_split(keys[: len(keys) // 2], "train")
        ws.set_split(keys[len(keys) // 2:], "valid")
        metrics.compute_metrics(ws, run)
    return path
