"""Event derivation: ADIZ entries, median-line crossings, strait transits and active areas.

A pure, deterministic function of one observation and the reference geography: one STRtree
query finds every (track step, zone edge) pair that touches, numpy finds where, and only those
few places are judged. It does no I/O and keeps no state; storing events is the store's job.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shapely

from kuroshio.geo.zones import Edges, FloatArray, Geography, IntArray, Zone, load
from kuroshio.model import Event, EventKind, LineString, MultiLineString, Observation, Point

METRES_PER_DEGREE: Final = 111_195.0
"""Length of one degree of latitude (mean Earth radius 6 371 km), for distances along a track."""
_ON_LINE: Final = 1e-9
"""Distance in degrees (about 0.1 mm) under which a position counts as lying on a line."""
_SAME_PLACE_M: Final = 0.01
"""Crossings of one line closer than this along the track (1 cm) are one crossing."""
_KIND_ORDER: Final[dict[str, int]] = {
    "adiz_entry": 0,
    "zone_entry": 1,
    "median_line_crossing": 2,
    "strait_transit": 3,
    "area_active": 4,
}


@dataclass(frozen=True, slots=True)
class _Hit:
    """One derived fact before it becomes an Event: where along the observation it happened."""

    kind: EventKind
    zone: int
    distance_m: float
    """Distance along the track from its first position (0 for points and areas)."""
    lon: float
    lat: float
    direction: str | None = None
    remarks: str | None = None


@dataclass(frozen=True, slots=True)
class _Track:
    """A track flattened: positions with their leg and the distance walked to reach them.

    A place on the track is a fractional position ``k + t``: ``t`` of the way along step ``k``
    (from position ``k`` to ``k + 1``). Arrays serve the vectorised tests; the lists serve the
    handful of places those tests find.
    """

    xy: FloatArray
    """(n, 2) lon/lat of every position, legs concatenated."""
    leg: IntArray | None
    """(n,) leg of each position; None for a track of one leg."""
    lon: list[float]
    lat: list[float]
    walked: list[float]
    """Distance in metres along the track to each position."""
    steps: list[float]
    """Length in metres of each step (0 for the jump from one leg to the next)."""

    def walked_at(self, place: float) -> float:
        whole = min(int(place), len(self.steps) - 1)
        return self.walked[whole] + (place - whole) * self.steps[whole]

    def point_at(self, place: float) -> tuple[float, float]:
        whole = min(int(place), len(self.steps) - 1)
        t = place - whole
        lon, lat = self.lon, self.lat
        return (
            lon[whole] + t * (lon[whole + 1] - lon[whole]),
            lat[whole] + t * (lat[whole + 1] - lat[whole]),
        )

    def place_at_distance(self, distance: float) -> float:
        # Within a stretch of positive length, so the step found has a positive length too.
        whole = min(bisect.bisect_right(self.walked, distance) - 1, len(self.steps) - 1)
        step = self.steps[whole]
        return whole + (min(max((distance - self.walked[whole]) / step, 0.0), 1.0) if step else 0.0)

    def leg_at(self, place: float) -> int:
        return 0 if self.leg is None else int(self.leg[min(int(place), len(self.steps) - 1)])

    def jumps(self) -> list[float]:
        """Both ends of every jump between legs, as places."""
        if self.leg is None:
            return []
        starts = np.flatnonzero(self.leg[:-1] != self.leg[1:]).tolist()
        return [float(p) for j in starts for p in (j, j + 1)]


def derive_events(observation: Observation, geography: Geography | None = None) -> list[Event]:
    """Events that follow from one observation, in the order they happened.

    * a track (LineString / MultiLineString): ``adiz_entry`` / ``zone_entry`` each time it passes
      from outside an area zone to inside, ``median_line_crossing`` (eastbound / westbound) and
      ``strait_transit`` (from one named side of a gate to the other) for every crossing; the legs
      of a MultiLineString are separate pieces of track, so nothing is inferred between them;
    * a Point: an entry event for each area zone it lies inside;
    * a Polygon (an exercise or patrol area): ``area_active`` for each area zone it overlaps.

    A track's event time is interpolated by distance between ``observed_at`` and ``until`` (or is
    ``observed_at`` when there is no ``until``); the location is the crossing point. Event ids are
    a hash of the observation's id and version, the event kind, the zone and an ordinal, so
    deriving again gives the same ids. A retracted observation yields no events.
    """
    if observation.retracted:
        return []
    geography = load() if geography is None else geography
    shape = observation.geometry
    if isinstance(shape, LineString | MultiLineString):
        hits, total_m = _track_hits(shape, geography)
    elif isinstance(shape, Point):
        hits = _point_entries(shape, geography)
        total_m = 0.0
    else:
        hits = _active_areas(shape.coordinates, geography)
        total_m = 0.0
    hits.sort(key=lambda h: (h.distance_m, _KIND_ORDER[h.kind], h.zone))
    return _events(observation, hits, total_m, geography)


def derive_all(
    observations: Iterable[Observation], geography: Geography | None = None
) -> list[Event]:
    """Events of many observations, concatenated in input order."""
    geography = load() if geography is None else geography
    return [event for o in observations for event in derive_events(o, geography)]


# --- tracks ----------------------------------------------------------------------------------


def _track_hits(
    shape: LineString | MultiLineString, geography: Geography
) -> tuple[list[_Hit], float]:
    """The track's crossings and entries, and its length in metres."""
    legs = (shape.coordinates,) if isinstance(shape, LineString) else shape.coordinates
    leg: IntArray | None = None
    if len(legs) == 1:
        xy = np.array(legs[0], dtype=np.float64)
    else:
        xy = np.array([p for part in legs for p in part], dtype=np.float64)
        leg = np.repeat(np.arange(len(legs)), [len(part) for part in legs])
    steps = np.empty((len(xy) - 1, 2, 2))
    steps[:, 0] = xy[:-1]
    steps[:, 1] = xy[1:]
    step_index = None
    if leg is not None:
        step_index = np.flatnonzero(leg[:-1] == leg[1:])
        steps = steps[step_index]
    edges = geography.edges
    # One STRtree query finds every (step, edge) pair that touches; most tracks have none.
    pairs = edges.touching(shapely.linestrings(steps))
    if pairs.shape[1] == 0:
        return [], 0.0
    step_of = pairs[0] if step_index is None else step_index[pairs[0]]
    edge_of = pairs[1]
    track = _track(xy, leg)
    line_edges: set[int] = set()
    area_pairs: list[tuple[int, int]] = []
    for step, edge in zip(step_of.tolist(), edge_of.tolist(), strict=True):
        if geography.zones[edges.owners[edge]].is_line:
            line_edges.add(edge)
        else:
            area_pairs.append((step, edge))
    hits: list[_Hit] = []
    if line_edges:
        hits.extend(_line_crossings(track, geography, sorted(line_edges)))
    if area_pairs:
        hits.extend(_area_entries(track, geography, area_pairs))
    return hits, track.walked[-1]


def _track(xy: FloatArray, leg: IntArray | None) -> _Track:
    delta = xy[1:] - xy[:-1]
    # Equirectangular at each step's mid-latitude: exact enough to share time along a track.
    mid_lat = np.radians((xy[:-1, 1] + xy[1:, 1]) * 0.5)
    step_m = np.hypot(delta[:, 0] * np.cos(mid_lat), delta[:, 1]) * METRES_PER_DEGREE
    if leg is not None:
        step_m[leg[:-1] != leg[1:]] = 0.0
    walked_m = np.zeros(len(xy))
    np.cumsum(step_m, out=walked_m[1:])
    return _Track(
        xy=xy,
        leg=leg,
        lon=xy[:, 0].tolist(),
        lat=xy[:, 1].tolist(),
        walked=walked_m.tolist(),
        steps=step_m.tolist(),
    )


def _line_crossings(track: _Track, geography: Geography, met: list[int]) -> list[_Hit]:
    """Crossings of the median line and the gates: a change of side, within the line.

    Positions on a line are skipped when comparing sides, so a track that touches a line and
    turns back has not crossed it, and one that passes through a position on it has.
    """
    edges = geography.edges
    xy = track.xy
    leg = None if track.leg is None else track.leg.tolist()
    hits: list[_Hit] = []
    for edge in met:
        x0, y0, dx, dy = edges.rows[edge]
        length = math.hypot(dx, dy)
        tolerance = _ON_LINE * length
        # > 0: the position is left of the edge, walking from its start to its end
        sides = (dx * (xy[:, 1] - y0) - dy * (xy[:, 0] - x0)).tolist()
        last = -1
        for k, side in enumerate(sides):
            if abs(side) <= tolerance:
                continue
            changed = last >= 0 and (side > 0.0) != (sides[last] > 0.0)
            if changed and (leg is None or leg[last] == leg[k]):
                place = last + sides[last] / (sides[last] - side) if k == last + 1 else last + 1
                hit = _line_hit(track, geography, edge, place, sides[last] > 0.0)
                if hit is not None and not _already(hits, hit):
                    hits.append(hit)
            last = k
    return hits


def _already(hits: list[_Hit], hit: _Hit) -> bool:
    # A track through a vertex of a polyline gate meets both edges there: one transit.
    return any(
        h.zone == hit.zone and abs(h.distance_m - hit.distance_m) <= _SAME_PLACE_M for h in hits
    )


def _line_hit(
    track: _Track, geography: Geography, edge: int, place: float, from_left: bool
) -> _Hit | None:
    """The crossing at ``place`` of the line through ``edge``, if it lies within the edge."""
    edges = geography.edges
    lon, lat = track.point_at(place)
    x0, y0, dx, dy = edges.rows[edge]
    length = math.hypot(dx, dy)
    u = ((lon - x0) * dx + (lat - y0) * dy) / length**2
    slack = _ON_LINE / length
    if not -slack <= u <= 1.0 + slack:
        return None
    zone_index = edges.owners[edge]
    zone = geography.zones[zone_index]
    # Through a bend of a polyline gate, the side of one edge's line is not the side of the
    # gate: judge by the wedges the bend makes.
    corner = _corner(edges, edge, at_start=u <= slack) if u <= slack or u >= 1 - slack else None
    if corner is not None:
        side = _wedge_crossing(track, place, *corner)
        if side is None:
            return None
        from_left = side
    return _Hit(
        kind="median_line_crossing" if zone.kind == "median_line" else "strait_transit",
        zone=zone_index,
        distance_m=track.walked_at(place),
        lon=lon,
        lat=lat,
        direction=_crossing_direction(zone, from_left),
        remarks=zone.id,
    )


_Corner = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


def _corner(edges: Edges, edge: int, *, at_start: bool) -> _Corner | None:
    """(previous vertex, bend, next vertex) when the edge's end is a bend of its polyline."""
    other = edge - 1 if at_start else edge + 1
    if not 0 <= other < len(edges.owners) or edges.owners[other] != edges.owners[edge]:
        return None
    first, second = (other, edge) if at_start else (edge, other)
    x1, y1, dx1, dy1 = edges.rows[first]
    x2, y2, dx2, dy2 = edges.rows[second]
    # Consecutive edges of one polyline share the bend exactly: both come from its vertices.
    if abs(x1 + dx1 - x2) > _ON_LINE or abs(y1 + dy1 - y2) > _ON_LINE:
        return None
    return (x1, y1), (x2, y2), (x2 + dx2, y2 + dy2)


def _wedge_crossing(
    track: _Track,
    place: float,
    before: tuple[float, float],
    bend: tuple[float, float],
    after: tuple[float, float],
) -> bool | None:
    """True when the track passes through ``bend`` from the gate's left to its right, False for
    right to left, None when it stays on one side (or runs along the gate)."""
    incoming = _neighbour(track, place, bend, step=-1)
    outgoing = _neighbour(track, place, bend, step=1)
    if incoming is None or outgoing is None:
        return None
    back = math.atan2(before[1] - bend[1], before[0] - bend[0])
    ahead = math.atan2(after[1] - bend[1], after[0] - bend[0])
    left_span = (back - ahead) % math.tau

    def on_left(point: tuple[float, float]) -> bool | None:
        turn = (math.atan2(point[1] - bend[1], point[0] - bend[0]) - ahead) % math.tau
        if min(turn, math.tau - turn) < 1e-12 or abs(turn - left_span) < 1e-12:
            return None
        return turn < left_span

    start, end = on_left(incoming), on_left(outgoing)
    if start is None or end is None or start == end:
        return None
    return start


def _neighbour(
    track: _Track, place: float, bend: tuple[float, float], step: int
) -> tuple[float, float] | None:
    """The nearest track position before (step -1) or after (+1) ``place`` that is not ``bend``,
    within the same leg: the track runs straight from the bend to it."""
    k = math.ceil(place) - 1 if step < 0 else math.floor(place) + 1
    here = track.leg_at(place)
    while 0 <= k < len(track.lon):
        if track.leg is not None and int(track.leg[k]) != here:
            return None
        point = (track.lon[k], track.lat[k])
        if abs(point[0] - bend[0]) > _ON_LINE or abs(point[1] - bend[1]) > _ON_LINE:
            return point
        k += step
    return None


def _crossing_direction(zone: Zone, from_left: bool) -> str:
    left, right = zone.left_side, zone.right_side
    assert left is not None and right is not None  # checked when the geography was loaded
    source, target = (left, right) if from_left else (right, left)
    if zone.kind == "median_line":
        return f"{target.name}bound"
    return f"{source.name} to {target.name}"


def _area_entries(track: _Track, geography: Geography, pairs: list[tuple[int, int]]) -> list[_Hit]:
    """Entries into the area zones whose boundary edges touch the track, from the touching
    (step, edge) pairs."""
    edges = geography.edges
    lon, lat = track.lon, track.lat
    cuts: dict[int, list[float]] = {}
    for step, edge in pairs:
        x, y, ex, ey = edges.rows[edge]
        dx = lon[step + 1] - lon[step]
        dy = lat[step + 1] - lat[step]
        den = dx * ey - dy * ex
        # A step parallel to an edge shares a stretch with it; the stretch's ends are where the
        # step meets the neighbouring edges, which are pairs of their own.
        if den == 0.0:
            continue
        t = ((x - lon[step]) * ey - (y - lat[step]) * ex) / den
        cuts.setdefault(edges.owners[edge], []).append(step + min(max(t, 0.0), 1.0))
    hits: list[_Hit] = []
    for zone_index in sorted(cuts):
        zone = geography.zones[zone_index]
        for place in _entries(track, zone.geometry, cuts[zone_index]):
            lon_at, lat_at = track.point_at(place)
            hits.append(
                _Hit(
                    kind=zone.entry_event or "zone_entry",
                    zone=zone_index,
                    distance_m=track.walked_at(place),
                    lon=lon_at,
                    lat=lat_at,
                    remarks=zone.id,
                )
            )
    return hits


def _entries(track: _Track, polygon: Any, cuts: list[float]) -> list[float]:
    """Places where the track passes from outside the area to inside.

    ``cuts`` are the places where the track meets the area's boundary; between two cuts the
    track is wholly inside or wholly outside, judged halfway along. Stretches on the boundary
    decide nothing, so touching the boundary or following it makes no false entry.
    """
    bounds = sorted([0.0, float(len(track.steps)), *cuts, *track.jumps()])
    walked = [track.walked_at(place) for place in bounds]
    starts: list[float] = []
    halfway: list[float] = []
    for i in range(len(bounds) - 1):
        # Repeated cuts and jumps between legs are stretches of no length: nothing to judge.
        if walked[i + 1] > walked[i]:
            starts.append(bounds[i])
            halfway.append(track.place_at_distance((walked[i] + walked[i + 1]) * 0.5))
    if len(starts) < 2:
        return []
    points = [track.point_at(place) for place in halfway]
    lon = [p[0] for p in points]
    lat = [p[1] for p in points]
    inside = shapely.contains_xy(polygon, lon, lat).tolist()
    touching = shapely.intersects_xy(polygon, lon, lat).tolist()
    entries: list[float] = []
    previous: tuple[bool, int] | None = None
    for start, middle, is_inside, touches in zip(starts, halfway, inside, touching, strict=True):
        if touches and not is_inside:
            continue
        leg = track.leg_at(middle)
        if previous == (False, leg) and is_inside:
            entries.append(start)
        previous = (bool(is_inside), leg)
    return entries


# --- points and areas ------------------------------------------------------------------------


def _point_entries(point: Point, geography: Geography) -> list[_Hit]:
    lon, lat = point.coordinates
    hits: list[_Hit] = []
    for index in geography.candidate_indices(shapely.points(lon, lat)):
        zone = geography.zones[int(index)]
        if zone.is_area and shapely.contains_xy(zone.geometry, lon, lat):
            hits.append(
                _Hit(
                    kind=zone.entry_event or "zone_entry",
                    zone=int(index),
                    distance_m=0.0,
                    lon=lon,
                    lat=lat,
                    remarks=zone.id,
                )
            )
    return hits


def _active_areas(
    rings: tuple[tuple[tuple[float, float], ...], ...], geography: Geography
) -> list[_Hit]:
    area = shapely.Polygon(rings[0], rings[1:])
    if not shapely.is_valid(area):
        # Drawn areas are sometimes self-touching or bow-tied; what they enclose still counts.
        area = shapely.make_valid(area, method="structure", keep_collapsed=False)
    own = float(shapely.area(area))
    if own <= 0.0:
        return []
    hits: list[_Hit] = []
    for zone in geography.candidates(area):
        if not zone.is_area or not shapely.intersects(zone.geometry, area):
            continue
        overlap = shapely.intersection(zone.geometry, area)
        shared = float(shapely.area(overlap))
        if shared <= 0.0:
            continue
        where = shapely.point_on_surface(overlap)
        share = shared / own
        remarks = (
            f"{zone.id}: inside"
            if share >= 0.9995
            else f"{zone.id}: partly inside ({math.floor(share * 100)}% of the area)"
        )
        hits.append(
            _Hit(
                kind="area_active",
                zone=geography.index(zone.id),
                distance_m=0.0,
                lon=float(shapely.get_x(where)),
                lat=float(shapely.get_y(where)),
                remarks=remarks,
            )
        )
    return hits


# --- events ----------------------------------------------------------------------------------


def _events(
    observation: Observation, hits: list[_Hit], total_m: float, geography: Geography
) -> list[Event]:
    start = observation.observed_at
    span = None if observation.until is None else observation.until - start
    ordinals: dict[tuple[str, int], int] = {}
    events: list[Event] = []
    for hit in hits:
        ordinal = ordinals.get((hit.kind, hit.zone), 0)
        ordinals[(hit.kind, hit.zone)] = ordinal + 1
        zone = geography.zones[hit.zone]
        events.append(
            Event(
                id=event_id(observation, hit.kind, zone.id, ordinal),
                kind=hit.kind,
                at=_time_at(start, span, hit.distance_m, total_m),
                zone=zone.name,
                direction=hit.direction,
                location=Point(coordinates=(hit.lon, hit.lat)),
                observations=(observation.key,),
                origin=observation.origin,
                platform=observation.platform,
                remarks=hit.remarks,
            )
        )
    return events


def _time_at(
    start: dt.datetime, span: dt.timedelta | None, distance_m: float, total_m: float
) -> dt.datetime:
    if span is None or total_m <= 0.0:
        return start
    share = min(max(distance_m / total_m, 0.0), 1.0)
    # Whole microseconds keep the result identical on every platform.
    return start + dt.timedelta(microseconds=round(span / dt.timedelta(microseconds=1) * share))


def event_id(observation: Observation, kind: str, zone_id: str, ordinal: int) -> str:
    """The deterministic id of the ``ordinal``-th event of ``kind`` at ``zone_id`` (from 0)."""
    text = f"{observation.id}\x1f{observation.version}\x1f{kind}\x1f{zone_id}\x1f{ordinal}"
    return "ev-" + hashlib.sha256(text.encode("utf-8")).hexdigest()
