"""Map slicewise's exceptions to HTTP answers: status code + a JSON body that says what, where, how to fix."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from slicewise import errors as E

STATUS: list[tuple[type[E.SlicewiseError], int]] = [
    (E.NotFoundError, 404),
    (E.ValidationError, 422),
    (E.QueryError, 422),
    (E.ConflictError, 409),
    (E.LimitError, 422),
    (E.MetricsError, 409),
    (E.StoreError, 503),
]


def status_for(exc: E.SlicewiseError) -> int:
    for cls, code in STATUS:
        if isinstance(exc, cls):
            return code
    return 400


def body_for(exc: E.SlicewiseError) -> dict[str, object]:
    body: dict[str, object] = {"error": type(exc).__name__, "detail": str(exc), "message": exc.message,
                               "where": exc.where, "fix": exc.fix}
    if isinstance(exc, E.ValidationError):
        body["problems"] = [{"reason": p.reason, "location": p.location, "field": p.field, "fix": p.fix}
                            for p in exc.problems]
    return body


def install(app: FastAPI) -> None:
    @app.exception_handler(E.SlicewiseError)
    async def _slicewise_error(request: Request, exc: E.SlicewiseError) -> JSONResponse:
        return JSONResponse(body_for(exc), status_code=status_for(exc))
