"""A built-in scenario of PLA air and sea activity around Taiwan and the Sakishima islands.

Deterministic for a seed: sorties fly great-circle legs (pyproj) between waypoints, and each
party reports the plots its own sensors would cover. It is a generator of test and demo traffic,
not a model of any real day.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence

import msgspec

from kuroshio.geo.shapes import GEOD
from kuroshio.model import (
    Kinematics,
    Marking,
    Observation,
    Platform,
    Point,
    Provenance,
    Source,
)

KNOT = 0.514444


class Sortie(msgspec.Struct, frozen=True, kw_only=True):
    """One formation or group flying/sailing a route at a constant speed."""

    name: str
    kind: str
    type: str
    platform_class: str
    count: int
    route: tuple[tuple[float, float], ...]
    speed_mps: float
    start_offset_s: float
    altitude_m: float | None = None


SORTIES: tuple[Sortie, ...] = (
    Sortie(
        name="bomber-bashi-miyako",
        kind="air",
        type="H-6K",
        platform_class="bomber",
        count=2,
        # Out of Guangdong, through the Bashi Channel, north east of Taiwan, out by Miyako.
        route=(
            (117.8, 22.4),
            (120.3, 21.3),
            (122.3, 21.6),
            (123.0, 22.3),
            (124.3, 24.0),
            (126.0, 24.6),
            (126.2, 25.8),
            (125.2, 26.6),
            (123.5, 27.5),
        ),
        speed_mps=230.0,
        start_offset_s=0,
        altitude_m=8_000,
    ),
    Sortie(
        name="fighters-median-line",
        kind="air",
        type="J-16",
        platform_class="fighter",
        count=4,
        route=((119.2, 25.2), (120.2, 24.6), (120.1, 23.9), (119.0, 24.3)),
        speed_mps=250.0,
        start_offset_s=600,
        altitude_m=7_000,
    ),
    Sortie(
        name="aew-southwest",
        kind="air",
        type="KJ-500",
        platform_class="aew",
        count=1,
        route=((117.6, 22.9), (119.6, 21.9), (119.9, 21.4), (117.8, 22.2)),
        speed_mps=150.0,
        start_offset_s=300,
        altitude_m=7_500,
    ),
    Sortie(
        name="carrier-group-east",
        kind="sea",
        type="Type 002",
        platform_class="carrier",
        count=1,
        route=((122.4, 20.6), (123.6, 22.0), (124.2, 23.4)),
        speed_mps=18 * KNOT,
        start_offset_s=0,
    ),
    Sortie(
        name="survey-sakishima",
        kind="sea",
        type="Type 636A",
        platform_class="survey",
        count=1,
        route=((122.7, 24.0), (123.3, 24.2), (123.9, 24.1), (124.6, 24.3)),
        speed_mps=12 * KNOT,
        start_offset_s=0,
    ),
)

# Where each party's sensors report from: a crude coverage box (lon/lat) per party.
COVERAGE: dict[str, tuple[float, float, float, float]] = {
    "TWN": (116.5, 19.5, 123.6, 27.5),
    "JPN": (122.6, 22.5, 131.0, 31.0),
}


class Plot(msgspec.Struct, frozen=True, kw_only=True):
    """One position of one sortie at one time (ground truth, before any party's sensor)."""

    sortie: Sortie
    at: dt.datetime
    lon: float
    lat: float
    course_deg: float
    index: int


def plots(
    start: dt.datetime, *, interval_s: float = 60.0, sorties: Sequence[Sortie] = SORTIES
) -> Iterator[Plot]:
    """Ground-truth plots of every sortie, in time order."""
    all_plots: list[Plot] = []
    for sortie in sorties:
        t = start + dt.timedelta(seconds=sortie.start_offset_s)
        index = 0
        for (lon1, lat1), (lon2, lat2) in zip(sortie.route, sortie.route[1:], strict=False):
            course, _, distance = GEOD.inv(lon1, lat1, lon2, lat2)
            steps = max(1, int(distance / (sortie.speed_mps * interval_s)))
            points = [(lon1, lat1), *GEOD.npts(lon1, lat1, lon2, lat2, steps - 1)]
            for lon, lat in points:
                all_plots.append(
                    Plot(
                        sortie=sortie, at=t, lon=lon, lat=lat, course_deg=course % 360, index=index
                    )
                )
                t += dt.timedelta(seconds=interval_s)
                index += 1
    all_plots.sort(key=lambda p: (p.at, p.sortie.name))
    return iter(all_plots)


def observe(
    plot: Plot, party: str, rng: random.Random, *, releasable_to: Sequence[str] = ()
) -> Observation | None:
    """The report ``party`` makes of a plot, or None when its sensors do not cover it."""
    min_lon, min_lat, max_lon, max_lat = COVERAGE[party]
    if not (min_lon <= plot.lon <= max_lon and min_lat <= plot.lat <= max_lat):
        return None
    error_m = 1_500.0 if plot.sortie.kind == "air" else 500.0
    lon, lat, _ = GEOD.fwd(plot.lon, plot.lat, rng.uniform(0, 360), abs(rng.gauss(0, error_m)))
    sortie = plot.sortie
    return Observation(
        id=f"{party}:demo:{sortie.name}:{plot.index}",
        origin=party,
        kind="air" if sortie.kind == "air" else "sea",
        observed_at=plot.at,
        geometry=Point(coordinates=(lon, lat)),
        platform=Platform(
            type=sortie.type,
            platform_class=sortie.platform_class,
            count=sortie.count,
            nationality="CHN",
        ),
        kinematics=Kinematics(
            course_deg=round(plot.course_deg, 1) % 360,
            speed_mps=sortie.speed_mps,
            altitude_m=sortie.altitude_m,
        ),
        source=Source(sensor="radar", confidence=0.9, uncertainty_m=error_m),
        marking=Marking(tlp="AMBER", releasable_to=tuple(releasable_to)),
        provenance=Provenance(importer="demo", record=sortie.name),
        track=f"demo:{sortie.name}",
    )


def scenario(
    party: str, start: dt.datetime, *, seed: int = 7, releasable_to: Sequence[str] = ()
) -> Iterator[Observation]:
    """Everything ``party`` reports of the scenario starting at ``start``, in time order."""
    rng = random.Random(f"{seed}:{party}")
    for plot in plots(start):
        observation = observe(plot, party, rng, releasable_to=releasable_to)
        if observation is not None:
            yield observation
