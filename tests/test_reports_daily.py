"""The daily comparison of map totals with daily counts, as a pure function of two tables."""

from __future__ import annotations

import datetime as dt

from kuroshio.ingest.daily_report import TrackDay, compare_daily

D = dt.date(2022, 8, 5)


def _day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def test_agreement_is_over_days_with_both_figures() -> None:
    tracks = {_day(0): TrackDay(tracks=6, aircraft=49), _day(1): TrackDay(tracks=2, aircraft=3)}
    counts: dict[dt.date, int | None] = {_day(0): 49, _day(1): 20, _day(2): 7, _day(3): None}
    result = compare_daily(tracks, counts, end=_day(3))
    assert [(r.day, r.match) for r in result.rows] == [
        (_day(0), True),
        (_day(1), False),
        (_day(2), None),
    ]
    assert (result.days_compared, result.days_matching) == (2, 1)
    assert result.agreement_rate == 0.5
    assert result.consistency_rate == 1.0


def test_offset_pairs_a_map_with_the_count_of_another_day() -> None:
    tracks = {_day(1): TrackDay(tracks=1, aircraft=12)}
    counts: dict[dt.date, int | None] = {_day(0): 12, _day(1): 5}
    same_day = compare_daily(tracks, counts)
    assert same_day.rows[0].daily_count == 5
    previous = compare_daily(tracks, counts, offset_days=-1)
    assert (previous.rows[0].daily_count, previous.rows[0].match) == (12, True)


def test_no_days_no_rate() -> None:
    result = compare_daily({}, {})
    assert (result.rows, result.agreement_rate) == ([], None)
