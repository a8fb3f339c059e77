"""The common operating picture: the browser page at ``/`` and the read-only routes it needs.

Serves the built front end (``kuroshio/web/dist``, made by ``make`` from ``web/``) and, under
``/api/cop``, what the page shows beside the observations themselves: the catalogue's names and
symbol codes, the zones, one observation's detail with its verification, daily sorties and the
audit chain's state. Observations and the live stream are :mod:`kuroshio.api.observations`'
routes, the reciprocity ledger :mod:`kuroshio.api.ledger`'s; nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from kuroshio.api.access import needs, picture_or_login
from kuroshio.audit import AuditProblem, verify_log
from kuroshio.catalogue import CLASS_SYMBOLS, PLATFORM_CLASSES, Catalogue
from kuroshio.exchange.inbox import verify_received
from kuroshio.feeds.status import FeedReport
from kuroshio.model import Observation, PartyCode, latest_time
from kuroshio.node import Node
from kuroshio.store import ObservationFilter
from kuroshio.store.backend import Reader

WEB_DIST: Final = Path(__file__).resolve().parent.parent / "web" / "dist"
"""The built front end (``make`` builds it from ``web/``; git ignores it)."""
MAX_SORTIE_DAYS: Final = 366
MAX_VERSION: Final = 2**31 - 1
"""The largest observation version the schema allows."""
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; "
    "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""The page loads nothing from anywhere but its node (the map worker starts from a blob URL)."""

router = APIRouter(prefix="/api/cop", tags=["picture"])
page_router = APIRouter(include_in_schema=False)
_json = msgspec.json.Encoder()


# --- response records (their JSON Schema goes into the OpenAPI document) ------------------------


class PictureStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Who this node is, its partners, where the live stream stands and what period it holds."""

    party: PartyCode
    node: str
    partners: list[PartyCode]
    stream_head: int
    """The newest ``GET /api/stream`` event id: load, then stream with ``after`` = this."""
    earliest: dt.datetime | None
    """Start of the earliest current observation (None: the store is empty)."""
    latest: dt.datetime | None
    observations: int
    """Current observations, retractions excluded."""


class CatalogueType(msgspec.Struct, frozen=True, kw_only=True):
    """One catalogue platform type with its names and MIL-STD-2525D symbol code."""

    code: str
    platform_class: str
    domain: Literal["air", "sea"]
    nationality: str | None
    service: str | None
    name_en: str
    name_zh: str
    name_ja: str
    sidc: str
    """20-digit SIDC, standard identity hostile (digit 4); the page sets it per observation."""


class CatalogueClass(msgspec.Struct, frozen=True, kw_only=True):
    """A platform class and the symbol drawn when only the class is known."""

    name: str
    domain: Literal["air", "sea"]
    sidc: str


class CatalogueView(msgspec.Struct, frozen=True, kw_only=True):
    types: list[CatalogueType]
    classes: list[CatalogueClass]


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """Whether an observation is what its origin signed, and how that is known."""

    status: Literal["own", "imported", "verified", "relayed", "unverified", "failed"]
    detail: str


class PlatformNames(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    platform_class: str
    en: str
    zh: str
    ja: str
    sidc: str


class ObservationDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One observation as the detail panel shows it."""

    observation: Observation
    platform: PlatformNames | None
    versions: list[int]
    """Every stored version of this id, oldest first."""
    verification: Verification


class SortieSeries(msgspec.Struct, frozen=True, kw_only=True):
    origin: PartyCode
    platform_class: str
    """Catalogue class, or ``unknown`` when the source gave none."""
    counts: list[int]
    """Sorties (``platform.count``) per day, aligned with ``SortieChart.days``."""


class SortieChart(msgspec.Struct, frozen=True, kw_only=True):
    """Daily sorties (aircraft and ships reported) per source and platform class.

    A sortie is counted on the day (in UTC + ``utc_offset``) of its observation's middle: the
    moment it was seen, or the middle of the span a report covers. The updates of one source
    track (a live feed's) are one sortie, on the day of its first update in the period."""

    days: list[dt.date]
    origins: list[PartyCode]
    series: list[SortieSeries]


class AuditView(msgspec.Struct, frozen=True, kw_only=True):
    """``kuroshio audit verify``: the hash chain walked and checked with the node's key."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblem]


_DOCUMENTED: Final = (
    FeedReport,
    PictureStatus,
    CatalogueView,
    ObservationDetail,
    SortieChart,
    AuditView,
)


def _schema_ref(record: type) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": (record.__doc__ or record.__name__).strip().splitlines()[0],
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{record.__name__}"}}
            },
        }
    }


def document_schemas(app: FastAPI) -> None:
    """Put the JSON Schema of the picture's records into the app's OpenAPI components."""
    _, components = msgspec.json.schema_components(
        _DOCUMENTED, ref_template="#/components/schemas/{name}"
    )
    produce: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = produce()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in components.items():
                schemas.setdefault(name, schema)
        return app.openapi_schema or produce()

    app.openapi = openapi  # type: ignore[method-assign]


# --- helpers --------------------------------------------------------------------------------------


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def _reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


def _encoded(value: Any) -> Response:
    return Response(_json.encode(value), media_type="application/json")


def _day(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise HTTPException(422, f"{name} {value!r} is not an ISO 8601 date") from None


def _hostile_sidc(
    symbol_set: str, entity: str, modifier_1: str = "00", modifier_2: str = "00"
) -> str:
    return f"1006{symbol_set}0000{entity}{modifier_1}{modifier_2}"


# --- the page -------------------------------------------------------------------------------------

_NOT_BUILT: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kuroshio: picture not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>The picture is not built on this node</h1>
<p>This node serves its API (<a href="/openapi.json">/openapi.json</a>), but the browser
picture's files are missing from <code>{dist}</code>.</p>
<p>Build them from the source checkout with <code>make setup</code> (it runs
<code>npm ci</code> and <code>npm run build</code> in <code>web/</code>), then reload.</p>
</body></html>
"""


@page_router.get("/")
def picture_page(request: Request) -> Response:
    viewer = picture_or_login(request)
    if isinstance(viewer, Response):
        return viewer
    index = WEB_DIST / "index.html"
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT.format(dist=WEB_DIST), status_code=503)
    return FileResponse(
        index,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


@page_router.get("/assets/{name:path}", dependencies=[Depends(needs("viewer"))])
def asset(name: str) -> Response:
    """A built asset of the picture (``/`` explains when there are none)."""
    assets = (WEB_DIST / "assets").resolve()
    path = (assets / name).resolve()
    if not path.is_relative_to(assets) or not path.is_file():
        raise HTTPException(404, f"no asset {name[:100]!r}")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


# --- routes ---------------------------------------------------------------------------------------


def _status(request: Request) -> PictureStatus:
    node = _node(request)
    reader = _reader(request)
    extent = reader.extent()
    return PictureStatus(
        party=node.party,
        node=node.config.node.name,
        partners=sorted(node.partners),
        stream_head=reader.change_head(),
        earliest=extent.earliest,
        latest=extent.latest,
        observations=extent.observations,
    )


@router.get(
    "/status",
    summary="Who this node is and what period it holds",
    responses=_schema_ref(PictureStatus),
)
async def status(request: Request) -> Response:
    return _encoded(await run_in_threadpool(_status, request))


@router.get(
    "/catalogue",
    summary="Platform types and classes: names (en / zh / ja) and MIL-STD-2525D codes",
    responses=_schema_ref(CatalogueView),
)
def catalogue() -> Response:
    entries = Catalogue.load()
    types = [
        CatalogueType(
            code=entry.code,
            platform_class=entry.platform_class,
            domain=entry.domain,
            nationality=entry.nationality,
            service=entry.service,
            name_en=entry.name_en,
            name_zh=entry.name_zh,
            name_ja=entry.name_ja,
            sidc=entry.sidc,
        )
        for entry in entries
    ]
    classes = [
        CatalogueClass(
            name=name,
            domain=CLASS_SYMBOLS[name][0],
            sidc=_hostile_sidc(CLASS_SYMBOLS[name][1], CLASS_SYMBOLS[name][2]),
        )
        for name in PLATFORM_CLASSES
    ]
    return _encoded(CatalogueView(types=types, classes=classes))


@router.get(
    "/zones",
    summary="ADIZs, the median line and strait gates (GeoJSON FeatureCollection)",
    responses={
        200: {"description": "GeoJSON FeatureCollection", "content": {"application/geo+json": {}}}
    },
)
def zones() -> Response:
    body = resources.files("kuroshio.geo").joinpath("zones.geojson").read_bytes()
    return Response(body, media_type="application/geo+json")


def _verification(node: Node, reader: Reader, observation: Observation) -> Verification:
    provenance = observation.provenance
    if provenance.partner is None:
        if observation.origin != node.party:
            return Verification(
                status="unverified",
                detail=f"added on this node without a {observation.origin} signature",
            )
        if provenance.importer:
            record = f" ({provenance.record})" if provenance.record else ""
            return Verification(
                status="imported",
                detail=f"imported from the public record by {provenance.importer}{record}",
            )
        return Verification(status="own", detail=f"{node.party}'s own observation")
    keys = node.pinned_keys()
    check = reader.read(lambda tx: verify_received(tx, keys, observation))
    return Verification(status=check.status, detail=check.detail)


def _detail(request: Request, obs_id: str, version: int | None) -> ObservationDetail:
    node = _node(request)
    reader = _reader(request)
    observation = reader.get(obs_id, version)
    if observation is None:
        raise HTTPException(404, f"no observation {obs_id!r}" + (f" v{version}" if version else ""))
    platform = observation.platform
    names = None
    if platform is not None and platform.type is not None:
        entry = Catalogue.load().get(platform.type)
        if entry is not None:
            names = PlatformNames(
                code=entry.code,
                platform_class=entry.platform_class,
                en=entry.name_en,
                zh=entry.name_zh,
                ja=entry.name_ja,
                sidc=entry.sidc,
            )
    versions = [item.version for item in reader.history(obs_id)]
    return ObservationDetail(
        observation=observation,
        platform=names,
        versions=versions,
        verification=_verification(node, reader, observation),
    )


@router.get(
    "/observation",
    summary="One observation with its catalogue names, versions and verification",
    responses={**_schema_ref(ObservationDetail), 404: {"description": "no such observation"}},
)
async def observation_detail(
    request: Request,
    obs_id: Annotated[str, Query(alias="id", max_length=256)],
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    return _encoded(await run_in_threadpool(_detail, request, obs_id, version))


def _sorties(
    request: Request, start: dt.date, end: dt.date, origins: tuple[str, ...], utc_offset: int
) -> SortieChart:
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    zone = dt.timezone(dt.timedelta(minutes=utc_offset))
    selection = ObservationFilter(
        start=dt.datetime.combine(start, dt.time(), tzinfo=zone),
        end=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone),
        kinds=("air", "sea"),
        origins=origins,
    )
    counts: dict[tuple[str, str], list[int]] = {}
    tracks: set[tuple[str, str]] = set()
    for observation in _reader(request).iter_query(selection):
        if isinstance(observation.track, str):
            # a track's updates are one sortie, counted on the day of its first in the period
            if (observation.origin, observation.track) in tracks:
                continue
            tracks.add((observation.origin, observation.track))
        # A report over a span (a whole day in Tokyo time, say) counts on the day its middle
        # falls on in the chosen zone, so a JST day is not lost to the day before in Taipei.
        middle = observation.observed_at + (latest_time(observation) - observation.observed_at) / 2
        day = middle.astimezone(zone).date()
        if day not in index:
            continue  # mostly before or after the period
        platform = observation.platform
        platform_class = (platform.platform_class if platform else None) or "unknown"
        sorties = platform.count if platform else 1
        row = counts.setdefault((observation.origin, platform_class), [0] * len(days))
        row[index[day]] += sorties
    order = {name: n for n, name in enumerate(PLATFORM_CLASSES)}
    series = [
        SortieSeries(origin=origin, platform_class=platform_class, counts=row)
        for (origin, platform_class), row in sorted(
            counts.items(), key=lambda item: (item[0][0], order.get(item[0][1], len(order)))
        )
    ]
    return SortieChart(days=days, origins=sorted({s.origin for s in series}), series=series)


@router.get(
    "/sorties",
    summary="Daily sorties per source over a period, by platform class",
    responses=_schema_ref(SortieChart),
)
async def sorties(
    request: Request,
    start: Annotated[str, Query(description="First day (YYYY-MM-DD)")],
    end: Annotated[str, Query(description="Last day, inclusive (YYYY-MM-DD)")],
    origin: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    utc_offset: Annotated[
        int, Query(ge=-720, le=840, description="Days counted in UTC + this many minutes")
    ] = 0,
) -> Response:
    first, last = _day(start, "start"), _day(end, "end")
    assert first is not None and last is not None
    if last < first:
        raise HTTPException(422, f"end {end} is before start {start}")
    if (last - first).days + 1 > MAX_SORTIE_DAYS:
        raise HTTPException(422, f"a chart covers at most {MAX_SORTIE_DAYS} days")
    origins = tuple(o.strip().upper() for item in origin for o in item.split(",") if o.strip())
    chart = await run_in_threadpool(_sorties, request, first, last, origins, utc_offset)
    return _encoded(chart)


def _audit(request: Request) -> AuditView:
    node = _node(request)
    keys = node.identity.all_public_keys
    report = _reader(request).read(lambda tx: verify_log(tx.audit, keys))
    return AuditView(
        ok=report.ok,
        checked=report.checked,
        head_seq=report.head.seq,
        head_hash=report.head.hash.hex(),
        problems=report.problems,
    )


@router.get(
    "/audit",
    summary="The audit chain walked and checked: verified, or where it breaks and why",
    responses=_schema_ref(AuditView),
)
async def audit(request: Request) -> Response:
    return _encoded(await run_in_threadpool(_audit, request))


__all__ = ["WEB_DIST", "document_schemas", "page_router", "router"]
