"""Reports over a node's store: the daily comparison of MND maps with the daily aircraft counts.

The comparison itself is a pure function of two tables (aircraft on the maps per map date, and
the published daily figure); reading them from a store is a thin edge. Nothing is printed.

Two kinds of MND map are compared. The track maps (to 2024-01-15) show only the aircraft that
crossed the median line or entered the south-west ADIZ, so their total is expected to be at
most the day's count; they say nothing of the hours they cover, so the comparison pairs the map
of day D with the count of day D + ``offset_days`` (the MND report of day D covers D-1 06:00 to D
06:00: ``-1`` pairs them). The area maps (since 2024-01-16) count every aircraft and say which
day they report, the day before their date, so each is set beside the count of that day
whatever ``offset_days`` says. A day "matches" when both figures are equal; days off by more
than one are given a reason.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from kuroshio.ingest.daily_counts import daily_figures
from kuroshio.ingest.mnd_areas import IMPORTER as AREAS_IMPORTER
from kuroshio.ingest.mnd_areas import activity_day, map_day
from kuroshio.ingest.source_files import TAIWAN
from kuroshio.model import Observation
from kuroshio.store import ObservationFilter
from kuroshio.store.backend import NodeStore

MND_IMPORTER = "mnd-tracks"
NOT_AIRCRAFT = ("氣球", "balloon")
"""Balloons appear on the later maps but are not counted among the day's aircraft."""
MapFormat = Literal["tracks", "areas"]


class TrackDay(msgspec.Struct, frozen=True):
    """The MND map of one date: how many tracks (or areas) and how many aircraft on them."""

    tracks: int
    aircraft: int
    format: MapFormat = "tracks"


class DailyRow(msgspec.Struct, frozen=True, kw_only=True):
    day: dt.date
    """The map's date (Taiwan local)."""
    tracks: int | None
    """Tracks on a track map, groups of aircraft on an area map."""
    track_aircraft: int | None
    daily_count: int | None
    match: bool | None
    """None when one of the two figures is missing."""
    count_day: dt.date | None = None
    """The day of the count set beside the map."""
    format: MapFormat | None = None
    within_one: bool | None = None
    reason: str | None = None
    """Why the figures differ, when they do."""


class FormatAgreement(msgspec.Struct, frozen=True):
    """Agreement over the maps of one format."""

    compared: int
    exact: int
    within_one: int


class DailyComparison(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[DailyRow]
    offset_days: int
    days_compared: int
    days_matching: int
    days_tracks_within_count: int
    """Days where the map total does not exceed the daily count (the expected relation)."""
    days_within_one: int = 0
    reasons: dict[str, int] = msgspec.field(default_factory=dict)
    """Why the days off by more than one differ, and how many days each."""
    by_format: dict[str, FormatAgreement] = msgspec.field(default_factory=dict)

    @property
    def agreement_rate(self) -> float | None:
        """Share of the compared days whose map total equals the daily count."""
        return self.days_matching / self.days_compared if self.days_compared else None

    @property
    def consistency_rate(self) -> float | None:
        """Share of the compared days whose map total does not exceed the daily count."""
        return self.days_tracks_within_count / self.days_compared if self.days_compared else None

    @property
    def within_one_rate(self) -> float | None:
        """Share of the compared days whose figures differ by at most one."""
        return self.days_within_one / self.days_compared if self.days_compared else None


def is_aircraft(observation: Observation) -> bool:
    platform = observation.platform
    if platform is None:
        return True
    text = f"{platform.platform_class or ''} {platform.type or ''} {platform.label or ''}".lower()
    return not any(word in text for word in NOT_AIRCRAFT)


def track_days(observations: Iterable[Observation]) -> dict[dt.date, TrackDay]:
    """Tracks and aircraft per Taiwan local day, from MND track observations."""
    totals: dict[dt.date, tuple[int, int]] = {}
    for observation in observations:
        if observation.provenance.importer != MND_IMPORTER or not is_aircraft(observation):
            continue
        day = observation.observed_at.astimezone(TAIWAN).date()
        tracks, aircraft = totals.get(day, (0, 0))
        count = observation.platform.count if observation.platform else 1
        totals[day] = (tracks + 1, aircraft + count)
    return {day: TrackDay(tracks=t, aircraft=a) for day, (t, a) in sorted(totals.items())}


def area_days(observations: Iterable[Observation]) -> dict[dt.date, TrackDay]:
    """Groups of aircraft and aircraft per map date, from MND area-map observations."""
    totals: dict[dt.date, tuple[int, int]] = {}
    for observation in observations:
        if observation.provenance.importer != AREAS_IMPORTER or not is_aircraft(observation):
            continue
        day = map_day(observation.id)
        if day is None or observation.kind != "area":
            continue
        groups, aircraft = totals.get(day, (0, 0))
        count = observation.platform.count if observation.platform else 1
        totals[day] = (groups + 1, aircraft + count)
    return {
        day: TrackDay(tracks=g, aircraft=a, format="areas")
        for day, (g, a) in sorted(totals.items())
    }


def _count_day(
    day: dt.date, found: TrackDay | None, offset_days: int, areas_from: dt.date
) -> dt.date:
    if (found is not None and found.format == "areas") or (found is None and day >= areas_from):
        return activity_day(day)
    return day + dt.timedelta(days=offset_days)


def _reason(
    found: TrackDay, count: int, count_day: dt.date, counts: Mapping[dt.date, int | None]
) -> str:
    """Why a map's total and the day's count differ."""
    difference = found.aircraft - count
    # An area map says which day it reports; only a track map may be dated apart from its count.
    for shift in (-1, 1) if found.format == "tracks" else ():
        other = count_day + dt.timedelta(days=shift)
        if counts.get(other) == found.aircraft:
            return f"the count of {other.isoformat()} equals the map: the sources date it apart"
    if found.format == "tracks" and difference < 0:
        return (
            "below the count: the track maps show only aircraft that crossed the median line "
            "or entered the south-west ADIZ"
        )
    if difference > 0:
        return f"the map shows {difference} more than the count"
    return f"the map shows {-difference} fewer than the count"


def _reason_key(reason: str) -> str:
    """Reasons grouped by kind, without the numbers and dates of one day."""
    if reason.startswith("the count of "):
        return "the count of the day before or after equals the map: the sources date it apart"
    if reason.startswith("the map shows"):
        return (
            "the map shows more than the count"
            if "more" in reason
            else ("the map shows fewer than the count")
        )
    return reason


def compare_daily(
    tracks: Mapping[dt.date, TrackDay],
    counts: Mapping[dt.date, int | None],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    offset_days: int = 0,
) -> DailyComparison:
    """Each map date in ``[start, end]`` (default: the span of the maps) with a map or a count.

    A track map of day D is set beside the count of day D + ``offset_days``, an area map beside
    the count of the day it reports (D-1). Agreement is over the days that have both figures.
    """
    areas_from = min((d for d, m in tracks.items() if m.format == "areas"), default=dt.date.max)
    paired: dict[dt.date, dt.date] = {}
    for day, value in counts.items():
        if value is None:
            continue
        # The map date a count belongs to, were there a map that day.
        as_areas = day + dt.timedelta(days=1)
        map_date = as_areas if as_areas >= areas_from else day - dt.timedelta(days=offset_days)
        paired[map_date] = day
    if start is None:
        start = min(tracks, default=None) or min(paired, default=dt.date.today())
    if end is None:
        end = max(tracks, default=None) or max(paired, default=dt.date.today())
    rows: list[DailyRow] = []
    reasons: Counter[str] = Counter()
    per_format: dict[str, list[int]] = {}
    compared = matching = within = close = 0
    for day in sorted(set(tracks) | set(paired)):
        if not start <= day <= end:
            continue
        found = tracks.get(day)
        count_day = _count_day(day, found, offset_days, areas_from)
        count = counts.get(count_day)
        match = within_one = None
        reason = None
        if found is not None and count is not None:
            match = found.aircraft == count
            within_one = abs(found.aircraft - count) <= 1
            compared += 1
            matching += match
            close += within_one
            within += found.aircraft <= count
            tally = per_format.setdefault(found.format, [0, 0, 0])
            tally[0] += 1
            tally[1] += match
            tally[2] += within_one
            if not match:
                reason = _reason(found, count, count_day, counts)
                if not within_one:
                    reasons[_reason_key(reason)] += 1
        rows.append(
            DailyRow(
                day=day,
                tracks=found.tracks if found else None,
                track_aircraft=found.aircraft if found else None,
                daily_count=count,
                match=match,
                count_day=count_day if count is not None else None,
                format=found.format if found else None,
                within_one=within_one,
                reason=reason,
            )
        )
    return DailyComparison(
        rows=rows,
        offset_days=offset_days,
        days_compared=compared,
        days_matching=matching,
        days_tracks_within_count=within,
        days_within_one=close,
        reasons=dict(reasons.most_common()),
        by_format={
            name: FormatAgreement(compared=c, exact=e, within_one=w)
            for name, (c, e, w) in sorted(per_format.items())
        },
    )


def daily_report(
    store: NodeStore,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    offset_days: int = 0,
) -> DailyComparison:
    """The comparison for the MND maps and daily counts stored in a node."""
    selection = ObservationFilter(origins=("TWN",), kinds=("air", "area"))
    stored = list(store.iter_query(selection, page_size=5_000))
    maps = {**track_days(stored), **area_days(stored)}
    counts = {day: row.aircraft for day, row in daily_figures(store).items()}
    return compare_daily(maps, counts, start=start, end=end, offset_days=offset_days)
