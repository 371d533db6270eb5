"""Media files and thumbnails, served only for registered data rows (looked up by id, never by path), and
only when the file lies inside its dataset's media folders and is an image (see slicewise.server.media)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from slicewise.server.deps import AppState, get_row, state

router = APIRouter(tags=["media"])
_THUMB_HEADERS = {"Cache-Control": "private, max-age=86400"}
_IMAGE: dict[str, dict[str, str]] = {"image/jpeg": {}, "image/png": {}, "image/gif": {}, "image/webp": {}, "image/bmp": {}, "image/tiff": {}}


@router.get("/media/{row_id}", summary="The full image of a data row", response_class=FileResponse,
            responses={200: {"content": _IMAGE}, 307: {"description": "remote media, when the server was started "
                                                                      "with --remote-media"}})
def media(row_id: int, st: AppState = Depends(state)) -> Response:
    found = st.media.locate(get_row(st, row_id))
    if found.url is not None:
        return RedirectResponse(found.url, status_code=307)
    assert found.path is not None
    return FileResponse(found.path, media_type=found.content_type,
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("/thumbs/{row_id}", summary="A JPEG thumbnail of a data row (made once, cached on disk)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def thumb(row_id: int, size: int = Query(256, description="longest side: 128, 256 or 512"),
                st: AppState = Depends(state)) -> Response:
    # fast path on the event loop: a thumbnail made earlier, whose source has not changed since
    fresh = st.thumbs.cached(row_id, size)
    if fresh is not None:
        return Response(fresh, media_type="image/jpeg", headers=_THUMB_HEADERS)
    row = await run_in_threadpool(get_row, st, row_id)
    if st.media.remote_media and row.media_type == "image":
        found = await run_in_threadpool(st.media.locate, row)
        if found.url is not None:
            return RedirectResponse(found.url, status_code=307)
    path = await run_in_threadpool(lambda: st.thumbs.get(row, size))
    return Response(path.read_bytes(), media_type="image/jpeg", headers=_THUMB_HEADERS)
