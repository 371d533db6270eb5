"""Label mistakes of a run (slicewise.mistakes): each detector's flagged count and measured precision,
its top rows, one row's scores, and reviewers' verdicts."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from slicewise import mistakes as mk
from slicewise.errors import NotFoundError
from slicewise.server import models as M
from slicewise.server.deps import AppState, get_run, state

router = APIRouter(tags=["label mistakes"])


@router.get("/runs/{run_id}/mistakes", response_model=M.MistakesSummary,
            summary="Each label-mistake detector on the run: rows flagged, verdicts, measured precision")
def summary(run_id: str, space: str | None = Query(None, max_length=64), st: AppState = Depends(state)) -> Any:
    s = mk.summary(st.ws, get_run(st.ws, run_id), space or None)
    return {"run_id": s.run_id, "space": s.space, "tasks": s.tasks, "reviewed": s.reviewed,
            "detectors": [d.__dict__ for d in s.detectors]}


@router.get("/runs/{run_id}/mistakes/{detector}", response_model=M.MistakeRows,
            summary="A detector's rows, most likely mistakes first (the flagged ones, or every scored row)")
def rows(run_id: str, detector: Literal["cleanlab", "knn", "combined"], top: int = Query(50, ge=1, le=10_000),
         all_rows: bool = Query(False, alias="all"), space: str | None = Query(None, max_length=64),
         st: AppState = Depends(state)) -> Any:
    s = mk.scores(st.ws, get_run(st.ws, run_id), detector, space or None)
    found = s.top(top, flagged_only=not all_rows)
    keys = {r.id: r.global_key for r in st.ws.data_rows(ids=[i for i, _ in found])}
    conf, rej = mk.verdicts(st.ws)
    flagged = set(s.ids[s.flagged].tolist())
    return {"detector": detector, "scored": len(s.ids), "flagged": len(flagged),
            "rows": [{"id": i, "global_key": keys[i], "score": v, "flagged": i in flagged,
                      "verdict": "confirmed" if i in conf else "rejected" if i in rej else None} for i, v in found]}


@router.get("/runs/{run_id}/rows/{row_id}/mistakes", response_model=M.RowMistakes,
            summary="One row's label-mistake score and flag under each detector, and its verdict")
def row(run_id: str, row_id: int, st: AppState = Depends(state)) -> Any:
    res = mk.result(st.ws, get_run(st.ws, run_id))
    if not st.ws.data_rows(ids=[row_id]):
        raise NotFoundError(f"no data row with id {row_id}", where="path", fix="take ids from /api/rows")
    scores: dict[str, float | None] = {}
    flagged: dict[str, bool] = {}
    for name, s in res.detectors.items():
        k = int(np.searchsorted(s.ids, row_id))
        hit = k < len(s.ids) and int(s.ids[k]) == row_id
        scores[name] = float(s.score[k]) if hit else None
        flagged[name] = bool(s.flagged[k]) if hit else False
    conf, rej = mk.verdicts(st.ws)
    return {"id": row_id, "scores": scores, "flagged": flagged,
            "verdict": "confirmed" if row_id in conf else "rejected" if row_id in rej else None}


class VerdictRequest(BaseModel):
    """Rows by id or global key; ``confirmed``: the label is wrong, ``rejected``: it is right, ``clear``."""

    ids: list[int] = Field(default_factory=list, max_length=100_000)
    keys: list[str] = Field(default_factory=list, max_length=100_000)
    verdict: Literal["confirmed", "rejected", "clear"]


@router.post("/mistakes/verdicts", response_model=M.VerdictsChanged,
             summary="Record reviewers' verdicts (tags mistake-confirmed / mistake-rejected)")
def set_verdicts(req: VerdictRequest, st: AppState = Depends(state)) -> Any:
    keys = list(req.keys)
    if req.ids:
        found = {r.id: r.global_key for r in st.ws.data_rows(ids=req.ids)}
        missing = [i for i in req.ids if i not in found]
        if missing:
            raise NotFoundError(f"{len(missing)} unknown data row id(s): {missing[:5]}", where="ids",
                                fix="take ids from /api/rows")
        keys += list(found.values())
    return {"changed": mk.set_verdict(st.ws, keys, req.verdict), "tags": st.ws.tags()}
