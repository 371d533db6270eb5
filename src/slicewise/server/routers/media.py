"""Media files and thumbnails, served only for registered data rows (looked up by id, never by path)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from slicewise.server.deps import AppState, get_row, state
from slicewise.server.media import media_path

router = APIRouter(tags=["media"])
_THUMB_HEADERS = {"Cache-Control": "private, max-age=86400"}


@router.get("/media/{row_id}", summary="The full image of a data row", response_class=FileResponse)
def media(row_id: int, st: AppState = Depends(state)) -> FileResponse:
    path = media_path(get_row(st, row_id), st.base)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/thumbs/{row_id}", summary="A JPEG thumbnail of a data row (made once, cached on disk)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def thumb(row_id: int, size: int = Query(256, description="longest side: 128, 256 or 512"),
                st: AppState = Depends(state)) -> Response:
    # fast path on the event loop: a thumbnail made earlier, whose source has not changed since
    fresh = st.thumbs.cached(row_id, size)
    if fresh is not None:
        return Response(fresh, media_type="image/jpeg", headers=_THUMB_HEADERS)
    path = await run_in_threadpool(lambda: st.thumbs.get(get_row(st, row_id), size))
    return Response(path.read_bytes(), media_type="image/jpeg", headers=_THUMB_HEADERS)
