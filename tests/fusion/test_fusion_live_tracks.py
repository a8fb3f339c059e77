"""Live feeds' source tracks in the fused picture: each update extends its track, and the picture
is still what fusing the same reports all at once gives, whatever arrives late or corrected."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from stonesoup.dataassociator.tracktotrack import TrackToTrackCounting
from stonesoup.measures import Euclidean
from stonesoup.types.state import State
from stonesoup.types.track import Track

from kuroshio.feeds.observations import ObservationMapper
from kuroshio.fusion import FusionEngine, fuse
from kuroshio.fusion.gating import MAX_COAST
from kuroshio.fusion.kinematic import (
    T2T_STEP,
    FollowedTrack,
    _counted,
    _reach_box,
    extend_tracks,
)
from kuroshio.fusion.synthetic import START, radar_feed, score
from kuroshio.geo.shapes import LocalPlane, destination
from kuroshio.model import Marking, Observation
from observations import fighter_update

MARKING = Marking(tlp="AMBER", releasable_to=("JPN", "TWN"))


def _mapper(origin: str) -> ObservationMapper:
    return ObservationMapper(
        origin=origin, feed="radar", sensor="radar", marking=MARKING, uncertainty_m=300.0
    )


def _flight(
    origin: str,
    track: str,
    lon: float,
    lat: float,
    seconds: Iterable[int],
    *,
    course: float = 45.0,
) -> list[Observation]:
    """One aircraft at 200 m/s, an update a second at the given seconds after START."""
    mapper = _mapper(origin)
    updates = []
    for second in seconds:
        position = destination(lon, lat, course, 0.2 * second)
        at = START + dt.timedelta(seconds=second)
        updates.append(mapper(fighter_update(track, at, *position)))
    return updates


def _encoded(items: object) -> bytes:
    return msgspec.json.encode(items)


def test_updates_added_one_by_one_give_the_batch_picture() -> None:
    feed = radar_feed(5, tracks=20, seconds=40)
    engine = FusionEngine()
    last = None
    for observation in feed.observations:
        if observation.observed_at != last:
            engine.picture()  # as a display reads it: once a scan
        last = observation.observed_at
        engine.add(observation)
    picture = engine.picture()
    assert _encoded(picture) == _encoded(fuse(feed.observations))
    # Each source track is one item holding every one of its updates.
    assert len(picture) == 20
    scores = score([[s.id for s in item.sources] for item in picture], feed.truth)
    assert (scores.precision, scores.recall) == (1.0, 1.0)


def test_late_corrected_and_retracted_updates_give_the_batch_picture() -> None:
    flight = _flight("TWN", "cat062:1/2:7", 121.0, 24.0, range(0, 120, 2))
    late = _flight("TWN", "cat062:1/2:7", 121.0, 24.0, range(61, 62))[0]
    last = flight[-1]
    moved = msgspec.structs.replace(
        last, version=2, geometry=msgspec.structs.replace(last.geometry, coordinates=(121.9, 24.9))
    )
    middle = msgspec.structs.replace(flight[30], version=2, retracted=True)
    engine = FusionEngine()
    added: list[Observation] = []
    for observation in [*flight, late, moved, middle]:
        engine.add(observation)
        added.append(observation)
        mixed = added[:]
        random.Random(len(added)).shuffle(mixed)
        assert _encoded(engine.picture()) == _encoded(fuse(mixed))
    (item,) = engine.picture()
    sources = {source.id: source.version for source in item.sources}
    assert late.id in sources and moved.id in sources and sources[moved.id] == 2
    assert middle.id not in sources


def test_an_update_after_the_coasting_time_starts_a_new_track() -> None:
    gap = int(MAX_COAST.total_seconds())
    flight = _flight("TWN", "cat062:1/2:9", 121.0, 24.0, range(0, 30))
    later = _flight("TWN", "cat062:1/2:9", 121.0, 24.0, range(30 + gap, 40 + gap))
    engine = FusionEngine()
    for observation in flight:
        engine.add(observation)
        engine.picture()
    for observation in later:
        engine.add(observation)
        engine.picture()
    first, second = engine.picture()
    assert [s.id for s in first.sources] == [o.id for o in flight]
    assert [s.id for s in second.sources] == [o.id for o in later]


def test_another_partys_track_joins_and_one_feeds_tracks_never_do() -> None:
    seconds = range(0, 600, 4)
    ours = _flight("TWN", "cat062:1/2:1", 121.0, 24.0, seconds)
    # A second aircraft of the same feed flying alongside, 2 km off: never the same sortie.
    wingman = _flight("TWN", "cat062:1/2:2", 121.02, 24.0, seconds)
    # Japan's radar sees the first aircraft too, and an aircraft far away.
    theirs = _flight("JPN", "cat062:9/9:5", 121.0, 24.0, range(2, 600, 4))
    far = _flight("JPN", "cat062:9/9:6", 124.0, 27.0, range(2, 600, 4))
    engine = FusionEngine()
    for observations in zip(ours, wingman, theirs, far, strict=True):
        for observation in observations:
            engine.add(observation)
        engine.picture()
    picture = engine.picture()
    assert _encoded(picture) == _encoded(fuse([*ours, *wingman, *theirs, *far]))
    groups = sorted(sorted({s.id.split("@")[0] for s in item.sources}) for item in picture)
    assert groups == [
        ["JPN:radar:cat062:9/9:5", "TWN:radar:cat062:1/2:1"],
        ["JPN:radar:cat062:9/9:6"],
        ["TWN:radar:cat062:1/2:2"],
    ]


def test_a_growing_source_tracks_smoothing_is_the_kalman_smoothers() -> None:
    flight = _flight("TWN", "cat062:1/2:3", 121.0, 24.0, [*range(0, 40), *range(45, 200, 5)])
    track = FollowedTrack(flight[0], LocalPlane(121.0, 24.0))
    for number, plot in enumerate(flight[1:], start=2):
        track.extend(plot)
        if number % 7 and number != len(flight):
            continue  # asked now and then, as another party's track comes by
        kept = track.smoothed_arrays()
        smoothed = track.smoothed().states  # Stone Soup's smoother over the whole track
        assert kept.times == [state.timestamp for state in smoothed]
        for mean, covar, state in zip(kept.means, kept.covars, smoothed, strict=True):
            assert np.allclose(mean, np.ravel(state.state_vector), rtol=1e-9, atol=1e-9)
            assert np.allclose(covar, state.covar, rtol=1e-9, atol=1e-12)


def test_source_tracks_extended_together_are_the_tracks_extended_alone() -> None:
    # A picture read extends every track updated since the last one at once: a track must not
    # depend on which others were read with it (or the picture would depend on when it is read).
    flights = [
        _flight("TWN", f"cat062:1/2:{n}", 121.0 + n / 10, 24.0, range(n % 5, 70), course=20.0 * n)
        for n in range(1, 9)
    ]
    plane = LocalPlane(121.0, 24.0)
    alone = []
    for flight in flights:
        track = FollowedTrack(flight[0], plane)
        for plot in flight[1:]:
            track.extend(plot)
        alone.append(track)
    together = [FollowedTrack(flight[0], plane) for flight in flights]
    for second in range(70):
        updates = [
            (
                track,
                [
                    plot
                    for plot in flight[1:]
                    if plot.observed_at == START + dt.timedelta(seconds=second)
                ],
            )
            for track, flight in zip(together, flights, strict=True)
        ]
        extend_tracks([(track, plots) for track, plots in updates if plots])
    for one, other in zip(alone, together, strict=True):
        assert one.smoother.reach_box() == other.smoother.reach_box()
        for index in range(len(one.members)):
            mean, covar = one.smoother.state(index)
            assert np.array_equal(mean, other.smoother.state(index)[0])
            assert np.array_equal(covar, other.smoother.state(index)[1])


def test_crossing_aircrafts_plots_give_one_picture_however_memory_is_laid_out() -> None:
    # Two aircraft cross at one point, reported as plots (no source track) without noise: at the
    # crossing both plots cost the same for either track. The tie is broken by report id, never
    # by where the tracker's objects happen to lie in memory.
    plots = [
        msgspec.structs.replace(plot, track=None)
        for track, course in (("cat048:1/1:1", 45.0), ("cat048:1/1:2", 135.0))
        for plot in _flight("TWN", track, 122.0, 24.0, range(-100, 100, 4), course=course)
    ]
    pictures = set()
    for repeat in range(24):
        # Different amounts of live garbage between runs move where new objects are allocated.
        ballast = [object() for _ in range(repeat * 97)]
        pictures.add(_encoded(fuse(plots)))
        del ballast
    assert len(pictures) == 1
    (picture,) = pictures
    assert len(msgspec.json.decode(picture)) == 2


def _turning(seconds: int, turn: int, seed: int) -> list[Observation]:
    """One aircraft at 200 m/s turning from 45° to 135° at ``turn``, with 300 m of noise."""
    rng = random.Random(seed)
    mapper = _mapper("TWN")
    corner = destination(121.0, 24.0, 45.0, 0.2 * turn)
    plots = []
    for second in range(seconds):
        if second < turn:
            lon, lat = destination(121.0, 24.0, 45.0, 0.2 * second)
        else:
            lon, lat = destination(*corner, 135.0, 0.2 * (second - turn))
        lon, lat = destination(lon, lat, rng.uniform(0.0, 360.0), abs(rng.gauss(0.0, 0.3)))
        at = START + dt.timedelta(seconds=second)
        plots.append(mapper(fighter_update("cat062:1/9:1", at, lon, lat)))
    return plots


def test_a_growing_source_tracks_states_and_reach_are_what_all_its_states_give() -> None:
    plots = _turning(300, 140, seed=3)
    track = FollowedTrack(plots[0], LocalPlane(121.0, 24.0))
    for number, plot in enumerate(plots[1:], start=2):
        track.extend(plot)
        kept = track.smoothed_arrays()
        # The reach's box and spread, kept from the latest states and each block's bound, hold
        # what all the smoothed states give.
        box, variance = track.smoother.reach_box()
        exact, exact_variance = _reach_box(kept, "air")
        assert box[0] <= exact[0] and box[1] <= exact[1]
        assert box[2] >= exact[2] and box[3] >= exact[3]
        assert variance >= exact_variance
        # A bound, not a guess: a block's box is taken again once it could have moved 250 m.
        assert max(exact[0] - box[0], exact[1] - box[1], box[2] - exact[2], box[3] - exact[3]) < 0.5
        if number % 17:
            continue
        # A state asked for alone is the smoothed track's.
        assert track.smoother.times == kept.times
        for index in range(number):
            mean, covar = track.smoother.state(index)
            assert np.allclose(mean[:, 0], kept.means[index], rtol=1e-12, atol=1e-12)
            assert np.allclose(covar, kept.covars[index], rtol=1e-12, atol=1e-15)
            assert np.array_equal(track.smoother.mean(index), mean)
        every = track.smoother.means_of(list(range(number)))
        assert np.allclose(every, kept.means, rtol=1e-12, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 2.0), min_size=3, max_size=40))
def test_the_counting_technique_counts_as_stone_soups(distances: list[float]) -> None:
    grid = [dt.datetime(2025, 3, 1) + n * T2T_STEP for n in range(len(distances))]
    first = Track(
        [
            State(np.array([[d], [0.0], [0.0], [0.0]]), timestamp=t)
            for d, t in zip(distances, grid, strict=True)
        ]
    )
    second = Track([State(np.zeros((4, 1)), timestamp=t) for t in grid])
    found = TrackToTrackCounting(
        association_threshold=1.0,
        consec_pairs_confirm=3,
        consec_misses_end=2,
        measure=Euclidean(mapping=[0, 2]),
        pos_map=[0, 2],
    ).associate_tracks({first}, {second})
    # Stone Soup joins one pair's separate associations into one of a compound time range.
    covered = sum(
        association.time_range.duration.total_seconds() for association in found.associations
    )
    assert _counted(grid, distances, 1.0) == (covered if found.associations else None)
