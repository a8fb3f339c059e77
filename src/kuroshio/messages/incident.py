"""Search-and-rescue and disaster incidents worked jointly by coast guards or civil
authorities: what happened, the datum, search areas, who and what is involved, the assets each
party assigned, status and situation reports, and the final report that closes it.

Records and pure changes only. An incident travels in the link's dialogue batches, each version
whole, under the *civil* agreement in force with each party it is shared with (see
:mod:`kuroshio.messages.dialogue`), never under the observation exchange.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Final, Literal, TypeAlias

import msgspec

from kuroshio.model import PartyCode, Point, Polygon, ShortText, Text, Timestamp

IncidentKind: TypeAlias = Literal[
    "person_overboard",
    "vessel_in_distress",
    "aircraft_down",
    "typhoon",
    "earthquake",
    "tsunami",
    "other",
]
IncidentStatus: TypeAlias = Literal["open", "suspended", "closed"]
MAX_PARTS: Final = 200
IncidentId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9:._#-]+$")
]


class Involved(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A person or vessel (or aircraft) involved: name, how many, what is known."""

    what: Literal["person", "vessel", "aircraft"]
    name: ShortText
    count: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1
    remarks: Text = ""


class Asset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ship, aircraft or team a party assigned to the incident."""

    party: PartyCode
    name: ShortText
    type: ShortText = ""
    status: ShortText = "assigned"


class Sitrep(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A situation report: who, when, what."""

    by: PartyCode
    at: Timestamp
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4_000)]


class Incident(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="incident",
    tag_field="type",
):
    """One version of an incident, whole: every party working it holds the same record."""

    id: IncidentId
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] = 1
    opened_by: PartyCode
    updated_by: PartyCode
    updated_at: Timestamp
    shared_with: Annotated[tuple[PartyCode, ...], msgspec.Meta(max_length=50)] = ()
    kind: IncidentKind
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    datum: Point
    datum_at: Timestamp
    search_areas: Annotated[tuple[Polygon, ...], msgspec.Meta(max_length=MAX_PARTS)] = ()
    involved: Annotated[tuple[Involved, ...], msgspec.Meta(max_length=MAX_PARTS)] = ()
    assets: Annotated[tuple[Asset, ...], msgspec.Meta(max_length=MAX_PARTS)] = ()
    status: IncidentStatus = "open"
    sitreps: Annotated[tuple[Sitrep, ...], msgspec.Meta(max_length=10_000)] = ()
    final_report: Text | None = None

    def parties(self) -> tuple[str, ...]:
        """Every party working the incident."""
        return tuple(sorted({self.opened_by, *self.shared_with}))


class Change(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one update adds or sets (everything optional)."""

    sitrep: str | None = None
    assets: tuple[Asset, ...] = ()
    search_areas: tuple[Polygon, ...] = ()
    involved: tuple[Involved, ...] = ()
    status: IncidentStatus | None = None
    final_report: str | None = None
    share_with: tuple[PartyCode, ...] = ()


class Draft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An incident as an officer opens it; positions as ``[lon, lat]``, rings closed or not."""

    kind: str
    title: str
    datum: Sequence[float]
    datum_at: dt.datetime | None = None
    share_with: Sequence[str] = ()
    search_areas: Sequence[Sequence[Sequence[float]]] = ()
    involved: Sequence[Involved] = ()
    assets: Sequence[tuple[str, str]] = ()
    """(name, type) of the assets this party assigns."""
    sitrep: str | None = None


def closed_ring(ring: Sequence[Sequence[float]]) -> list[list[float]]:
    positions = [list(position) for position in ring]
    if positions and positions[0] != positions[-1]:
        positions.append(positions[0])
    return positions


def opened(draft: Draft, *, incident_id: str, party: str, now: dt.datetime) -> Incident:
    """Version 1 of the incident ``draft`` describes, opened by ``party`` at ``now``. Raises
    :class:`msgspec.ValidationError` naming the field that is wrong."""
    values = {
        "id": incident_id,
        "opened_by": party,
        "updated_by": party,
        "updated_at": now.isoformat(),
        "shared_with": sorted(set(draft.share_with) - {party}),
        "kind": draft.kind,
        "title": draft.title,
        "datum": {"type": "Point", "coordinates": list(draft.datum)},
        "datum_at": (draft.datum_at or now).isoformat(),
        "search_areas": [
            {"type": "Polygon", "coordinates": [closed_ring(ring)]} for ring in draft.search_areas
        ],
        "involved": msgspec.to_builtins(list(draft.involved)),
        "assets": [{"party": party, "name": name, "type": kind} for name, kind in draft.assets],
        "sitreps": (
            [{"by": party, "at": now.isoformat(), "text": draft.sitrep}] if draft.sitrep else []
        ),
    }
    return msgspec.convert(values, Incident)


def changed(incident: Incident, change: Change, by: str, now: dt.datetime) -> Incident:
    """The next version of ``incident`` after ``by``'s ``change`` at ``now``. A closed
    incident stays closed; closing takes a final report."""
    if incident.status == "closed":
        raise ValueError(f"incident {incident.id} is closed")
    if change.status == "closed" and not (change.final_report or incident.final_report):
        raise ValueError("closing an incident takes a final report")
    sitreps = incident.sitreps
    if change.sitrep:
        sitreps = (*sitreps, Sitrep(by=by, at=now, text=change.sitrep))
    shared = tuple(sorted({*incident.shared_with, *change.share_with} - {incident.opened_by}))
    return msgspec.structs.replace(
        incident,
        version=incident.version + 1,
        updated_by=by,
        updated_at=now,
        shared_with=shared,
        search_areas=(*incident.search_areas, *change.search_areas),
        involved=(*incident.involved, *change.involved),
        assets=(*incident.assets, *change.assets),
        status=change.status or incident.status,
        sitreps=sitreps,
        final_report=change.final_report or incident.final_report,
    )


__all__ = [
    "Asset",
    "Change",
    "Draft",
    "Incident",
    "IncidentKind",
    "IncidentStatus",
    "Involved",
    "Sitrep",
    "changed",
    "closed_ring",
    "opened",
]
