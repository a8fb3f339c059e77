"""Event derivation: ADIZ entries, median-line crossings, strait transits and active areas.

A pure, deterministic function of one observation and the reference geography: one STRtree
query finds every (track step, zone edge) pair that touches, and only those few places are
judged; the rasters of the areas answer most of the point-in-area questions that raises. An
area whose source says how many of its aircraft crossed the median line (without drawing where)
gives that crossing as reported. An observation that spans a time (a whole day, a window) gives
estimated events: their ``interval`` is the observation's span. It does no I/O and keeps no
state; storing events is the store's job.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import shapely

from kuroshio.geo.raster import INSIDE, NEAR, AreaRaster
from kuroshio.geo.zones import Edges, FloatArray, Geography, IntArray, Zone, load
from kuroshio.model import (
    Event,
    EventKind,
    Interval,
    LineString,
    MultiLineString,
    Observation,
    Point,
)

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


class _Hit(NamedTuple):
    """One derived fact before it becomes an Event: where along the observation it happened."""

    kind: EventKind
    zone: int
    distance_m: float
    """Distance along the track from its first position (0 for points and areas)."""
    lon: float
    lat: float
    direction: str | None = None
    remarks: str | None = None


@dataclass(slots=True)
class _Track:
    """A track flattened: positions with their leg and the distance walked to reach them.

    A place on the track is a fractional position ``k + t``: ``t`` of the way along step ``k``
    (from position ``k`` to ``k + 1``). Plain lists: a track has a handful of positions and
    only a few places on it are looked at, too few for arrays to pay.
    """

    lon: list[float]
    lat: list[float]
    leg: list[int] | None
    """Leg of each position; None for a track of one leg."""
    walked: list[float]
    """Distance in metres along the track to each position."""
    steps: list[float]
    """Length in metres of each step (0 for the jump from one leg to the next)."""
    jumps: list[float]
    """Both ends of every jump between legs, as places."""

    def step_at(self, place: float) -> int:
        """The step a place lies on: the last step for the track's end."""
        last = len(self.steps) - 1
        return last if place >= last else math.floor(place)

    def walked_at(self, place: float) -> float:
        whole = self.step_at(place)
        return self.walked[whole] + (place - whole) * self.steps[whole]

    def point_at(self, place: float) -> tuple[float, float]:
        whole = self.step_at(place)
        t = place - whole
        lon, lat = self.lon, self.lat
        return (
            lon[whole] + t * (lon[whole + 1] - lon[whole]),
            lat[whole] + t * (lat[whole + 1] - lat[whole]),
        )

    def place_at_distance(self, distance: float) -> float:
        # Within a stretch of positive length, so the step found has a positive length too.
        last = len(self.steps) - 1
        whole = bisect.bisect_right(self.walked, distance) - 1
        if whole > last:
            whole = last
        step = self.steps[whole]
        return whole + (_unit((distance - self.walked[whole]) / step) if step else 0.0)

    def leg_at(self, place: float) -> int:
        return 0 if self.leg is None else self.leg[self.step_at(place)]


def _unit(value: float) -> float:
    """``value`` clamped to [0, 1] (a NaN stays NaN)."""
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


def derive_events(observation: Observation, geography: Geography | None = None) -> list[Event]:
    """Events that follow from one observation, in the order they happened.

    * a track (LineString / MultiLineString): ``adiz_entry`` / ``zone_entry`` each time it passes
      from outside an area zone to inside, ``median_line_crossing`` (eastbound / westbound) and
      ``strait_transit`` (from one named side of a gate to the other) for every crossing; the legs
      of a MultiLineString are separate pieces of track, so nothing is inferred between them;
    * a Point: an entry event for each area zone it lies inside;
    * a Polygon (an exercise or patrol area): ``area_active`` for each area zone it overlaps;
    * a Point or Polygon whose ``crossed_median_line`` is set: one ``median_line_crossing`` of
      that many aircraft, as reported (no direction; located where the area meets the line).

    A track's event time is interpolated by distance between ``observed_at`` and ``until`` (or is
    ``observed_at`` when there is no ``until``); the location is the crossing point. When the
    observation spans a time (``until`` later than ``observed_at``) that time is an estimate:
    the event says so (``estimated``) and carries the span (``interval``). Event ids are a hash
    of the observation's id and version, the event kind, the zone and an ordinal, so deriving
    again gives the same ids. A retracted observation yields no events.
    """
    if observation.retracted:
        return []
    geography = load() if geography is None else geography
    shape = observation.geometry
    reported: list[Event] = []
    if isinstance(shape, LineString | MultiLineString):
        hits, total_m = _track_hits(shape, geography)
    else:
        if isinstance(shape, Point):
            hits = _point_entries(shape, geography)
        else:
            hits = _active_areas(shape.coordinates, geography)
        total_m = 0.0
        reported = _reported_crossings(observation, geography)
    if not hits:
        return reported
    hits.sort(key=lambda h: (h.distance_m, _KIND_ORDER[h.kind], h.zone))
    return _events(observation, hits, total_m, geography) + reported


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
    leg: list[int] | None = None
    step_index: list[int] | None = None
    positions = legs[0] if len(legs) == 1 else [p for part in legs for p in part]
    xy = np.fromiter(
        itertools.chain.from_iterable(positions), np.float64, 2 * len(positions)
    ).reshape(-1, 2)
    if len(legs) == 1:
        steps = xy.take(_step_ends(len(xy)), axis=0)
    else:
        leg = [number for number, part in enumerate(legs) for _ in part]
        # Only steps within a leg: nothing is inferred between the legs.
        step_index = [k for k in range(len(leg) - 1) if leg[k] == leg[k + 1]]
        steps = xy.take([(k, k + 1) for k in step_index], axis=0)
    edges = geography.edges
    # One STRtree query finds every (step, edge) pair that touches; most tracks have few.
    pairs = edges.touching(shapely.linestrings(steps))
    if pairs.shape[1] == 0:
        return [], 0.0
    step_of, edge_of = pairs.tolist()
    if step_index is not None:
        step_of = [step_index[step] for step in step_of]
    track = _track(xy, leg)
    on_line = edges.on_line
    line_edges = sorted({edge for edge in edge_of if on_line[edge]})
    area_pairs = [(step_of[i], edge) for i, edge in enumerate(edge_of) if not on_line[edge]]
    hits: list[_Hit] = []
    if line_edges:
        hits.extend(_line_crossings(track, geography, line_edges))
    if area_pairs:
        hits.extend(_area_entries(track, geography, area_pairs))
    return hits, track.walked[-1]


@functools.lru_cache(maxsize=64)
def _step_ends(count: int) -> IntArray:
    """(count - 1, 2) indices of the positions at both ends of each step of ``count``."""
    first = np.arange(count - 1)
    ends = np.stack((first, first + 1), axis=1)
    ends.flags.writeable = False
    return ends


def _track(xy: FloatArray, leg: list[int] | None) -> _Track:
    ahead, behind = xy[1:], xy[:-1]
    delta = ahead - behind
    # Equirectangular at each step's mid-latitude: exact enough to share time along a track.
    mid_lat = np.radians((ahead + behind)[:, 1] * 0.5)
    step_m = np.hypot(delta[:, 0] * np.cos(mid_lat), delta[:, 1]) * METRES_PER_DEGREE
    steps: list[float] = step_m.tolist()
    jumps: list[float] = []
    if leg is not None:
        for k in range(len(steps)):
            if leg[k] != leg[k + 1]:
                steps[k] = 0.0
                jumps += (float(k), float(k + 1))
    lon, lat = xy.T.tolist()
    return _Track(
        lon=lon,
        lat=lat,
        leg=leg,
        walked=[0.0, *itertools.accumulate(steps)],
        steps=steps,
        jumps=jumps,
    )


def _line_crossings(track: _Track, geography: Geography, met: list[int]) -> list[_Hit]:
    """Crossings of the median line and the gates: a change of side, within the line.

    Positions on a line are skipped when comparing sides, so a track that touches a line and
    turns back has not crossed it, and one that passes through a position on it has.
    """
    edges = geography.edges
    positions = list(zip(track.lon, track.lat, strict=True))
    leg = track.leg
    hits: list[_Hit] = []
    for edge in met:
        x0, y0, dx, dy = edges.rows[edge]
        length = math.hypot(dx, dy)
        tolerance = _ON_LINE * length
        # > 0: the position is left of the edge, walking from its start to its end
        sides = [dx * (y - y0) - dy * (x - x0) for x, y in positions]
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
        if track.leg is not None and track.leg[k] != here:
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
        cuts.setdefault(edges.owners[edge], []).append(step + _unit(t))
    hits: list[_Hit] = []
    for zone_index in sorted(cuts):
        zone = geography.zones[zone_index]
        raster = geography.area_rasters[zone_index]
        assert raster is not None  # every area has one
        for place, distance in _entries(track, zone.geometry, raster, cuts[zone_index]):
            lon_at, lat_at = track.point_at(place)
            hits.append(
                _Hit(
                    kind=zone.entry_event or "zone_entry",
                    zone=zone_index,
                    distance_m=distance,
                    lon=lon_at,
                    lat=lat_at,
                    remarks=zone.id,
                )
            )
    return hits


def _entries(
    track: _Track, polygon: Any, raster: AreaRaster, cuts: list[float]
) -> list[tuple[float, float]]:
    """Places where the track passes from outside the area to inside, with the distance walked
    to reach each.

    ``cuts`` are the places where the track meets the area's boundary; between two cuts the
    track is wholly inside or wholly outside, judged halfway along. Stretches on the boundary
    decide nothing, so touching the boundary or following it makes no false entry.
    """
    steps, walked_to = track.steps, track.walked
    last = len(steps) - 1
    bounds = sorted([0.0, float(len(steps)), *cuts, *track.jumps])
    walked: list[float] = []
    for place in bounds:
        whole = last if place >= last else math.floor(place)
        walked.append(walked_to[whole] + (place - whole) * steps[whole])
    starts: list[int] = []
    halfway: list[float] = []
    for i in range(len(bounds) - 1):
        # Repeated cuts and jumps between legs are stretches of no length: nothing to judge.
        if walked[i + 1] > walked[i]:
            starts.append(i)
            halfway.append(track.place_at_distance((walked[i] + walked[i + 1]) * 0.5))
    if len(starts) < 2:
        return []
    xs: list[float] = []
    ys: list[float] = []
    for middle in halfway:
        x, y = track.point_at(middle)
        xs.append(x)
        ys.append(y)
    legs = track.leg
    entries: list[tuple[float, float]] = []
    previous: tuple[bool, int] | None = None
    states = _states(polygon, raster, xs, ys)
    for n, i in enumerate(starts):
        state = states[n]
        if state is None:
            continue
        leg = 0 if legs is None else legs[track.step_at(halfway[n])]
        if previous == (False, leg) and state:
            entries.append((bounds[i], walked[i]))
        previous = (state, leg)
    return entries


def _states(
    polygon: Any, raster: AreaRaster, xs: list[float], ys: list[float]
) -> list[bool | None]:
    """For each position: True inside the area, False outside, None on its boundary.

    The area's raster answers for positions away from the boundary; only the others are
    handed to shapely.
    """
    state = raster.state
    states: list[bool | None] = []
    asked: list[int] = []
    for k in range(len(xs)):
        found = state(xs[k], ys[k])
        if found == NEAR:
            asked.append(k)
        states.append(found == INSIDE)
    if not asked:
        return states
    inside: list[bool] = shapely.contains_xy(
        polygon, [xs[k] for k in asked], [ys[k] for k in asked]
    ).tolist()
    outside: list[int] = []
    for k, is_inside in zip(asked, inside, strict=True):
        states[k] = is_inside
        if not is_inside:
            outside.append(k)
    if outside:
        touching = shapely.intersects_xy(
            polygon, [xs[k] for k in outside], [ys[k] for k in outside]
        ).tolist()
        for k, touches in zip(outside, touching, strict=True):
            if touches:
                states[k] = None
    return states


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


# --- reported crossings ------------------------------------------------------------------------

MEDIAN_LINE: Final = "median-line"


def _reported_crossings(observation: Observation, geography: Geography) -> list[Event]:
    """The median-line crossing a source reports for an area or a position, without a track."""
    crossed = observation.crossed_median_line
    if not isinstance(crossed, int) or crossed < 1 or MEDIAN_LINE not in geography:
        return []
    line = geography.zone(MEDIAN_LINE)
    location = _where_it_meets(observation, line.geometry)
    platform = observation.platform
    of = f" of {platform.count}" if platform is not None else ""
    return [
        Event(
            id=event_id(observation, "median_line_crossing", line.id, 0),
            kind="median_line_crossing",
            at=observation.observed_at,
            zone=line.name,
            location=location,
            observations=(observation.key,),
            origin=observation.origin,
            platform=(
                msgspec.structs.replace(platform, count=crossed) if platform is not None else None
            ),
            remarks=(
                f"{crossed}{of} crossed the median line, as the source reports; it does not say "
                "where or when"
            ),
            **_honest_time(observation),
        )
    ]


def _where_it_meets(observation: Observation, line: Any) -> Point | None:
    """A point of the line inside the area (the position itself for a Point), if any."""
    shape = observation.geometry
    if isinstance(shape, Point):
        return shape
    if isinstance(shape, LineString | MultiLineString):
        return None
    area = shapely.Polygon(shape.coordinates[0], shape.coordinates[1:])
    if not shapely.is_valid(area):
        area = shapely.make_valid(area, method="structure", keep_collapsed=False)
    met = shapely.intersection(area, line)
    if met.is_empty:
        return None
    where = shapely.point_on_surface(met)
    return Point(coordinates=(float(shapely.get_x(where)), float(shapely.get_y(where))))


def observation_span(observation: Observation) -> Interval | None:
    """The time an observation spans, when it spans one: an event derived from it happened
    somewhere in it, and its time is an estimate."""
    until = observation.until
    if until is None or until <= observation.observed_at:
        return None
    return Interval(start=observation.observed_at, end=until)


def _honest_time(observation: Observation) -> dict[str, Any]:
    """``interval`` and ``estimated`` for an event of an observation that spans a time."""
    span = observation_span(observation)
    return {} if span is None else {"interval": span, "estimated": True}


# --- events ----------------------------------------------------------------------------------


def _events(
    observation: Observation, hits: list[_Hit], total_m: float, geography: Geography
) -> list[Event]:
    start = observation.observed_at
    honest = _honest_time(observation)
    span_us = None if observation.until is None else (observation.until - start) / _MICROSECOND
    prefix = _id_prefix(observation)
    observations = (observation.key,)
    ordinals: dict[tuple[str, int], int] = {}
    events: list[Event] = []
    for hit in hits:
        key = (hit.kind, hit.zone)
        ordinal = ordinals.get(key, 0)
        ordinals[key] = ordinal + 1
        zone = geography.zones[hit.zone]
        events.append(
            Event(
                id=_event_id(prefix, hit.kind, zone.id, ordinal),
                kind=hit.kind,
                at=_time_at(start, span_us, hit.distance_m, total_m),
                zone=zone.name,
                direction=hit.direction,
                location=Point(coordinates=(hit.lon, hit.lat)),
                observations=observations,
                origin=observation.origin,
                platform=observation.platform,
                remarks=hit.remarks,
                **honest,
            )
        )
    return events


_MICROSECOND: Final = dt.timedelta(microseconds=1)


def _time_at(
    start: dt.datetime, span_us: float | None, distance_m: float, total_m: float
) -> dt.datetime:
    if span_us is None or total_m <= 0.0:
        return start
    share = _unit(distance_m / total_m)
    # Whole microseconds keep the result identical on every platform.
    return start + dt.timedelta(microseconds=round(span_us * share))


def event_id(observation: Observation, kind: str, zone_id: str, ordinal: int) -> str:
    """The deterministic id of the ``ordinal``-th event of ``kind`` at ``zone_id`` (from 0)."""
    return _event_id(_id_prefix(observation), kind, zone_id, ordinal)


def _id_prefix(observation: Observation) -> str:
    return f"{observation.id}\x1f{observation.version}\x1f"


def _event_id(prefix: str, kind: str, zone_id: str, ordinal: int) -> str:
    text = f"{prefix}{kind}\x1f{zone_id}\x1f{ordinal}"
    return "ev-" + hashlib.sha256(text.encode("utf-8")).hexdigest()
