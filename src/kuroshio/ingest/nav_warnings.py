"""Importer for China MSA navigation warnings of military activity (exercise / firing areas).

Each warning of ``msa_military_exercise_warnings.csv`` becomes one ``area`` observation per area
it closes (a warning may close two), with its validity window. It stores nothing.

Origin: the MSA is not a party to the exchange and signs nothing; what a node stores is its own
record that a published warning declares an area active. So the origin is the importing node's
party, the MSA stays visible in ``remarks`` (title, issuing bureau, URL) and ``provenance``
(importer and file:line), and the marking is TLP CLEAR, as the warning is public.

Geometry: three or more positions close into a polygon; a warning joining two areas ("…诸点连线
范围内和…", "AND IN AREA …", "A、B、C和D、E、F和G") is split where its text separates them;
positions "连线附近" / "NEAR BY THE LINES" give a line; one position with a stated radius (海里,
千米, MILES) gives a 36-sided circle; two positions give a line. Corners listed across the area (a
"bow tie") are taken in order around it when all of them are corners of its hull. One position
without a radius, or positions outlining no simple area, are refused.

Time: ``time_periods`` (``03/16-03/17 每日 1000-1800``, ``07/22 2200 至 07/23 1000``, several joined
by ；) gives the window from the first start to the last end, widened to ``end_date`` when the list
was cut short (``…等 9 段``), else ``start_date``/``end_date`` as whole days. The Chinese editions
give Beijing time (UTC+8), the English editions UTC. The English edition of a Chinese warning
(same area, same window) is skipped as a repeat. Ids are ``<party>:msa:<MSA article id>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec
from shapely.geometry import Polygon as ShapelyPolygon

from kuroshio.errors import ImportRecordError
from kuroshio.geo.shapes import GEOD
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import (
    CHINA,
    MAX_RECORDS,
    PUBLIC_MARKING,
    SkippedRecord,
    local_days,
    read_csv,
    validated,
)
from kuroshio.model import Geometry, LineString, Observation, Polygon, Provenance, Source

IMPORTER: Final = "nav-warnings"
REQUIRED: Final = ("publish_date", "title", "time_periods", "coordinates", "start_date", "end_date")
POSITION_UNCERTAINTY_M: Final = 100.0
"""Positions are published to 0.01 minute (about 20 m); the rest is datum and rounding."""
CIRCLE_SIDES: Final = 36
MAX_RADIUS_M: Final = 500_000.0
_UTC: Final = dt.UTC

_CJK = re.compile(r"[\u4e00-\u9fff]")
_ARTICLE = re.compile(r"articleId=([A-Za-z0-9-]{4,64})|/article/(\d{4})/([0-9A-Za-z]{4,64})\.html")
_CANCELLED = re.compile(r"结束|撤销|COMPLETED|CANCEL", re.IGNORECASE)
_ALONG_LINE = re.compile(r"连线附近|ALONG THE LINE|NEAR BY THE LINE|NEAR THE LINE", re.IGNORECASE)
_CONJUNCTION = re.compile(r"\s*(?:AND|和)\s*", re.IGNORECASE)
_AREA_BREAK = re.compile(
    r"连线|以及|范围|围成|区域|。|AREA|FROM|\d{6}\s*UTC|[;；]\s*[（(]?1[）)]", re.IGNORECASE
)
_LAT_LON = re.compile(
    r"(\d{1,2})-(\d{1,2}(?:\.\d+)?)(?:-(\d{1,2}(?:\.\d+)?))?\s*N\s*[/，,、]?\s*"
    r"(\d{1,3})-(\d{1,2}(?:\.\d+)?)(?:-(\d{1,2}(?:\.\d+)?))?\s*E"
)
_RADIUS = re.compile(
    r"(\d+(?:\.\d+)?)\s*(海里|千米|公里|米|NM|MILES?|KM)\s*(?:为)?\s*(?:的)?\s*(?:半径|RADIUS)"
    r"|半径\s*(?:为)?\s*(\d+(?:\.\d+)?)\s*(海里|千米|公里|米)",
    re.IGNORECASE,
)
_UNIT_M: Final = {
    **{"海里": 1852.0, "NM": 1852.0, "MILE": 1852.0, "MILES": 1852.0},
    **{"千米": 1000.0, "公里": 1000.0, "KM": 1000.0, "米": 1.0},
}

_DAY = r"(\d{1,2})/(\d{1,2})"
_TIME = r"(\d{4})"
_PERIODS = (
    # 07/22 2200 至 07/23 1000
    re.compile(rf"{_DAY}\s+{_TIME}\s*至\s*{_DAY}\s+{_TIME}"),
    # 03/16-03/17 每日 1000-1800
    re.compile(rf"{_DAY}\s*-\s*{_DAY}\s*每日\s*{_TIME}\s*-\s*{_TIME}"),
    # 07/14 1200-1330, 08/12 每日 0800-1700
    re.compile(rf"{_DAY}\s+(?:每日\s*)?{_TIME}\s*-\s*{_TIME}"),
    # 07/09 至 07/11
    re.compile(rf"{_DAY}\s*至\s*{_DAY}"),
    # 07/29
    re.compile(rf"{_DAY}"),
)


class Window(msgspec.Struct, frozen=True):
    start: dt.datetime
    end: dt.datetime


class WarningRow(msgspec.Struct, frozen=True):
    """The columns of one warning the importer uses."""

    location: str
    title: str
    channel: str
    publish_date: dt.date
    time_periods: str
    coordinates: str
    content: str
    url: str
    start_date: str
    end_date: str


# --- time -----------------------------------------------------------------------------------


def _clock(day: dt.date, hhmm: str, zone: dt.tzinfo) -> dt.datetime:
    hours, minutes = int(hhmm[:2]), int(hhmm[2:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"time {hhmm!r} is not HHMM")
    moment = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    return moment + dt.timedelta(hours=hours, minutes=minutes)


def _calendar_day(published: dt.date, month: str, day: str) -> dt.date:
    """A MM/DD of a warning: the year of publication, or the next one across New Year."""
    moment = dt.date(published.year, int(month), int(day))
    return (
        moment
        if moment >= published - dt.timedelta(days=180)
        else moment.replace(year=published.year + 1)
    )


def parse_periods(text: str, published: dt.date, zone: dt.tzinfo) -> list[Window]:
    """The periods of ``time_periods``, one window per period (ValueError when unreadable)."""
    windows: list[Window] = []
    for raw in re.split(r"[；;]", text):
        part = re.sub(r"….*$", "", raw).strip()
        if not part:
            continue
        for number, pattern in enumerate(_PERIODS):
            match = pattern.fullmatch(part)
            if match is None:
                continue
            g = match.groups()
            if number == 0:
                first = _calendar_day(published, g[0], g[1])
                last = _calendar_day(published, g[3], g[4])
                start, end = _clock(first, g[2], zone), _clock(last, g[5], zone)
            elif number == 1:
                first = _calendar_day(published, g[0], g[1])
                last = _calendar_day(published, g[2], g[3])
                start, end = _clock(first, g[4], zone), _clock(last, g[5], zone)
            elif number == 2:
                first = _calendar_day(published, g[0], g[1])
                start, end = _clock(first, g[2], zone), _clock(first, g[3], zone)
                if end <= start:  # 2000-0300: until the next morning
                    end += dt.timedelta(days=1)
            elif number == 3:
                first = _calendar_day(published, g[0], g[1])
                last = _calendar_day(published, g[2], g[3])
                start, end = local_days(first, last, zone)
            else:
                first = _calendar_day(published, g[0], g[1])
                start, end = local_days(first, first, zone)
            if end < start:
                raise ValueError(f"period {part!r} ends before it starts")
            windows.append(Window(start=start, end=end))
            break
        else:
            raise ValueError(f"time period {part[:60]!r} is not in a known form")
    return windows


def validity(row: WarningRow) -> tuple[Window, str]:
    """The validity window of a warning and, in words, where it came from."""
    zone = CHINA if _CJK.search(row.title) else _UTC
    zone_text = "Beijing time" if zone is CHINA else "UTC"
    end_day = _date_or_none(row.end_date)
    if row.time_periods.strip():
        windows = parse_periods(row.time_periods, row.publish_date, zone)
        if windows:
            start = min(w.start for w in windows)
            end = max(w.end for w in windows)
            if end_day is not None and "…" in row.time_periods:
                end = max(end, local_days(end_day, end_day, zone)[1])
            basis = f"periods {row.time_periods.strip()} ({zone_text})"
            return Window(start=start, end=end), basis
    start_day = _date_or_none(row.start_date)
    if start_day is not None:
        first, last = local_days(start_day, end_day or start_day, CHINA)
        return Window(start=first, end=last), "start and end dates (whole days, Beijing time)"
    raise ValueError("no validity window: time_periods, start_date and end_date are empty")


def _date_or_none(text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {text[:30]!r} is not YYYY-MM-DD") from None


# --- positions and areas --------------------------------------------------------------------


def parse_coordinates(text: str) -> list[tuple[float, float]]:
    """``lat,lon; lat,lon`` (decimal degrees) as (lon, lat) positions."""
    positions = []
    for part in text.split(";"):
        if not part.strip():
            continue
        pieces = part.split(",")
        if len(pieces) != 2:
            raise ValueError(f"coordinate {part.strip()[:40]!r} is not 'lat,lon'")
        try:
            lat, lon = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise ValueError(f"coordinate {part.strip()[:40]!r} is not numeric") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat + lon):
            raise ValueError(f"coordinate {part.strip()!r} is out of range")
        positions.append((lon, lat))
    return positions


def _degrees(degrees: str, minutes: str, seconds: str | None) -> float:
    return int(degrees) + float(minutes) / 60 + (float(seconds) / 3600 if seconds else 0.0)


def text_positions(text: str) -> list[tuple[tuple[float, float], int, int]]:
    """Positions written in a warning's text (``21-23.00N 108-47.40E``, ``23-14-12N117-20-42E``),
    each as ((lon, lat), start, end) of the match."""
    found = []
    for match in _LAT_LON.finditer(text):
        lat = _degrees(match[1], match[2], match[3])
        lon = _degrees(match[4], match[5], match[6])
        if lat <= 90 and lon <= 180:
            found.append(((lon, lat), match.start(), match.end()))
    return found


def _close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < 2e-3 and abs(a[1] - b[1]) < 2e-3


def text_breaks(
    positions: Sequence[tuple[float, float]], content: str
) -> tuple[set[int], set[int]]:
    """Where the text starts a new area, and where a conjunction stands, as position indices.

    A list is closed by words such as "诸点连线范围内", "以及", "AREA", "。" (a break before the
    next position). "和" / "AND" before position k is noted as a conjunction at k.
    """
    written = text_positions(content)
    breaks: set[int] = set()
    conjunctions: set[int] = set()
    cursor = 0
    previous_end: int | None = None
    for index, position in enumerate(positions):
        match = next(
            (i for i in range(cursor, len(written)) if _close(written[i][0], position)), None
        )
        if match is None:
            previous_end = None
            continue
        if previous_end is not None and index:
            gap = content[previous_end : written[match][1]]
            if _AREA_BREAK.search(gap):
                breaks.add(index)
            elif _CONJUNCTION.fullmatch(gap):
                conjunctions.add(index)
        previous_end = written[match][2]
        cursor = match + 1
    return breaks, conjunctions


def _grouped(
    positions: Sequence[tuple[float, float]], breaks: set[int]
) -> list[list[tuple[float, float]]]:
    groups: list[list[tuple[float, float]]] = [[]]
    for index, position in enumerate(positions):
        if index in breaks and groups[-1]:
            groups.append([])
        groups[-1].append(position)
    return groups


def split_areas(
    positions: Sequence[tuple[float, float]], content: str
) -> list[list[tuple[float, float]]]:
    """The positions grouped by area.

    The warnings write a list as "A、B、C和D": a conjunction stands before the last position of a
    list. One before a position that neither ends the warning nor is followed by a closing word
    means two lists meet there: either it starts the second list ("…D AND E、F…") or it closes
    the first without a closing word. Both readings are tried, in that order, and the first whose
    areas are all simple polygons is taken.
    """
    breaks, conjunctions = text_breaks(positions, content)
    last = len(positions) - 1
    unexplained = {k for k in conjunctions if k != last and k + 1 not in breaks}
    variants = [breaks]
    if unexplained:
        variants = [breaks | unexplained, breaks | {k + 1 for k in unexplained}]
    for variant in variants:
        groups = _grouped(positions, variant)
        if all(_simple(g) or _around_hull(g) is not None for g in groups):
            return groups
    return _grouped(positions, variants[0])


def _simple(ring: Sequence[tuple[float, float]]) -> bool:
    return len(ring) >= 3 and ShapelyPolygon(ring).is_valid


def _around_hull(ring: Sequence[tuple[float, float]]) -> list[tuple[float, float]] | None:
    """The positions in order around the area when they were listed across it (a 'bow tie').

    Only when every position is a corner of the convex hull: then the order is not in doubt.
    """
    if len(ring) < 3:
        return None
    hull = ShapelyPolygon(ring).convex_hull
    if not isinstance(hull, ShapelyPolygon):
        return None
    corners = [(float(x), float(y)) for x, y in list(hull.exterior.coords)[:-1]]
    if len(corners) != len(set(ring)) or any(not any(_close(c, p) for c in corners) for p in ring):
        return None
    return corners


def _polygon(ring: Sequence[tuple[float, float]]) -> Polygon:
    closed = list(ring) if ring[0] == ring[-1] else [*ring, ring[0]]
    return Polygon(coordinates=(tuple(closed),))


def circle(centre: tuple[float, float], radius_m: float) -> Polygon:
    """A geodesic circle as a closed ring of :data:`CIRCLE_SIDES` positions."""
    lon, lat = centre
    azimuths = [360.0 * k / CIRCLE_SIDES for k in range(CIRCLE_SIDES)]
    lons, lats, _ = GEOD.fwd(
        [lon] * CIRCLE_SIDES, [lat] * CIRCLE_SIDES, azimuths, [radius_m] * CIRCLE_SIDES
    )
    ring = [(float(x), float(y)) for x, y in zip(lons, lats, strict=True)]
    return _polygon(ring)


def radius_m(content: str) -> float | None:
    """The radius a warning states for a circular area, in metres."""
    match = _RADIUS.search(content)
    if match is None:
        return None
    value, unit = (match[1], match[2]) if match[1] is not None else (match[3], match[4])
    metres = float(value) * _UNIT_M[unit.upper() if unit.isascii() else unit]
    return metres if 0 < metres <= MAX_RADIUS_M else None


def areas(row: WarningRow) -> tuple[list[Geometry], str]:
    """The geometries a warning declares, and how they were read (ValueError when none)."""
    positions = parse_coordinates(row.coordinates)
    basis = "coordinates"
    if not positions:
        positions = [p for p, _, _ in text_positions(row.content)]
        basis = "positions in the text"
    if not positions:
        raise ValueError("no coordinates, and none in the text")
    if len(positions) == 1:
        radius = radius_m(row.content)
        if radius is None:
            raise ValueError("a single position and no stated radius: the area is unknown")
        return [circle(positions[0], radius)], f"circle of {radius:.0f} m around the position"
    if _ALONG_LINE.search(row.content) or len(positions) == 2:
        return [LineString(coordinates=tuple(positions))], f"line through the {basis}"
    groups = split_areas(positions, row.content)
    reordered = False
    for number, group in enumerate(groups):
        if not _simple(group):
            around = _around_hull(group)
            if around is not None:
                groups[number], reordered = around, True
    bad = [g for g in groups if not _simple(g)]
    if bad:
        raise ValueError(
            f"{len(positions)} positions do not outline {'one' if len(groups) == 1 else 'each'}"
            " simple area"
        )
    noun = "area" if len(groups) == 1 else f"{len(groups)} areas"
    note = " (positions listed across the area, taken in order around it)" if reordered else ""
    return [_polygon(g) for g in groups], f"{noun} from the {basis}{note}"


# --- rows -----------------------------------------------------------------------------------


def _warning_id(row: WarningRow) -> str:
    """The MSA's own article id from the URL (stable), else a digest of title and date."""
    article = _ARTICLE.search(row.url)
    if article is not None:
        return article[1] or f"{article[2]}-{article[3]}"
    digest = hashlib.sha256(f"{row.title}|{row.publish_date}".encode()).hexdigest()
    return f"t{digest[:20]}"


def warning_observations(row: WarningRow, origin: str) -> list[Observation]:
    """The area observations of one warning (ValueError when it has no usable area or time)."""
    window, time_basis = validity(row)
    shapes, shape_basis = areas(row)
    base = f"{origin}:msa:{_warning_id(row)}"
    remarks = (
        f"China MSA navigation warning {row.title} ({row.channel}, published "
        f"{row.publish_date.isoformat()}): {shape_basis}; valid from {time_basis}. {row.url}"
    )
    return [
        validated(
            Observation(
                id=base if len(shapes) == 1 else f"{base}-{number}",
                origin=origin,
                kind="area",
                observed_at=window.start,
                until=window.end,
                geometry=shape,
                source=Source(
                    sensor="report", confidence=0.9, uncertainty_m=POSITION_UNCERTAINTY_M
                ),
                marking=PUBLIC_MARKING,
                remarks=remarks[:4000],
                provenance=Provenance(importer=IMPORTER, record=row.location),
            )
        )
        for number, shape in enumerate(shapes, start=1)
    ]


def _row(location: str, values: dict[str, str]) -> WarningRow:
    published = _date_or_none(values["publish_date"])
    if published is None:
        raise ValueError("publish_date is empty")
    return WarningRow(
        location=location,
        title=values["title"].strip(),
        channel=values.get("channel", "").strip(),
        publish_date=published,
        time_periods=values["time_periods"],
        coordinates=values["coordinates"],
        content=values.get("content_preview", ""),
        url=values.get("url", "").strip(),
        start_date=values["start_date"],
        end_date=values["end_date"],
    )


def read_nav_warnings(path: Path, *, origin: str, max_records: int = MAX_RECORDS) -> list[Record]:
    """Every warning of one MSA file: its area observations, a skipped repeat, or a refusal.

    ``origin`` is the importing node's party. The whole file is read and checked first; a
    mis-encoded file or one missing required columns raises ImportFileError.
    """
    table = read_csv(path, REQUIRED, max_records=max_records)
    records: list[Record] = []
    seen: dict[tuple[object, ...], str] = {}
    for line, cells in table.rows:
        location = table.location(line)
        if len(cells) != len(table.header):
            reason = f"{len(cells)} fields where the header has {len(table.header)}"
            records.append((location, ImportRecordError(location, reason)))
            continue
        values = dict(zip(table.header, cells, strict=True))
        try:
            row = _row(location, values)
            if not row.coordinates.strip() and _CANCELLED.search(row.title + row.content):
                reason = f"ends or cancels an earlier warning, no area of its own: {row.title}"
                records.append((location, SkippedRecord(location, reason)))
                continue
            observations = warning_observations(row, origin)
        except ValueError as exc:
            records.append((location, ImportRecordError(location, str(exc))))
            continue
        key = tuple((o.geometry, o.observed_at, o.until) for o in observations)
        if key in seen:
            reason = f"another edition of a warning already read: {row.title} = {seen[key]}"
            records.append((location, SkippedRecord(location, reason)))
            continue
        seen[key] = f"{row.title} ({location})"
        records.extend((location, observation) for observation in observations)
    return records
