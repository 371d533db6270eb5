"""The filter language: parse text to its AST and print an AST back as text (the panel and the box agree)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from slicewise import query as q
from slicewise.server import models as M

router = APIRouter(tags=["query"])


@router.get("/query/parse", response_model=M.Parsed,
            summary="Parse a filter text; 422 with the parser's message when it is wrong")
def parse(text: str = Query(..., max_length=20_000)) -> dict[str, Any]:
    f = q.parse(text)
    if f is None:
        return {"ast": None, "text": "", "clauses": []}
    parts = f.all if isinstance(f, q.And) else [f]
    return {"ast": f.model_dump(mode="json"), "text": q.to_text(f), "clauses": [q.to_text(p) for p in parts]}


@router.get("/query/sort", response_model=M.ParsedSort,
            summary="Parse sort keys (e.g. -iou, metadata.camera); 422 when they are wrong")
def sort(text: str = Query(..., max_length=2000)) -> dict[str, Any]:
    keys = q.parse_sort(text)
    return {"sort": [k.model_dump(mode="json") for k in keys], "text": q.sort_to_text(keys)}


@router.post("/query/text", response_model=M.FilterText, summary="Print a filter AST as text")
def to_text(ast: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return {"text": q.to_text(q.as_filter(ast))}
