"""Per-(c, t) tables in tens of milliseconds: summaries built once per job, counted in NumPy per t.

At compute time the job stores ``metric_rf`` (one line per conf index, data row and feature: counts,
confidence stats, iou) and the match records, whose same-class pairs are read with their IoU and line, see
:mod:`slicewise.metrics.records`. For a chosen (c, t), tp of a (row, feature) is the number of its pair
IoUs above t; fp = predictions - tp; fn = annotations - tp. The arrays of a conf index are cached by
the workspace (a few at a time, see :mod:`slicewise.state`), so moving t, or coming back to a c, costs
only the counting.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from slicewise.metrics import levelfiles, ontologies, records, reduce

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

MAX_LEVELS = 4  # conf indexes whose arrays a workspace keeps
#: and at most this many bytes of them (at 10M rows one conf index's arrays take about 1.5 GB: one is kept)
LEVEL_BYTES = 1 << 30
#: runs x levels read in one go by :func:`levels` (each record spans several levels: one read reads it once)
LEVELS_AT_ONCE = 1_000_000


def view_topics(run_id: int) -> list[str]:
    """What a run's metrics views are made of: its stored records, and the ontology (TN counts its
    features applicable to each row, see :mod:`slicewise.metrics.ontologies`)."""
    return [f"metrics:{run_id}", "features", *ontologies.topics(run_id)]


@dataclass(frozen=True)
class Level:
    """The arrays of one conf index: (row, feature) lines ordered by rf_ord, their TP pairs in the order of
    their lines (:func:`by_line`), and the per-row constants in the order of the run's rows."""

    row_pos: np.ndarray  # position of each line's data row among the run's rows
    feature: np.ndarray  # each line's feature id
    n_pred: np.ndarray
    n_gt: np.ndarray
    tp_line: np.ndarray
    tp_iou: np.ndarray
    rowc: dict[str, np.ndarray]
    #: what is computed once from these arrays (each row's TN, with the ontology it was counted with)
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """Whether a feature's precision / recall / F1 is defined does not depend on t (tp + fp is its number
        of predictions, tp + fn its number of labels), so each per-row mean is one weighted sum of tp."""
        def inv(v: np.ndarray) -> np.ndarray:
            return reduce.safe_divide(1.0, v, default=0.0)

        return {"p": inv(self.n_pred), "r": inv(self.n_gt), "f": 2 * inv(np.add(self.n_pred, self.n_gt, dtype=np.float64))}

    def tp(self, t: float) -> np.ndarray:
        """TP of every line at IoU threshold t."""
        return reduce.tp_above(self.tp_line, self.tp_iou, len(self.n_pred), t)


def run_row_ids(ws: Workspace, run_id: int, gen: int) -> np.ndarray:
    """The run's data row ids, sorted (cached per job generation): mapped from the job's level files when they
    were written (:func:`write_levels`), else read from the store."""
    def read() -> np.ndarray:
        got = levelfiles.load_rows(levelfiles.folder(ws, run_id, gen))
        return got if got is not None else records.run_rows(ws.store.cursor(), run_id)

    return ws.state.lru("metric-rows", (run_id, gen), read, MAX_LEVELS)


def positions(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``np.searchsorted(rows, ids)`` for sorted, distinct ``rows`` (an id's position among them when it is
    there), through a dense table when the ids span at most a few times as many values as there are rows
    (data row ids are mostly consecutive): at 10M rows a binary search per id took 1.6 s of a new
    confidence level."""
    nr = len(rows)
    lo, hi = (int(rows[0]), int(rows[-1])) if nr else (0, 0)
    if not nr or not len(ids) or hi - lo + 1 > 4 * nr + 1024:
        return np.searchsorted(rows, ids)
    present = np.zeros(hi - lo + 1, np.int32 if nr < 2**31 else np.int64)  # (transient: 4 bytes an id of the span)
    present[rows - lo] = 1
    below = np.cumsum(present, dtype=present.dtype) - present  # rows with a smaller id: every id's insertion point
    return np.where(ids < lo, 0, np.where(ids > hi, nr, below[np.clip(ids - lo, 0, hi - lo)])).astype(np.intp)


def _level(s: records.Summaries, rows: np.ndarray) -> Level:
    drid = s.line_row
    # lines are sorted by data row: look each distinct row up once
    if len(drid):
        starts = np.r_[0, np.flatnonzero(drid[1:] != drid[:-1]) + 1]
        pos = np.repeat(positions(rows, drid[starts]), np.diff(np.r_[starts, len(drid)]))
    else:
        pos = np.zeros(0, np.int64)
    return Level(pos, s.line_feature, s.n_pred, s.n_gt, *by_line(s.pair_line, s.pair_iou),
                 _dense(rows, s.rows, s.row_const))


def by_line(line: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (each one's line and IoU) in the order of their lines, as :func:`_row_counts_at` reads them (a
    stable sort; the arrays themselves when they are in order already, as files written since are)."""
    if _in_order(line):
        return line, iou
    o = np.argsort(line, kind="stable")
    return line[o], iou[o]


@numba.njit(cache=True)
def _in_order(v: np.ndarray) -> bool:
    for i in range(1, len(v)):  # noqa: SIM110 - (compiled: a loop, not a generator)
        if v[i] < v[i - 1]:
            return False
    return True


def _dense(rows: np.ndarray, ids: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-row constants of the rows ``ids`` as columns over ``rows`` (a row without any: ROW_CONST's value)."""
    nr = len(rows)
    rpos = positions(rows, ids)
    ok = rpos < nr
    out = {}
    for c, v in values.items():
        d = np.full(nr, records.ROW_CONST[c])
        d[rpos[ok]] = v[ok]
        out[c] = d
    return out


def _conf(ws: Workspace, run_id: int, gen: int, k: int, lv: Level) -> dict[str, np.ndarray]:
    """conf_min, conf_max and conf_mean of every row at conf index k: the level's own, or read from the store
    for a level mapped from files (which leave them out: only the per-row table reports them)."""
    if "conf_min" in lv.rowc:
        return {c: lv.rowc[c] for c in CONF}
    hit = lv.memo.get("conf")
    if hit is None:
        got = records.row_const_at(ws.store.cursor(), run_id, k, CONF)
        hit = lv.memo["conf"] = _dense(run_row_ids(ws, run_id, gen), got.pop("data_row_id"), got)
    return hit  # type: ignore[no-any-return]


CONF = ("conf_min", "conf_max", "conf_mean")


def level(ws: Workspace, run_id: int, gen: int, k: int) -> Level:
    """The arrays of conf index k (cached by the workspace): mapped from the job's files
    (:mod:`slicewise.metrics.levelfiles`), else read from the store and written there."""
    return ws.state.lru("metric-level", (run_id, gen, k), lambda: _level_of(ws, run_id, gen, k), MAX_LEVELS,
                        LEVEL_BYTES)


def _level_of(ws: Workspace, run_id: int, gen: int, k: int) -> Level:
    rows = run_row_ids(ws, run_id, gen)
    path = levelfiles.folder(ws, run_id, gen)
    got = levelfiles.load(path, k)
    if got is not None and len(got["rowc"]["n_pred"]) == len(rows):
        ws.state.lru("level-prefetch", (run_id, gen), lambda: levelfiles.prefetch(path), 8)  # (once per job)
        return Level(got["row_pos"], got["feature"], got["n_pred"], got["n_gt"], *by_line(got["tp_line"], got["tp_iou"]),
                     got["rowc"])  # (files of an earlier version hold the pairs in another order)
    lv = _level(records.summaries(ws.store.cursor(), run_id, k, levelfiles.ROW_COLUMNS), rows)
    levelfiles.save(path, k, lv)
    return lv


def write_levels(ws: Workspace, run_id: int, gen: int, ks: Sequence[int]) -> None:
    """Write the files of the conf indexes ``ks`` that are not written yet, with their TN (a metrics job's
    follow-up: :func:`slicewise.query.warm`); nothing when the workspace keeps no cache folder."""
    path = levelfiles.folder(ws, run_id, gen)
    if path is None:
        return
    todo = [k for k in ks if not levelfiles.saved(path, k)]
    for k, lv in zip(todo, levels(ws, run_id, gen, todo, at_once=1, row_columns=levelfiles.ROW_COLUMNS), strict=True):
        levelfiles.save(path, k, lv)
        row_tn(ws, run_id, gen, k, lv)
    levelfiles.save_rows(path, run_row_ids(ws, run_id, gen))


def levels(ws: Workspace, run_id: int, gen: int, ks: Sequence[int], at_once: int = MAX_LEVELS,
           row_columns: Sequence[str] = tuple(records.ROW_CONST)) -> Iterator[Level]:
    """The arrays of the conf indexes ``ks`` in turn, not cached: all from one read of the summaries on a run of
    up to :data:`LEVELS_AT_ONCE` rows x levels, else ``at_once`` at a time (the whole grid reads every level
    once; a read of four levels of 10M rows holds about 4 GB of per-row constants)."""
    rows = run_row_ids(ws, run_id, gen)
    ks = list(ks)
    per = len(ks) if len(rows) * len(ks) <= LEVELS_AT_ONCE else at_once
    for i in range(0, len(ks), max(per, 1)):
        for s in records.summaries_at(ws.store.cursor(), run_id, ks[i:i + per], row_columns):
            yield _level(s, rows)


def _details(ws: Workspace, run_id: int, gen: int, k: int) -> dict[str, np.ndarray]:
    return ws.state.lru("metric-extras", (run_id, gen, k),
                        lambda: records.line_details(ws.store.cursor(), run_id, k), MAX_LEVELS, LEVEL_BYTES // 2)


def row_feature_columns(ws: Workspace, run_id: int, gen: int, k: int, t: float) -> dict[str, np.ndarray]:
    """The per-(row, feature) table at (k, t) as columns (NaN: undefined)."""
    lv = level(ws, run_id, gen, k)
    ex = _details(ws, run_id, gen, k)
    tp = lv.tp(t)
    fp, fn = lv.n_pred - tp, lv.n_gt - tp
    return {
        "data_row_id": ex["data_row_id"], "feature_id": ex["feature_id"], "tp": tp.astype(np.int32),
        "fp": fp.astype(np.int32), "fn": fn.astype(np.int32), "tn": np.zeros(len(tp), np.int32),
        "precision": reduce.precision(tp, fp), "recall": reduce.recall(tp, fn), "f1": reduce.f1(tp, fp, fn),
        "iou": reduce.round_ratio(ex["iou"]), "conf_min": ex["conf_min"], "conf_max": ex["conf_max"],
        "conf_mean": reduce.safe_divide(ex["conf_sum"], lv.n_pred),
        "n_predictions": lv.n_pred.astype(np.int32), "n_annotations": lv.n_gt.astype(np.int32)}


def row_tn(ws: Workspace, run_id: int, gen: int, k: int, lv: Level | None = None) -> np.ndarray:
    """TN of every run row at conf index k (whose arrays ``lv`` are, if given): the run's ontology features
    applicable to the row that are neither labelled nor predicted (kept at c) on it."""
    lv = level(ws, run_id, gen, k) if lv is None else lv
    version = ws.state.fingerprint(ontologies.topics(run_id))  # (what the applicability is made of)
    hit = lv.memo.get("tn")
    if hit is not None and hit[0] == version:  # (TN does not depend on t: a new IoU threshold reuses it)
        return hit[1]  # type: ignore[no-any-return]
    path = levelfiles.folder(ws, run_id, gen)
    tn = levelfiles.load_tn(path, k, version)
    if tn is not None:  # (kept in the smallest integers: the tables' column is 32-bit)
        tn = tn.astype(np.int32)
    nr = len(run_row_ids(ws, run_id, gen))
    if tn is None or len(tn) != nr:
        ap = ontologies.applicability(ws, run_id)
        if len(ap.group) != nr:  # rows changed since the job: the ontology's view of them is not the records'
            tn = np.zeros(nr, np.int32)
        else:
            present = ap.applies(lv.row_pos, lv.feature)
            tn = (ap.n_applicable - np.bincount(lv.row_pos, weights=present, minlength=nr)).astype(np.int32)
            levelfiles.save_tn(path, k, version, tn)
        tn.flags.writeable = False
    lv.memo["tn"] = (version, tn)
    return tn


@numba.njit(cache=True)
def row_sums(row_pos: np.ndarray, tp_all: np.ndarray, wp: np.ndarray, wr: np.ndarray, wf: np.ndarray,
             nr: int) -> np.ndarray:
    """Per (t, row): the sums of tp, tp * wp, tp * wr and tp * wf over the row's lines, in the lines' order
    (as a bincount per t would add them: the same floats); ``tp_all`` is (lines, T)."""
    L, T = tp_all.shape
    out = np.zeros((4, T, nr))
    for j in range(L):
        r = row_pos[j]
        for t in range(T):
            v = float(tp_all[j, t])
            out[0, t, r] += v
            out[1, t, r] += v * wp[j]
            out[2, t, r] += v * wr[j]
            out[3, t, r] += v * wf[j]
    return out


@numba.njit(cache=True, inline="always")
def _ratio(s: float, n: float, scale: float) -> float:
    """s / n (NaN when n is 0), rounded as ``np.round(x, d)`` rounds when ``scale`` is 10**d (0: not)."""
    if n == 0:
        return np.nan
    x = s / n
    return np.rint(x * scale) / scale if scale > 0 else x


@numba.njit(cache=True, inline="always")
def _row_out(r: int, s0: float, sp: float, sr: float, sf: float, row_pred: np.ndarray, row_gt: np.ndarray,
             n_p: np.ndarray, n_r: np.ndarray, n_f: np.ndarray, tp_r: np.ndarray, fp: np.ndarray, fn: np.ndarray,
             p: np.ndarray, rc: np.ndarray, f: np.ndarray, scale: float) -> None:
    tp_r[r] = np.int32(s0)
    fp[r] = np.int32(row_pred[r] - s0)
    fn[r] = np.int32(row_gt[r] - s0)
    p[r] = _ratio(sp, float(n_p[r]), scale)
    rc[r] = _ratio(sr, float(n_r[r]), scale)
    f[r] = _ratio(sf, float(n_f[r]), scale)


@numba.njit(cache=True, parallel=True)
def _row_counts_at(pair_line: np.ndarray, pair_iou: np.ndarray, t: float, row_pos: np.ndarray, n_pred: np.ndarray,
                   n_gt: np.ndarray, row_pred: np.ndarray, row_gt: np.ndarray, n_p: np.ndarray, n_r: np.ndarray,
                   n_f: np.ndarray, scale: float, tp_r: np.ndarray, fp: np.ndarray, fn: np.ndarray, p: np.ndarray,
                   rc: np.ndarray, f: np.ndarray) -> None:
    """Per row at IoU threshold t, into ``tp_r`` ... ``f`` (an entry per row): tp, fp, fn and precision, recall and
    F1 (means over the row's features where defined, NaN where none is; rounded as ``np.round(x, d)`` when
    ``scale`` is 10**d), in one pass over the lines and their pairs (``pair_line`` in order, see :func:`by_line`:
    a line's TP is the number of its pairs with an IoU above t), in parallel over runs of whole rows, each row
    written once, those without a line too: the same floats as :func:`row_sums` with :attr:`Level.weights`
    (each weight computed as they are, a row's lines added in order; a line with no TP adds exactly 0 and is
    skipped)."""
    L = len(row_pos)
    nr = len(tp_r)
    if L == 0:
        for r in numba.prange(nr):
            _row_out(r, 0.0, 0.0, 0.0, 0.0, row_pred, row_gt, n_p, n_r, n_f, tp_r, fp, fn, p, rc, f, scale)
        return
    n_chunks = 64
    bounds = np.empty(n_chunks + 1, np.int64)
    for c in range(n_chunks + 1):  # chunk boundaries moved to the next row's first line
        b = L * c // n_chunks
        while 0 < b < L and row_pos[b] == row_pos[b - 1]:
            b += 1
        bounds[c] = b
    first_pair = np.searchsorted(pair_line, bounds)  # (each chunk's first line's first pair)
    n_pairs = len(pair_line)
    for c in numba.prange(n_chunks):
        lo, hi = bounds[c], max(bounds[c], bounds[c + 1])
        if lo == 0:  # the rows before the first line's
            for r in range(0, row_pos[0] if hi > 0 else 0):
                _row_out(r, 0.0, 0.0, 0.0, 0.0, row_pred, row_gt, n_p, n_r, n_f, tp_r, fp, fn, p, rc, f, scale)
        q = first_pair[c]
        s0 = sp = sr = sf = 0.0
        for j in range(lo, hi):
            tp = 0
            while q < n_pairs and pair_line[q] == j:
                if pair_iou[q] > t:
                    tp += 1
                q += 1
            if tp != 0:
                v = float(tp)
                npj, ngj = float(n_pred[j]), float(n_gt[j])
                both = float(n_pred[j] + n_gt[j])
                s0 += v
                sp += v * (1.0 / npj if npj != 0 else 0.0)
                sr += v * (1.0 / ngj if ngj != 0 else 0.0)
                sf += v * (2 * (1.0 / both) if both != 0 else 0.0)
            if j + 1 == L or row_pos[j + 1] != row_pos[j]:  # the row's last line; then the rows with none up to
                _row_out(row_pos[j], s0, sp, sr, sf, row_pred, row_gt, n_p, n_r, n_f, tp_r, fp, fn, p, rc, f,
                         scale)  # the next line's (or the end), which no other chunk writes
                for r in range(row_pos[j] + 1, row_pos[j + 1] if j + 1 < L else nr):
                    _row_out(r, 0.0, 0.0, 0.0, 0.0, row_pred, row_gt, n_p, n_r, n_f, tp_r, fp, fn, p, rc, f, scale)
                s0 = sp = sr = sf = 0.0


@numba.njit(cache=True, nogil=True)
def _new_set(n: int, touch: bool) -> tuple[np.ndarray, ...]:
    """A set of :class:`Outputs` (its pages written once when ``touch``), allocated by the compiled code's
    allocator: NumPy's asks the system for huge pages, which a machine short of free contiguous memory compacts
    for, stalling the first writes (at 10M rows 0.3-0.5 s a set, against 0.1 s for plain pages)."""
    got = (np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n), np.empty(n),
           np.empty(n))
    if touch:
        for i in got[:3]:
            i[:] = 0
        for x in got[3:]:
            x[:] = 0.0
    return got


_OUTPUTS = "metric-outputs"  # (the workspace's pools of Outputs, by number of rows)


def release_outputs(ws: Workspace) -> None:
    """Let the workspace's pools of :class:`Outputs` go (their sets are freed once no variant holds them): the
    warm-up after a job, whose variant is copied into a table, leaves none behind for the rest of a job's process
    (at 10M rows two sets, 0.7 GB)."""
    ws.state.forget(_OUTPUTS)


class Outputs:
    """Sets of the six per-row arrays :func:`row_arrays` computes, for one number of rows, used again once nothing
    holds them (the metrics variant that had a set is gone): at 10M rows a fresh set is 360 MB of new pages,
    which cost the kernel about 100 ms to fault in (and up to several times that when the system compacts memory
    for them). A set is free when no object but this pool refers to its arrays (an Arrow column made from one,
    or a view of one, refers to it). When the first set is made, a second is made in the background (its pages
    written): the next view takes it while the first is still in use; from the third on, a view mostly finds the
    set of a variant the row cache let go (it lets one go before it makes one, see
    :func:`slicewise.query.rowcache.get`). At most :attr:`KEEP` sets are kept; beyond, a set is made for its caller
    only."""

    KEEP = 3  # (the row cache keeps up to two variants of a run's rows in memory, and makes a third)

    def __init__(self, n: int, *, spare: bool = True) -> None:
        self.n = n
        self.spare = spare  # (a second set prepared after the first: not for a pool used once)
        self._sets: list[tuple[np.ndarray, ...]] = []
        self._lock = threading.Lock()
        self._spare: threading.Thread | None = None

    def take(self) -> list[np.ndarray]:
        """[tp, fp, fn as int32; precision, recall, f1 as float64]: a free set of the pool, else a new one (in a
        new list: it refers to the arrays before the lock is let go, so no other take finds them free)."""
        spare = self._spare
        if spare is not None:  # (being made: ready in a moment)
            spare.join()
        with self._lock:
            got = next((s for s in self._sets if self._free(s)), None)
            if got is None:
                got = _new_set(self.n, False)
                if not self._sets and self.spare:  # (the first: a second is made in the background, for the next view)
                    self._spare = threading.Thread(target=self._make_spare, name="slicewise-spare-outputs",
                                                   daemon=True)
                    self._spare.start()
                if len(self._sets) < self.KEEP:
                    self._sets.append(got)
            return list(got)

    def _make_spare(self) -> None:
        made = _new_set(self.n, True)
        with self._lock:
            if len(self._sets) < self.KEEP:
                self._sets.append(made)
            self._spare = None

    @staticmethod
    def _free(arrays: tuple[np.ndarray, ...]) -> bool:
        # (when free, an array's references are the set's tuple, the loop's variable and getrefcount's argument)
        return all(sys.getrefcount(a) <= 3 for a in arrays)


#: the suffix of a column's validity in :func:`row_arrays` (with ``validity``)
VALID = ".valid"


def row_arrays(lv: Level, rows: np.ndarray, t: float, tn: np.ndarray, conf: dict[str, np.ndarray], *,
               counts: bool = True, outputs: Outputs | None = None, validity: bool = False) -> dict[str, np.ndarray]:
    """Per-row columns (in ``rows`` order) at IoU threshold t given the rows' TN (:func:`row_tn`) and
    confidence columns (:func:`_conf`, or none); the counts of predictions and labels unless not ``counts``.
    tp, fp, fn, precision, recall and f1 are written into a set of ``outputs`` when given (of ``len(rows)``).
    With ``validity``, ``precision.valid``, ``recall.valid``, ``f1.valid`` and ``iou.valid`` are those columns'
    Arrow validity bitmaps (a bit per row, least significant first: 1 where the value is not NaN). Whether a
    ratio is defined does not depend on t, so they are made once per conf index (at 10M rows a bitmap made from
    a column costs 10 ms).

    precision, recall, f1 and iou are means over the row's features where defined. What does not depend
    on t (iou, the counts of predictions and labels) is computed once per conf index."""
    c = lv.rowc
    tp_r, fp, fn, p, r, f = (outputs or Outputs(len(rows), spare=False)).take()
    _row_counts_at(lv.tp_line, lv.tp_iou, float(t), lv.row_pos, lv.n_pred, lv.n_gt, c["n_pred"], c["n_gt"],
                   c["n_p"], c["n_r"], c["n_f"], reduce.ratio_scale(), tp_r, fp, fn, p, r, f)
    out = {"data_row_id": rows, "tp": tp_r, "fp": fp, "fn": fn, "tn": tn, "precision": p, "recall": r, "f1": f,
           "iou": _const(lv, "row-iou", lambda: rounded(c["iou"], reduce.ratio_scale())), **conf}
    if counts:
        out["n_predictions"] = _const(lv, "row-n_pred", lambda: c["n_pred"].astype(np.int32))
        out["n_annotations"] = _const(lv, "row-n_gt", lambda: c["n_gt"].astype(np.int32))
    if validity:  # (a ratio is NaN where its number of features is 0: see _ratio)
        for name, of in (("precision", "n_p"), ("recall", "n_r"), ("f1", "n_f"), ("iou", "")):
            def bits(of: str = of) -> np.ndarray:
                return np.packbits(c[of] != 0 if of else ~np.isnan(out["iou"]), bitorder="little")

            out[name + VALID] = _const(lv, "valid-" + name, bits)
    return out


def _const(lv: Level, name: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """A per-row column of a conf index that does not depend on t, made once (read-only)."""
    hit = lv.memo.get(name)
    if hit is None:
        hit = lv.memo[name] = make()
        hit.flags.writeable = False
    return hit  # type: ignore[no-any-return]


@numba.njit(cache=True, parallel=True)
def rounded(x: np.ndarray, scale: float) -> np.ndarray:
    """``np.round(x, d)`` of doubles when ``scale`` is 10**d (:func:`slicewise.metrics.reduce.ratio_scale`),
    in parallel."""
    out = np.empty(len(x))
    for i in numba.prange(len(x)):
        out[i] = _ratio(x[i], 1.0, scale)
    return out


def row_columns(ws: Workspace, run_id: int, gen: int, k: int, t: float, *, conf: bool = True,
                validity: bool = False) -> dict[str, np.ndarray]:
    """The per-row table at (k, t) as columns (NaN: undefined); without the confidence columns and the counts
    of predictions and labels unless ``conf`` (the query engine's row cache has its own); with the ratios'
    validity bitmaps when ``validity`` (see :func:`row_arrays`)."""
    lv = level(ws, run_id, gen, k)
    rows = run_row_ids(ws, run_id, gen)
    # (a pool the workspace keeps; none when it keeps no caches: each call would make one of its own)
    pool = ws.state.lru(_OUTPUTS, len(rows), lambda: Outputs(len(rows)), 2) if ws.state.usable() else None
    return row_arrays(lv, rows, t, row_tn(ws, run_id, gen, k, lv), _conf(ws, run_id, gen, k, lv) if conf else {},
                      counts=conf, outputs=pool, validity=validity)
