"""Episodes: periods of activity that two or more parties reported, found in the fused picture.

Fused items are linked when they come from different parties and lie close in time and space
(the episode radius, far wider than a sortie gate: one party may watch the ships while the other
watches the aircraft they work with), or when one party reported them together (same time, same
place: a task group). An episode is a linked set holding reports of two or more parties; its
counts per party and fused count every fused item once. Pure computation over fused items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from kuroshio.catalogue import Catalogue
from kuroshio.fusion.associate import FusedItem
from kuroshio.geo.shapes import distance_km, shape_of
from kuroshio.model import Observation, latest_time

EPISODE_RADIUS_KM: Final = 300.0
GROUP_RADIUS_KM: Final = 50.0
CARRIER_REACH_KM: Final = 1000.0
"""A carrier group works its air wing this far out: the other party's reports within it are
part of the carrier's episode."""
EPISODE_SLACK: Final = dt.timedelta(days=1)
CARRIER_CLASS: Final = "carrier"


class SideCount(msgspec.Struct, frozen=True, kw_only=True):
    """What one party (or the fused picture) holds of an episode."""

    items: int = 0
    """Reports (a party) or fused items (the fused picture)."""
    aircraft: int = 0
    ships: int = 0


class Episode(msgspec.Struct, frozen=True, kw_only=True):
    """Activity reported by two or more parties over one period."""

    id: str
    name: str
    start: dt.datetime
    end: dt.datetime
    origins: tuple[str, ...]
    by_origin: dict[str, SideCount]
    fused: SideCount
    jointly_seen: int
    """Fused items (sorties or tracks) reported by two or more parties."""
    carriers: tuple[str, ...]
    """Carriers reported in the episode (catalogue names)."""
    items: tuple[str, ...]
    """Fused item ids."""

    def days(self, tz: dt.tzinfo = dt.UTC) -> tuple[dt.date, dt.date]:
        return self.start.astimezone(tz).date(), self.end.astimezone(tz).date()


def _gap(a: Observation, b: Observation) -> dt.timedelta:
    a_end, b_end = latest_time(a), latest_time(b)
    if a_end < b.observed_at:
        return b.observed_at - a_end
    if b_end < a.observed_at:
        return a.observed_at - b_end
    return dt.timedelta(0)


def _is_carrier(observation: Observation) -> bool:
    platform = observation.platform
    return platform is not None and platform.platform_class == CARRIER_CLASS


def _linked(a: Observation, b: Observation, shapes: dict[str, Any]) -> bool:
    if a.origin != b.origin:
        if _gap(a, b) > EPISODE_SLACK:
            return False
        carrier = _is_carrier(a) or _is_carrier(b)
        radius = CARRIER_REACH_KM if carrier else EPISODE_RADIUS_KM
        return distance_km(shapes[a.id], shapes[b.id]) <= radius
    # One party's own reports: together only when reported at one time and place.
    overlap = a.observed_at < latest_time(b) and b.observed_at < latest_time(a)
    same_moment = a.observed_at == b.observed_at and latest_time(a) == latest_time(b)
    if not (overlap or same_moment):
        return False
    return distance_km(shapes[a.id], shapes[b.id]) <= GROUP_RADIUS_KM


def find_episodes(items: Iterable[FusedItem], observations: Iterable[Observation]) -> list[Episode]:
    """Episodes of the fused picture (``items``, fused from ``observations``), in time order.

    Links are judged report by report (each at its own time and place), so a long track joins
    an episode only where and when it was close to the other party's reports.
    """
    fused = [i for i in items if i.kind in ("air", "sea")]
    item_of = {source.id: index for index, item in enumerate(fused) for source in item.sources}
    reports = sorted(
        (o for o in observations if o.id in item_of), key=lambda o: (o.observed_at, o.id)
    )
    shapes = {o.id: shape_of(o.geometry) for o in reports}
    parent = list(range(len(fused)))

    def find(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for index, report in enumerate(reports):
        reach = latest_time(report) + EPISODE_SLACK
        for other in reports[index + 1 :]:
            if other.observed_at > reach:
                break
            if _linked(report, other, shapes):
                a, b = sorted((find(item_of[report.id]), find(item_of[other.id])))
                parent[b] = a
    groups: dict[int, list[FusedItem]] = {}
    for index, item in enumerate(fused):
        groups.setdefault(find(index), []).append(item)
    episodes = [
        _episode(members)
        for members in groups.values()
        if len({origin for item in members for origin in item.origins}) > 1
    ]
    return sorted(episodes, key=lambda e: (e.start, e.id))


def _side(items: Sequence[FusedItem], origin: str | None) -> SideCount:
    aircraft = ships = reports = 0
    for item in items:
        if origin is None:
            count, reports = item.platform.count, reports + 1
        elif origin in item.counts:
            count = item.counts[origin]
            reports += sum(1 for source in item.sources if source.origin == origin)
        else:
            continue
        if item.kind == "air":
            aircraft += count
        else:
            ships += count
    return SideCount(items=reports, aircraft=aircraft, ships=ships)


def _carrier_names(items: Sequence[FusedItem]) -> tuple[str, ...]:
    catalogue = Catalogue.load()
    names: set[str] = set()
    for item in items:
        if item.platform.platform_class != CARRIER_CLASS or item.platform.type is None:
            continue
        entry = catalogue.get(item.platform.type)
        if entry is not None and entry.precision == "type":
            names.add(entry.name_en.rsplit(" ", 1)[-1])
    return tuple(sorted(names))


def _episode(members: list[FusedItem]) -> Episode:
    origins = tuple(sorted({origin for item in members for origin in item.origins}))
    start = min(item.start for item in members)
    carriers = _carrier_names(members)
    name = (" and ".join(carriers) + " group") if carriers else "joint activity"
    return Episode(
        id=f"episode:{start.astimezone(dt.UTC).strftime('%Y%m%dT%H%M')}:{members[0].id}",
        name=name,
        start=start,
        end=max(item.end for item in members),
        origins=origins,
        by_origin={origin: _side(members, origin) for origin in origins},
        fused=_side(members, None),
        jointly_seen=sum(1 for item in members if item.jointly_seen),
        carriers=carriers,
        items=tuple(item.id for item in members),
    )
