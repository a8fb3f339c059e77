"""``/api/messages``: the dialogue channel for operators: list and read threads (viewer), send a
message or acknowledge one received (liaison: speaking to a partner is a liaison's task).

The same records as ``kuroshio msg … --json``; sending goes through the node (released under the
agreement, queued on the link, audited with the operator's name).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from kuroshio.access import Principal
from kuroshio.api.access import needs
from kuroshio.messages import dialogue
from kuroshio.node import Node

router = APIRouter(prefix="/api", tags=["messages"])
_json = msgspec.json.Encoder()


class DraftModel(BaseModel):
    """A message to send; attachments are named, the node looks them up."""

    recipient: str = Field(pattern=r"^[A-Z]{3}$", examples=["JPN"])
    subject: str = Field(min_length=1, max_length=200)
    kind: Literal["rfi", "reply", "ack", "alert", "note"] = "rfi"
    body: str = Field(default="", max_length=4_000)
    precedence: Literal["routine", "priority", "immediate", "flash"] = "routine"
    tlp: Literal["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"] = "AMBER"
    in_reply_to: str | None = None
    observations: list[str] = Field(default=[], max_length=100, description="ID or ID@VERSION")
    events: list[str] = Field(default=[], max_length=100)
    tracks: list[str] = Field(default=[], max_length=100)
    area: list[tuple[float, float]] | None = Field(
        default=None, max_length=1_000, description="A ring of [lon, lat] positions."
    )


class AckModel(BaseModel):
    """``acked`` (the default) or only ``read``."""

    state: Literal["acked", "read"] = "acked"


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _answer(value: object) -> Response:
    return Response(_json.encode(value), media_type="application/json")


@router.get("/messages", summary="Messages sent and received, newest first")
def list_messages(
    request: Request,
    partner: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    thread: Annotated[str | None, Query(max_length=256)] = None,
    state: Annotated[
        Literal["queued", "delivered", "read", "acked", "escalated"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> Response:
    found = _node(request).store.read(
        lambda tx: dialogue.listing(tx, partner=partner, thread=thread, state=state, limit=limit)
    )
    return _answer([k.as_builtins() for k in found])


@router.get("/messages/{message_id}", summary="One message and where it stands")
def show_message(request: Request, message_id: str) -> Response:
    found = _node(request).store.read(lambda tx: dialogue.show(tx, message_id))
    return _answer(found.as_builtins())


@router.post("/messages", summary="Send a message to a partner, under the agreement in force")
async def send_message(
    request: Request,
    draft: DraftModel,
    principal: Annotated[Principal, Depends(needs("liaison"))],
) -> Response:
    node = _node(request)
    sent = await run_in_threadpool(
        node.send_draft, msgspec.convert(draft.model_dump(), dialogue.Draft)
    )
    return _answer(msgspec.to_builtins(sent))


@router.post("/messages/{message_id}/ack", summary="Acknowledge (or mark read) a message")
async def ack_message(
    request: Request,
    message_id: str,
    principal: Annotated[Principal, Depends(needs("liaison"))],
    answer: AckModel | None = None,
) -> Response:
    state = answer.state if answer is not None else "acked"
    marked = await run_in_threadpool(_node(request).mark_message, message_id, state)
    return _answer(marked.as_builtins())
