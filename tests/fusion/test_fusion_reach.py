"""Two parties' live tracks are compared only where their reaches meet: the pairs the
track-to-track association accepts are exactly those it accepts when every pair is compared,
and one update compares its track with the tracks it can meet, not with all of them."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuroshio.feeds.observations import ObservationMapper
from kuroshio.fusion import FusionEngine, fuse
from kuroshio.fusion.kinematic import (
    follow_plots,
    track_plots,
    track_reach,
    track_unit,
    tracks_associated,
)
from kuroshio.fusion.reach import ReachIndex, may_meet
from kuroshio.fusion.synthetic import START, score, shared_radar_feeds
from kuroshio.geo.shapes import destination
from kuroshio.model import Marking, Observation
from observations import fighter_update

MARKING = Marking(tlp="AMBER", releasable_to=("JPN", "TWN"))


class Flight(msgspec.Struct, frozen=True):
    """One party's source track of one aircraft flying straight."""

    origin: str
    lon: float
    lat: float
    course: float
    speed_kms: float
    first: int
    """Seconds after START of the first update."""
    period: int
    updates: int
    noise_km: float
    seed: int
    plots: bool = False
    """Reported as plots (a radar's, tracked here), not as a source track's updates."""


def _plots(flight: Flight) -> list[Observation]:
    mapper = ObservationMapper(
        origin=flight.origin,
        feed="radar",
        sensor="radar",
        marking=MARKING,
        uncertainty_m=max(flight.noise_km, 0.05) * 1000.0,
    )
    rng = random.Random(flight.seed)
    plots = []
    for number in range(flight.updates):
        second = flight.first + number * flight.period
        lon, lat = destination(flight.lon, flight.lat, flight.course, flight.speed_kms * second)
        north, east = rng.gauss(0.0, flight.noise_km), rng.gauss(0.0, flight.noise_km)
        lon, lat = destination(lon, lat, 0.0, north)
        lon, lat = destination(lon, lat, 90.0, east)
        at = START + dt.timedelta(seconds=second)
        plots.append(mapper(fighter_update(f"cat062:1/1:{flight.seed}", at, lon, lat)))
    if flight.plots:
        return [msgspec.structs.replace(plot, track=None) for plot in plots]
    return plots


def _units(flight: Flight) -> list[Any]:
    plots = _plots(flight)
    tracks = track_plots(plots) if flight.plots else follow_plots(plots)
    return [track_unit(members, states) for members, states in tracks]


@st.composite
def flight_pairs(draw: st.DrawFn) -> tuple[Flight, Flight]:
    """Two parties' tracks of one aircraft, or of two aircraft close by: apart by up to 25 km
    and 20°, starting at different times, some at the edge of what the gate takes."""
    lon = draw(st.floats(118.0, 130.0))
    lat = draw(st.floats(-60.0, 60.0))
    course = draw(st.floats(0.0, 360.0))
    plots = draw(st.booleans()), draw(st.booleans())
    noisy = (0.0, 0.1, 0.3, 1.0)
    speed = draw(st.sampled_from((0.0, 0.015, 0.15, 0.25, 0.3)))
    first = Flight(
        origin="TWN",
        lon=lon,
        lat=lat,
        course=course,
        speed_kms=speed,
        first=draw(st.integers(0, 60)),
        period=draw(st.sampled_from((1, 1, 2, 4, 10, 45))),
        updates=draw(st.integers(1, 40)),
        noise_km=draw(st.sampled_from(noisy)),
        seed=draw(st.integers(0, 10**6)),
        plots=plots[0],
    )
    apart = draw(st.floats(0.0, 25.0))
    where = destination(lon, lat, draw(st.floats(0.0, 360.0)), apart)
    second = Flight(
        origin="JPN",
        lon=where[0],
        lat=where[1],
        course=course + draw(st.floats(-20.0, 20.0)),
        speed_kms=speed * draw(st.sampled_from((1.0, 1.0, 0.9, 1.2))),
        first=draw(st.integers(0, 120)),
        period=draw(st.sampled_from((1, 1, 2, 5, 12, 40))),
        updates=draw(st.integers(1, 40)),
        noise_km=draw(st.sampled_from(noisy)),
        seed=draw(st.integers(0, 10**6)),
        plots=plots[1],
    )
    return first, second


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(flight_pairs())
def test_every_pair_the_association_accepts_is_one_whose_reaches_meet(
    pair: tuple[Flight, Flight],
) -> None:
    first, second = (_units(flight) for flight in pair)
    index = ReachIndex()
    for a in first:
        index.add(track_reach(a))
    for b in second:
        reach_b = track_reach(b)
        meeting = index.meeting(reach_b)
        for a in first:
            reach_a = track_reach(a)
            accepted = tracks_associated(a, b) is not None or tracks_associated(b, a) is not None
            if accepted:
                assert may_meet(reach_a, reach_b)
            # The index finds what the pairwise test finds.
            assert (a.key in meeting) == may_meet(reach_a, reach_b)


def _every_pair(index: ReachIndex, reach: Any) -> list[str]:
    """What the index would give if it filtered nothing: every track it holds."""
    return sorted(key for key in index._reaches if key != reach.key)


def _feed_in_scans(engine: FusionEngine, observations: list[Observation]) -> list[Any]:
    scan = None
    for observation in sorted(observations, key=lambda o: (o.observed_at, o.id)):
        if observation.observed_at != scan:
            engine.picture()
        scan = observation.observed_at
        engine.add(observation)
    return engine.picture()


def _pairs(engine: FusionEngine) -> dict[tuple[str, str], float]:
    """Every pair of units the engine associates, with its cost."""
    return {
        (first, second): cost
        for first, others in engine._edges.items()
        for second, cost in others.items()
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(flight_pairs(), min_size=1, max_size=4))
def test_the_picture_is_the_one_every_pair_compared_gives(
    pairs: list[tuple[Flight, Flight]],
) -> None:
    flights = [flight for pair in pairs for flight in pair]
    observations = []
    for number, flight in enumerate(flights):
        for plot in _plots(msgspec.structs.replace(flight, seed=flight.seed * 10 + number)):
            observations.append(plot)
    engine = FusionEngine()
    prefiltered = _feed_in_scans(engine, observations)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReachIndex, "meeting", _every_pair)
        every = FusionEngine()
        unfiltered = _feed_in_scans(every, observations)
    # The same pairs associated, at the same costs, so the same picture.
    assert _pairs(engine) == _pairs(every)
    assert msgspec.json.encode(prefiltered) == msgspec.json.encode(unfiltered)
    assert msgspec.json.encode(prefiltered) == msgspec.json.encode(fuse(observations))


@pytest.mark.parametrize("seed", range(1, 4))
def test_two_parties_feeds_are_joined_track_by_track(seed: int) -> None:
    feeds = shared_radar_feeds(seed, tracks=40, seconds=12, shared=0.6)
    picture = _feed_in_scans(FusionEngine(), feeds.observations)
    tracks = [sorted({s.id.split("@")[0] for s in item.sources}) for item in picture]
    scores = score(tracks, feeds.track_truth)
    # 24 aircraft both parties see (each one fused item), 16 each sees alone; two aircraft
    # flying close together may be taken for one.
    assert scores.recall == 1.0 and scores.precision >= 0.95
    assert len(picture) <= 56 and sum(len(t) for t in tracks) == 80


def test_an_update_compares_its_track_with_the_tracks_it_can_meet_only() -> None:
    feeds = shared_radar_feeds(2, tracks=60, seconds=10, shared=0.5)
    engine = FusionEngine()
    compared: list[tuple[dt.datetime, int]] = []
    meeting = ReachIndex.meeting

    def counted(index: ReachIndex, reach: Any) -> list[str]:
        found = meeting(index, reach)
        compared.append((reach.end, len(found)))
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReachIndex, "meeting", counted)
        _feed_in_scans(engine, feeds.observations)
    # Every pair compared would be 60 tracks of the other party for each update. A young
    # track's reach is wide (its speed is not known yet); once it is known, a track meets its
    # own aircraft's other track and now and then one more.
    assert sum(n for _, n in compared) < 0.05 * 60 * len(compared)
    settled = [n for end, n in compared if end >= START + dt.timedelta(seconds=6)]
    assert len(settled) == 4 * 120 and max(settled) <= 6
    assert sum(settled) <= 2 * len(settled)
