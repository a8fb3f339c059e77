"""Importer for Japan Joint Staff Office (JSO) tracks of PLA (and Russian) ships and aircraft.

Reads The Reporter's digitisation of the JSO press-release maps (``jp_data_cleaned.csv`` or the
same content as ``.geojson``) into ``air`` / ``sea`` observations of origin JPN. It stores nothing.

Rows marked ``version=old`` repeat a track of an earlier release and ``sum`` rows summarise a
multi-day deployment drawn day by day elsewhere: both are skipped (reported, not rejected). The
shapes of one text box (``category=group``, same ``id_num``) form one track. A ship track naming
several types becomes one observation per type (with its hull numbers and count); an aircraft
track stays one observation (its labels are alternative names of one formation).

Time: the date comes from ``id_content`` (``7/31_…``, ``11/30-12/1_…``, ``① 12月17日…晚間8時``),
else from the activity dates of the release text, else the release date; the year from the PDF
name (``p20220801_02.pdf``), one less when the month lies after the release (a December track in
a January release). Dates are Japan local (UTC+9): whole days, or the hour when one is given.
Geometry comes from a Python-repr dict read with :func:`ast.literal_eval`, never ``eval``.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from kuroshio.errors import ImportFileError, ImportRecordError
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import (
    JAPAN,
    MAX_RECORDS,
    PUBLIC_MARKING,
    Identify,
    SkippedRecord,
    catalogue_identify,
    local_days,
    platform,
    read_csv,
    read_json,
    track_geometry,
    validated,
)
from kuroshio.model import Kind, LineString, MultiLineString, Observation, Provenance, Source

IMPORTER: Final = "jso-tracks"
TRACK_UNCERTAINTY_M: Final = 30_000.0
MAX_GEOMETRY_TEXT: Final = 1_000_000
REQUIRED: Final = (
    "order",
    "country",
    "version",
    "category",
    "id_num",
    "id_content",
    "data",
    "unique_labels",
    "file_name",
)
GEOMETRY_COLUMN: Final = "geojson"
NATIONALITY: Final = {"china": "CHN", "russia": "RUS"}
KIND: Final[dict[str, Kind]] = {"flight": "air", "ship": "sea"}

_RELEASE = re.compile(r"[pc](\d{4})(\d{2})(\d{2})")
_URL = re.compile(r"https?://\S+")
_CIRCLED = re.compile(r"[\u2460-\u2473\u24ea\u24f5-\u24fe\u2776-\u2793]")
_PART_OF_DAY = r"(午前|午後|上午|下午|晚間|晚上|夜間|早上)?"
_SLASH_DATE = re.compile(
    r"(?<![\d/])(\d{1,2})/(\d{1,2})"
    rf"(?:{_PART_OF_DAY}(\d{{1,2}})時)?"
    r"(?:\s*[~〜\-、]\s*(?:(\d{1,2})/)?(\d{1,2})(?![\d/]))?"
)
_MONTH_DAY = re.compile(rf"(\d{{1,2}})月(\d{{1,2}})日(?:\(.\))?\s*(?:{_PART_OF_DAY}(\d{{1,2}})時)?")
_PAGE_DATE = re.compile(r"(?:(\d{1,2})月)?(?<!\d)(\d{1,2})日\(([月火水木金土日])\)")
_HULLS_QUOTED = re.compile(r"「(\d{1,4})」")
_HULLS_PAREN = re.compile(r"\(([\d、,\s及]+)\)")
_SHIP_COUNT = re.compile(r"(\d{1,3})\s*隻")
_AIRCRAFT_COUNT = re.compile(r"(\d{1,3})\s*機")
_EVENING = frozenset({"午後", "下午", "晚間", "晚上", "夜間"})


class TrackRow(msgspec.Struct, frozen=True):
    """The columns of one digitised shape that the importer uses."""

    location: str
    order: str
    country: str
    version: str
    category: str
    id_num: str
    id_content: str
    data: str
    labels: tuple[str, ...]
    file_name: str
    first_page: str
    geometry: Any


class ActivityWindow(msgspec.Struct, frozen=True):
    """When a track happened, local Japan time, and where that came from."""

    start: dt.datetime
    end: dt.datetime
    basis: str


def normalise(text: str) -> str:
    """NFKC: full-width digits, brackets and punctuation of the Japanese text as ASCII.

    Circled numbers (①, ⑫) number the positions of a deployment; NFKC would turn ``①4月`` into
    ``14月``, so they become spaces first.
    """
    return unicodedata.normalize("NFKC", _CIRCLED.sub(" ", text))


def release_date(file_name: str) -> dt.date:
    """The date in a JSO PDF name (``p20220801_02.pdf``; ``c…`` for hand-collected ones)."""
    match = _RELEASE.match(file_name.strip())
    if match is None:
        raise ValueError(f"file_name {file_name[:60]!r} carries no release date (pYYYYMMDD_…)")
    return dt.date(int(match[1]), int(match[2]), int(match[3]))


def _dated(released: dt.date, month: int, day: int) -> dt.date:
    """Month and day of an activity reported on ``released``: never after the release."""
    moment = dt.date(released.year, month, day)
    return moment if moment <= released else dt.date(released.year - 1, month, day)


def _hour(part_of_day: str | None, hour: int) -> int:
    return hour + 12 if part_of_day in _EVENING and hour < 12 else hour


def window_from_content(content: str, released: dt.date) -> ActivityWindow | None:
    """The activity window written in ``id_content``, or None when it names no date."""
    text = _URL.sub("", normalise(content))
    days: list[dt.date] = []
    hours: list[dt.datetime] = []
    for match in _SLASH_DATE.finditer(text):
        month, day = int(match[1]), int(match[2])
        first = _dated(released, month, day)
        days.append(first)
        if match[4] is not None:
            hours.append(dt.datetime.combine(first, dt.time(_hour(match[3], int(match[4])))))
        if match[6] is not None:
            end_month = int(match[5]) if match[5] else month
            end_day = int(match[6])
            if not match[5] and end_day < day:
                end_month = month % 12 + 1
            days.append(_dated(released, end_month, end_day))
    for match in _MONTH_DAY.finditer(text):
        named = _dated(released, int(match[1]), int(match[2]))
        days.append(named)
        if match[4] is not None:
            hours.append(dt.datetime.combine(named, dt.time(_hour(match[3], int(match[4])))))
    if not days:
        return None
    if len(days) == 1 and len(hours) == 1:
        start = hours[0].replace(tzinfo=JAPAN)
        return ActivityWindow(
            start=start, end=start + dt.timedelta(hours=1), basis="date and hour in the label"
        )
    first, last = local_days(min(days), max(days), JAPAN)
    return ActivityWindow(start=first, end=last, basis="date in the label")


def window_from_page(page: str, released: dt.date) -> ActivityWindow | None:
    """The span of the activity dates (``7月30日(土)``) in the release's first page."""
    days: list[dt.date] = []
    month: int | None = None
    for match in _PAGE_DATE.finditer(normalise(page)):
        if match[1] is not None:
            month = int(match[1])
        if month is None:
            continue
        try:
            days.append(_dated(released, month, int(match[2])))
        except ValueError:
            continue
    if not days:
        return None
    first, last = local_days(min(days), max(days), JAPAN)
    return ActivityWindow(start=first, end=last, basis="activity dates of the release")


def activity_window(row: TrackRow) -> ActivityWindow:
    released = release_date(row.file_name)
    window = window_from_content(row.id_content, released)
    if window is None:
        window = window_from_page(row.first_page, released)
    if window is None:
        first, last = local_days(released, released, JAPAN)
        window = ActivityWindow(start=first, end=last, basis="release date")
    if window.start.date() > released + dt.timedelta(days=1):
        raise ValueError(f"activity date {window.start.date()} is after the release {released}")
    return window


# --- platforms ------------------------------------------------------------------------------


def _segment(content: str, label: str) -> str | None:
    """The part of ``content`` that describes ``label``: up to the next top-level 、 or ；."""
    start = content.find(label)
    if start < 0:
        return None
    depth = 0
    for index in range(start + len(label), len(content)):
        char = content[index]
        if char in "(「":
            depth += 1
        elif char in ")」":
            depth = max(0, depth - 1)
        elif depth == 0 and char in "、;；_及":
            if content.startswith("、(", index):
                continue  # '054A江凱II型護衛艦、(536、573)': the hulls still belong to the label
            return content[start:index]
    return content[start:]


def hull_numbers(text: str) -> list[str]:
    """Hull numbers written as 「119」 or (150、151) in a (normalised) text."""
    found = _HULLS_QUOTED.findall(text)
    for group in _HULLS_PAREN.findall(text):
        found.extend(re.findall(r"\d{1,4}", group))
    return list(dict.fromkeys(found))


def _nationality(row: TrackRow, content: str, label: str) -> str | None:
    """The navy named last before the label (``俄國海軍艦艇：…``), else the ``country`` column.

    The text is preferred: some rows of joint sailings say ``china`` but list Russian ships.
    """
    position = content.find(label)
    if position >= 0:
        china = content.rfind("中國", 0, position)
        russia = content.rfind("俄國", 0, position)
        if china >= 0 or russia >= 0:
            return "CHN" if china > russia else "RUS"
    return NATIONALITY.get(row.country)


class PlatformPart(msgspec.Struct, frozen=True):
    """One platform of a track: its labels (best first), count, hulls and nationality."""

    labels: tuple[str, ...]
    count: int
    hulls: tuple[str, ...]
    nationality: str | None


def platform_parts(row: TrackRow) -> list[PlatformPart]:
    """The platforms of a track: one per ship type, or one formation of aircraft."""
    content = _URL.sub("", normalise(row.id_content))
    labels = [normalise(label).strip() for label in row.labels if label.strip()]
    if not labels:
        raise ValueError("unique_labels names no type")
    if row.data == "flight":
        counts = _AIRCRAFT_COUNT.findall(content)
        # The presumed ('推定') label is the vaguer name of the same formation.
        ordered = sorted(labels, key=lambda label: label.startswith("推定"))
        nationality = NATIONALITY.get(row.country)
        count = int(counts[0]) if counts else 1
        return [PlatformPart(tuple(ordered), max(count, 1), (), nationality)]
    if len(labels) == 1:
        counts = [int(n) for n in _SHIP_COUNT.findall(content)]
        hulls = hull_numbers(content)
        count = max(counts[0] if counts else 0, len(hulls), 1)
        nationality = _nationality(row, content, labels[0])
        return [PlatformPart((labels[0],), count, tuple(hulls), nationality)]
    parts = []
    for label in sorted(labels):
        segment = _segment(content, label) or ""
        hulls = hull_numbers(segment.removeprefix(label))
        counts = [int(n) for n in _SHIP_COUNT.findall(segment)]
        count = max(counts[0] if counts else 0, len(hulls), 1)
        parts.append(PlatformPart((label,), count, tuple(hulls), _nationality(row, content, label)))
    return parts


# --- rows -----------------------------------------------------------------------------------


def _labels(text: str) -> tuple[str, ...]:
    if not text.strip():
        return ()
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"unique_labels {text[:60]!r} is not a list literal") from None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"unique_labels {text[:60]!r} is not a list of names")
    return tuple(value)


def parse_geometry_text(text: str) -> Any:
    """A geometry written as a Python-repr dict (single quotes), read safely."""
    if len(text) > MAX_GEOMETRY_TEXT:
        raise ValueError(f"geometry text longer than {MAX_GEOMETRY_TEXT} characters")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("geometry is not a dict literal") from None
    if not isinstance(value, dict):
        raise ValueError("geometry is not a dict")
    return value


def _clean(value: Any) -> str:
    # The GeoJSON copy writes pandas' missing value as the string 'nan'.
    text = "" if value is None else str(value)
    return "" if text == "nan" else text


def _row(location: str, values: dict[str, Any], geometry: Any) -> TrackRow:
    return TrackRow(
        location=location,
        order=_clean(values.get("order")).strip(),
        country=_clean(values.get("country")).strip().lower(),
        version=_clean(values.get("version")).strip().lower(),
        category=_clean(values.get("category")).strip().lower(),
        id_num=_clean(values.get("id_num")).strip(),
        id_content=_clean(values.get("id_content")).strip(),
        data=_clean(values.get("data")).strip().lower(),
        labels=_labels(_clean(values.get("unique_labels"))),
        file_name=_clean(values.get("file_name")).strip(),
        first_page=_clean(values.get("first_page_content")),
        geometry=geometry,
    )


def read_rows(path: Path, *, max_records: int = MAX_RECORDS) -> list[TrackRow | ImportRecordError]:
    """The rows of the CSV or GeoJSON form, each parsed or the reason it is unusable."""
    rows: list[TrackRow | ImportRecordError] = []
    if path.suffix.lower() in (".geojson", ".json"):
        document = read_json(path)
        features = document.get("features") if isinstance(document, dict) else None
        if not isinstance(features, list):
            raise ImportFileError(f"{path}: not a GeoJSON FeatureCollection")
        if len(features) > max_records:
            raise ImportFileError(f"{path}: {len(features)} features, more than {max_records}")
        for index, feature in enumerate(features):
            location = f"{path.name}#{index}"
            properties = feature.get("properties") if isinstance(feature, dict) else None
            if not isinstance(properties, dict):
                rows.append(ImportRecordError(location, "not a GeoJSON Feature with properties"))
                continue
            missing = [name for name in REQUIRED if name not in properties]
            if missing:
                raise ImportFileError(f"{location}: missing required properties {missing}")
            try:
                rows.append(_row(location, properties, feature.get("geometry")))
            except ValueError as exc:
                rows.append(ImportRecordError(location, str(exc)))
        return rows
    table = read_csv(path, (*REQUIRED, GEOMETRY_COLUMN), max_records=max_records)
    for line, cells in table.rows:
        location = table.location(line)
        if len(cells) != len(table.header):
            reason = f"{len(cells)} fields where the header has {len(table.header)}"
            rows.append(ImportRecordError(location, reason))
            continue
        values = dict(zip(table.header, cells, strict=True))
        try:
            rows.append(_row(location, values, parse_geometry_text(values[GEOMETRY_COLUMN])))
        except ValueError as exc:
            rows.append(ImportRecordError(location, str(exc)))
    return rows


def _merge_shapes(shapes: Sequence[LineString | MultiLineString]) -> LineString | MultiLineString:
    if len(shapes) == 1:
        return shapes[0]
    parts: list[tuple[tuple[float, float], ...]] = []
    for shape in shapes:
        if isinstance(shape, LineString):
            parts.append(shape.coordinates)
        else:
            parts.extend(shape.coordinates)
    return MultiLineString(coordinates=tuple(parts))


def _stem(file_name: str) -> str:
    stem = file_name.strip().removesuffix(".pdf")
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem) or "unnamed"


def track_observations(
    rows: Sequence[TrackRow], identify: Identify, *, dataset: str = "jp_data_cleaned"
) -> list[tuple[str, Observation | ImportRecordError]]:
    """The observations of one track (a row, or the shapes of one text box)."""
    head = rows[0]
    location = "+".join(row.location for row in rows)
    kind = KIND.get(head.data)
    if kind is None:
        return [(location, ImportRecordError(location, f"data {head.data!r} is not flight/ship"))]
    try:
        window = activity_window(head)
        shapes = [track_geometry(row.geometry)[0] for row in rows]
        geometry = _merge_shapes(shapes)
        parts = platform_parts(head)
        order = int(head.order)
    except ValueError as exc:
        return [(location, ImportRecordError(location, str(exc)))]
    content = normalise(head.id_content)
    presumed = "推定" in content
    vague = content.endswith("_vague")
    confidence = 0.3 if vague else 0.5 if presumed else 0.7
    remarks = (
        f"JSO press release {head.file_name}: {head.id_content[:1500]}"
        f" (date from the {window.basis})"
    )
    base = f"JPN:jso:{_stem(head.file_name)}:{order:04d}"
    # The CSV and the GeoJSON hold the same rows: name the record by its order so that both
    # forms give identical observations (importing one after the other stores nothing new).
    orders = "+".join(row.order for row in rows)
    record = f"{dataset} order {orders} ({head.file_name})"
    results: list[tuple[str, Observation | ImportRecordError]] = []
    for number, part in enumerate(parts, start=1):
        try:
            observation = validated(
                Observation(
                    id=base if len(parts) == 1 else f"{base}-{number}",
                    origin="JPN",
                    kind=kind,
                    observed_at=window.start,
                    until=window.end,
                    geometry=geometry,
                    platform=platform(
                        identify,
                        part.labels,
                        count=part.count,
                        nationality=part.nationality,
                        hull_numbers=part.hulls,
                    ),
                    source=Source(
                        sensor="digitised_map",
                        confidence=confidence,
                        uncertainty_m=TRACK_UNCERTAINTY_M,
                    ),
                    marking=PUBLIC_MARKING,
                    remarks=remarks,
                    provenance=Provenance(importer=IMPORTER, record=record),
                )
            )
        except ValueError as exc:
            results.append((location, ImportRecordError(location, str(exc))))
            continue
        results.append((location, observation))
    return results


def read_jso_tracks(
    path: Path,
    *,
    identify: Identify = catalogue_identify,
    max_records: int = MAX_RECORDS,
) -> list[Record]:
    """Every track of one JSO file, each an observation, a skipped repeat or a refusal.

    The whole file is read and checked first: a truncated, mis-encoded or incomplete file raises
    :class:`ImportFileError` and yields nothing.
    """
    records: list[Record] = []
    groups: dict[tuple[str, str], list[TrackRow]] = {}
    tracks: list[list[TrackRow]] = []
    for row in read_rows(path, max_records=max_records):
        if isinstance(row, ImportRecordError):
            records.append((row.location, row))
            continue
        if row.version != "new":
            reason = (
                "version=old: repeats a track of an earlier release"
                if row.version == "old"
                else f"version={row.version}: summary of a deployment drawn day by day elsewhere"
            )
            records.append((row.location, SkippedRecord(row.location, reason)))
            continue
        if row.category == "group" and row.id_num:
            key = (row.file_name, row.id_num)
            if key not in groups:
                groups[key] = []
                tracks.append(groups[key])
            groups[key].append(row)
        else:
            tracks.append([row])
    for track in tracks:
        records.extend(track_observations(track, identify, dataset=path.stem))
    return records
