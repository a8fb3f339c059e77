"""``/api/messages``, ``/api/requests`` and ``/api/incidents``: the dialogue channel for
operators: list and read threads, standing requests and incidents (viewer); send, acknowledge,
ask, cancel, open and update (liaison: speaking to a partner is a liaison's task).

The same records as ``kuroshio msg … --json``; sending goes through the node (released under the
agreement, queued on the link, audited with the operator's name).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from kuroshio.access import Principal
from kuroshio.api.access import needs
from kuroshio.errors import MessageError
from kuroshio.messages import dialogue
from kuroshio.messages.incident import Change, IncidentKind, closed_ring
from kuroshio.messages.incident import Draft as IncidentDraft
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


class NearModel(BaseModel):
    """Within ``within_km`` of a place."""

    place: str = Field(min_length=1, max_length=200)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    within_km: float = Field(gt=0, le=5_000)


class RequestModel(BaseModel):
    """A standing request: tell me when… (every criterion given must hold)."""

    recipient: str = Field(pattern=r"^[A-Z]{3}$", examples=["TWN"])
    subject: str = Field(default="Standing request", min_length=1, max_length=200)
    precedence: Literal["routine", "priority", "immediate", "flash"] = "priority"
    event: (
        Literal["adiz_entry", "median_line_crossing", "strait_transit", "area_active", "zone_entry"]
        | None
    ) = None
    zone: str | None = Field(default=None, max_length=200, examples=["gate-miyako"])
    platform_class: list[str] = Field(default=[], max_length=20, examples=[["carrier"]])
    near: NearModel | None = None
    until: dt.datetime | None = None


class InvolvedModel(BaseModel):
    what: Literal["person", "vessel", "aircraft"]
    name: str = Field(max_length=200)
    count: int = Field(default=1, ge=1, le=100_000)
    remarks: str = Field(default="", max_length=4_000)


class IncidentModel(BaseModel):
    """An incident to open and share under the civil agreement with each party named."""

    kind: IncidentKind
    title: str = Field(min_length=1, max_length=200)
    datum: tuple[float, float] = Field(description="[lon, lat]")
    datum_at: dt.datetime | None = None
    share_with: list[str] = Field(default=[], max_length=50)
    search_areas: list[list[tuple[float, float]]] = Field(default=[], max_length=200)
    involved: list[InvolvedModel] = Field(default=[], max_length=200)
    assets: list[tuple[str, str]] = Field(default=[], max_length=200, description="(name, type)")
    sitrep: str | None = Field(default=None, max_length=4_000)


class IncidentChangeModel(BaseModel):
    """What an update adds or sets; ``status: closed`` takes a ``final_report``."""

    sitrep: str | None = Field(default=None, max_length=4_000)
    assets: list[tuple[str, str]] = Field(default=[], max_length=200)
    search_areas: list[list[tuple[float, float]]] = Field(default=[], max_length=200)
    involved: list[InvolvedModel] = Field(default=[], max_length=200)
    status: Literal["open", "suspended", "closed"] | None = None
    final_report: str | None = Field(default=None, max_length=4_000)
    share_with: list[str] = Field(default=[], max_length=50)


@router.get("/requests", summary="Standing requests made here and made of this node")
def list_requests(request: Request) -> Response:
    return _answer(_node(request).store.read(dialogue.requests))


@router.post("/requests", summary="Ask a partner: tell me when…")
async def add_request(
    request: Request,
    asked: RequestModel,
    principal: Annotated[Principal, Depends(needs("liaison"))],
) -> Response:
    criteria = asked.model_dump(
        mode="json", include={"event", "zone", "platform_class", "near", "until"}
    )
    draft = dialogue.Draft(
        recipient=asked.recipient,
        subject=asked.subject,
        precedence=asked.precedence,
        request=criteria,
    )
    sent = await run_in_threadpool(_node(request).send_draft, draft)
    return _answer(msgspec.to_builtins(sent))


@router.post("/requests/{request_id}/cancel", summary="Cancel a standing request made here")
async def cancel_request(
    request: Request,
    request_id: str,
    principal: Annotated[Principal, Depends(needs("liaison"))],
) -> Response:
    node = _node(request)
    asked = node.store.read(lambda tx: dialogue.show(tx, request_id))
    draft = dialogue.Draft(
        recipient=asked.partner,
        subject=f"Cancelled: {asked.message.subject}"[:200],
        kind="note",
        in_reply_to=request_id,
        cancels=request_id,
    )
    sent = await run_in_threadpool(node.send_draft, draft)
    return _answer(msgspec.to_builtins(sent))


@router.get("/incidents", summary="Incidents kept here (the newest version of each)")
def list_incidents(request: Request) -> Response:
    found = _node(request).store.read(dialogue.incidents)
    return _answer([msgspec.to_builtins(i) for i in found])


@router.get("/incidents/{incident_id}", summary="One incident, its newest version")
def show_incident(request: Request, incident_id: str) -> Response:
    found = _node(request).store.read(lambda tx: dialogue.incident(tx, incident_id))
    return _answer(msgspec.to_builtins(found))


@router.post("/incidents", summary="Open an incident, shared under civil agreements")
async def open_incident(
    request: Request,
    body: IncidentModel,
    principal: Annotated[Principal, Depends(needs("liaison"))],
) -> Response:
    draft = msgspec.convert(body.model_dump(), IncidentDraft)
    shared = await run_in_threadpool(_node(request).open_incident, draft)
    return _answer(msgspec.to_builtins(shared))


@router.post("/incidents/{incident_id}", summary="Update (or close) an incident")
async def update_incident(
    request: Request,
    incident_id: str,
    body: IncidentChangeModel,
    principal: Annotated[Principal, Depends(needs("liaison"))],
) -> Response:
    node = _node(request)
    try:
        change = msgspec.convert(
            {
                **body.model_dump(exclude={"assets", "search_areas"}),
                "assets": [{"party": node.party, "name": n, "type": t} for n, t in body.assets],
                "search_areas": [
                    {"type": "Polygon", "coordinates": [closed_ring(ring)]}
                    for ring in body.search_areas
                ],
                "share_with": body.share_with,
            },
            Change,
        )
    except msgspec.ValidationError as error:
        raise MessageError("incident", str(error)) from None
    updated = await run_in_threadpool(node.update_incident, incident_id, change)
    return _answer(msgspec.to_builtins(updated))
