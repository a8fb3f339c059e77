"""Track thinning: one update per interval per track, plus every manoeuvre, never a flood."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from kuroshio.feeds.base import TrackUpdate
from kuroshio.feeds.tracks import Thinning, TrackThinner

T0 = dt.datetime(2024, 8, 5, 2, 0, tzinfo=dt.UTC)


def update(
    seconds: float,
    track: str = "cat062:25/100:1",
    *,
    course: float | None = 90.0,
    speed: float | None = 250.0,
    altitude: float | None = 9_000.0,
    final: bool = False,
) -> TrackUpdate:
    return TrackUpdate(
        track=track,
        kind="air",
        at=T0 + dt.timedelta(seconds=seconds),
        lon=121.0,
        lat=24.0,
        course_deg=course,
        speed_mps=speed,
        altitude_m=altitude,
        final=final,
    )


def kept(thinner: TrackThinner, updates: list[TrackUpdate]) -> list[float]:
    return [(u.at - T0).total_seconds() for u in updates if thinner.admit(u)]


def test_interval_zero_keeps_every_update() -> None:
    thinner = TrackThinner(Thinning(interval_s=0))
    assert kept(thinner, [update(0), update(0), update(1)]) == [0, 0, 1]


def test_a_steady_track_is_kept_once_per_interval() -> None:
    thinner = TrackThinner(Thinning(interval_s=5))
    assert kept(thinner, [update(s) for s in range(21)]) == [0, 5, 10, 15, 20]


def test_a_turn_a_change_of_speed_or_of_altitude_is_kept_at_once() -> None:
    thinner = TrackThinner(Thinning(interval_s=60, course_deg=15, speed_mps=20, altitude_m=300))
    updates = [
        update(0),
        update(1, course=100),  # 10°: not yet a turn
        update(2, course=106),  # 16° from the last kept: a turn
        update(3, course=106, speed=280),  # +30 m/s
        update(4, course=106, speed=280, altitude=9_200),  # +200 m: not enough
        update(5, course=106, speed=280, altitude=9_400),  # +400 m
    ]
    assert kept(thinner, updates) == [0, 2, 3, 5]


def test_a_turn_across_north_is_measured_the_short_way() -> None:
    thinner = TrackThinner(Thinning(interval_s=60, course_deg=15))
    assert kept(thinner, [update(0, course=355), update(1, course=5), update(2, course=25)]) == [
        0,
        2,
    ]


def test_a_late_or_repeated_update_is_not_kept() -> None:
    thinner = TrackThinner(Thinning(interval_s=5))
    assert kept(thinner, [update(10), update(10), update(3, course=200)]) == [10]


def test_the_end_of_a_track_is_kept_and_the_track_forgotten() -> None:
    thinner = TrackThinner(Thinning(interval_s=60))
    assert kept(thinner, [update(0), update(1, final=True), update(2)]) == [0, 1, 2]
    assert len(thinner) == 1


def test_tracks_not_heard_for_long_are_forgotten() -> None:
    thinner = TrackThinner(Thinning(interval_s=5, forget_after_s=600))
    kept(thinner, [update(0, "a"), update(500, "b")])
    assert thinner.forget_before((T0 + dt.timedelta(seconds=700)).timestamp()) == 1
    assert len(thinner) == 1


def test_five_thousand_tracks_at_one_hertz_are_kept_at_one_in_five() -> None:
    thinner = TrackThinner(Thinning(interval_s=5))
    count = sum(
        thinner.admit(update(second, f"cat062:25/100:{n}"))
        for second in range(60)
        for n in range(5_000)
    )
    assert count == 5_000 * 12


@given(
    st.lists(
        st.tuples(st.floats(0.05, 3.0), st.floats(0, 359.9), st.floats(0, 400)),
        min_size=1,
        max_size=60,
    )
)
@settings(max_examples=200)
def test_kept_updates_are_an_interval_apart_unless_the_track_manoeuvred(
    steps: list[tuple[float, float, float]],
) -> None:
    rule = Thinning(interval_s=5, course_deg=15, speed_mps=5, altitude_m=150)
    thinner = TrackThinner(rule)
    seconds = 0.0
    last: TrackUpdate | None = None
    for step, course, speed in steps:
        seconds += step
        current = update(seconds, course=course, speed=speed)
        if thinner.admit(current):
            if last is not None and (current.at - last.at).total_seconds() < rule.interval_s:
                turn = abs((current.course_deg or 0) - (last.course_deg or 0)) % 360
                assert (
                    min(turn, 360 - turn) > rule.course_deg
                    or abs((current.speed_mps or 0) - (last.speed_mps or 0)) > rule.speed_mps
                )
            last = current
        else:
            assert last is not None
