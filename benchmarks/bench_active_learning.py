"""Active learning, measured: a pool-based loop on scikit-learn's digits with a model trained in the loop.

    .venv/bin/python benchmarks/bench_active_learning.py [--seeds 5] [--rounds 30] [--batch 10] [--start 20]

For each seed: a stratified hold-out test set (30% of the 1,797 digits), the rest is the unlabelled pool;
``--start`` random rows are labelled, then each round a logistic regression is trained on the labelled
rows, scores the pool, and the strategy picks ``--batch`` rows whose labels are revealed; the test
accuracy is recorded after every round. The strategies are slicewise's own scoring and picking functions
(:mod:`slicewise.curation.strategies`, the code ``slicewise select`` runs): random, least confidence,
margin, entropy, diversity (k-center greedy on the pixels, from the labelled rows), combined (entropy x
distance) and combined with class balance.

Printed per strategy: the labels needed to reach random sampling's final accuracy (same seed), as the
median over seeds with the min-max spread, and the saving against random's budget; the plot
(median test accuracy over seeds against labels, with the inter-quartile band) goes to
``docs/active_learning.svg`` (written here, no plotting library needed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from slicewise.curation import strategies as st  # noqa: E402

STRATEGIES = ["random", "least_confidence", "margin", "entropy", "diversity", "combined", "combined+balance"]
COLOURS = {"random": "#555555", "least_confidence": "#1f77b4", "margin": "#d62728", "entropy": "#2ca02c",
           "diversity": "#9467bd", "combined": "#ff7f0e", "combined+balance": "#8c564b"}


def choose(strategy: str, proba: np.ndarray, x_pool: np.ndarray, x_lab: np.ndarray, k: int,
           rng: np.random.Generator) -> np.ndarray:
    """Indices (into the pool) of the ``k`` rows ``strategy`` picks, through slicewise's functions."""
    if strategy == "random":
        return st.pick(k, scores=rng.random(len(x_pool)))
    if strategy in st.UNCERTAINTY:
        return st.pick(k, scores=st.uncertainty(proba, strategy))
    if strategy == "diversity":
        return st.pick(k, vectors=x_pool, reference=x_lab)
    balance = strategy == "combined+balance"
    return st.pick(k, scores=st.entropy(proba), vectors=x_pool, reference=x_lab,
                   classes=proba.argmax(axis=1), class_balance=balance)


def run_loop(strategy: str, seed: int, x: np.ndarray, y: np.ndarray, rounds: int, batch: int,
             start: int) -> tuple[list[int], list[float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    pool_idx, test_idx = train_test_split(idx, test_size=0.3, random_state=seed, stratify=y)
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(pool_idx, start, replace=False))
    unlabelled = np.setdiff1d(pool_idx, labelled)
    counts, accs = [], []
    for r in range(rounds + 1):
        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit(x[labelled], y[labelled])
        counts.append(len(labelled))
        accs.append(float((model.predict(x[test_idx]) == y[test_idx]).mean()))
        if r == rounds:
            break
        proba = np.zeros((len(unlabelled), 10))
        proba[:, model.classes_] = model.predict_proba(x[unlabelled])
        pick = choose(strategy, proba, x[unlabelled], x[labelled], batch, rng)
        labelled += unlabelled[pick].tolist()
        unlabelled = np.delete(unlabelled, pick)
    return counts, accs


def labels_to_reach(counts: list[int], accs: list[float], target: float) -> int | None:
    for c, a in zip(counts, accs, strict=True):
        if a >= target - 1e-12:
            return c
    return None


def write_svg(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
              target: float, title: str) -> None:
    """Median accuracy per strategy against labels, with an inter-quartile band, and random's final
    accuracy as a dashed line."""
    w, h, left, right, top, bottom = 760, 470, 62, 190, 40, 50
    xs = next(iter(curves.values()))[0]
    lo_y = min(float(np.min(c[2])) for c in curves.values())
    lo_y = max(0.0, np.floor(lo_y * 20) / 20)
    x0, x1, y0, y1 = float(xs[0]), float(xs[-1]), lo_y, 1.0

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (w - left - right)

    def py(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * (h - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="sans-serif" font-size="12">', f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2 - 60:.0f}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for v in np.arange(y0, y1 + 1e-9, 0.05):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    step = 50 if x1 - x0 > 200 else 20
    for v in range(int(np.ceil(x0 / step) * step), int(x1) + 1, step):
        out.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{top}" y2="{h - bottom}" stroke="#f0f0f0"/>')
        out.append(f'<text x="{px(v):.1f}" y="{h - bottom + 16}" text-anchor="middle">{v}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" '
               'stroke="#888"/>')
    out.append(f'<text x="{(left + w - right) / 2:.0f}" y="{h - 12}" text-anchor="middle">labelled rows</text>')
    out.append(f'<text x="16" y="{(top + h - bottom) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + h - bottom) / 2:.0f})">test accuracy (median over seeds)</text>')
    out.append(f'<line x1="{left}" x2="{w - right}" y1="{py(target):.1f}" y2="{py(target):.1f}" stroke="#555" '
               'stroke-dasharray="5 4"/>')
    for name, (cx, med, q1, q3) in curves.items():
        col = COLOURS.get(name, "#000")
        band = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(cx, q3, strict=True))
        band += " " + " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(cx[::-1], q1[::-1], strict=True))
        out.append(f'<polygon points="{band}" fill="{col}" fill-opacity="0.10" stroke="none"/>')
        line = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(cx, med, strict=True))
        dash = ' stroke-dasharray="6 3"' if name == "random" else ""
        out.append(f'<polyline points="{line}" fill="none" stroke="{col}" stroke-width="2"{dash}/>')
    for i, name in enumerate(curves):
        y = top + 14 + i * 20
        dash = ' stroke-dasharray="6 3"' if name == "random" else ""
        out.append(f'<line x1="{w - right + 14}" x2="{w - right + 38}" y1="{y}" y2="{y}" '
                   f'stroke="{COLOURS.get(name, "#000")}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{w - right + 44}" y="{y + 4}">{name.replace("_", " ")}</text>')
    y = top + 14 + len(curves) * 20
    out.append(f'<line x1="{w - right + 14}" x2="{w - right + 38}" y1="{y}" y2="{y}" stroke="#555" '
               'stroke-dasharray="5 4"/>')
    out.append(f'<text x="{w - right + 44}" y="{y + 4}">random\'s final</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--start", type=int, default=20)
    ap.add_argument("--plot", default=str(ROOT / "docs" / "active_learning.svg"))
    a = ap.parse_args()
    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # tiny fits: BLAS threads only fight over a shared machine's cores
    d = load_digits()
    x, y = d.data / 16.0, d.target
    t0 = time.perf_counter()
    res: dict[str, dict[int, tuple[list[int], list[float]]]] = {s: {} for s in STRATEGIES}
    for seed in range(a.seeds):
        for s in STRATEGIES:
            res[s][seed] = run_loop(s, seed, x, y, a.rounds, a.batch, a.start)
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    secs = time.perf_counter() - t0
    budget = a.start + a.rounds * a.batch
    print(f"digits: {len(y)} images, 30% held out; start {a.start} random labels, {a.rounds} rounds of {a.batch}, "
          f"budget {budget}; {a.seeds} seeds; logistic regression; {secs:.0f} s "
          f"(load {os.getloadavg()[0]:.1f})")
    finals = {seed: res["random"][seed][1][-1] for seed in range(a.seeds)}
    print(f"random's final accuracy per seed: {', '.join(f'{v:.3f}' for v in finals.values())}")
    print(f"{'strategy':<18} {'final acc':>10} {'labels to reach random final':>30} {'saving vs budget':>17}")
    summary = {}
    for s in STRATEGIES:
        need = [labels_to_reach(*res[s][seed], finals[seed]) for seed in range(a.seeds)]
        got = [n for n in need if n is not None]
        censored = len(need) - len(got)
        vals = np.array([n if n is not None else budget + a.batch for n in need], float)  # not reached: above
        med = float(np.median(vals))
        fin = np.median([res[s][seed][1][-1] for seed in range(a.seeds)])
        spread = f"{int(vals.min())}-{int(vals.max())}" + (f" ({censored} not reached)" if censored else "")
        med_txt = f"{med:.0f}" if med <= budget else f">{budget}"
        summary[s] = med
        print(f"{s:<18} {fin:>10.3f} {med_txt:>12} [{spread:>15}] {1 - med / budget:>16.0%}")
    best = min((m, s) for s, m in summary.items() if s != "random")
    print(f"best: {best[1]} needs {best[0]:.0f} labels to reach random's final accuracy after {budget}: "
          f"{1 - best[0] / budget:.0%} fewer (random itself first reached it at {summary['random']:.0f}, median)")
    curves = {}
    for s in STRATEGIES:
        acc = np.array([res[s][seed][1] for seed in range(a.seeds)])
        cx = np.array(res[s][0][0], float)
        curves[s] = (cx, np.median(acc, axis=0), np.percentile(acc, 25, axis=0), np.percentile(acc, 75, axis=0))
    out = Path(a.plot)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_svg(out, curves, float(np.median(list(finals.values()))),
              f"Active learning on digits ({a.seeds} seeds, logistic regression)")
    print(f"plot: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
