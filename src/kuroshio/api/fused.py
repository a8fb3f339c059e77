"""``GET /api/fused``: the fused picture of a time window, each sortie once with all its sources.

The node's current air and sea observations overlapping the window are fused on request
(:func:`kuroshio.fusion.fuse`); nothing is stored. The response shape is the contract the browser
picture draws from: keep it stable.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from kuroshio import inputs
from kuroshio.fusion import fuse
from kuroshio.fusion.gating import is_plot
from kuroshio.store import ObservationFilter

MAX_WINDOW: Final = dt.timedelta(days=31)
DEFAULT_WINDOW: Final = dt.timedelta(days=1)
MAX_REPORTS: Final = 50_000
MAX_PLOTS: Final = 2_000
"""Radar plots tracked in one request (tracking is the costly part)."""

router = APIRouter(prefix="/api", tags=["fusion"])


class FusedSource(BaseModel):
    """One report a fused item rests on."""

    id: str = Field(description="Observation id, origin-scoped (e.g. TWN:mnd:2023-08-25:0002)")
    origin: str = Field(description="ISO 3166-1 alpha-3 code of the party that observed it")
    version: int = Field(description="The observation version the item rests on")


class FusedPlatformOut(BaseModel):
    type: str | None = Field(None, description="Catalogue type code, e.g. H-6K")
    platform_class: str | None = Field(None, description="Catalogue class, e.g. bomber")
    count: int = Field(description="Aircraft or ships: the most any one party reported")


class FusedItemOut(BaseModel):
    """One sortie or track, as every party that reported it saw it together."""

    id: str = Field(description="fused:<id of the earliest source>")
    kind: str = Field(description="air or sea")
    start: dt.datetime
    end: dt.datetime
    at: dt.datetime = Field(description="Best single moment (the middle of the agreed time)")
    geometry: dict[str, Any] = Field(description="GeoJSON geometry, WGS84, most precise origin")
    uncertainty_m: float = Field(description="Position uncertainty (1 sigma) of that geometry")
    platform: FusedPlatformOut
    origins: list[str] = Field(description="Parties that reported it, sorted")
    counts: dict[str, int] = Field(description="Aircraft or ships each party reported")
    jointly_seen: bool = Field(description="Reported by two or more parties")
    sources: list[FusedSource] = Field(description="Every report it rests on")


class FusedPictureOut(BaseModel):
    """The fused picture of ``[start, end)``."""

    start: dt.datetime
    end: dt.datetime
    reports: int = Field(description="Current observations read in the window")
    count: int = Field(description="Fused items returned")
    jointly_seen: int = Field(description="Items reported by two or more parties")
    items: list[FusedItemOut]


@router.get(
    "/fused",
    summary="The fused picture: sorties and tracks of every origin, each once, with its sources",
    response_model=FusedPictureOut,
)
def fused(
    request: Request,
    start: Annotated[
        str | None, Query(description="From (ISO 8601; UTC if no zone). Default: end - 1 day")
    ] = None,
    end: Annotated[str | None, Query(description="Until, exclusive. Default: now")] = None,
    joint: Annotated[bool, Query(description="Only items reported by two or more parties")] = False,
) -> FusedPictureOut:
    until = inputs.utc_time(end, "end") or dt.datetime.now(dt.UTC)
    since = inputs.utc_time(start, "start") or until - DEFAULT_WINDOW
    if since >= until:
        raise HTTPException(422, f"start {since.isoformat()} is not before end {until.isoformat()}")
    if until - since > MAX_WINDOW:
        raise HTTPException(422, f"window longer than {MAX_WINDOW.days} days; narrow start/end")
    selection = ObservationFilter(start=since, end=until, kinds=("air", "sea"))
    observations = []
    for observation in request.app.state.reader.iter_query(selection):
        observations.append(observation)
        if len(observations) > MAX_REPORTS:
            raise HTTPException(
                413, f"more than {MAX_REPORTS} reports in the window; narrow start/end"
            )
    origins = {observation.origin for observation in observations}
    if joint and len(origins) < 2:
        # One party's reports alone have nothing jointly seen: no need to track them.
        items = []
    else:
        plots = sum(1 for observation in observations if is_plot(observation))
        if plots > MAX_PLOTS:
            raise HTTPException(
                413, f"{plots} radar plots in the window, more than {MAX_PLOTS}; narrow start/end"
            )
        items = fuse(observations)
    shown = [item for item in items if item.jointly_seen or not joint]
    return FusedPictureOut(
        start=since,
        end=until,
        reports=len(observations),
        count=len(shown),
        jointly_seen=sum(1 for item in items if item.jointly_seen),
        items=[FusedItemOut.model_validate(msgspec.to_builtins(item)) for item in shown],
    )
