"""The filter language: parse text to its AST and print an AST back as text (the panel and the box agree)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from slicewise.server import lib

router = APIRouter(tags=["query"])


@router.get("/query/parse", summary="Parse a filter text; 422 with the parser's message when it is wrong")
def parse(text: str = Query(..., max_length=20_000)) -> dict[str, Any]:
    q = lib.need("query")
    f = q.parse(text)
    return {"ast": f.model_dump(mode="json") if f is not None else None, "text": q.to_text(f) if f is not None else ""}


@router.post("/query/text", summary="Print a filter AST as text")
def to_text(ast: dict[str, Any] = Body(...)) -> dict[str, Any]:
    q = lib.need("query")
    f = q.Filter.model_validate(ast) if hasattr(q.Filter, "model_validate") else q.parse_ast(ast)
    return {"text": q.to_text(f)}
