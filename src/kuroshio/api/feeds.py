"""``GET /api/feeds``: the node's live feeds, as the process running them last reported.

The same report as ``kuroshio feed status --json``: read from the store, so every process of a
node (an API worker beside the exchange process that runs the feeds) gives the same answer. It
changes nothing.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from kuroshio.feeds.status import FeedReport, feed_reports
from kuroshio.node import Node
from kuroshio.store.backend import Reader

router = APIRouter(prefix="/api", tags=["feeds"])
_json = msgspec.json.Encoder()


def _reports(node: Node, reader: Reader) -> list[FeedReport]:
    rows = reader.read(lambda tx: tx.feeds.all())
    return feed_reports(node.config.feeds, rows, dt.datetime.now(dt.UTC))


@router.get(
    "/feeds",
    summary="Each configured feed: state (up, down, not running), counters, last error",
    responses={
        200: {
            "description": "The node's feeds, by name",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/FeedReport"},
                    }
                }
            },
        }
    },
)
async def feeds(request: Request) -> Response:
    node: Node = request.app.state.node
    reader: Reader = request.app.state.reader
    reports = await run_in_threadpool(_reports, node, reader)
    return Response(_json.encode(reports), media_type="application/json")


__all__ = ["router"]
