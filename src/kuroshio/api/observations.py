"""Operator and browser routes: health, observations (query, add), events, and the live stream.

Queries page with the store's cursor; ``POST /api/observations`` takes JSON or NDJSON through
the node's one door (:meth:`~kuroshio.node.Node.ingest`); ``GET /api/stream`` sends every newly
stored observation version as Server-Sent Events, resumable with ``Last-Event-ID``. Partner
traffic does not come here (see :mod:`kuroshio.api.federation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from kuroshio import inputs
from kuroshio.errors import ImportRecordError, StoreError
from kuroshio.ingest.load import LoadSummary, store_records
from kuroshio.ingest.records import Record, decode_record
from kuroshio.node import Node
from kuroshio.store import EventFilter, ObservationFilter
from kuroshio.store.sqlite import SQLiteStore

STREAM_BATCH: Final = 500
KEEPALIVE_S: Final = 15.0
POLL_S: Final = 1.0

router = APIRouter(prefix="/api", tags=["observations"])
_json = msgspec.json.Encoder()
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_kind_origin = msgspec.json.Decoder(dict[str, Any])


class ChangeSignal:
    """Wakes stream readers when the node stores something (notify on the event loop thread)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


class ChangeFeed:
    """Observation versions in the order they were stored, read from the store file.

    Reads the embedded store's history table (its ``seq`` grows in commit order), so it sees
    what any process stored, not only this one.
    """

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30.0
        )

    def head(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT max(seq) FROM observation_versions").fetchone()
        return int(row[0] or 0)

    def after(self, seq: int, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, body FROM observation_versions WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [(int(s), bytes(body)) for s, body in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _reader(request: Request) -> SQLiteStore:
    reader: SQLiteStore = request.app.state.reader
    return reader


def _time(value: str | None, name: str) -> dt.datetime | None:
    try:
        return inputs.utc_time(value, name)
    except inputs.InputError as error:
        raise HTTPException(422, str(error)) from None


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    try:
        return inputs.bbox(value, "bbox")
    except inputs.InputError as error:
        raise HTTPException(422, str(error)) from None


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _json_response(value: Any, status: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status, media_type="application/json")


@router.get("/health", summary="Is the node up, and who is it")
def health(request: Request) -> Response:
    node = _node(request)
    return _json_response(
        {
            "status": "ok",
            "party": node.party,
            "node": node.config.node.name,
            "federation_url": node.config.federation.url(),
            "partners": sorted(node.partners),
        }
    )


@router.get("/observations", summary="Current observations, filtered, one page at a time")
def list_observations(
    request: Request,
    start: str | None = None,
    end: str | None = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    origin: Annotated[list[str], Query()] = [],  # noqa: B006
    platform_class: Annotated[list[str], Query(alias="class")] = [],  # noqa: B006
    platform_type: Annotated[list[str], Query(alias="type")] = [],  # noqa: B006
    retracted: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: str | None = None,
) -> Response:
    selection = ObservationFilter(
        start=_time(start, "start"),
        end=_time(end, "end"),
        bbox=_bbox(bbox),
        kinds=_split(kind),
        origins=tuple(o.upper() for o in _split(origin)),
        platform_classes=_split(platform_class),
        platform_types=_split(platform_type),
        include_retracted=retracted,
    )
    try:
        page = _reader(request).query(selection, limit=limit, cursor=cursor)
    except StoreError as error:
        raise HTTPException(422, str(error)) from None
    return _json_response({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/events", summary="Derived events (ADIZ entries, crossings, transits)")
def list_events(
    request: Request,
    start: str | None = None,
    end: str | None = None,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    zone: Annotated[list[str], Query()] = [],  # noqa: B006
    origin: Annotated[list[str], Query()] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    selection = EventFilter(
        start=_time(start, "start"),
        end=_time(end, "end"),
        kinds=_split(kind),
        zones=_split(zone),
        origins=tuple(o.upper() for o in _split(origin)),
    )
    return _json_response({"items": _reader(request).query_events(selection, limit=limit)})


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _records(body: bytes, max_record_bytes: int) -> Iterator[Record]:
    text = body.lstrip(b" \t\r\n\xef\xbb\xbf")
    if text.startswith(b"["):
        try:
            elements = _raw_list.decode(text)
        except msgspec.DecodeError as error:
            raise HTTPException(400, f"body is not a JSON array: {error}") from None
        for index, element in enumerate(elements):
            yield decode_record(f"[{index}]", bytes(element))
        return
    for number, line in enumerate(text.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(line) > max_record_bytes:
            message = f"record longer than the limit of {max_record_bytes} bytes"
            yield f"line {number}", ImportRecordError(f"line {number}", message)
            continue
        yield decode_record(f"line {number}", line)


@router.post(
    "/observations",
    summary="Add observations (a JSON object, a JSON array, or NDJSON)",
    responses={413: {"description": "body too large"}},
)
async def add_observations(request: Request) -> Response:
    node = _node(request)
    body = await _read_body(request, node.config.api.max_body_bytes)
    records = list(_records(body, node.config.limits.max_record_bytes))
    summary: LoadSummary = await run_in_threadpool(
        store_records, functools.partial(node.ingest, via="api"), records
    )
    return _json_response(
        {
            "read": summary.read,
            "inserted": summary.inserted,
            "superseded": summary.superseded,
            "unchanged": summary.unchanged,
            "stale": summary.stale,
            "rejected": [{"location": e.location, "reason": e.reason} for e in summary.rejected],
        }
    )


def _matches(body: bytes, kinds: tuple[str, ...], origins: tuple[str, ...]) -> bool:
    if not kinds and not origins:
        return True
    fields = _kind_origin.decode(body)
    return (not kinds or fields.get("kind") in kinds) and (
        not origins or fields.get("origin") in origins
    )


@router.get(
    "/stream",
    summary="Newly stored observations as Server-Sent Events (event: observation, id: seq)",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    after: Annotated[int | None, Query(ge=0, description="Start after this event id")] = None,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    origin: Annotated[list[str], Query()] = [],  # noqa: B006
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    feed: ChangeFeed = request.app.state.feed
    signal: ChangeSignal = request.app.state.changes
    kinds = _split(kind)
    origins = tuple(o.upper() for o in _split(origin))
    if after is None and last_event_id is not None and last_event_id.isdigit():
        after = int(last_event_id)
    start = after if after is not None else await asyncio.to_thread(feed.head)

    async def events() -> AsyncIterator[bytes]:
        cursor = start
        quiet_since = time.monotonic()
        yield b"retry: 2000\n\n"
        while True:
            woken = signal.current()
            rows = await asyncio.to_thread(feed.after, cursor, STREAM_BATCH)
            if rows:
                cursor = rows[-1][0]
                chunk = b"".join(
                    b"id: %d\nevent: observation\ndata: %s\n\n" % (seq, body)
                    for seq, body in rows
                    if _matches(body, kinds, origins)
                )
                if chunk:
                    quiet_since = time.monotonic()
                    yield chunk
                continue
            # Woken at once by this process's commits; the poll catches other processes'.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), POLL_S)
            if time.monotonic() - quiet_since >= KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
