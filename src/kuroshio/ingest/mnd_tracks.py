"""Importer for Taiwan MND daily PLA aircraft tracks, as digitised by The Reporter (GeoJSON).

Both published schemas (2022-08..2023-09 with ROC-calendar dates and mojibake type strings, and
2023-09..2024-01 with ISO dates) become ``air`` observations of origin TWN. It stores nothing.
A file of the maps MND has drawn since 2024-01-16 (areas of activity, balloons, closest
approaches) is recognised and read by :mod:`kuroshio.ingest.mnd_areas`.

Time: the maps are daily and give no time of day, so each track spans its whole local day in
Taiwan (UTC+8): ``observed_at`` is 00:00+08:00 of the map date and ``until`` the last instant of
that day. Positions were traced by hand from map images (tens of km off), hence the large
``source.uncertainty_m``. Ids are ``TWN:mnd:<date>:<n>``, n counting the features of that date in
file order, so a re-import gives the same ids and stores nothing new.

Files are read one feature at a time (:mod:`kuroshio.ingest.json_stream`), so memory holds one
feature and never the file.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import ijson
import msgspec

from kuroshio.errors import ImportFileError, ImportRecordError
from kuroshio.ingest.json_stream import json_records
from kuroshio.ingest.mnd_areas import is_area_map, read_area_map
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import (
    MAX_FILE_BYTES,
    MAX_RECORD_BYTES,
    MAX_RECORDS,
    PUBLIC_MARKING,
    TAIWAN,
    Identify,
    SkippedRecord,
    catalogue_identify,
    local_day,
    platform,
    read_csv,
    track_geometry,
    validated,
    whole_number,
)
from kuroshio.model import Observation, Platform, Provenance, Source

IMPORTER: Final = "mnd-tracks"
TYPE_TABLE: Final = "aircraft_zh_type.csv"
"""Mojibake → clean Chinese type names, looked for beside the GeoJSON file."""
TRACK_UNCERTAINTY_M: Final = 20_000.0
MAX_AIRCRAFT_PER_TRACK: Final = 500
ROC_EPOCH: Final = 1911
HEAD_BYTES: Final = 64 * 1024
"""How much of a file is looked at to tell a FeatureCollection."""
AREA_MAP_PROBE: Final = 50
"""Features looked at to tell a file of area maps (:func:`mnd_areas.is_area_map`)."""
LEGACY_CLASSES: Final = {"balloon": "other_aircraft"}
"""Classes the catalogue has gained since these maps were first read. Their tracks keep the class
they were stored with, so that importing the same maps again matches the stored records (the
same id and version with other content would be refused); the type (Balloon) still says what
they are."""

_DATE = re.compile(r"(\d{2,4})-(\d{1,2})-(\d{1,2})")
_RETRACE = re.compile(r"(.*\S)\s*\((\d{1,2})\)")
"""A map traced again, e.g. ``112-01-15 (2)``: the second trace of the map of 2023-01-15."""


def parse_map_date(text: str) -> dt.date:
    """A map date, ROC calendar (``112-05-19``) or ISO (``2023-05-19``); ValueError otherwise."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"date {text[:40]!r} is neither YYY-MM-DD (ROC) nor YYYY-MM-DD")
    year, month, day = (int(part) for part in match.groups())
    if year < 1000:
        year += ROC_EPOCH
    if not 2000 <= year <= 2100:
        raise ValueError(f"date {text!r} gives the implausible year {year}")
    return dt.date(year, month, day)


def repair_mojibake(text: str) -> str | None:
    """UTF-8 text that was decoded as Latin-1, decoded properly; None when bytes were lost.

    Text that is not mojibake (already proper Chinese) comes back unchanged.
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def load_type_table(path: Path) -> dict[str, str]:
    """The mojibake → Chinese type table (``機型原始碼`` → ``機型中文``); empty when absent."""
    if not path.is_file():
        return {}
    table = read_csv(path, ("機型原始碼", "機型中文"), max_records=10_000)
    source = table.header.index("機型原始碼")
    clean = table.header.index("機型中文")
    return {
        row[source]: row[clean].strip()
        for _, row in table.rows
        if len(row) > max(source, clean) and row[clean].strip()
    }


def _text(properties: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = properties.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _map_date(properties: dict[str, Any]) -> tuple[dt.date, int]:
    """The map date and the trace number (1, or n for a date written ``… (n)``)."""
    written = _text(properties, "dates", "date")
    if written is None:
        raise ValueError("no date (property 'dates' or 'date')")
    trace = 1
    retrace = _RETRACE.fullmatch(written)
    if retrace is not None:
        written, trace = retrace[1], int(retrace[2])
    day = parse_map_date(written)
    fixed = _text(properties, "dates_fixed")
    if fixed is not None:
        fixed_retrace = _RETRACE.fullmatch(fixed)
        fixed = fixed_retrace[1] if fixed_retrace is not None else fixed
        if fixed != day.strftime("%Y%m%d"):
            raise ValueError(f"dates {written!r} and dates_fixed {fixed!r} disagree")
    return day, trace


def _count(properties: dict[str, Any]) -> int:
    value = properties.get("num")
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ValueError("num (the aircraft count) is empty")
    count = whole_number(text)
    if count is None or not 1 <= count <= MAX_AIRCRAFT_PER_TRACK:
        shown = text[:20] + ("…" if len(text) > 20 else "")
        raise ValueError(f"num {shown!r} is not a whole number of aircraft in 1..500")
    return count


def type_labels(properties: dict[str, Any], table: dict[str, str]) -> list[str]:
    """The type labels of a feature, best first: repaired source text, table entry, clean column."""
    labels: list[str] = []
    raw = _text(properties, "Aircraft_Type", "機型原始碼")
    if raw is not None:
        repaired = repair_mojibake(raw)
        if repaired is not None:
            labels.append(repaired)
        if raw in table:
            labels.append(table[raw])
    clean = _text(properties, "機型中文", "aircraft_type")
    if clean is not None:
        labels.append(clean)
    return list(dict.fromkeys(labels))


def track_observation(
    properties: dict[str, Any],
    geometry: Any,
    *,
    day: dt.date,
    number: int,
    record: str,
    table: dict[str, str],
    identify: Identify,
) -> Observation:
    """One digitised track as an observation; ValueError says why a feature is unusable."""
    count = _count(properties)
    labels = type_labels(properties, table)
    if not labels:
        raise ValueError("no readable aircraft type")
    shape, dropped = track_geometry(geometry)
    start, end = local_day(day, TAIWAN)
    remarks = f"Taiwan MND PLA activity map of {day.isoformat()} (local), traced by The Reporter"
    if dropped:
        remarks += f"; {dropped} zero-length part(s) dropped"
    return validated(
        Observation(
            id=f"TWN:mnd:{day.isoformat()}:{number:04d}",
            origin="TWN",
            kind="air",
            observed_at=start,
            until=end,
            geometry=shape,
            platform=_as_first_stored(platform(identify, labels, count=count, nationality="CHN")),
            source=Source(
                sensor="digitised_map", confidence=0.6, uncertainty_m=TRACK_UNCERTAINTY_M
            ),
            marking=PUBLIC_MARKING,
            remarks=remarks,
            provenance=Provenance(importer=IMPORTER, record=record),
        )
    )


def _as_first_stored(found: Platform) -> Platform:
    legacy = LEGACY_CLASSES.get(found.platform_class or "")
    return found if legacy is None else msgspec.structs.replace(found, platform_class=legacy)


def _collection_head(path: Path) -> None:
    """Refuse a file that is not a FeatureCollection, judged from its first bytes (the members
    before ``features``: GeoJSON writers put ``type`` first)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(f"{path}: the file is UTF-16 text; save it as UTF-8 and import again")
    if not head.lstrip().startswith(b"{"):
        raise ImportFileError(f"{path}: not a GeoJSON FeatureCollection")
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            if prefix == "type" and event == "string" and value != "FeatureCollection":
                break
            if prefix == "features":
                if event == "start_array":
                    return
                raise ImportFileError(f"{path}: 'features' is not a list")
    except ijson.JSONError:
        return  # the head ends mid-document, or the file is malformed: the full read says where
    raise ImportFileError(f"{path}: not a GeoJSON FeatureCollection")


def _features(path: Path, max_records: int, max_record_bytes: int) -> Iterator[Any]:
    _collection_head(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with handle:
        yield from json_records(
            handle,
            str(path),
            prefix="features.item",
            place=f"{path.name}#{{}}",
            max_records=max_records,
            max_record_bytes=max_record_bytes,
            max_file_bytes=MAX_FILE_BYTES,
        )


def read_mnd_tracks(
    path: Path,
    *,
    identify: Identify = catalogue_identify,
    max_records: int = MAX_RECORDS,
) -> list[Record]:
    """Every feature of one MND track file, each an observation or the reason it was refused.

    The whole file is read first: a truncated or mis-encoded file raises
    :class:`ImportFileError`.
    """
    return list(stream_mnd_tracks(path, identify=identify, max_records=max_records))


def stream_mnd_tracks(
    path: Path,
    *,
    identify: Identify = catalogue_identify,
    max_records: int = MAX_RECORDS,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Record]:
    """The features of one MND track file, each as soon as it is read: an observation or the
    reason it was refused.

    A bad file (truncated, malformed, a feature too large or nested too deep) raises
    :class:`ImportFileError` where it shows, possibly after records were yielded: store them
    in one transaction, so that the error leaves nothing of the file. A file of area maps is
    held whole (a day's map is made of features from anywhere in the file).
    """
    features = _features(path, max_records, max_record_bytes)
    first = list(itertools.islice(features, AREA_MAP_PROBE))
    if is_area_map(first):
        yield from read_area_map(path, [*first, *features], identify=identify)
        return
    table = load_type_table(path.parent / TYPE_TABLE)
    per_day: Counter[dt.date] = Counter()
    for index, feature in enumerate(itertools.chain(first, features)):
        location = f"{path.name}#{index}"
        try:
            if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
                raise ValueError("not a GeoJSON Feature with properties")
            properties: dict[str, Any] = feature["properties"]
            day, trace = _map_date(properties)
            if trace > 1:
                reason = (
                    f"a map traced again: trace ({trace}) of the map of {day.isoformat()} "
                    "repeats a track already traced from it; the first trace is kept"
                )
                yield location, SkippedRecord(location, reason)
                continue
            per_day[day] += 1
            observation = track_observation(
                properties,
                feature.get("geometry"),
                day=day,
                number=per_day[day],
                record=location,
                table=table,
                identify=identify,
            )
        except ValueError as exc:
            yield location, ImportRecordError(location, str(exc))
            continue
        yield location, observation
