"""The daily comparison of map totals with daily counts, as a pure function of two tables."""

from __future__ import annotations

import datetime as dt

from kuroshio.ingest.daily_report import FormatAgreement, TrackDay, compare_daily

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


def test_an_area_map_is_set_beside_the_count_of_the_day_it_reports() -> None:
    maps = {_day(1): TrackDay(tracks=3, aircraft=12, format="areas")}
    counts: dict[dt.date, int | None] = {_day(0): 12, _day(1): 30}
    for offset in (0, -1, 3):  # the offset moves track maps only
        (row,) = compare_daily(maps, counts, offset_days=offset).rows
        assert (row.count_day, row.daily_count, row.match) == (_day(0), 12, True)


def test_days_within_one_and_reasons_for_the_rest() -> None:
    maps = {
        _day(1): TrackDay(tracks=2, aircraft=10, format="areas"),  # count 9: within one
        _day(2): TrackDay(tracks=2, aircraft=15, format="areas"),  # count 10: five more
        _day(3): TrackDay(tracks=1, aircraft=4, format="tracks"),  # count 20: tracks show fewer
    }
    counts: dict[dt.date, int | None] = {_day(0): 9, _day(1): 10, _day(3): 20}
    result = compare_daily(maps, counts)
    rows = {row.day: row for row in result.rows}
    assert (result.days_compared, result.days_matching, result.days_within_one) == (3, 0, 1)
    assert (
        rows[_day(1)].within_one and rows[_day(1)].reason == "the map shows 1 more than the count"
    )
    assert rows[_day(2)].reason == "the map shows 5 more than the count"
    assert rows[_day(3)].reason is not None and "track maps show only" in rows[_day(3)].reason
    assert result.reasons == {
        "the map shows more than the count": 1,
        rows[_day(3)].reason: 1,
    }
    assert result.by_format == {
        "areas": FormatAgreement(compared=2, exact=0, within_one=1),
        "tracks": FormatAgreement(compared=1, exact=0, within_one=0),
    }


def test_a_track_map_equal_to_the_count_of_a_neighbouring_day_is_dated_apart() -> None:
    maps = {_day(1): TrackDay(tracks=2, aircraft=7)}
    counts: dict[dt.date, int | None] = {_day(0): 7, _day(1): 12}
    (row,) = compare_daily(maps, counts).rows
    assert (
        row.reason
        == f"the count of {_day(0).isoformat()} equals the map: the sources date it apart"
    )
