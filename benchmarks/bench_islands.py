"""Islands against the labels the demo flipped on purpose, next to the "Candidate mislabels" auto slice.

    .venv/bin/python benchmarks/bench_islands.py [--workspace demo-workspace/demo.duckdb]

Builds (or reuses) the full demo workspace, then, over the labelled digits: the precision of the top-k
rows by kNN label disagreement (``island``, k = 10 neighbours in the image space) against the digits
whose label the demo changed (``slicewise.demo.digits``: about 2%, compared with scikit-learn's own
labels), for k = 10, 20, 36 (the number of flips); and the precision and recall of the digits run's
Candidate mislabels auto slice (at mislabel confidence 0.9, the default, and 0.6). For comparison, the
same islands over a custom space of the scanned pixels (8x8, mean-centred, cosine), as a user would
add with ``embeddings.add_vectors``: ImageNet features of 8x8 pixel art do not group digits by class.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default=str(ROOT / "demo-workspace" / "demo.duckdb"))
    a = ap.parse_args()
    from sklearn.datasets import load_digits

    import slicewise
    from slicewise import embeddings, slices
    from slicewise.demo import DIGITS_RUN, build_demo
    from slicewise.query import search

    s = build_demo(a.workspace, on_progress=lambda m: print(m, flush=True))
    print(f"demo {'reused' if s.reused else 'built'} in {s.seconds:.1f} s")
    target = load_digits().target
    with slicewise.open(a.workspace) as ws:
        rows = {r.id: r.global_key for r in ws.data_rows(dataset="digits")}
        labels = {o["data_row"]: int(o["answer"]) for o in ws.annotations(list(rows.values()))}
        wrong = {k for k, y in labels.items() if y != target[int(k.split("-")[1])]}
        print(f"{len(labels)} labelled digits, {len(wrong)} labels flipped on purpose ({len(wrong) / len(labels):.1%})")
        ids, dis = embeddings.islands(ws, "image")
        mine = [(rows[int(i)], float(d)) for i, d in zip(ids, dis, strict=True) if int(i) in rows]
        mine.sort(key=lambda t: (-t[1], t[0]))
        for k in (10, 20, len(wrong)):
            top = [key for key, _ in mine[:k]]
            hit = sum(t in wrong for t in top)
            print(f"islands top-{k}: precision {hit / k:.2f} ({hit} flipped), lowest score in it {mine[k - 1][1]:.2f}")
        n_isl = sum(1 for _, d in mine if d > 0.5)
        hit = sum(1 for key, d in mine if d > 0.5 and key in wrong)
        print(f"auto slice Islands (island > 0.5): {n_isl} rows, precision {hit / max(n_isl, 1):.2f}, "
              f"recall {hit / max(len(wrong), 1):.2f}")
        run = ws.run(DIGITS_RUN)
        for mc in (0.9, 0.6):
            slices.set_auto_params(ws, run, mislabel_confidence=mc)
            found = {r.global_key for r in search(ws, run, slices.auto_slice(ws, run, "candidate-mislabels").query,
                                                   limit=5000).rows}
            hit = len(found & wrong)
            print(f"Candidate mislabels (mislabel confidence {mc}): {len(found)} rows, precision "
                  f"{hit / max(len(found), 1):.2f}, recall {hit / max(len(wrong), 1):.2f}")
        slices.set_auto_params(ws, run, mislabel_confidence=0.9)
        from PIL import Image

        from slicewise.embeddings import knn_disagreement
        from slicewise.embeddings.islands import row_classes

        drs = ws.data_rows(dataset="digits")
        ids = np.array([r.id for r in drs])
        px = np.stack([np.asarray(Image.open(Path(a.workspace).parent / r.row_data).convert("L")
                                  .resize((8, 8), Image.Resampling.BOX), np.float32).ravel() for r in drs])
        d = knn_disagreement(px - px.mean(axis=1, keepdims=True), row_classes(ws, ids), 10)
        order = np.lexsort((ids, -d))
        for k in (10, 20, len(wrong)):
            hit = sum(drs[i].global_key in wrong for i in order[:k])
            print(f"islands over a custom pixel space, top-{k}: precision {hit / k:.2f} ({hit} flipped)")
        print(f"(chance: {len(wrong) / len(labels):.3f}; load average {np.round(__import__('os').getloadavg(), 2)})")


if __name__ == "__main__":
    main()
