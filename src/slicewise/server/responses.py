"""Response helpers shared by the routers."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response


def fast_json(content: Any) -> Response:
    """A JSON response serialised by orjson, skipping FastAPI's generic encoder (big gallery pages). The
    route still declares its response model, so the schema documents what this returns."""
    import orjson

    return Response(orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json")
