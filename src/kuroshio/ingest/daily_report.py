"""Reports over a node's store: the daily comparison of MND tracks with the daily aircraft counts.

The comparison itself is a pure function of two tables (aircraft on the track maps per local day,
and the published daily figure); reading them from a store is a thin edge. Nothing is printed.

The MND maps show only the aircraft that crossed the median line or entered the south-west ADIZ,
so the map total is expected to be at most the day's count; a day "matches" when both are equal.
The two sources may date a day differently (the MND report of day D covers D-1 06:00 to D 06:00),
so the comparison can pair the map of day D with the count of day D + ``offset_days``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import msgspec

from kuroshio.ingest.daily_counts import daily_figures
from kuroshio.ingest.source_files import TAIWAN
from kuroshio.model import Observation
from kuroshio.store import ObservationFilter
from kuroshio.store.backend import NodeStore

MND_IMPORTER = "mnd-tracks"
NOT_AIRCRAFT = ("氣球", "balloon")
"""Balloons appear on the later maps but are not counted among the day's aircraft."""


class TrackDay(msgspec.Struct, frozen=True):
    """The MND map of one local day: how many tracks and how many aircraft on them."""

    tracks: int
    aircraft: int


class DailyRow(msgspec.Struct, frozen=True):
    day: dt.date
    """The map's day (Taiwan local); the count is that of ``day + offset_days``."""
    tracks: int | None
    track_aircraft: int | None
    daily_count: int | None
    match: bool | None
    """None when one of the two figures is missing."""


class DailyComparison(msgspec.Struct, frozen=True):
    rows: list[DailyRow]
    offset_days: int
    days_compared: int
    days_matching: int
    days_tracks_within_count: int
    """Days where the map total does not exceed the daily count (the expected relation)."""

    @property
    def agreement_rate(self) -> float | None:
        """Share of the compared days whose map total equals the daily count."""
        return self.days_matching / self.days_compared if self.days_compared else None

    @property
    def consistency_rate(self) -> float | None:
        """Share of the compared days whose map total does not exceed the daily count."""
        return self.days_tracks_within_count / self.days_compared if self.days_compared else None


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


def compare_daily(
    tracks: Mapping[dt.date, TrackDay],
    counts: Mapping[dt.date, int | None],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    offset_days: int = 0,
) -> DailyComparison:
    """Each day in ``[start, end]`` (default: the span of the track days) that has either figure.

    The map of day D is set beside the count of day D + ``offset_days``. Agreement is over the
    days that have both a map and a daily count.
    """
    shift = dt.timedelta(days=offset_days)
    counts = {day - shift: value for day, value in counts.items()}
    if start is None:
        start = min(tracks, default=None) or min(counts, default=dt.date.today())
    if end is None:
        end = max(tracks, default=None) or max(counts, default=dt.date.today())
    rows: list[DailyRow] = []
    compared = matching = within = 0
    for day in sorted(set(tracks) | {d for d, v in counts.items() if v is not None}):
        if not start <= day <= end:
            continue
        track = tracks.get(day)
        count = counts.get(day)
        match = None
        if track is not None and count is not None:
            match = track.aircraft == count
            compared += 1
            matching += match
            within += track.aircraft <= count
        rows.append(
            DailyRow(
                day=day,
                tracks=track.tracks if track else None,
                track_aircraft=track.aircraft if track else None,
                daily_count=count,
                match=match,
            )
        )
    return DailyComparison(
        rows=rows,
        offset_days=offset_days,
        days_compared=compared,
        days_matching=matching,
        days_tracks_within_count=within,
    )


def daily_report(
    store: NodeStore,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    offset_days: int = 0,
) -> DailyComparison:
    """The comparison for the MND tracks and daily counts stored in a node."""
    selection = ObservationFilter(origins=("TWN",), kinds=("air",))
    tracks = track_days(store.iter_query(selection, page_size=5_000))
    counts = {day: row.aircraft for day, row in daily_figures(store).items()}
    return compare_daily(tracks, counts, start=start, end=end, offset_days=offset_days)
