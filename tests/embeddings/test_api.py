"""The embeddings API: spaces, uploads (with clear errors), the view's similarity parameters, slices that
keep their anchors, the embedder job with progress."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

import slicewise


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    path = tmp_path / "w.duckdb"
    rng = np.random.default_rng(5)
    for i in range(12):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / f"i{i}.png")
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": f"i{i}", "row_data": f"i{i}.png", "split": "valid" if i % 2 else "train"}
                               for i in range(12)])
    with TestClient(create_app(path)) as c:
        yield c


def _csv(rows):
    return "global_key,vector\n" + "".join(f'{k},"{list(map(float, v))}"\n' for k, v in rows)


def test_upload_search_and_slice(client):
    vecs = np.eye(12, 6) + 0.05 * np.arange(12)[:, None]
    body = _csv([(f"i{i}", vecs[i]) for i in range(12)])
    r = client.post("/api/embeddings/mine", files={"file": ("v.csv", body.encode(), "text/csv")})
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 12 and r.json()["dim"] == 6 and r.json()["index"] == "exact"
    assert [s["name"] for s in client.get("/api/embeddings").json()] == ["mine"]
    ids = {row["global_key"]: row["id"] for row in client.get("/api/rows", params={"limit": 50}).json()["rows"]}
    a = ids["i3"]
    page = client.get("/api/rows", params={"similar_space": "mine", "similar_to": str(a), "sort": "-similarity",
                                           "q": "split = valid", "similar_k": 3}).json()
    assert page["total"] == 3 and page["similar"] == {"space": "mine", "anchors": [a], "k": 3}
    assert page["rows"][0]["id"] == a and page["rows"][0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    scores = [row["similarity"] for row in page["rows"]]
    assert scores == sorted(scores, reverse=True)
    got = client.get("/api/rows/ids", params={"similar_space": "mine", "similar_to": str(a), "similar_k": 3,
                                              "q": "split = valid"}).json()
    assert sorted(got["ids"]) == sorted(row["id"] for row in page["rows"])
    assert client.get("/api/facets", params={"similar_space": "mine", "similar_to": str(a),
                                             "similar_k": 3}).json()["total"] == 3
    hits = client.get("/api/embeddings/mine/similar", params={"to": str(a), "k": 2}).json()
    assert hits[0]["global_key"] == "i3" and len(hits) == 2
    s = client.post("/api/slices", json={"name": "like i3", "filter": "split = valid", "similar_space": "mine",
                                         "similar_to": str(a), "similar_k": 3, "sort": "-similarity"})
    assert s.status_code == 201, s.text
    assert s.json()["similar"] == {"space": "mine", "anchors": [a], "k": 3}
    again = client.get("/api/rows", params={"slice": s.json()["id"]}).json()
    assert [row["id"] for row in again["rows"]] == [row["id"] for row in page["rows"]]
    assert client.delete("/api/embeddings/mine").status_code == 200
    assert client.get("/api/embeddings").json() == []


@pytest.mark.parametrize("params, status, what", [
    ({"similar_space": "mine", "similar_to": "x"}, 422, "not a list of data row ids"),
    ({"similar_to": "1"}, 422, "needs the embedding space"),
    ({"similar_space": "nope", "similar_to": "1"}, 404, "no embedding space"),
    ({"similar_space": "mine", "similar_to": ",".join(map(str, range(1, 22)))}, 4, "1 to 20"),
    ({"sort": "-similarity"}, 422, "needs anchor rows"),
])
def test_bad_view_parameters(client, params, status, what):
    client.post("/api/embeddings/mine", files={"file": ("v.csv", _csv([("i0", [1, 0])]).encode(), "text/csv")})
    r = client.get("/api/rows", params=params)
    assert (r.status_code // 100 == 4) if status == 4 else r.status_code == status, r.text
    assert what in r.text


def test_bad_upload_names_the_line_and_changes_nothing(client):
    r = client.post("/api/embeddings/bad", files={"file": ("v.csv", b"global_key,a,b\ni0,1,2\ni1,1,oops\n", "text/csv")})
    assert r.status_code == 422 and "v.csv:3" in r.text
    r = client.post("/api/embeddings/bad", files={"file": ("v.csv", b"global_key,a\nzz,1\n", "text/csv")})
    assert r.status_code == 422 and "unknown data row 'zz'" in r.text
    np_buf = io.BytesIO()
    np.save(np_buf, np.ones((2, 3), np.float32))
    r = client.post("/api/embeddings/npy", files={"file": ("v.npy", np_buf.getvalue()),
                                                 "keys": ("k.txt", b"i0\ni1\n")})
    assert r.status_code == 201, r.text
    assert [s["name"] for s in client.get("/api/embeddings").json()] == ["npy"]


def test_embedder_job_with_progress(client):
    r = client.post("/api/embeddings/image/jobs", json={"kind": "image", "size": 64})
    assert r.status_code == 202, r.text
    for _ in range(600):
        st = client.get("/api/embeddings/image/jobs").json()
        if st["state"] != "running":
            break
        time.sleep(0.1)
    assert st["state"] == "done" and st["done"] == st["total"] == 12
    space = client.get("/api/embeddings").json()[0]
    assert space["name"] == "image" and space["count"] == 12 and space["dim"] == 1280
    assert space["job"]["state"] == "done"
