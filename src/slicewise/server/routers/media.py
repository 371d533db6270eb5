"""Media files and thumbnails, served only for registered data rows (looked up by id, never by path)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from slicewise.server import media as M
from slicewise.server.deps import AppState, get_row, state

router = APIRouter(tags=["media"])


@router.get("/media/{row_id}", summary="The full image of a data row", response_class=FileResponse)
def media(row_id: int, st: AppState = Depends(state)) -> FileResponse:
    path = M.media_path(get_row(st, row_id), st.base)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/thumbs/{row_id}", summary="A JPEG thumbnail of a data row (made once, cached on disk)",
            response_class=FileResponse)
def thumb(row_id: int, size: int = Query(256, description="longest side: 128, 256 or 512"),
          st: AppState = Depends(state)) -> FileResponse:
    path = M.thumbnail(get_row(st, row_id), st.base, st.cache_dir, size)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
