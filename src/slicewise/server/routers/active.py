"""Active learning: pick the rows of a pool most worth labelling, optionally as a batch."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends

from slicewise.curation.active import select_rows
from slicewise.server import models as M
from slicewise.server.deps import AppState, state

router = APIRouter(tags=["curation"])


@router.post("/select", response_model=M.SelectionOut,
             summary="Pick N rows of a pool by an active-learning strategy (and put them in a batch)")
def select(body: M.SelectIn, st: AppState = Depends(state)) -> dict[str, Any]:
    sel = select_rows(st.ws, body.pool, body.n, strategy=body.strategy, run=body.run or None, space=body.space or None,
                      class_balance=body.class_balance, seed=body.seed, aggregate=body.aggregate or None,
                      uncertainty=body.uncertainty, batch=body.batch or None, priority=body.priority, note=body.note,
                      tag=body.tag or None)
    return asdict(sel)
