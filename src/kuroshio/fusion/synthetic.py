"""Synthetic sorties with known truth, as a Taiwan node would receive them: its own radar plots
and Japan's, released coarsened, late, out of order, some corrected and some sent twice.

For measuring association (precision and recall against the truth) in tests and benchmarks;
seeded, so one seed always gives the same scenario. It is not the demo scenario.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable
from typing import Final

import msgspec

from kuroshio.feeds.base import TrackUpdate
from kuroshio.feeds.observations import ObservationMapper
from kuroshio.geo.shapes import destination
from kuroshio.model import Marking, Observation, Platform, Point, Provenance, Source
from kuroshio.policy.decide import COARSENED_WORDS, coarsen

START: Final = dt.datetime(2025, 3, 1, 0, 0, tzinfo=dt.UTC)
TYPES: Final = (
    ("J-16", "fighter"),
    ("H-6K", "bomber"),
    ("BZK-005", "uav"),
    ("Y-9 EW", "ew"),
    ("KJ-500", "aew"),
)


class Sortie(msgspec.Struct, frozen=True):
    """One true sortie: type, count, start, straight route at constant speed."""

    number: int
    type: str
    platform_class: str
    count: int
    start: dt.datetime
    minutes: int
    lon: float
    lat: float
    course_deg: float
    speed_mps: float

    def position(self, moment: dt.datetime) -> tuple[float, float]:
        seconds = (moment - self.start).total_seconds()
        return destination(self.lon, self.lat, self.course_deg, self.speed_mps * seconds / 1000.0)


class Arrival(msgspec.Struct, frozen=True):
    """A report as the node receives it, and when."""

    at: dt.datetime
    observation: Observation


class Scenario(msgspec.Struct, frozen=True):
    sorties: list[Sortie]
    arrivals: list[Arrival]
    """In arrival order (not observation order)."""
    truth: dict[str, int]
    """Report id → sortie number."""


def _sorties(rng: random.Random, count: int, hours: float) -> list[Sortie]:
    sorties = []
    for number in range(count):
        kind, platform_class = TYPES[rng.randrange(len(TYPES))]
        sorties.append(
            Sortie(
                number=number,
                type=kind,
                platform_class=platform_class,
                count=rng.choice((1, 1, 2, 2, 4, 6)),
                start=START + dt.timedelta(minutes=rng.randrange(int(hours * 60))),
                minutes=rng.randrange(60, 150),
                lon=rng.uniform(120.5, 124.5),
                lat=rng.uniform(21.0, 26.5),
                course_deg=rng.uniform(0.0, 360.0),
                speed_mps=rng.uniform(140.0, 240.0) if platform_class != "uav" else 60.0,
            )
        )
    return sorties


def _noisy_position(
    sortie: Sortie, moment: dt.datetime, noise_km: float, rng: random.Random
) -> tuple[float, float]:
    """Where a radar puts the sortie at ``moment``: an isotropic Gaussian error of ``noise_km``
    in each direction."""
    lon, lat = sortie.position(moment)
    north, east = rng.gauss(0.0, noise_km), rng.gauss(0.0, noise_km)
    return destination(lon, lat, math.degrees(math.atan2(east, north)), math.hypot(north, east))


def _radar_update(
    rng: random.Random, sortie: Sortie, moment: dt.datetime, noise_km: float, track: str
) -> TrackUpdate:
    """One update of a live radar feed's source track following the sortie."""
    lon, lat = _noisy_position(sortie, moment, noise_km, rng)
    return TrackUpdate(
        track=track,
        kind="air",
        at=moment,
        lon=lon,
        lat=lat,
        platform_class=sortie.platform_class,
        platform_type=sortie.type,
    )


def _plot(
    sortie: Sortie,
    origin: str,
    moment: dt.datetime,
    noise_km: float,
    rng: random.Random,
    number: int,
) -> Observation:
    lon, lat = _noisy_position(sortie, moment, noise_km, rng)
    # One party sometimes miscounts a formation by one.
    count = max(1, sortie.count + rng.choice((0, 0, 0, 0, 1, -1)))
    return Observation(
        id=f"{origin}:radar:{sortie.number:03d}-{number:03d}",
        origin=origin,
        kind="air",
        observed_at=moment,
        geometry=Point(coordinates=(lon, lat)),
        platform=Platform(
            type=sortie.type, platform_class=sortie.platform_class, count=count, nationality="CHN"
        ),
        source=Source(sensor="radar", confidence=0.9, uncertainty_m=noise_km * 1000.0),
        marking=Marking(tlp="AMBER", releasable_to=("JPN", "TWN")),
        provenance=Provenance(importer="radar"),
    )


def as_released(observation: Observation, grid_km: float, sender: str) -> Observation:
    """As the sender's egress would release it: coarsened, its transforms written down."""
    coarse = coarsen(observation, grid_km)
    provenance = msgspec.structs.replace(
        coarse.provenance,
        partner=sender,
        hops=1,
        transforms=(f"{sender}: " + COARSENED_WORDS.format(km=grid_km),),
    )
    return msgspec.structs.replace(coarse, provenance=provenance)


def scenario(
    seed: int = 7,
    *,
    sorties: int = 24,
    hours: float = 8.0,
    grid_km: float = 10.0,
    twn_noise_km: float = 1.5,
    jpn_noise_km: float = 2.0,
) -> Scenario:
    """The Taiwan node's view of ``sorties`` random sorties over ``hours``.

    Taiwan's radar covers west of 123.5°E (a plot every 5 minutes); Japan's east of 122°E (every
    6 minutes, released on a ``grid_km`` grid, 5 to 40 minutes late). A twentieth of Japan's
    reports are corrected later (version 2), and a twentieth are sent twice.
    """
    rng = random.Random(seed)
    truth: dict[str, int] = {}
    arrivals: list[Arrival] = []
    plan = _sorties(rng, sorties, hours)
    for sortie in plan:
        for origin, period, noise, west, east in (
            ("TWN", 5, twn_noise_km, -180.0, 123.5),
            ("JPN", 6, jpn_noise_km, 122.0, 180.0),
        ):
            phase = rng.randrange(period * 60)
            moment = sortie.start + dt.timedelta(seconds=phase)
            number = 0
            while moment <= sortie.start + dt.timedelta(minutes=sortie.minutes):
                lon, _ = sortie.position(moment)
                if west < lon < east:
                    plot = _plot(sortie, origin, moment, noise, rng, number)
                    truth[plot.id] = sortie.number
                    if origin == "TWN":
                        delay = dt.timedelta(seconds=rng.uniform(5, 120))
                        arrivals.append(Arrival(at=moment + delay, observation=plot))
                    else:
                        delay = dt.timedelta(minutes=rng.uniform(5, 40))
                        sent = as_released(plot, grid_km, "JPN")
                        arrivals.append(Arrival(at=moment + delay, observation=sent))
                        if rng.random() < 0.05:
                            arrivals.append(Arrival(at=moment + 2 * delay, observation=sent))
                        if rng.random() < 0.05:
                            fixed = as_released(
                                _plot(sortie, origin, moment, noise, rng, number), grid_km, "JPN"
                            )
                            fixed = msgspec.structs.replace(fixed, version=2)
                            arrivals.append(Arrival(at=moment + 3 * delay, observation=fixed))
                    number += 1
                moment += dt.timedelta(minutes=period)
    arrivals.sort(key=lambda a: (a.at, a.observation.id, a.observation.version))
    return Scenario(sorties=plan, arrivals=arrivals, truth=truth)


class Scores(msgspec.Struct, frozen=True, kw_only=True):
    """Pairwise association against the truth: pairs of reports put together (found), truly of
    one sortie (true), and both (hits); ``cross_*`` over pairs from different origins only."""

    hits: int
    found: int
    true: int
    cross_hits: int
    cross_found: int
    cross_true: int

    @property
    def precision(self) -> float:
        return _ratio(self.hits, self.found)

    @property
    def recall(self) -> float:
        return _ratio(self.hits, self.true)

    @property
    def cross_precision(self) -> float:
        return _ratio(self.cross_hits, self.cross_found)

    @property
    def cross_recall(self) -> float:
        return _ratio(self.cross_hits, self.cross_true)

    def __add__(self, other: Scores) -> Scores:
        return Scores(**{f: getattr(self, f) + getattr(other, f) for f in self.__struct_fields__})

    def summary(self) -> dict[str, float]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "cross_precision": round(self.cross_precision, 4),
            "cross_recall": round(self.cross_recall, 4),
        }


def _ratio(hit: int, total: int) -> float:
    return hit / total if total else 1.0


def score(groups: Iterable[Iterable[str]], truth: dict[str, int]) -> Scores:
    """Precision and recall of putting two reports together, over every pair of reports."""
    found = cross_found = hits = cross_hits = 0
    for group in groups:
        ids = sorted(i for i in group if i in truth)
        for index, first in enumerate(ids):
            for second in ids[index + 1 :]:
                cross = first[:3] != second[:3]
                same = truth[first] == truth[second]
                found += 1
                hits += same
                cross_found += cross
                cross_hits += cross and same
    by_sortie: dict[int, list[str]] = {}
    for report, sortie in truth.items():
        by_sortie.setdefault(sortie, []).append(report[:3])
    true_pairs = cross_true = 0
    for origins in by_sortie.values():
        true_pairs += len(origins) * (len(origins) - 1) // 2
        cross_true += origins.count("TWN") * origins.count("JPN")
    return Scores(
        hits=hits,
        found=found,
        true=true_pairs,
        cross_hits=cross_hits,
        cross_found=cross_found,
        cross_true=cross_true,
    )


class RadarFeed(msgspec.Struct, frozen=True):
    """A live radar feed's track updates, as the node maps them: one plot a second per track."""

    observations: list[Observation]
    """In arrival order: scan by scan (each scan's plots in track order)."""
    truth: dict[str, int]
    """Report id → track number."""


def radar_feed(
    seed: int = 7, *, tracks: int = 500, seconds: int = 60, noise_km: float = 0.3
) -> RadarFeed:
    """``tracks`` aircraft flying straight over the Taiwan Strait, each reported once a second for
    ``seconds`` by one radar feed (CAT062-like source tracks, ``noise_km`` of position noise)."""
    rng = random.Random(seed)
    mapper = ObservationMapper(
        origin="TWN",
        feed="radar",
        sensor="radar",
        marking=Marking(tlp="AMBER", releasable_to=("JPN", "TWN")),
        confidence=0.9,
        uncertainty_m=noise_km * 1000.0,
    )
    plan = [msgspec.structs.replace(s, start=START) for s in _sorties(rng, tracks, 1.0)]
    observations: list[Observation] = []
    truth: dict[str, int] = {}
    for second in range(seconds):
        moment = START + dt.timedelta(seconds=second)
        for sortie in plan:
            update = _radar_update(rng, sortie, moment, noise_km, f"cat062:1/2:{sortie.number}")
            observation = mapper(update)
            observations.append(observation)
            truth[observation.id] = sortie.number
    return RadarFeed(observations=observations, truth=truth)


class SharedFeeds(msgspec.Struct, frozen=True):
    """Several parties' live radar feeds over one area, many of their tracks on one aircraft."""

    observations: list[Observation]
    """In arrival order: second by second, each party's scan in track order."""
    truth: dict[str, int]
    """Report id → aircraft number."""
    track_truth: dict[str, int]
    """Source track (``<origin>:<feed>:<track>``, a report id without its ``@time``) → aircraft."""


def shared_radar_feeds(
    seed: int = 7,
    *,
    parties: tuple[str, ...] = ("TWN", "JPN"),
    tracks: int = 500,
    seconds: int = 60,
    shared: float = 0.6,
    noise_km: float = 0.3,
) -> SharedFeeds:
    """``tracks`` source tracks from each of ``parties``' radar feeds, updated once a second for
    ``seconds``; ``shared`` of each party's tracks are aircraft every party sees, the rest its
    own. Party ``i`` scans ``i / len(parties)`` of a second after the first, numbers its tracks
    in its own order and reports each position with ``noise_km`` of noise."""
    rng = random.Random(seed)
    common = round(shared * tracks)
    total = common + len(parties) * (tracks - common)
    plan = [msgspec.structs.replace(s, start=START) for s in _sorties(rng, total, 1.0)]
    seen: dict[str, list[Sortie]] = {}
    for index, party in enumerate(parties):
        own = plan[common + index * (tracks - common) : common + (index + 1) * (tracks - common)]
        mine = plan[:common] + own
        rng.shuffle(mine)
        seen[party] = mine
    mappers = {
        party: ObservationMapper(
            origin=party,
            feed="radar",
            sensor="radar",
            marking=Marking(tlp="AMBER", releasable_to=tuple(sorted(parties))),
            confidence=0.9,
            uncertainty_m=noise_km * 1000.0,
        )
        for party in parties
    }
    observations: list[Observation] = []
    truth: dict[str, int] = {}
    track_truth: dict[str, int] = {}
    for second in range(seconds):
        for index, party in enumerate(parties):
            moment = START + dt.timedelta(seconds=second + index / len(parties))
            for number, sortie in enumerate(seen[party]):
                track = f"cat062:{index + 1}/1:{number}"
                update = _radar_update(rng, sortie, moment, noise_km, track)
                observation = mappers[party](update)
                observations.append(observation)
                truth[observation.id] = sortie.number
                track_truth[observation.id.split("@")[0]] = sortie.number
    return SharedFeeds(observations=observations, truth=truth, track_truth=track_truth)
