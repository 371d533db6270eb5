"""``POST /api/cli``: run a ``slicewise`` CLI command inside the server, for the CLI itself.

While ``slicewise serve`` holds a workspace, the CLI cannot open the file; it sends its commands here
instead (see :mod:`slicewise.cli.remote` for the protocol). The endpoint needs the secret token of the
server's discovery file (``Authorization: Bearer <token>``; mode 0600, so only the user who started the
server can read it): without it the answer is 401, with a wrong one 403. It is not meant for browsers:
a request that carries an ``Origin`` header is refused (403) whatever its token, and a server started
without a token (``create_app`` alone, as in tests) refuses every command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from slicewise.server.deps import AppState, state

router = APIRouter(tags=["cli"])


class Terminal(BaseModel):
    """The client's terminal as Rich sees it; the command's output is rendered for it."""

    width: int = Field(80, ge=10, le=10_000)
    height: int = Field(25, ge=1, le=10_000)
    color_system: str | None = Field(None, pattern="^(standard|256|truecolor|windows)$")
    is_terminal: bool = False
    encoding: str = Field("utf-8", max_length=40)
    no_color: bool = False
    env: dict[str, str] = Field(default_factory=dict)


class CliCommand(BaseModel):
    """A command as the CLI parsed it: ``command`` below ``slicewise`` (e.g. ``["import", "coco"]``) and
    its parameters by name, path parameters absolute."""

    command: list[str] = Field(min_length=1, max_length=4)
    params: dict[str, Any] = Field(default_factory=dict)
    cwd: str = Field(description="the client's working directory (for paths the command makes itself)")
    typed: dict[str, str] = Field(default_factory=dict, description="absolute path -> as the user typed it")
    stdout: Terminal
    stderr: Terminal


def authorized(request: Request) -> None:
    """The token of the server's discovery file, from a client that is not a browser."""
    expected: str | None = getattr(request.app.state, "cli_token", None)
    if request.headers.get("origin") is not None:
        raise HTTPException(403, "this endpoint is for the slicewise CLI, not for browsers")
    if not expected:
        raise HTTPException(403, "this server takes no CLI commands (it was not started by `slicewise serve`)")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise HTTPException(401, "the token of the server's discovery file is missing",
                            headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "wrong token")


@router.post("/cli", summary="Run a slicewise CLI command in the server (for the CLI; needs the server's token)",
             response_class=StreamingResponse, dependencies=[Depends(authorized)],
             responses={200: {"content": {"application/x-ndjson": {}},
                              "description": "NDJSON events: out, err, progress, advance, end, usage_error, "
                                             "click_error, abort, and last exit (see slicewise.cli.remote)"},
                        401: {"description": "no token"}, 403: {"description": "wrong token, or a browser"},
                        404: {"description": "no such command"}, 409: {"description": "a command a server cannot run"}})
async def run_command(body: CliCommand, st: AppState = Depends(state)) -> StreamingResponse:
    from slicewise.cli import remote

    name = body.command[0]
    if name in remote.REFUSED:
        raise HTTPException(409, f"`slicewise {name}` cannot run inside the server that is serving this workspace: "
                                 f"it would {remote.REFUSED[name]} on it. Stop the server first (Ctrl+C in its "
                                 "terminal), or use another workspace")
    try:
        await run_in_threadpool(remote.find_command, body.command)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    cancel = threading.Event()

    def emit(event: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the server is stopping: nobody is left to tell
            loop.call_soon_threadsafe(queue.put_nowait, event)

    def work() -> None:
        remote.execute(st.ws, emit, cancel, command=body.command, params=body.params, cwd=body.cwd,
                       typed=body.typed, stdout=body.stdout.model_dump(), stderr=body.stderr.model_dump())

    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                event = await queue.get()
                yield (json.dumps(event) + "\n").encode()
                if event["type"] == "exit":
                    return
        finally:
            cancel.set()  # the client went away (or the command ended): a running command stops at its next step

    threading.Thread(target=work, name=f"cli-{'-'.join(body.command)}", daemon=True).start()
    return StreamingResponse(events(), media_type="application/x-ndjson")
