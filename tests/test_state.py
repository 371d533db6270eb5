"""Workspace-owned state: caches live and die with their workspace, catch up with writes by re-reading
only what changed, and survive into the next process through the change log. Every check compares
the cached answer with the answer read straight from the store's tables."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import slicewise
from slicewise import metrics, slices
from slicewise.query import facets, rowcache, search
from slicewise.state import cache_path

QUERIES = [
    ("", "-confidence.max"),
    ('metadata.camera = "cam-1" and not tag:reviewed', "metadata.lux"),
    ("metadata.lux between 2 and 30", "-metadata.lux"),
    ("tag:reviewed or tag:re-label", None),
    ("annotation.count >= 2 and prediction.count = 0", None),
    ("has:cat and not predicted:cat", "split"),
    ("split = valid and dataset = street", "global_key"),
    ("iou < 0.5 and confidence.max > 0.3", "-fp"),
    ("recall[cat] > 0 or fn > 1", "f1"),
    ("annotation is none", None),
    ('precision[dog] >= 0.5 or f1[car] < 0.4 or fn[cat] = 0 or not recall[dog] is any', "global_key"),
    ('metadata.camera in ("cam-2", "cam-9") and split != test and metadata.camera != "cam-7"', None),
]


def _box(rng: random.Random) -> list[float]:
    return [rng.uniform(0, 60), rng.uniform(0, 60), rng.uniform(8, 30), rng.uniform(8, 30)]


def _world(path: Path, n: int = 60, seed: int = 0) -> tuple[slicewise.Workspace, object]:
    rng = random.Random(seed)
    ws = slicewise.open(path)
    for c in ("cat", "dog", "car"):
        ws.create_feature(c, "bbox")
    ws.add_data_rows("street", [{"global_key": f"k{i}", "row_data": f"k{i}.jpg", "width": 100, "height": 100,
                                 "split": rng.choice(["train", "valid", "test"]),
                                 "metadata": {"camera": f"cam-{i % 3}", "lux": float(i)}} for i in range(n // 2)])
    ws.add_data_rows("park", [{"global_key": f"k{i}", "row_data": f"k{i}.jpg", "width": 100, "height": 100,
                               "split": rng.choice(["train", "valid"]), "metadata": {"camera": f"cam-{i % 2}"}}
                              for i in range(n // 2, n)])
    ws.add_tags([f"k{i}" for i in range(0, n, 5)], ["reviewed"])
    anns = [{"data_row": f"k{i}", "feature": rng.choice(["cat", "dog", "car"]), "bbox": _box(rng)}
            for i in range(n) for _ in range(rng.randint(0, 3))]
    ws.add_annotations(anns)
    run = ws.create_run("det", "v1")
    preds = [{"data_row": a["data_row"], "feature": a["feature"] if rng.random() < 0.8 else "dog",
              "bbox": [v + rng.uniform(-4, 4) for v in a["bbox"]], "confidence": round(rng.random(), 3)}
             for a in anns if rng.random() < 0.7]
    ws.add_predictions(run, preds)
    ws.add_run_rows(run, [f"k{i}" for i in range(0, n, 2)])
    metrics.compute_metrics(ws, run)
    return ws, run


FACET_FILTER = "not tag:reviewed"


def _answers(ws: slicewise.Workspace, run: object) -> list[object]:
    out: list[object] = []
    for text, sort in QUERIES:
        page = search(ws, run, text or None, limit=500, sort=sort)
        out.append((text, page.total, [r.global_key for r in page.rows]))
    f = facets(ws, run, FACET_FILTER).model_dump()
    out.append(("facets", {k: v for k, v in f.items() if k != "histograms"}))
    out.append(("all rows", search(ws, None, "metadata.lux > 3", limit=500, sort="global_key").total))
    return out


def _check_histograms(ws: slicewise.Workspace, run: object) -> None:
    """Each histogram's counts are those of the matching rows' values in its own bins (the row cache keeps
    the bins of its build while a patched value stays inside them, so edges may differ from the direct path)."""
    f = facets(ws, run, FACET_FILTER)
    for name, h in f.histograms.items():
        page = search(ws, run, FACET_FILTER, limit=500, sort=name)
        values = np.array([r.sort_value for r in page.rows if r.sort_value is not None], float)
        assert h.missing == f.total - len(values), name
        if not h.counts:
            assert len(values) == 0, name
            continue
        edges = np.asarray(h.edges)
        assert values.min() >= edges[0] - 1e-9 and values.max() <= edges[-1] + 1e-9, name
        idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(h.counts) - 1)
        assert np.bincount(idx, minlength=len(h.counts)).tolist() == h.counts, name


def _agree(ws: slicewise.Workspace, run: object) -> None:
    cached = _answers(ws, run)
    _check_histograms(ws, run)
    ws.state.enabled = False
    try:
        direct = _answers(ws, run)
        _check_histograms(ws, run)
    finally:
        ws.state.enabled = True
    for a, b in zip(cached, direct, strict=True):
        assert a == b


def _base_table(ws: slicewise.Workspace, run: object) -> str:
    rc = rowcache.get(ws, run.id, sorted(ws.metadata_fields()))  # type: ignore[attr-defined]
    assert rc is not None
    return rc.table.split(".")[-1]  # (the cache database's alias differs per open)


def _aligned(ws: slicewise.Workspace, run: object) -> None:
    """Each metrics variant's narrow table holds the same rows as its base table, line for line (its view
    joins them by position)."""
    e = ws.state.entry(("rowcache", run.id, tuple(sorted(ws.metadata_fields()))))  # type: ignore[attr-defined]
    assert e is not None and e.variants
    cur = ws.state.cursor()
    for v in e.variants.values():
        if not v.narrow:  # one table (rowcache.widen): the base's rows, and only those
            assert cur.execute(f"SELECT count(*) FROM {v.table}").fetchone() == cur.execute(
                f"SELECT count(*) FROM {e.base.table}").fetchone()
            assert cur.execute(f"SELECT count(*) FROM {v.table} FULL JOIN {e.base.table} b USING (id) "
                               f"WHERE {v.table}.global_key IS DISTINCT FROM b.global_key").fetchone()[0] == 0
            continue
        n_base, n_narrow = (cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (e.base.table, v.narrow))
        assert n_base == n_narrow
        assert cur.execute(f"SELECT count(*) FROM {e.base.table} b POSITIONAL JOIN {v.narrow} m "
                           "WHERE b.id IS DISTINCT FROM m.m_id").fetchone()[0] == 0


@pytest.mark.parametrize("wide", [False, True], ids=["narrow-variant", "one-table-variant"])
def test_writes_patch_the_row_cache_and_answers_stay_exact(tmp_path, monkeypatch, wide):
    """Random writes of every kind, each followed by the queries: the row cache (patched in place for row
    changes, rebuilt for schema changes) answers exactly like the store's tables, and its metrics variants
    stay line for line with their base (or, made one table by ``warm``, hold the base's rows)."""
    from slicewise.query import warm

    ws, run = _world(tmp_path / "ws.duckdb")
    rng = random.Random(7)
    if wide:
        warm(ws, run)
        e = ws.state.entry(("rowcache", run.id, tuple(sorted(ws.metadata_fields()))))  # type: ignore[attr-defined]
        assert [bool(v.narrow) for v in e.variants.values()] == [False]
    _agree(ws, run)
    _aligned(ws, run)
    keys = [f"k{i}" for i in range(60)]
    ops = [
        lambda: ws.add_tags(rng.sample(keys, 3), [rng.choice(["reviewed", "re-label"])]),
        lambda: ws.remove_tags(rng.sample(keys, 5), ["reviewed"]),
        lambda: ws.set_metadata(rng.choice(keys), {"camera": rng.choice(["cam-0", "cam-1", "cam-new"])}),
        lambda: ws.set_metadata(rng.choice(keys), {"lux": rng.choice([5.5, 100.0, -3.0, None])}),
        lambda: ws.set_split(rng.sample(keys, 2), rng.choice(["train", "test"])),
        lambda: ws.add_annotations([{"data_row": rng.choice(keys), "feature": "cat", "bbox": _box(rng)}],
                                   source=f"extra{rng.random()}"),
        lambda: ws.add_predictions(run, [{"data_row": rng.choice(keys), "feature": "car", "bbox": _box(rng),
                                          "confidence": 0.9}], source=f"extra{rng.random()}"),
        lambda: ws.add_run_rows(run, rng.sample(keys, 3)),
        lambda: slices.create_slice(ws, f"slice {rng.randrange(10**6)}", "fp > 0"),
        lambda: metrics.compute_metrics(ws, run),
    ]
    if wide:  # a new job's view is made one table again
        ops.append(lambda: (metrics.compute_metrics(ws, run), warm(ws, run)))
    for step in range(24):
        rng.choice(ops)()
        _agree(ws, run)
        _aligned(ws, run)
        if step == 12:  # a new data row and a new metadata field: rows appear, columns appear
            ws.add_data_rows("park", [{"global_key": "late", "row_data": "late.jpg", "metadata": {"weather": "fog"}}])
            keys.append("late")
            _agree(ws, run)
    ws.close()


def test_saving_a_slice_keeps_the_row_cache_and_a_tag_patches_it(tmp_path):
    ws, run = _world(tmp_path / "ws.duckdb")
    search(ws, run, "iou < 0.5")
    table = _base_table(ws, run)
    slices.create_slice(ws, "low iou", "iou < 0.5")
    assert _base_table(ws, run) == table  # a slice changes no row: same table, nothing re-read
    ws.add_tags(["k3"], ["odd"])
    assert _base_table(ws, run) == table  # patched in place
    assert [r.global_key for r in search(ws, None, "tag:odd").rows] == ["k3"]
    ws.define_metadata("site", "string")  # a new column: a new table
    assert _base_table(ws, run) != table
    ws.close()


def test_closing_drops_the_caches_and_reopening_starts_clean(tmp_path):
    """The bug behind `make demo` serving 500s: a process-global row cache outlived the connection whose
    in-memory database held its tables. Now a closed workspace takes its caches along."""
    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    first = _answers(ws, run)
    db = ws.state.db
    ws.close()
    for _ in range(3):  # open, query, close: in one process, as `slicewise demo --serve` does
        ws = slicewise.open(path)
        assert ws.state.db != db
        assert _answers(ws, ws.run("det/v1")) == first
        ws.close()


def test_a_later_process_reuses_the_cache_file_and_catches_up_through_the_change_log(tmp_path):
    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    search(ws, run, "iou < 0.5")
    table = _base_table(ws, run)
    ws.close()
    assert cache_path(path).exists()

    ws = slicewise.open(path)  # as a new process would: nothing in memory
    run = ws.run("det/v1")
    assert _base_table(ws, run) == table  # reused from the cache file
    ws.close()

    ws = slicewise.open(path)
    ws.state.persistent = False  # a writer that does not touch the cache file (e.g. another process's import)
    ws.add_tags(["k1", "k2"], ["late"])
    ws.set_metadata("k4", {"camera": "cam-9"})
    ws.close()

    ws = slicewise.open(path)
    run = ws.run("det/v1")
    assert _base_table(ws, run) == table  # caught up through the change log, not rebuilt
    _agree(ws, run)
    assert search(ws, run, "tag:late").total == 2
    ws.close()


def test_a_damaged_cache_file_is_replaced(tmp_path):
    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    expected = _answers(ws, run)
    ws.close()
    cache_path(path).write_bytes(b"this is not a database")
    ws = slicewise.open(path)
    assert _answers(ws, ws.run("det/v1")) == expected
    ws.close()


def test_two_workspace_objects_on_one_file_keep_their_caches_apart(tmp_path):
    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    other = slicewise.open(path)  # same process, same DuckDB instance
    assert other.state.db != ws.state.db
    search(other, None, "tag:mine")  # its row cache exists before the write
    ws.add_tags(["k7"], ["mine"])
    assert search(ws, None, "tag:mine").total == 1
    assert search(other, None, "tag:mine").total == 1  # its cache caught up through the stored change log
    other.close()
    ws.close()


def test_caches_of_a_metrics_job_follow_the_job(tmp_path):
    ws, run = _world(tmp_path / "ws.duckdb")
    def fn_rows() -> set[str]:
        return {r.global_key for r in search(ws, run, "fn > 0", limit=500).rows}

    before = fn_rows()
    even = {f"k{i}" for i in range(0, 60, 2)}  # all in the run
    ws.add_annotations([{"data_row": k, "feature": "car", "bbox": [1, 1, 2, 2]} for k in even], source="more")
    assert metrics.job_status(ws, run).state == "stale"
    assert fn_rows() == before  # the stored records until recomputed
    metrics.compute_metrics(ws, run)
    assert fn_rows() == before | even  # every even row now has an unmatched car
    ws.close()


@pytest.mark.parametrize("n", [1, 2])
def test_change_log_numbers_changes_in_commit_order(tmp_path, n):
    ws = slicewise.open(tmp_path / "ws.duckdb")
    start = ws.store.last_seq()
    for i in range(n):
        ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x.jpg"}])
    ws.add_tags(["r0"], ["t"])
    rows = ws.sql("SELECT seq, topic, rows FROM change_log WHERE seq > ? ORDER BY seq", [start]).fetchall()
    assert [r[0] for r in rows] == list(range(start + 1, start + 1 + len(rows)))
    assert [r[1] for r in rows if r[1] in ("rows", "tags")] == ["rows"] * n + ["tags"]
    assert np.array_equal(rows[-1][2], [ws.data_row("r0").id])
    ws.close()


def test_warm_leaves_the_first_views_tables_for_a_later_process(tmp_path, monkeypatch):
    """``query.warm`` (run by the server when a metrics job ends, and by ``metrics compute``) builds the row
    cache and its metrics variant at the run's thresholds: a later process answers a metric query at those
    thresholds without building anything, and the same as the store does."""
    from slicewise.query import warm

    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    warm(ws, run)
    ws.close()

    ws = slicewise.open(path)
    run = ws.run("det/v1")

    def no_build(*a, **k):
        raise AssertionError("built again")

    monkeypatch.setattr(rowcache, "_build", no_build)
    monkeypatch.setattr(rowcache, "_with_metrics", no_build)
    page = search(ws, run, "fp > 0", sort="-fp", limit=5)
    monkeypatch.undo()
    ws.state.enabled = False  # the same query over the store's tables
    assert page == search(ws, run, "fp > 0", sort="-fp", limit=5)
    ws.close()


def test_the_warm_view_outlives_other_thresholds_and_a_new_job_replaces_it(tmp_path):
    """The first view's variant made one table by ``warm`` (expensive to build at scale) is kept while other
    thresholds come and go; the next job's warm replaces it."""
    from slicewise.query import warm

    ws, run = _world(tmp_path / "ws.duckdb")
    warm(ws, run)
    assert not ws.state._lru.get("metric-outputs")  # (the warm-up's variant was copied: its arrays went)
    key = ("rowcache", run.id, tuple(sorted(ws.metadata_fields())))  # type: ignore[attr-defined]
    e = ws.state.entry(key)
    (wide,) = [v.table for v in e.variants.values() if not v.narrow]
    for c in (0.1, 0.2, 0.3, 0.4, 0.6, 0.7):
        search(ws, run, "fp > 0", c, 0.5, limit=5)
    assert len(e.variants) == rowcache.MAX_VARIANTS
    assert [v.table for v in e.variants.values() if not v.narrow] == [wide]
    page = search(ws, run, "fp > 0", sort="-fp", limit=5)
    assert [v.table for v in ws.state.entry(key).variants.values() if not v.narrow] == [wide]
    metrics.compute_metrics(ws, run, full=True)
    warm(ws, run)
    e = ws.state.entry(key)
    assert len([v for v in e.variants.values() if not v.narrow]) == 1
    assert [v.table for v in e.variants.values() if not v.narrow] != [wide]
    assert page == search(ws, run, "fp > 0", sort="-fp", limit=5)
    ws.close()


def test_variants_in_memory_are_bounded_by_lines_and_the_newest_and_the_warm_one_stay(tmp_path, monkeypatch):
    """A new (c, t)'s metric columns live in the process's memory, at most ``MEMORY_LINES`` lines of them:
    older ones go first, never the one just built nor the warm view's one table; an evicted one's columns are
    freed once no query holds them; and every answer stays the store's."""
    import gc
    import weakref

    from slicewise.query import warm

    ws, run = _world(tmp_path / "ws.duckdb")
    warm(ws, run)
    key = ("rowcache", run.id, tuple(sorted(ws.metadata_fields())))  # type: ignore[attr-defined]
    e = ws.state.entry(key)
    (wide,) = [v.table for v in e.variants.values() if not v.narrow]
    lines = e.variants[next(iter(e.variants))]
    n = int(ws.state.cursor().execute(f"SELECT count(*) FROM {lines.table}").fetchone()[0])
    monkeypatch.setattr(rowcache, "MEMORY_LINES", n)  # room for one variant in memory
    pages, held = {}, []
    for c in (0.1, 0.3, 0.7):
        pages[c] = search(ws, run, "fp > 0", c, 0.5, sort="-fp", limit=5)
        in_memory = [v for v in e.variants.values() if v.columns is not None]
        assert len(in_memory) == 1 and in_memory[0] is list(e.variants.values())[-1]  # (the newest)
        assert ws.store.relations[in_memory[0].narrow] is in_memory[0].columns
        held.append(weakref.ref(in_memory[0].columns))
        assert [v.table for v in e.variants.values() if not v.narrow] == [wide]
        del in_memory
    gc.collect()
    assert [r() is not None for r in held] == [False, False, True]  # (the evicted ones are gone)
    assert len(ws.store.relations) == 1
    monkeypatch.setattr(rowcache, "MEMORY_LINES", n // 2)  # not even one: the newest stays all the same
    pages[0.9] = search(ws, run, "fp > 0", 0.9, 0.5, sort="-fp", limit=5)
    assert [v.columns is not None for v in e.variants.values()] == [False, True]
    ws.state.enabled = False
    for c, page in pages.items():
        assert page == search(ws, run, "fp > 0", c, 0.5, sort="-fp", limit=5)
    ws.close()


def test_warm_with_facets_leaves_the_first_views_facets_nothing_to_fetch(tmp_path, monkeypatch):
    """A server's warm-up after a job (``warm(..., facets=True)``) fetches the first view's facet columns: its
    first facets fetch nothing and count what the store's tables count (the histograms are checked against the
    rows' values by the random-writes test)."""
    from slicewise.query import facetcache, thresholds, warm

    ws, run = _world(tmp_path / "ws.duckdb")
    warm(ws, run, facets=True)
    c, t = thresholds(ws, run)

    def no_fetch(*a, **k):
        raise AssertionError("the facet columns were fetched again")

    monkeypatch.setattr(facetcache, "_fetch", no_fetch)
    monkeypatch.setattr(facetcache, "_metric_part", no_fetch)
    got = facets(ws, run, FACET_FILTER, c, t).model_dump()
    monkeypatch.undo()
    ws.state.enabled = False  # (the direct path bins over the matching rows' range: histograms aside)
    want = facets(ws, run, FACET_FILTER, c, t).model_dump()
    assert {k: v for k, v in got.items() if k != "histograms"} == {k: v for k, v in want.items() if k != "histograms"}
    assert got["total"] > 0 and got["predictions"]
    ws.close()


def test_warm_builds_the_per_feature_metrics_a_later_process_reads(tmp_path, monkeypatch):
    """After a job's warm-up, a later process answers a per-feature filter and the run's per-feature figures at its
    thresholds without computing the per-(row, feature) metrics again."""
    from slicewise.metrics import fast
    from slicewise.query import thresholds, warm

    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    warm(ws, run)
    c, t = thresholds(ws, run)
    ws.close()
    ws = slicewise.open(path)

    def no_build(*a, **k):
        raise AssertionError("the per-(row, feature) metrics were computed again")

    monkeypatch.setattr(fast, "row_feature_columns", no_build)
    page = search(ws, run, "recall[cat] > 0", c, t, sort="global_key", limit=50)
    per_feature = metrics.feature_metrics(ws, run, c, t)
    monkeypatch.undo()
    ws.state.enabled = False
    assert page == search(ws, run, "recall[cat] > 0", c, t, sort="global_key", limit=50) and page.total > 0
    assert per_feature == metrics.feature_metrics(ws, run, c, t)
    ws.close()


def test_a_read_only_workspace_answers_new_thresholds_and_facets_as_a_writable_one(tmp_path):
    """A workspace opened read-only keeps its caches in memory (a new (c, t)'s metric columns as Arrow tables the
    cursors register) and answers exactly as the writable workspace does."""
    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    want = [(search(ws, run, "fp > 0", c, 0.35, sort="-fp", limit=20), facets(ws, run, FACET_FILTER, c, 0.35).model_dump())
            for c in (0.3, 0.7)]
    ws.close()
    with slicewise.open(path, read_only=True) as ro:
        run = ro.runs()[0]
        got = [(search(ro, run, "fp > 0", c, 0.35, sort="-fp", limit=20), facets(ro, run, FACET_FILTER, c, 0.35).model_dump())
               for c in (0.3, 0.7)]
    for (wp, wf), (gp, gf) in zip(want, got, strict=True):
        assert gp == wp and gp.total > 0
        assert {k: v for k, v in gf.items() if k != "histograms"} == {k: v for k, v in wf.items() if k != "histograms"}


def test_bins_of_values_are_the_bins_of_sql():
    """The row cache bins the base table's fields in SQL and the facets count a metrics variant's values in
    NumPy: the same bin for every value, on edges, below and above the range, for NULL, infinities and a
    range of one value."""
    import duckdb
    import pyarrow as pa

    from slicewise.query import bins

    edges = [0.0, 0.1, 0.2, 0.3, 0.30000000000000004, 0.7, 0.9999999999, 1.0]
    values = np.array(edges + [-0.5, 1.5, np.nan, np.inf, -np.inf, 0.05, 0.299999999999, 2 / 3, 1e-12], float)
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest(?::DOUBLE[]) AS x", [[None if np.isnan(x) else float(x) for x in values]])
    con.execute("UPDATE v SET x = 'infinity'::DOUBLE WHERE x > 1e300")
    con.execute("UPDATE v SET x = '-infinity'::DOUBLE WHERE x < -1e300")
    column = pa.array(values, mask=np.isnan(values))
    for spec in [(0.0, 1.0, 10), (0.0, 3.0, 3), (-0.5, 1.5, 10), (0.7, 0.7, 10), (0.3, 0.9, 7)]:
        sql = [r[0] for r in con.execute(f"SELECT {rowcache._bin_expr('x', spec, 0)} FROM v").fetchall()]
        assert bins.counts(column, *spec) == [sql.count(b) for b in range(spec[2])], spec


def test_lru_keeps_values_within_their_byte_budget(tmp_path):
    """The metrics engine's per-level arrays are kept within a byte budget (at 10M rows one level is 1.5 GB):
    older values go first, the newest stays whatever its size."""
    ws = slicewise.open(tmp_path / "ws.duckdb")
    made: list[int] = []

    def make(n: int) -> dict[str, np.ndarray]:
        made.append(n)
        return {"a": np.zeros(n, np.uint8)}

    for key, n in [("a", 400), ("b", 400), ("a", 400), ("c", 300)]:
        ws.state.lru("t", key, lambda n=n: make(n), limit=4, budget=1000)
    assert made == [400, 400, 300]  # "a" was kept when asked again; then "c" pushed out "b" (the oldest)
    ws.state.lru("t", "a", lambda: make(400), limit=4, budget=1000)
    ws.state.lru("t", "b", lambda: make(400), limit=4, budget=1000)
    assert made == [400, 400, 300, 400]  # "a" still there; "b" made again
    ws.state.lru("t", "huge", lambda: make(5000), limit=4, budget=1000)
    ws.state.lru("t", "huge", lambda: make(5000), limit=4, budget=1000)
    assert made[-1] == 5000 and made.count(5000) == 1  # the newest stays, alone
    ws.close()


def test_memory_limit_from_the_environment(tmp_path, monkeypatch):
    """SLICEWISE_MEMORY_LIMIT caps DuckDB's memory for a process; a value that is not an amount is refused,
    saying which variable and how to write it, before the workspace is touched."""
    from slicewise.errors import StoreError

    monkeypatch.setenv("SLICEWISE_MEMORY_LIMIT", "1.5GB")
    ws = slicewise.open(tmp_path / "ws.duckdb")
    limit = ws.sql("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit == "1.3 GiB"  # (1.5 GB = 1.397 GiB, which DuckDB shows to one decimal)
    ws.close()
    monkeypatch.setenv("SLICEWISE_MEMORY_LIMIT", "lots")
    with pytest.raises(StoreError, match="SLICEWISE_MEMORY_LIMIT") as err:
        slicewise.open(tmp_path / "ws.duckdb")
    assert "3GB" in (err.value.fix or "")


def test_a_cached_view_keeps_its_companion_tables_and_they_go_with_it(tmp_path, monkeypatch):
    """The whole grid is a view over two companion tables (<name>__<part>): a later process reuses all three;
    a view retired, or left unvouched by a crash, takes its companions with it."""
    import slicewise.state as state_mod

    path = tmp_path / "ws.duckdb"
    ws, run = _world(path)
    g = metrics.grid_metrics(ws, run)
    db, _, view = g.table.rpartition(".")

    def parts(w) -> set[str]:
        return {r[0] for r in w.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                    "AND starts_with(table_name, ?)", [w.state.db, view]).fetchall()}

    assert parts(ws) == {f"{view}__rows", f"{view}__t"}
    expected = ws.sql(f"SELECT * FROM {g.table} ORDER BY conf_idx, iou_idx, data_row_id").fetchall()
    assert len(expected) == 121 * ws.sql("SELECT count(*) FROM run_rows WHERE run_id = ?", [run.id]).fetchone()[0]
    ws.close()

    ws = slicewise.open(path)  # as a new process would
    run = ws.run("det/v1")
    g2 = metrics.grid_metrics(ws, run)
    assert g2.table.rpartition(".")[2] == view  # reused, not rebuilt
    assert ws.sql(f"SELECT * FROM {g2.table} ORDER BY conf_idx, iou_idx, data_row_id").fetchall() == expected
    # unvouched (as after a crash between the build and the registry): the next open drops the view and its parts
    ws.sql(f"DELETE FROM {ws.state.db}.sw_registry WHERE name = ?", [view])
    ws.close()
    ws = slicewise.open(path)
    ws.state.cursor()  # (attaches the cache file)
    assert parts(ws) == set()
    run = ws.run("det/v1")
    g3 = metrics.grid_metrics(ws, run)  # rebuilt
    assert ws.sql(f"SELECT * FROM {g3.table} ORDER BY conf_idx, iou_idx, data_row_id").fetchall() == expected
    # retired: dropped with its parts once no query can still be reading it
    monkeypatch.setattr(state_mod, "RETIRE_AFTER", 0.0)
    ws.state.retire([g3.table])
    ws.state.retire([])
    assert parts(ws) == set()
    ws.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(float("nan"))), max_size=300))
def test_metric_columns_in_memory_are_null_where_nan(values):
    """A variant's float column as Arrow, NULL where NaN (its validity bitmap packed by a compiled pass), is what
    Arrow's own conversion gives; an integer column's (min, max) is NumPy's."""
    v = np.array(values, np.float64)
    col, stats = rowcache._nullable(v, None)
    col.validate(full=True)
    assert col.equals(pa.array(v, from_pandas=True)) and stats == (None, None, None)
    ints = np.array([int(x) % 1000 if np.isfinite(x) else -7 for x in values], np.int32)
    col, stats = rowcache._nullable(ints, None)
    assert col.equals(pa.array(ints)) and stats == ((int(ints.min()), int(ints.max()), True) if len(ints)
                                                    else (None, None, None))


def test_has_and_predicted_read_a_bit_below_64_feature_ids_and_the_list_above(tmp_path):
    """``has:`` / ``predicted:`` test a bit of the row cache's feature masks for feature ids below 64 and search
    the row's list above: both count what the store's tables count; a row cache an earlier version built (no
    masks) is built again."""
    ws = slicewise.open(tmp_path / "ws.duckdb")
    names = [f"f{i}" for i in range(70)]
    for n in names:
        ws.create_feature(n, "bbox")
    ids = {n: ws.sql("SELECT id FROM features WHERE name = ?", [n]).fetchone()[0] for n in names}
    low, high = min(names, key=ids.get), max(names, key=ids.get)
    assert ids[low] < rowcache.MASK_BITS <= ids[high]
    ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "width": 50, "height": 50} for i in range(12)])
    ws.add_annotations([{"data_row": f"k{i}", "feature": (low, high, names[30])[i % 3], "bbox": [1, 1, 9, 9]}
                        for i in range(12)])
    run = ws.create_run("m", "v")
    ws.add_predictions(run, [{"data_row": f"k{i}", "feature": (high, low)[i % 2], "bbox": [1, 1, 9, 9],
                              "confidence": 0.5} for i in range(0, 12, 3)])
    ws.add_run_rows(run, [f"k{i}" for i in range(12)])
    asked = [f"has:{low}", f"has:{high}", f"predicted:{low} and not has:{low}", f"predicted:{high}",
             f"not has:{names[30]} and not predicted:{high}"]

    def answers():
        return [[r.global_key for r in search(ws, run, q, sort="global_key", limit=20).rows] for q in asked]

    cached = answers()
    rc = rowcache.get(ws, run.id, [])
    assert rc is not None and rc.masks
    from slicewise.query import row_ids_sql

    assert "gt_mask" in row_ids_sql(ws, run, f"has:{low}")[0] and "pred_mask" in row_ids_sql(ws, run, f"predicted:{low}")[0]
    assert "list_contains" in row_ids_sql(ws, run, f"has:{high}")[0]
    ws.state.enabled = False
    direct = answers()
    ws.state.enabled = True
    assert cached == direct and all(cached[:2])
    old = rc.table.split(".")[-1]
    db = ws.state.db
    ws.state.cursor().execute(f"""UPDATE {db}.sw_registry SET info = replace(info, '"masks": true', '"masks": false')
                                  WHERE kind = 'rows'""")  # (as an earlier version registered it)
    ws.close()
    ws = slicewise.open(tmp_path / "ws.duckdb")
    assert answers() == direct
    rc = rowcache.get(ws, run.id, [])
    assert rc is not None and rc.masks and rc.table.split(".")[-1] != old
    ws.close()


def test_columns_in_memory_follow_their_base_through_patches(tmp_path):
    """A (c, t)'s metric columns kept in memory stay line for line with the base table as rows are patched or
    put in the run (a line without metrics), and every answer stays the store's."""
    ws, run = _world(tmp_path / "ws.duckdb")
    page = search(ws, run, "fp >= 0", 0.3, 0.35, sort="-fp", limit=5)  # (a variant in memory)
    e = ws.state.entry(("rowcache", run.id, tuple(sorted(ws.metadata_fields()))))  # type: ignore[attr-defined]
    v = next(iter(e.variants.values()))
    assert v.columns is not None
    outside = [k for (k,) in ws.sql("SELECT global_key FROM data_rows WHERE id NOT IN (SELECT data_row_id FROM run_rows "
                                    "WHERE run_id = ?) ORDER BY id LIMIT 3", [run.id]).fetchall()]  # type: ignore[attr-defined]
    assert len(outside) == 3
    ws.add_run_rows(run, outside)
    ws.add_tags(["k0", "k2", outside[0]], ["seen"])
    search(ws, run, "fp >= 0", 0.3, 0.35, sort="-fp", limit=5)
    _aligned(ws, run)  # (the patched variant among the entry's variants)
    assert page.total > 0
    _agree(ws, run)
    ws.close()


def test_feature_metric_filters_skip_rows_without_the_feature_and_strings_compare_codes(tmp_path):
    """A per-feature metric filter first tests the row cache's feature bit (a recall a label's, a precision a
    prediction's, the others either), but only while the run's metrics job is up to date; ``=`` and ``in`` on a
    string field compare the row cache's integer codes (a value no row has: code -1). Each answer is the one the
    store's own tables give, before and after a write adds a camera no row had."""
    from slicewise.query import row_ids_sql

    ws, run = _world(tmp_path / "ws.duckdb", n=80, seed=4)
    asked = ["recall[cat] > 0", "precision[dog] >= 0.5", "f1[car] < 0.5 or fp[cat] > 0", "not recall[dog] is any",
             "fn[cat] = 0", 'metadata.camera = "cam-1"', 'metadata.camera in ("cam-2", "cam-9")',
             'metadata.camera != "cam-9" and split in (train, test)', 'metadata.camera = "cam-new"']

    def answers():
        return [[r.global_key for r in search(ws, run, q, sort="global_key", limit=500).rows] for q in asked]

    def direct():
        ws.state.enabled = False
        try:
            return answers()
        finally:
            ws.state.enabled = True

    got = answers()
    assert got == direct() and all(got[:6]) and not got[-1]
    sql = {q: row_ids_sql(ws, run, q)[0] for q in asked}
    assert "r.gt_mask & ?" in sql["recall[cat] > 0"] and "r.pred_mask & ?" in sql["precision[dog] >= 0.5"]
    assert "(r.gt_mask | r.pred_mask)" in sql["fn[cat] = 0"]
    assert "md_0_code" in sql['metadata.camera = "cam-1"'] and "split_code" in sql[asked[7]]
    # a defined recall needs a label of the feature: the rows predicted with dog but not labelled have none
    pred_only = {r.global_key for r in search(ws, run, "predicted:dog and not has:dog", limit=500).rows}
    assert pred_only and pred_only <= set(got[3])
    ws.add_data_rows("street", [{"global_key": "n1", "row_data": "n1.jpg", "width": 100, "height": 100,
                                 "metadata": {"camera": "cam-new"}}])
    ws.add_annotations([{"data_row": "k0", "feature": "dog", "bbox": [1, 1, 20, 20]}])
    ws.add_run_rows(run, ["n1"])
    assert metrics.job_status(ws, run).state == "stale"
    assert "gt_mask" not in row_ids_sql(ws, run, "recall[cat] > 0")[0]  # (the records may predate the labels)
    got = answers()
    assert got == direct() and got[-1] == ["n1"]
    ws.close()


def test_a_page_filtered_by_a_feature_metric_gathers_its_matches_once(tmp_path, monkeypatch):
    """A filter on one feature's metric (alone or in the top-level AND) answers its page and its count from one
    gathering of its matches: the same page (rows, sort values, total, next cursor) as a page and a count asked
    apart, for every sort, offset and an empty result."""
    import importlib

    search_module = importlib.import_module("slicewise.query.search")  # (the package's `search` is the function)
    ws, run = _world(tmp_path / "ws.duckdb", n=80, seed=5)
    asked = ["recall[cat] > 0", 'recall[cat] > 0 and metadata.camera != "cam-9"', "precision[dog] >= 0.5 and split = train",
             "f1[car] between 0.2 and 0.9 and not tag:reviewed", "recall[cat] > 5"]
    assert all(search_module._few(search_module.compiler_for(ws, run, 0.5, 0.5), search_module.as_filter(q))
               for q in asked)
    assert not search_module._few(search_module.compiler_for(ws, run, 0.5, 0.5),
                                  search_module.as_filter("recall[cat] > 0 or fn > 1"))
    pages = [(q, sort, offset) for q in asked for sort in ("-iou", "global_key", "metadata.lux, -recall", None)
             for offset in (0, 3, 1000)]

    def answers():
        return [search(ws, run, q, 0.5, 0.5, sort=sort, limit=4, offset=offset) for q, sort, offset in pages]

    got = answers()
    monkeypatch.setattr(search_module, "_few", lambda comp, node: False)
    assert got == answers()
    assert any(p.total > 4 and len(p.rows) == 4 for p in got) and any(p.total == 0 for p in got)
    ws.close()
