"""Embedding spaces: storing, reading back, validation (a failed write changes nothing), files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slicewise import embeddings as emb
from slicewise.errors import ConflictError, LimitError, NotFoundError, ValidationError


@pytest.fixture
def ws6(ws):
    ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(6)])
    return ws


def test_round_trip_and_replace(ws6):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 8)).astype(np.float32)
    info = emb.add_vectors(ws6, "s1", ["k3", "k0", "k1", "k2"], v)
    assert (info.name, info.kind, info.dim, info.count, info.metric, info.source) == ("s1", "image", 8, 4, "cosine", "custom")
    ids, vecs = emb.vectors(ws6, "s1")
    key_of = {r.id: r.global_key for r in ws6.data_rows()}
    assert [key_of[i] for i in ids] == ["k0", "k1", "k2", "k3"]
    np.testing.assert_array_equal(vecs, v[[1, 2, 3, 0]])
    # ids as well as keys; a second write replaces that row's vector and adds the new one
    new = np.ones((2, 8), np.float32)
    emb.add_vectors(ws6, "s1", [int(ids[0]), "k5"], new)
    ids2, vecs2 = emb.vectors(ws6, "s1")
    assert len(ids2) == 5
    np.testing.assert_array_equal(vecs2[0], new[0])
    sub_ids, sub = emb.vectors(ws6, "s1", ids=[int(ids[1]), 999])
    assert sub_ids.tolist() == [int(ids[1])]
    np.testing.assert_array_equal(sub[0], v[2])
    assert [s.name for s in emb.spaces(ws6)] == ["s1"]
    emb.drop_space(ws6, "s1")
    assert emb.spaces(ws6) == []
    with pytest.raises(NotFoundError):
        emb.vectors(ws6, "s1")


@pytest.mark.parametrize("rows, vecs, what", [
    (["k0", "nope"], np.zeros((2, 3)), "unknown data row 'nope'"),
    (["k0", "k0"], np.zeros((2, 3)), "second vector"),
    (["k0", "k1"], np.array([[1, np.nan, 0], [0, 0, 0]]), "NaN"),
    (["k0"], np.zeros((2, 3)), "1 row keys for 2 vectors"),
    (["k0"], np.zeros(3), "not (n, dim)"),
])
def test_bad_input_changes_nothing(ws6, table_snapshot, rows, vecs, what):
    emb.add_vectors(ws6, "s", ["k4"], np.zeros((1, 3)))
    before = table_snapshot(ws6)
    with pytest.raises(ValidationError) as exc:
        emb.add_vectors(ws6, "s", rows, vecs)
    assert what in str(exc.value)
    assert table_snapshot(ws6) == before


def test_limits_and_conflicts(ws6, table_snapshot):
    emb.add_vectors(ws6, "s", ["k0"], np.zeros((1, 3)))
    before = table_snapshot(ws6)
    with pytest.raises(ValidationError, match="holds 3-dimensional"):
        emb.add_vectors(ws6, "s", ["k1"], np.zeros((1, 4)))
    with pytest.raises(ConflictError, match="embeds image rows"):
        emb.add_vectors(ws6, "s", ["k1"], np.zeros((1, 3)), kind="text")
    with pytest.raises(LimitError, match="4097 dimensions"):
        emb.add_vectors(ws6, "t", ["k1"], np.zeros((1, 4097)))
    with pytest.raises(ValidationError, match="space name"):
        emb.add_vectors(ws6, "bad name!", ["k1"], np.zeros((1, 3)))
    assert table_snapshot(ws6) == before
    emb.add_vectors(ws6, "wide", ["k1"], np.ones((1, 4096)))  # the limit itself is fine
    assert emb.space(ws6, "wide").dim == 4096


def test_files(ws6, tmp_path):
    rng = np.random.default_rng(1)
    v = rng.normal(size=(3, 5)).astype(np.float32)
    np.save(tmp_path / "v.npy", v)
    (tmp_path / "keys.txt").write_text("k0\nk1\nk2\n")
    emb.import_file(ws6, "npy", str(tmp_path / "v.npy"), str(tmp_path / "keys.txt"))
    np.testing.assert_array_equal(emb.vectors(ws6, "npy")[1], v)
    pq.write_table(pa.table({"global_key": ["k0", "k1", "k2"], "vector": [list(map(float, r)) for r in v]}),
                   tmp_path / "v.parquet")
    emb.import_file(ws6, "pq", str(tmp_path / "v.parquet"))
    np.testing.assert_allclose(emb.vectors(ws6, "pq")[1], v)
    lines = ["global_key,vector"] + [f'k{i},"{json.dumps([float(x) for x in r])}"' for i, r in enumerate(v)]
    (tmp_path / "v.csv").write_text("\n".join(lines) + "\n")
    emb.import_file(ws6, "csv", str(tmp_path / "v.csv"))
    np.testing.assert_allclose(emb.vectors(ws6, "csv")[1], v, rtol=1e-6)
    # errors name the file and line
    (tmp_path / "bad.csv").write_text("global_key,a,b\nk0,1,2\nk1,1,x\n")
    with pytest.raises(ValidationError, match=r"bad.csv:3"):
        emb.import_file(ws6, "csv2", str(tmp_path / "bad.csv"))
    (tmp_path / "unknown.csv").write_text("global_key,a,b\nk0,1,2\nzz,1,2\n")
    with pytest.raises(ValidationError, match=r"unknown.csv: row 2.*unknown data row 'zz'"):
        emb.import_file(ws6, "csv2", str(tmp_path / "unknown.csv"))
    with pytest.raises(ValidationError, match="needs its keys"):
        emb.import_file(ws6, "npy2", str(tmp_path / "v.npy"))
    assert "csv2" not in [s.name for s in emb.spaces(ws6)]


def test_vectors_cached_until_written(ws6):
    emb.add_vectors(ws6, "s", ["k0"], np.zeros((1, 2)))
    a = emb.vectors(ws6, "s")[1]
    assert emb.vectors(ws6, "s")[1] is a  # loaded once
    emb.add_vectors(ws6, "s", ["k1"], np.ones((1, 2)))
    assert len(emb.vectors(ws6, "s")[0]) == 2
