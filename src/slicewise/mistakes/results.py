"""A run's label-mistake scores, kept by the workspace, and the reviewers' verdicts on them.

The scores of every detector are computed together, once per run (and embedding space), and kept in
``ws.state`` until the labels, the run's predictions or rows, the ontology or the embeddings change
(:data:`TOPICS`); the query compiler reads them from a cache table (:func:`relation`). A reviewer's
verdict is a tag on the row: ``mistake-confirmed`` or ``mistake-rejected`` (setting one removes the
other); a detector's measured precision is confirmed / (confirmed + rejected) among the rows it flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from slicewise.errors import MetricsError, QueryError
from slicewise.mistakes import detect
from slicewise.mistakes.data import box_set, classification_sets, row_class_codes, space_vectors

DETECTORS = ("cleanlab", "knn", "combined")
CONFIRMED, REJECTED = "mistake-confirmed", "mistake-rejected"
VERDICTS = {"confirmed": CONFIRMED, "rejected": REJECTED, "confirm": CONFIRMED, "reject": REJECTED}


def topics(run_id: int) -> list[str]:
    """The changes that make a run's mistake scores stale."""
    return ["labels", "features", "embeddings", f"predictions:{run_id}", f"run_rows:{run_id}", f"runs:{run_id}"]


@dataclass(frozen=True)
class Scores:
    """One detector's result on a run: per scored row (ids ascending), the score and the flag."""

    detector: str
    ids: np.ndarray
    score: np.ndarray
    flagged: np.ndarray

    def top(self, n: int | None = None, *, flagged_only: bool = True) -> list[tuple[int, float]]:
        """(data row id, score) by decreasing score (ties by id), the flagged rows only by default."""
        m = self.flagged if flagged_only else np.ones(len(self.ids), bool)
        ids, sc = self.ids[m], self.score[m]
        order = np.lexsort((ids, -sc))
        if n is not None:
            order = order[: max(int(n), 0)]
        return [(int(ids[i]), float(sc[i])) for i in order]


@dataclass(frozen=True)
class Result:
    """Every detector's scores on a run; ``tasks`` says what was scored (``classification:FEATURE``,
    ``boxes``), ``space`` the embedding space of the kNN detector (None: no kNN)."""

    run_id: int
    space: str | None
    tasks: list[str]
    detectors: dict[str, Scores] = field(default_factory=dict)


def default_space(ws: Any, run: Any = None) -> str | None:
    """The kNN detector's space: the run's config ``mistakes.space``, else the one Islands reads
    (the only space, or ``image``), else None."""
    from slicewise.query.fields import Catalog

    cfg = (getattr(run, "config", None) or {}).get("mistakes") or {}
    if cfg.get("space"):
        return str(cfg["space"])
    cat = ws.state.memo(("catalog", None), Catalog.TOPICS, lambda: Catalog(ws, None))
    try:
        return cat.island_space("island")
    except QueryError:
        return None


def _merge(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], name: str) -> Scores:
    """Rows scored by several parts (e.g. two radio features) keep their highest score, flagged if any is."""
    if not parts:
        return Scores(name, np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool))
    ids = np.concatenate([p[0] for p in parts])
    sc = np.concatenate([p[1] for p in parts])
    fl = np.concatenate([p[2] for p in parts])
    uniq, inv = np.unique(ids, return_inverse=True)
    score = np.full(len(uniq), -np.inf)
    np.maximum.at(score, inv, sc)
    flag = np.zeros(len(uniq), bool)
    np.logical_or.at(flag, inv, fl)
    return Scores(name, uniq, score, flag)


def compute(ws: Any, run_id: int, space: str | None, k: int = detect.K) -> Result:
    """Run every detector on the run (no cache: see :func:`result`)."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {d: [] for d in DETECTORS}
    tasks = []
    for cs in classification_sets(ws, run_id):
        tasks.append(f"classification:{cs.feature}")
        s, f = detect.classification_scores(cs.labels, cs.probs)
        parts["cleanlab"].append((cs.ids, s, f))
        if space is None:
            parts["combined"].append((cs.ids, s, f))
            continue
        has, vecs, metric = space_vectors(ws, space, cs.ids)
        counts = detect.knn_counts(vecs, cs.labels[has], len(cs.options), k, metric)
        ks, kf = detect.knn_scores(counts, cs.labels[has])
        parts["knn"].append((cs.ids[has], ks, kf))
        near = has if has.sum() >= 2 else np.zeros(len(has), bool)  # rows with neighbours to ask
        if near.any():
            cs_s, cs_f = detect.combined_classification(cs.labels[near], cs.probs[near], counts)
            parts["combined"].append((cs.ids[near], cs_s, cs_f))
        parts["combined"].append((cs.ids[~near], s[~near], f[~near]))
    bs = box_set(ws, run_id)
    if bs is not None and len(bs.ids):
        tasks.append("boxes")
        s, f = detect.detection_scores(bs.labels, bs.predictions)
        parts["cleanlab"].append((bs.ids, s, f))
        if space is not None:
            has, vecs, metric = space_vectors(ws, space, bs.ids)
            codes = row_class_codes(ws, bs.ids[has])
            counts = detect.knn_counts(vecs, codes, int(codes.max()) + 1 if len(codes) else 1, k, metric)
            ks, kf = detect.knn_scores(counts, codes)
            parts["knn"].append((bs.ids[has], ks, kf))
        cs_s, cs_f = detect.combined_boxes(s, f, detect.confident_disagreement(bs.labels, bs.predictions))
        parts["combined"].append((bs.ids, cs_s, cs_f))
    dets = {d: _merge(parts[d], d) for d in DETECTORS if d != "knn" or space is not None}
    return Result(run_id, space, tasks, dets)


def result(ws: Any, run: Any, space: str | None = None) -> Result:
    """The run's mistake scores (computed on first use, kept until what they read changes)."""
    from slicewise.query.search import fresh_run

    r = fresh_run(ws, run)
    sp = space if space is not None else default_space(ws, r)
    if sp is not None:
        from slicewise.embeddings.store import space as space_info

        space_info(ws, sp)  # an unknown space is an error that names the spaces

    def run_them() -> Result:
        try:
            return compute(ws, r.id, sp)
        except (ValueError, AssertionError, IndexError) as exc:  # cleanlab's checks of its input
            raise MetricsError(f"the label-mistake detectors cannot score run {r.id}: {exc}", where=f"run {r.id}",
                               fix="give every class at least one label, and probability vectors over the "
                               "feature's options") from None

    return ws.state.memo(("mistakes", r.id, sp), topics(r.id), run_them)


def scores(ws: Any, run: Any, detector: str = "combined", space: str | None = None) -> Scores:
    """One detector's :class:`Scores` on the run."""
    res = result(ws, run, space)
    if detector not in res.detectors:
        raise QueryError(f"no label-mistake detector {detector!r} for this run", where=detector,
                         fix=("the kNN detector needs an embedding space (`slicewise embed`, or name one)"
                              if detector == "knn" else "use one of: " + ", ".join(res.detectors)))
    return res.detectors[detector]


def relation(ws: Any, run_id: int) -> str:
    """A cache table (``detector``, ``data_row_id``, ``score``, ``flagged``) of the run's scores with its
    default space, for the query compiler."""
    from slicewise.query.search import fresh_run

    r = fresh_run(ws, run_id)
    sp = default_space(ws, r)

    def build(name: str) -> None:
        res = result(ws, r, sp)
        tbl = pa.table({
            "detector": pa.array([d for d, s in res.detectors.items() for _ in range(len(s.ids))], pa.string()),
            "data_row_id": pa.array(np.concatenate([s.ids for s in res.detectors.values()] or [np.zeros(0)]), pa.int64()),
            "score": pa.array(np.concatenate([s.score for s in res.detectors.values()] or [np.zeros(0)]), pa.float64()),
            "flagged": pa.array(np.concatenate([s.flagged for s in res.detectors.values()] or [np.zeros(0)])
                                .astype(np.float64), pa.float64())})
        cur = ws.state.cursor()
        cur.register("_sw_mis", tbl)
        try:
            cur.execute(f"CREATE TABLE {name} AS SELECT * FROM _sw_mis")
        finally:
            cur.unregister("_sw_mis")

    return ws.state.table("mistakes", json.dumps([r.id, sp]), topics(r.id), build, limit=8)


# -- verdicts and precision ---------------------------------------------------------------------
def set_verdict(ws: Any, keys: list[str], verdict: str) -> int:
    """Record reviewers' verdicts on rows (by global key): ``confirmed`` (a real label mistake) or
    ``rejected`` (the label was right); ``clear`` removes both tags. Returns the rows changed."""
    tag = VERDICTS.get(str(verdict).lower())
    if tag is None and str(verdict).lower() != "clear":
        raise QueryError(f"unknown verdict {verdict!r}", where="verdict", fix="use confirmed, rejected or clear")
    if not keys:
        return 0
    with ws.store.transaction() as con:
        ids = ws._require_keys(con, list(keys))
        rows = sorted(set(ids.values()))
        con.execute("DELETE FROM tags WHERE data_row_id IN (SELECT unnest(?)) AND tag IN (?, ?)", [rows, CONFIRMED, REJECTED])
        if tag is not None:
            ws._write_tags(con, [(i, tag) for i in rows])
        ws.store.touch("tags", rows=rows)
    return len(rows)


def verdicts(ws: Any) -> tuple[set[int], set[int]]:
    """(rows tagged mistake-confirmed, rows tagged mistake-rejected); a row with both counts as neither."""
    got = ws.store.cursor().execute("SELECT data_row_id, tag FROM tags WHERE tag IN (?, ?)",
                                    [CONFIRMED, REJECTED]).fetchall()
    conf = {int(i) for i, t in got if t == CONFIRMED}
    rej = {int(i) for i, t in got if t == REJECTED}
    return conf - rej, rej - conf


@dataclass(frozen=True)
class DetectorSummary:
    detector: str
    scored: int  # rows the detector gave a score
    flagged: int
    confirmed: int  # flagged rows with the verdict mistake-confirmed
    rejected: int
    precision: float | None  # confirmed / (confirmed + rejected); None before any verdict on a flagged row
    unflagged_confirmed: int  # confirmed mistakes the detector missed (a lower bound of its misses)


@dataclass(frozen=True)
class Summary:
    run_id: int
    space: str | None
    tasks: list[str]
    detectors: list[DetectorSummary]
    reviewed: int  # rows of the run with a verdict


def precision(flagged: set[int], confirmed: set[int], rejected: set[int]) -> tuple[int, int, float | None]:
    """(confirmed, rejected, precision) among ``flagged``.

    >>> precision({1, 2, 3, 4}, {1, 2, 9}, {3})
    (2, 1, 0.6666666666666666)
    """
    c, r = len(flagged & confirmed), len(flagged & rejected)
    return c, r, (c / (c + r) if c + r else None)


def summary(ws: Any, run: Any, space: str | None = None) -> Summary:
    """Per detector: rows scored and flagged, and the precision the reviewers' verdicts measure."""
    res = result(ws, run, space)
    conf, rej = verdicts(ws)
    run_rows = {int(r[0]) for r in ws.store.cursor().execute(
        "SELECT data_row_id FROM run_rows WHERE run_id = ?", [res.run_id]).fetchall()}
    conf, rej = conf & run_rows, rej & run_rows
    out = []
    for name, s in res.detectors.items():
        flagged = {int(i) for i in s.ids[s.flagged]}
        c, r, p = precision(flagged, conf, rej)
        out.append(DetectorSummary(name, len(s.ids), len(flagged), c, r, p, len(conf - flagged)))
    return Summary(res.run_id, res.space, res.tasks, out, len(conf | rej))


# -- auto slices --------------------------------------------------------------------------------
_WHAT = {"cleanlab": "confident learning (cleanlab's find_label_issues on the run's class probabilities, or its "
                     "object-detection variant on the boxes: wrong class, badly placed box, missed object)",
         "knn": "kNN label disagreement: more than half of the row's 10 nearest labelled rows in the embedding "
                "space carry another class",
         "combined": "cleanlab and the kNN neighbourhood together (confident learning on the mean of the model's "
                     "probabilities and the neighbours' class distribution, or both detectors; for boxes: "
                     "cleanlab's flags, or a prediction of confidence >= 0.5 that contradicts the labels: "
                     "another class, or no label at IoU >= 0.5)"}


def available(ws: Any, run_id: int) -> tuple[str, ...]:
    """The detectors that can score the run: none without radio predictions with probabilities or box
    predictions; ``knn`` only with an embedding space (cheap: no scores are computed)."""
    def look() -> bool:
        row = ws.store.cursor().execute(
            "SELECT EXISTS (SELECT 1 FROM predictions WHERE run_id = ? AND "
            "((kind = 'radio' AND probabilities IS NOT NULL) OR kind = 'bbox'))", [run_id]).fetchone()
        return bool(row and row[0])

    if not ws.state.memo(("mistakes-available", run_id), [f"predictions:{run_id}"], look):
        return ()
    from slicewise.query.search import fresh_run

    return DETECTORS if default_space(ws, fresh_run(ws, run_id)) is not None else ("cleanlab", "combined")


def auto_definitions(ws: Any, run_id: int) -> dict[str, tuple[str, Any, str]]:
    """auto key -> (name, query, description) of the run's label-mistake auto slices."""
    from slicewise.query import Cond, Query, Sort

    out = {}
    for d in available(ws, run_id):
        q = Query(filter=Cond(field=f"mistake.{d}.flagged", op="=", value=1), sort=[Sort(field=f"mistake.{d}", desc=True)])
        out[f"mistakes-{d}"] = (f"Label mistakes ({d})", q, f"rows flagged by {_WHAT[d]}; most likely first")
    return out


def ready(ws: Any, run: Any) -> bool:
    """Whether the run's scores (with its default space) are computed and up to date in this workspace
    object: the auto slices count the label-mistake slices only then, so that listing them never waits
    for the detectors (which run on first use: the panel, `slicewise mistakes`, a filter or sort)."""
    from slicewise.query.search import fresh_run

    r = fresh_run(ws, run)
    return bool(ws.state.remembered(("mistakes", r.id, default_space(ws, r)), topics(r.id))[0])


NOT_READY = ("not counted yet: the label-mistake detectors run on first use (open this slice, the metrics "
             "page's Label mistakes panel, or `slicewise mistakes RUN`)")
