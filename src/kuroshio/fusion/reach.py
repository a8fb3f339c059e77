"""Where two parties' kinematic tracks can meet: a box test that finds every pair the
track-to-track association could accept, without running it on the others.

A :class:`Reach` is a track's time span and a lon/lat box that holds every position the
association may compare for it, widened by the track's share of the largest gate distance the
association may use for the pair. :class:`ReachIndex` finds, for a new track, the tracks whose
reach meets its own. It decides no association itself (:mod:`kuroshio.fusion.kinematic` does),
and never a pair of anything but two kinematic tracks of different parties.

Why no accepted pair is lost: the association compares two positions in one track's
azimuthal-equidistant plane and accepts only when their plane distance is within the gate ``L``.
That plane's scale is at least 1 in every direction (exact along the radius, ρ/m ≥ 1 across it
on the ellipsoid), so the true (geodesic) distance of the two positions is at most ``L``, and a
position reached in a plane by a segment of length ``ℓ`` from a point is within ``ℓ`` of that
point on the Earth. A geodesic of length ``d`` moves latitude by at most ``d / 110.574`` degrees
(the shortest meridian degree, at the equator) and longitude by at most
``d / (111.3195 cos φ*)`` degrees, φ* the largest latitude on it. Each track takes its own share
of ``L`` (see :func:`kuroshio.fusion.kinematic.track_reach`) and widens its box by it with the
latitudes it can reach, so the two widened boxes of an accepted pair always meet (at the point
where the geodesic between the compared positions passes from one share to the other). A reach
may hold more than that (a growing source track's is kept from bounds that hold as it grows:
:meth:`kuroshio.fusion.kinematic.FollowedTrack.projected`): a wider reach only has more pairs
compared, so the same pairs come out.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Final

KM_PER_LAT_DEGREE: Final = 110.574
"""The shortest degree of latitude on the WGS84 ellipsoid (at the equator), km."""
KM_PER_LON_DEGREE: Final = 111.3195
"""A degree of longitude at the equator on the WGS84 ellipsoid (a cos φ at latitude φ is less
than the parallel's true degree, N cos φ), km."""
SAFETY: Final = 1.001
"""Distances are taken this much larger (and 1 m longer), for the projections' rounding."""
POLAR_LATITUDE: Final = 89.0
CELL_DEGREES: Final = 0.25
CELL_HOURS: Final = 1
TOO_MANY_CELLS: Final = 400
"""A reach over more cells than this is kept aside and compared with every track."""


@dataclass(frozen=True, slots=True)
class Reach:
    """A kinematic track's time span, box (degrees) and widening (km): see the module."""

    key: str
    origin: str
    kind: str
    start: dt.datetime
    end: dt.datetime
    west: float
    south: float
    east: float
    north: float
    margin_km: float = 0.0
    bounded: bool = True
    """False when no box can be given (the association may compare positions of this track
    far beyond its plots): such a track is compared with every other party's track."""
    widened: tuple[float, float, float, float] = field(init=False)
    """The box widened by the margin: west, south, east, north (the whole circle of
    longitude near a pole or the antimeridian)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "widened", self._widened())

    def _widened(self) -> tuple[float, float, float, float]:
        margin = self.margin_km * SAFETY + 0.001
        south = self.south - margin / KM_PER_LAT_DEGREE
        north = self.north + margin / KM_PER_LAT_DEGREE
        polar = max(abs(south), abs(north))
        if polar >= POLAR_LATITUDE:
            return -180.0, south, 180.0, north
        spread = margin / (KM_PER_LON_DEGREE * math.cos(math.radians(polar)))
        west, east = self.west - spread, self.east + spread
        if west < -180.0 or east > 180.0:
            return -180.0, south, 180.0, north
        return west, south, east, north


def overlapping(a: Reach, b: Reach) -> bool:
    """The association compares tracks only over a time both hold."""
    return a.start <= b.end and b.start <= a.end


def may_meet(a: Reach, b: Reach) -> bool:
    """False only when the association can accept no pair of positions of ``a`` and ``b``."""
    if a.kind != b.kind or not overlapping(a, b):
        return False
    if not (a.bounded and b.bounded):
        return True
    a_west, a_south, a_east, a_north = a.widened
    b_west, b_south, b_east, b_north = b.widened
    return a_west <= b_east and b_west <= a_east and a_south <= b_north and b_south <= a_north


Cell = tuple[str, int, int, int]


class ReachIndex:
    """Tracks' reaches in cells of longitude, latitude and hour, for :func:`may_meet` to be
    asked of the few that share a cell with a new track (and of the unbounded ones)."""

    def __init__(self) -> None:
        self._reaches: dict[str, Reach] = {}
        self._cells: dict[Cell, set[str]] = {}
        self._cells_of: dict[str, list[Cell]] = {}
        self._aside: set[str] = set()
        self._origins: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._reaches)

    def get(self, key: str) -> Reach | None:
        """The reach held for a track, if any."""
        return self._reaches.get(key)

    def holds_other_than(self, origin: str) -> bool:
        """Whether a track of another origin than ``origin`` is held."""
        return any(count for held, count in self._origins.items() if held != origin)

    def _cells_for(self, reach: Reach) -> list[Cell] | None:
        west, south, east, north = reach.widened
        first_hour = math.floor(reach.start.timestamp() / 3600 / CELL_HOURS)
        last_hour = math.floor(reach.end.timestamp() / 3600 / CELL_HOURS)
        columns = range(math.floor(west / CELL_DEGREES), math.floor(east / CELL_DEGREES) + 1)
        rows = range(math.floor(south / CELL_DEGREES), math.floor(north / CELL_DEGREES) + 1)
        if (last_hour - first_hour + 1) * len(columns) * len(rows) > TOO_MANY_CELLS:
            return None
        return [
            (reach.kind, hour, column, row)
            for hour in range(first_hour, last_hour + 1)
            for column in columns
            for row in rows
        ]

    def add(self, reach: Reach) -> None:
        cells = self._cells_for(reach) if reach.bounded else None
        held = self._reaches.get(reach.key)
        if (
            cells is not None
            and held is not None
            and held.origin == reach.origin
            and self._cells_of.get(reach.key) == cells
        ):
            self._reaches[reach.key] = reach  # in the same cells (a track grown a little)
            return
        self.remove(reach.key)
        self._reaches[reach.key] = reach
        self._origins[reach.origin] = self._origins.get(reach.origin, 0) + 1
        if cells is None:
            self._aside.add(reach.key)
            return
        self._cells_of[reach.key] = cells
        for cell in cells:
            self._cells.setdefault(cell, set()).add(reach.key)

    def remove(self, key: str) -> None:
        reach = self._reaches.pop(key, None)
        if reach is None:
            return
        self._origins[reach.origin] -= 1
        self._aside.discard(key)
        for cell in self._cells_of.pop(key, []):
            keys = self._cells[cell]
            keys.discard(key)
            if not keys:
                del self._cells[cell]

    def meeting(self, reach: Reach) -> list[str]:
        """Keys of the tracks held whose reach may meet ``reach`` (never its own), sorted."""
        if self._reaches.get(reach.key) is reach:  # held: its cells are known (None: aside)
            cells = self._cells_of.get(reach.key)
        else:
            cells = self._cells_for(reach) if reach.bounded else None
        if cells is None:
            found = set(self._reaches)
        else:
            found = set(self._aside)
            for cell in cells:
                found |= self._cells.get(cell, set())
        found.discard(reach.key)
        reaches = self._reaches
        if not reach.bounded:
            return sorted(key for key in found if may_meet(reach, reaches[key]))
        # may_meet with this reach's side taken once (a read asks this of every track updated).
        kind, start, end = reach.kind, reach.start, reach.end
        west, south, east, north = reach.widened
        met = []
        for key in found:
            other = reaches[key]
            if other.kind != kind or not (start <= other.end and other.start <= end):
                continue
            if other.bounded:
                other_west, other_south, other_east, other_north = other.widened
                if not (
                    west <= other_east
                    and other_west <= east
                    and south <= other_north
                    and other_south <= north
                ):
                    continue
            met.append(key)
        met.sort()
        return met
