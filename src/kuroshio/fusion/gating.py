"""Gates: whether two reports (or report groups) can be the same sortie, and at what cost.

A gate looks at kind, platform type and class, count, time (with each report's own time
resolution) and space (with each report's position uncertainty, a coarsened release counting its
grid as uncertainty). Everything here is pure and deterministic; it associates nothing itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from kuroshio.catalogue import Catalogue
from kuroshio.geo.shapes import distance_km, shape_of
from kuroshio.model import Observation, Point, latest_time

DAY_REPORT: Final = dt.timedelta(hours=20)
"""A report spanning at least this long is a day-resolution report (a daily map, a press day)."""
POINT_REPORT: Final = dt.timedelta(minutes=1)
"""A point report spanning at most this long is a plot, for kinematic tracking."""
MAX_COAST: Final = dt.timedelta(minutes=30)
"""A kinematic track not updated for this long ends; a later plot starts a new one."""
UNKNOWN_CLASS_COST: Final = 0.15
COUNT_COST: Final = 0.2


class GateConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The tolerances of association; the defaults suit radar plots and daily public reports."""

    sigmas: float = 3.0
    """Gate radius in combined standard deviations of the two reports' positions."""
    min_gate_km: float = 5.0
    time_tolerance: dt.timedelta = dt.timedelta(minutes=30)
    """Largest gap between two reports of one sortie at the same time resolution."""
    day_slack: dt.timedelta = dt.timedelta(days=1)
    """Added to the time tolerance when a report covers a whole day: parties close their
    reporting days at different hours (Taiwan MND: 06:00 to 06:00 local)."""
    air_speed_mps: float = 300.0
    sea_speed_mps: float = 15.0
    max_sortie: dt.timedelta = dt.timedelta(hours=12)
    """An aircraft sortie lasts at most this long: one party's air reports further apart in time
    are different sorties."""
    max_sea_gap: dt.timedelta = dt.timedelta(days=3)
    """One party's ship reports further apart than this start a new track."""
    count_ratio: float = 0.25
    """Counts of one sortie differ by at most 2, or the smaller is at least this share of the
    larger (one party may see part of a formation)."""


DEFAULT_GATES: Final = GateConfig()


@dataclass(slots=True)
class Unit:
    """What association works on: one report, or one party's kinematic track of point reports."""

    key: str
    origin: str
    channel: str
    """Reports of one channel at overlapping times are distinct things (one map, one radar)."""
    kind: str
    start: dt.datetime
    end: dt.datetime
    shape: Any
    """Shapely geometry in lon/lat."""
    sigma_km: float
    platform_class: str | None
    type_code: str | None
    count: int
    hulls: frozenset[str]
    members: tuple[Observation, ...]
    kinematic: bool = False
    states: Any = field(default=None, repr=False)
    """Kinematic units: the Stone Soup track (km plane) and its projection, for track-to-track."""

    @property
    def span(self) -> dt.timedelta:
        return self.end - self.start


def sigma_km(observation: Observation) -> float:
    """One-sigma position uncertainty in km: the stated one, at least half the released grid."""
    grid = observation.provenance.released_grid_km
    stated = observation.source.uncertainty_m / 1000.0
    return max(stated, grid / 2.0 if grid is not None else 0.0, 0.05)


def is_plot(observation: Observation) -> bool:
    """True for a report that kinematic tracking takes: an air or sea point at one moment."""
    span = latest_time(observation) - observation.observed_at
    return (
        observation.kind in ("air", "sea")
        and isinstance(observation.geometry, Point)
        and span <= POINT_REPORT
    )


TRACK_SERIES: Final = "track "
"""How the series of a source track's updates is named (after the channel and kind)."""


def series_key(observation: Observation) -> tuple[str, str, str]:
    """Plots are tracked per party channel, kind and platform class; the updates of a source
    track (a live feed's) per track, so that one track is one sortie and two are never one."""
    if isinstance(observation.track, str):
        return (channel_of(observation), observation.kind, f"{TRACK_SERIES}{observation.track}")
    platform_class = observation.platform.platform_class if observation.platform else None
    return (channel_of(observation), observation.kind, platform_class or "?")


def channel_of(observation: Observation) -> str:
    provenance = observation.provenance
    return f"{observation.origin}/{provenance.importer or 'direct'}"


def report_unit(observation: Observation) -> Unit:
    """An observation as a unit of its own."""
    platform = observation.platform
    return Unit(
        key=observation.id,
        origin=observation.origin,
        channel=channel_of(observation),
        kind=observation.kind,
        start=observation.observed_at,
        end=latest_time(observation),
        shape=shape_of(observation.geometry),
        sigma_km=sigma_km(observation),
        platform_class=platform.platform_class if platform else None,
        type_code=platform.type if platform else None,
        count=_count(observation),
        hulls=frozenset(platform.hull_numbers) if platform else frozenset(),
        members=(observation,),
    )


def _count(observation: Observation) -> int:
    if observation.kind == "area":
        return 0
    return observation.platform.count if observation.platform is not None else 1


# --- platform ------------------------------------------------------------------------------------


@functools.cache
def _catalogue() -> Catalogue:
    return Catalogue.load()


@functools.cache
def precision_of(code: str) -> str:
    """How precise a catalogue code is (``type``, ``family`` or ``class``)."""
    entry = _catalogue().get(code)
    return entry.precision if entry is not None else "type"


def _same_family(first: str, second: str) -> bool:
    """H-6 / H-6K, Y-9 / Y-9 EW: one code is the other followed by a variant."""
    if first == second:
        return True
    short, long = sorted((first, second), key=len)
    return long.startswith(short) and not long[len(short)].isdigit()


def _vague(unit: Unit) -> bool:
    """Only the class is known (no type, or a class-only catalogue entry)."""
    return unit.type_code is None or precision_of(unit.type_code) == "class"


def platform_compatible(a: Unit, b: Unit) -> bool:
    """Same type, one family of types (H-6 / H-6K, Luyang / Type 052D), or a class that does
    not contradict; hull numbers, where both give them, must share one."""
    if a.hulls and b.hulls and not a.hulls & b.hulls:
        return False
    differ = a.type_code and b.type_code and a.type_code != b.type_code
    if differ and a.type_code and b.type_code and not _same_family(a.type_code, b.type_code):
        if precision_of(a.type_code) == "type" and precision_of(b.type_code) == "type":
            return False
        # A family or class-only entry matches the types of its own class.
        return a.platform_class == b.platform_class
    if a.platform_class and b.platform_class and a.platform_class != b.platform_class:
        general = {"other_aircraft", "other_vessel"}
        return (
            (a.platform_class in general and _vague(a))
            or (b.platform_class in general and _vague(b))
            or (a.type_code is not None and a.type_code == b.type_code)
            or (
                a.type_code is not None
                and b.type_code is not None
                and _same_family(a.type_code, b.type_code)
            )
        )
    return True


def count_compatible(a: int, b: int, config: GateConfig = DEFAULT_GATES) -> bool:
    low, high = sorted((a, b))
    return high - low <= 2 or low >= config.count_ratio * high


# --- time and space ------------------------------------------------------------------------------


def time_gap(a: Unit, b: Unit) -> dt.timedelta:
    """Time between two reports' intervals (zero when they overlap)."""
    if a.end < b.start:
        return b.start - a.end
    if b.end < a.start:
        return a.start - b.end
    return dt.timedelta(0)


def overlapping(a: Unit, b: Unit) -> bool:
    return a.start <= b.end and b.start <= a.end


def _speed_kms(kind: str, config: GateConfig) -> float:
    return (config.air_speed_mps if kind == "air" else config.sea_speed_mps) / 1000.0


def gate_km(a: Unit, b: Unit, moving: dt.timedelta, config: GateConfig = DEFAULT_GATES) -> float:
    """How far apart two reports of one sortie can be: their uncertainties and the motion."""
    spread = config.sigmas * math.hypot(a.sigma_km, b.sigma_km)
    return max(spread, config.min_gate_km) + _speed_kms(a.kind, config) * moving.total_seconds()


def _time_allowed(a: Unit, b: Unit, config: GateConfig) -> dt.timedelta:
    if a.span >= DAY_REPORT or b.span >= DAY_REPORT:
        return config.time_tolerance + config.day_slack
    return config.time_tolerance


def may_share(a: Unit, b: Unit, config: GateConfig = DEFAULT_GATES) -> bool:
    """Whether two units may sit in one fused item at all, however they are linked.

    One channel at one time reports distinct things; one channel's air reports further apart
    than a sortie lasts are distinct sorties. Other channels and other parties may always share.
    """
    if a.channel != b.channel:
        return True
    if overlapping(a, b):
        return False
    if a.kind == "air":
        return max(a.end, b.end) - min(a.start, b.start) <= config.max_sortie
    return a.kind == "sea"


def continues(a: Unit, b: Unit, config: GateConfig = DEFAULT_GATES) -> bool:
    """Whether one party's two reports can be one sortie or track reported twice."""
    if not may_share(a, b, config):
        return False
    return a.channel != b.channel or time_gap(a, b) <= config.max_sea_gap


def gate(a: Unit, b: Unit, config: GateConfig = DEFAULT_GATES) -> float | None:
    """The cost of calling ``a`` and ``b`` one sortie (≤ 1), or None when the gate refuses."""
    if a.kind != b.kind or a.kind == "area":
        return None
    if not platform_compatible(a, b) or not count_compatible(a.count, b.count, config):
        return None
    gap = time_gap(a, b)
    if a.origin == b.origin:
        if not continues(a, b, config):
            return None
        allowed = config.max_sea_gap if a.kind == "sea" else config.max_sortie
        # A report over an interval places the platform somewhere in it, not at its end.
        moving = gap + min(a.span, b.span) / 2
    else:
        allowed = _time_allowed(a, b, config)
        moving = min(gap, config.time_tolerance)
    if gap > allowed:
        return None
    distance = distance_km(a.shape, b.shape)
    limit = gate_km(a, b, moving, config)
    if distance > limit:
        return None
    cost = distance / limit
    if a.platform_class is None or b.platform_class is None:
        cost += UNKNOWN_CLASS_COST
    if a.count != b.count:
        cost += COUNT_COST * abs(a.count - b.count) / max(a.count, b.count)
    return min(cost, 1.0)
