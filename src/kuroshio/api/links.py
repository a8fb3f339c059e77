"""``GET /api/links``: the operator's read-only view of every link, both directions.

The same report as ``kuroshio link status --json``, with the live state of the sending links
when the node is serving (from memory, or from the store in an API worker of a node served by
several processes); it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from kuroshio.exchange.status import LinkStatus, link_reports
from kuroshio.node import Node
from kuroshio.store.backend import Reader

router = APIRouter(prefix="/api", tags=["federation"])
_json = msgspec.json.Encoder()


@router.get("/links", summary="Links to and from every pinned partner")
async def links(request: Request) -> Response:
    node: Node = request.app.state.node
    reader: Reader = request.app.state.reader
    # An API worker of a node served by several processes runs no links: the store has them.
    live: Mapping[str, LinkStatus] | None = request.app.state.links or None
    urls = {party: partner.url for party, partner in node.partners.items()}
    reports = await run_in_threadpool(reader.read, lambda tx: link_reports(tx, urls, live))
    return Response(_json.encode(reports), media_type="application/json")


__all__ = ["router"]
