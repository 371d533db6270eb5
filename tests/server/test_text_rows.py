"""Text data rows with NER spans and classifications through the API (the gallery shows text, spans, chips)."""

from __future__ import annotations

import pytest


@pytest.fixture
def text_client(tmp_path):
    from fastapi.testclient import TestClient

    import slicewise
    from slicewise.server import create_app

    path = tmp_path / "text.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("reviews", [
            {"global_key": "r1", "row_data": "Alice flew to Paris on Monday.", "media_type": "text", "split": "valid"},
            {"global_key": "r2", "row_data": "x" * 6000, "media_type": "text"},
        ])
        ws.create_feature("person", "ner")
        ws.create_feature("sentiment", "radio", options=["pos", "neg"])
        ws.add_annotations([{"data_row": "r1", "feature": "person", "span": [0, 5]},
                            {"data_row": "r1", "feature": "sentiment", "answer": "pos"}])
        run = ws.create_run("ner-model", "v1")
        ws.add_predictions(run, [{"data_row": "r1", "feature": "person", "span": [0, 5], "confidence": 0.9},
                                 {"data_row": "r1", "feature": "sentiment", "answer": "neg", "confidence": 0.7}])
    with TestClient(create_app(path)) as c:
        yield c


def test_text_rows_carry_text_spans_and_answers(text_client):
    page = text_client.get("/api/rows", params={"run": 1}).json()
    (r1,) = [r for r in page["rows"] if r["global_key"] == "r1"]
    assert r1["text"] == "Alice flew to Paris on Monday."
    spans = {(o["feature"], tuple(o["span"])) for o in r1["annotations"] if o["kind"] == "ner"}
    assert spans == {("person", (0, 5))}
    assert [(o["feature"], o["answer"]) for o in r1["predictions"] if o["kind"] == "radio"] == [("sentiment", "neg")]
    all_rows = text_client.get("/api/rows").json()["rows"]
    long = next(r for r in all_rows if r["global_key"] == "r2")
    assert len(long["text"]) == 4000  # the gallery gets a preview ...
    rid = long["id"]
    assert len(text_client.get(f"/api/rows/{rid}").json()["text"]) == 6000  # ... the detail view all of it
    assert text_client.get(f"/api/thumbs/{rid}").status_code == 404
    assert "text row" in text_client.get(f"/api/media/{rid}").json()["message"]
