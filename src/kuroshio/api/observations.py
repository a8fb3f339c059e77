"""Operator and browser routes: health, observations (query, add, export), events, and the live
stream.

Queries page with the store's cursor; ``POST /api/observations`` takes JSON or NDJSON through
the node's one door (:meth:`~kuroshio.node.Node.ingest`); ``GET /api/stream`` sends every newly
stored observation version as Server-Sent Events, resumable with ``Last-Event-ID``. Partner
traffic does not come here (see :mod:`kuroshio.federation.endpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from kuroshio import inputs
from kuroshio.access import Principal
from kuroshio.api.access import needs
from kuroshio.errors import ImportRecordError, StoreUnavailable
from kuroshio.export.geojson import MEDIA_TYPE as GEOJSON_MEDIA_TYPE
from kuroshio.export.geojson import feature_collection
from kuroshio.export.kml import (
    KML_MEDIA_TYPE,
    KMZ_MEDIA_TYPE,
    MAX_KML_ITEMS,
    kml_bytes,
    kmz_bytes,
)
from kuroshio.ingest.load import LoadSummary, store_records
from kuroshio.ingest.records import Record, decode_record, own_only, record_list
from kuroshio.model import Observation
from kuroshio.node import Node
from kuroshio.store import EventFilter, ObservationFilter
from kuroshio.store.backend import Reader

logger = logging.getLogger("kuroshio.api")
STREAM_BATCH: Final = 500
POLL_S: Final = 1.0
MAX_EVENT_ID: Final = 2**63 - 1
"""The largest stream event id (a store row number)."""
RETRY_MS: Final = 2_000
"""How long a browser waits before it reconnects a dropped stream."""

router = APIRouter(prefix="/api", tags=["observations"])
VIEWER: Final = [Depends(needs("viewer"))]
_json = msgspec.json.Encoder()
_kind_origin = msgspec.json.Decoder(dict[str, Any])


class ChangeSignal:
    """Wakes stream readers when the node stores something, and ends their streams when the
    node stops (both on the event loop thread)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def close(self) -> None:
        """End every live stream: a stream never ends by itself, and the server waits for each
        response to end before it stops. Browsers reconnect (after :data:`RETRY_MS`) and carry
        on from the last event they had."""
        self.closed = True
        self.notify()


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


def _split(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _json_response(value: Any, status: int = 200) -> Response:
    return Response(_json.encode(value), status_code=status, media_type="application/json")


def _items_response(bodies: list[bytes], more: dict[str, Any] | None = None) -> Response:
    """``{"items": [...], **more}`` with each item a record's stored canonical JSON, passed on
    as it is: not decoded and encoded again (most of an answer's cost with thousands of
    items)."""
    fields = _json.encode(more)[1:-1] if more else b""  # the members of the object, no braces
    content = b"".join(
        (b'{"items":[', b",".join(bodies), b"]", b"," if fields else b"", fields, b"}")
    )
    return Response(content, media_type="application/json")


@router.get("/health", summary="Is the node up, and who is it (no authentication)")
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


@router.get(
    "/observations",
    summary="Current observations, filtered, one page at a time",
    dependencies=VIEWER,
)
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
        start=inputs.utc_time(start, "start"),
        end=inputs.utc_time(end, "end"),
        bbox=inputs.bbox(bbox, "bbox"),
        kinds=_split(kind),
        origins=tuple(o.upper() for o in _split(origin)),
        platform_classes=_split(platform_class),
        platform_types=_split(platform_type),
        include_retracted=retracted,
    )
    bodies, next_cursor = _reader(request).query_bodies(selection, limit=limit, cursor=cursor)
    return _items_response(bodies, {"next_cursor": next_cursor})


def _selection(
    start: str | None,
    end: str | None,
    bbox: str | None,
    kind: list[str],
    origin: list[str],
    platform_class: list[str],
) -> ObservationFilter:
    return ObservationFilter(
        start=inputs.utc_time(start, "start"),
        end=inputs.utc_time(end, "end"),
        bbox=inputs.bbox(bbox, "bbox"),
        kinds=_split(kind),
        origins=tuple(o.upper() for o in _split(origin)),
        platform_classes=_split(platform_class),
    )


def _chosen(request: Request, selection: ObservationFilter) -> list[Observation]:
    chosen = []
    for observation in _reader(request).iter_query(selection):
        chosen.append(observation)
        if len(chosen) > MAX_KML_ITEMS:
            raise HTTPException(
                413, f"more than {MAX_KML_ITEMS} observations for one export; narrow the query"
            )
    return chosen


def _kml(request: Request, selection: ObservationFilter, kmz: bool) -> bytes:
    node = _node(request)
    chosen = _chosen(request, selection)
    write = kmz_bytes if kmz else kml_bytes
    return write(
        chosen,
        own_party=node.party,
        partners=sorted(node.partners),
        name=f"kuroshio {node.party}: {len(chosen)} observations",
    )


_EXPORT_QUERY: Final = "start, end (ISO 8601), bbox, kind, origin, class: as /api/observations"


def _export_selection(
    start: str | None = None,
    end: str | None = None,
    bbox: str | None = None,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    origin: Annotated[list[str], Query()] = [],  # noqa: B006
    platform_class: Annotated[list[str], Query(alias="class")] = [],  # noqa: B006
) -> ObservationFilter:
    """The query of every export route: which observations go out."""
    return _selection(start, end, bbox, kind, origin, platform_class)


ExportSelection = Annotated[ObservationFilter, Depends(_export_selection)]


@router.get(
    "/export.kml",
    summary="Current observations as KML for Google Earth (styled by origin, with time spans)",
    description=_EXPORT_QUERY,
    responses={200: {"content": {KML_MEDIA_TYPE: {}}}, 413: {"description": "too many"}},
    dependencies=VIEWER,
)
async def export_kml(request: Request, selection: ExportSelection) -> Response:
    body = await run_in_threadpool(_kml, request, selection, False)
    return Response(
        body,
        media_type=KML_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="kuroshio.kml"'},
    )


@router.get(
    "/export.kmz",
    summary="The same as /api/export.kml, zipped with its symbol icons (KMZ)",
    description=_EXPORT_QUERY,
    responses={200: {"content": {KMZ_MEDIA_TYPE: {}}}, 413: {"description": "too many"}},
    dependencies=VIEWER,
)
async def export_kmz(request: Request, selection: ExportSelection) -> Response:
    body = await run_in_threadpool(_kml, request, selection, True)
    return Response(
        body,
        media_type=KMZ_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="kuroshio.kmz"'},
    )


@router.get(
    "/export.geojson",
    summary="Current observations as RFC 7946 GeoJSON with flat properties, for GIS",
    description=_EXPORT_QUERY,
    responses={200: {"content": {GEOJSON_MEDIA_TYPE: {}}}},
    dependencies=VIEWER,
)
def export_geojson(request: Request, selection: ExportSelection) -> Response:
    body = b"".join(feature_collection(_chosen(request, selection)))
    return Response(body, media_type=GEOJSON_MEDIA_TYPE)


@router.get(
    "/events", summary="Derived events (ADIZ entries, crossings, transits)", dependencies=VIEWER
)
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
        start=inputs.utc_time(start, "start"),
        end=inputs.utc_time(end, "end"),
        kinds=_split(kind),
        zones=_split(zone),
        origins=tuple(o.upper() for o in _split(origin)),
    )
    return _items_response(_reader(request).query_event_bodies(selection, limit))


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
            elements = record_list(text)
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
    summary="Add this node's own observations (a JSON object, a JSON array, or NDJSON)",
    responses={413: {"description": "body too large"}},
)
async def add_observations(
    request: Request, principal: Annotated[Principal, Depends(needs("operator"))]
) -> Response:
    node = _node(request)
    body = await _read_body(request, node.config.api.max_body_bytes)
    records = list(own_only(_records(body, node.config.limits.max_record_bytes), node.party))
    summary: LoadSummary = await run_in_threadpool(
        store_records,
        functools.partial(node.ingest, via="api", operator=principal.label),
        records,
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
    response_class=EventSourceResponse,
    dependencies=VIEWER,
)
async def stream(
    request: Request,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_EVENT_ID,
            description="Start after this event id (a later Last-Event-ID header wins)",
        ),
    ] = None,
    kind: Annotated[list[str], Query()] = [],  # noqa: B006
    origin: Annotated[list[str], Query()] = [],  # noqa: B006
    last_event_id: Annotated[str | None, Header()] = None,
) -> AsyncIterator[ServerSentEvent]:
    reader = _reader(request)
    signal: ChangeSignal = request.app.state.changes
    kinds = _split(kind)
    origins = tuple(o.upper() for o in _split(origin))
    # A browser reconnecting sends the last event it had: the stream goes on from there, also
    # when the address it reconnects to still says where the page first started it.
    if (
        last_event_id is not None
        and last_event_id.isdigit()
        and len(last_event_id) <= len(str(MAX_EVENT_ID))
    ):
        resumed = min(int(last_event_id), MAX_EVENT_ID)
        if after is None or resumed > after:
            after = resumed
    try:
        cursor = after if after is not None else await asyncio.to_thread(reader.change_head)
    except StoreUnavailable as error:
        logger.warning("live stream not started: %s", error)
        return
    yield ServerSentEvent(retry=RETRY_MS)
    while not signal.closed:
        woken = signal.current()
        try:
            rows = await asyncio.to_thread(reader.changes, cursor, STREAM_BATCH)
        except StoreUnavailable as error:
            # The database went away (a restart): the stream ends, and the browser's attempts
            # to reconnect are answered 503 until it is back, then streamed from where it was.
            logger.warning("live stream ended: %s", error)
            return
        if rows:
            cursor = rows[-1][0]
            for seq, body in rows:
                if _matches(body, kinds, origins):
                    yield ServerSentEvent(
                        raw_data=body.decode("utf-8"), event="observation", id=str(seq)
                    )
            continue
        # Woken at once by this process's commits; the poll catches other processes'.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), POLL_S)
