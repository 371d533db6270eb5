"""Slice names, limits, CRUD and dynamic membership."""

from __future__ import annotations

import pytest
from query.sw_query_world import _model, reset_fake_metrics

from slicewise import slices
from slicewise.errors import ConflictError, LimitError, NotFoundError, QueryError, ValidationError


def test_names_of_3_and_30_characters_are_accepted_2_and_31_refused(ws, table_snapshot):
    assert slices.create_slice(ws, "abc", "split = valid").name == "abc"
    assert slices.create_slice(ws, "x" * 30, "split = valid").name == "x" * 30
    assert slices.create_slice(ws, "  padded  ", None).name == "padded"
    before = table_snapshot(ws)
    for bad in ["ab", "y" * 31, "   ", "a\nb"]:
        with pytest.raises(ValidationError) as ei:
            slices.create_slice(ws, bad, "split = valid")
        assert "3 to 30" in str(ei.value) or "control" in str(ei.value)
    with pytest.raises(ConflictError, match="already exists"):
        slices.create_slice(ws, "ABC", "split = train")  # names are unique whatever their case
    with pytest.raises(ValidationError):
        slices.rename_slice(ws, "abc", "zz")
    with pytest.raises(ConflictError):
        slices.rename_slice(ws, "abc", "x" * 30)
    assert table_snapshot(ws) == before


def test_the_101st_slice_is_refused_and_auto_slices_do_not_count(gen, table_snapshot):
    ws = gen.ws
    auto = slices.auto_slices(ws, gen.run)
    assert len(auto) == 12  # the ten of the reference product and low-recall classes, + 2 label-mistake slices
    for i in range(100):
        slices.create_slice(ws, f"slice {i:03d}", f"metadata.speed > {i}")
    before = table_snapshot(ws)
    with pytest.raises(LimitError) as ei:
        slices.create_slice(ws, "one too many", "tag:night")
    assert "100" in str(ei.value) and "delete" in str(ei.value)
    with pytest.raises(LimitError):
        slices.update_slice(ws, "slice 000", filter="tag:night", save_as="one too many")
    assert table_snapshot(ws) == before
    assert len(slices.list_slices(ws)) == 100
    assert [s.auto_key for s in slices.auto_slices(ws, gen.run)] == [s.auto_key for s in auto]
    slices.delete_slice(ws, "slice 042")
    assert slices.create_slice(ws, "one too many", "tag:night").name == "one too many"


def test_update_in_place_save_as_rename_delete(gen):
    ws, run = gen.ws, gen.run
    s = slices.create_slice(ws, "night", "tag:night", description="night images", sort="-confidence.max")
    n_night = slices.slice_count(ws, s.id, run)
    assert n_night == sum("night" in r.tags for r in gen.run_rows())
    # update in place: same id, new filter
    u = slices.update_slice(ws, "night", filter="tag:night and split = valid")
    assert (u.id, u.name, u.description, u.sort) == (s.id, "night", "night images", "-confidence.max")
    assert slices.slice_count(ws, "night", run) == sum("night" in r.tags and r.split == "valid" for r in gen.run_rows())
    # save as new: the original is unchanged
    n = slices.update_slice(ws, "night", filter="tag:night and split = test", save_as="night test")
    assert n.id != s.id and n.filter == "tag:night and split = test" and n.description == "night images"
    assert slices.get_slice(ws, "night").filter == "tag:night and split = valid"
    # rename keeps the id and the query
    r = slices.rename_slice(ws, s.id, "night valid")
    assert (r.id, r.filter) == (s.id, "tag:night and split = valid")
    with pytest.raises(NotFoundError, match="did you mean 'night valid'"):
        slices.get_slice(ws, "night vlid")
    slices.delete_slice(ws, "night valid")
    assert [x.name for x in slices.list_slices(ws)] == ["night test"]
    # a bad filter is refused before anything is stored
    with pytest.raises(QueryError, match="did you mean 'metadata.speed'"):
        slices.update_slice(ws, "night test", filter="metadata.sped > 3")
    with pytest.raises(QueryError, match="column"):
        slices.create_slice(ws, "broken", "tag:night and")
    assert [x.filter for x in slices.list_slices(ws)] == ["tag:night and split = test"]
    # auto slices cannot be edited or deleted
    fp = slices.auto_slice(ws, run, "false-positive")
    with pytest.raises(ConflictError):
        slices.delete_slice(ws, fp.id)
    with pytest.raises(ConflictError):
        slices.update_slice(ws, fp.id, filter="fp > 1")
    assert slices.update_slice(ws, fp.id, filter="fp > 1", save_as="my fp").filter == "fp > 1"


def test_dynamic_membership(gen):
    """Add rows, edit metadata, add tags and recompute metrics: the saved slice follows by itself."""
    ws, run = gen.ws, gen.run
    s = slices.create_slice(ws, "fast night", 'metadata.speed > 30 and tag:night and tp >= 1')
    stored = ws.sql("SELECT query, updated_at FROM slices WHERE id = ?", [s.id]).fetchone()

    def expected() -> set[str]:
        return {r.key for r in gen.run_rows() if (r.md.get("speed") or -1) > 30 and "night" in r.tags
                and gen.metric(r.id, "tp") >= 1}

    def members() -> set[str]:
        return {r.global_key for r in slices.slice_rows(ws, s.id, run, limit=1000).rows}

    assert members() == expected()
    before = members()
    # new data rows that match (metadata, tag, in the run, with metrics)
    ws.add_data_rows("gen", [{"global_key": "new-1", "row_data": "n.jpg", "metadata": {"speed": 45.0},
                              "tags": ["night"]}])
    ws.add_run_rows(run, ["new-1"])
    # edit metadata of a member so that it leaves; tag a non-member so that it joins
    leaving = sorted(before)[0]
    ws.update_metadata({leaving: {"speed": 1.0}})
    joiner = next(r for r in gen.run_rows() if (r.md.get("speed") or -1) > 30 and "night" not in r.tags)
    ws.add_tags([joiner.key], ["night"])
    # recompute metrics: new values for every row (the fake engine draws them afresh)
    fresh = _model(ws, run)
    gen.rows, gen.run_ids = fresh.rows, fresh.run_ids
    reset_fake_metrics(gen)
    after = members()
    assert after == expected()
    assert after != before
    assert leaving not in after
    # the slice itself was never touched
    assert ws.sql("SELECT query, updated_at FROM slices WHERE id = ?", [s.id]).fetchone() == stored


def test_metric_slices_follow_the_run_and_thresholds_viewed(gen):
    ws, run = gen.ws, gen.run
    s = slices.create_slice(ws, "low recall", "recall < 0.5")
    at5 = {r.id for r in gen.run_rows() if (gen.metric(r.id, "recall", c=0.5) is not None
                                           and gen.metric(r.id, "recall", c=0.5) < 0.5)}
    at9 = {r.id for r in gen.run_rows() if (gen.metric(r.id, "recall", c=0.9) is not None
                                           and gen.metric(r.id, "recall", c=0.9) < 0.5)}
    assert at5 != at9
    assert slices.slice_count(ws, s, run, 0.5, 0.5) == len(at5)
    assert slices.slice_count(ws, s, run, 0.9, 0.5) == len(at9)
    # the run's chosen thresholds are the default
    ws.update_run_config(run, view_confidence=0.9)
    assert slices.slice_count(ws, s, run) == len(at9)
    assert [x.count for x in slices.list_slices(ws, run=run)] == [len(at9)]
