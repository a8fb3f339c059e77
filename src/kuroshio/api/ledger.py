"""``GET /api/ledger``: the reciprocity ledger of this node, per partner per day, and each
partner's standing against the reciprocity clause of the agreement in force.

The same report as ``kuroshio ledger --json``, read from the node's store; it changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from kuroshio.node import Node
from kuroshio.policy import reciprocity
from kuroshio.store.backend import Reader

MAX_DAYS = 366

router = APIRouter(prefix="/api", tags=["reciprocity"])


class FlowModel(BaseModel):
    """Items one way over a day or window (retracted items do not count)."""

    items: int
    sorties: int
    novel_items: int = Field(
        description="Received: not already held from own sources (or not judged). Given: all."
    )
    timeliness_s: float | None = Field(
        description="Median seconds from the latest observed moment to the partner's receipt."
    )
    precision_km: float | None = Field(description="Median grid released in km (0: exact).")


class LedgerDayModel(BaseModel):
    """One UTC day with one partner."""

    partner: str
    day: dt.date
    given: FlowModel
    received: FlowModel


class ReciprocityModel(BaseModel):
    """The partner's standing against the clause over its rolling window."""

    partner: str
    window_start: dt.datetime
    window_end: dt.datetime
    measure: Literal["items", "sorties", "novel_items"]
    given: FlowModel
    received: FlowModel
    ratio: float | None = Field(description="Received over given (None: nothing given yet).")
    min_ratio: float
    judged: bool
    shortfall: bool
    action: Literal["warn", "delay", "coarsen", "suspend"] | None = Field(
        description="What the clause does now (None: no shortfall)."
    )
    message: str


class PartnerLedgerModel(BaseModel):
    """One partner: the agreement in force, the standing, the days."""

    partner: str
    agreement: str | None = Field(description="Agreement in force, 'id vN' (None: none).")
    status: ReciprocityModel | None
    days: list[LedgerDayModel]


class LedgerModel(BaseModel):
    """The node's reciprocity ledger."""

    party: str
    at: dt.datetime
    partners: list[PartnerLedgerModel]


class _Ledger(msgspec.Struct, frozen=True, kw_only=True):
    party: str
    at: dt.datetime
    partners: list[reciprocity.PartnerLedger]


def _report(node: Node, reader: Reader, partner: str | None, days: int, now: dt.datetime) -> bytes:
    # The API's own reader: the report never waits for or holds a write lock.
    records = reader.read(reciprocity.entries)
    book = node.agreements
    if partner is not None:
        parties = [partner]
    else:
        parties = sorted(
            {e.partner for e in records} | set(book.partners(now)) | set(node.partners)
        )
    report = reciprocity.partner_ledgers(records, book, parties, now=now, days=days)
    return msgspec.json.encode(_Ledger(party=node.party, at=now, partners=report))


@router.get(
    "/ledger",
    summary="Reciprocity ledger: given and received per partner per day, and the clause",
    response_model=LedgerModel,
)
async def ledger(
    request: Request,
    partner: Annotated[
        str | None, Query(pattern="^[A-Za-z]{3}$", description="One partner (default: all).")
    ] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days, ending today.")] = 14,
) -> Response:
    node: Node = request.app.state.node
    party = partner.upper() if partner else None
    reader: Reader = request.app.state.reader
    body = await run_in_threadpool(_report, node, reader, party, days, dt.datetime.now(dt.UTC))
    return Response(body, media_type="application/json")


__all__ = ["LedgerModel", "router"]
