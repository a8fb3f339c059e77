"""Reading the public source files safely, and the vocabulary every source importer shares.

Bounded size and record count, strict UTF-8 with a clear word on UTF-16 or Latin-1 files, required
CSV columns and whole rows to the end, bounded whole numbers, local calendar days, the public
marking and the catalogue lookup. It parses no source.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from kuroshio.catalogue import lookup
from kuroshio.errors import ImportFileError, ImportRecordError
from kuroshio.model import (
    LineString,
    Marking,
    MultiLineString,
    Observation,
    OriginatorControl,
    Platform,
    Polygon,
)

MAX_FILE_BYTES: Final = 256 * 1024 * 1024
"""Largest source file read (they are parsed whole, so that a bad file stores nothing)."""
MAX_RECORDS: Final = 200_000
"""Most records (rows, features, releases) taken from one file."""

TAIWAN: Final = dt.timezone(dt.timedelta(hours=8), "UTC+08")
JAPAN: Final = dt.timezone(dt.timedelta(hours=9), "UTC+09")
CHINA: Final = TAIWAN

PUBLIC_MARKING: Final = Marking(tlp="CLEAR", control=OriginatorControl(rerelease=True, max_hops=16))
"""Published by a government or a newsroom: TLP CLEAR, anyone may pass it on."""


class SkippedRecord(ImportRecordError):
    """A record left out on purpose (a repeated track, a cancelled warning, an unrelated release).

    It is reported beside the rejected records, but it is not an error in the source.
    """


# --- reading files --------------------------------------------------------------------------


def check_size(path: Path, max_bytes: int) -> None:
    """Refuse a missing file, or one larger than the node's ``limits.max_file_bytes``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise ImportFileError(
            f"{path}: {size} bytes, more than limits.max_file_bytes ({max_bytes})"
        )


def read_bytes(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The whole file, refused when missing or larger than ``max_bytes``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise ImportFileError(f"{path}: {size} bytes, more than the limit of {max_bytes}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_text(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file as UTF-8 text (a byte-order mark is allowed); anything else is refused whole."""
    data = read_bytes(path, max_bytes=max_bytes)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:200].count(b"\x00") > 10:
        raise ImportFileError(f"{path}: the file is UTF-16 text; save it as UTF-8 and import again")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}; "
            "Latin-1, Big5 or Shift-JIS?); save it as UTF-8 and import again"
        ) from None


def read_json(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The parsed JSON document; a truncated or malformed file is refused whole.

    ``NaN`` (written by pandas for a missing value, and not JSON) is read as null.
    """
    text = read_text(path, max_bytes=max_bytes)
    try:
        return json.loads(text, parse_constant=lambda constant: None)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{path}:{exc.lineno}: malformed or truncated JSON ({exc.msg}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ImportFileError(f"{path}: JSON nested too deeply") from None


class CsvTable(msgspec.Struct, frozen=True):
    """A CSV file read whole: its header and each row with the line it starts on."""

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]

    def location(self, line: int) -> str:
        return f"{self.path.name}:{line}"


def read_csv(
    path: Path,
    required: Sequence[str],
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_records: int = MAX_RECORDS,
) -> CsvTable:
    """A UTF-8 CSV file with a header holding every ``required`` column, read whole."""
    text = read_text(path, max_bytes=max_bytes)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, tuple[str, ...]]] = []
    try:
        header = tuple(name.strip() for name in next(reader, ()))
        if not header:
            raise ImportFileError(f"{path}: empty file (a CSV header is expected)")
        missing = [name for name in required if name not in header]
        if missing:
            raise ImportFileError(
                f"{path}: missing required column(s) {', '.join(missing)} "
                f"(the header has {', '.join(header[:12])}{' …' if len(header) > 12 else ''})"
            )
        start = reader.line_num + 1
        for row in reader:
            if len(rows) >= max_records:
                raise ImportFileError(f"{path}: more than {max_records} rows")
            if any(cell.strip() for cell in row):
                rows.append((start, tuple(row)))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    _check_complete(path, text, header, rows)
    return CsvTable(path=path, header=header, rows=tuple(rows))


def _check_complete(
    path: Path, text: str, header: tuple[str, ...], rows: list[tuple[int, tuple[str, ...]]]
) -> None:
    """Refuse a file cut short: one that ends without a line end inside a quoted cell or in a
    row with fewer cells than the header (a whole last row without a line end is fine)."""
    if not rows or text.endswith(("\n", "\r")):
        return
    line, last = rows[-1]
    tail = text[text.rfind("\n") + 1 :]
    if len(last) < len(header) or tail.count('"') % 2:
        raise ImportFileError(
            f"{path}:{line}: truncated CSV (the file ends inside row {line}, "
            f"{len(last)} of {len(header)} columns); nothing of it is stored"
        )


# --- numbers ---------------------------------------------------------------------------------

MAX_NUMBER_CHARS: Final = 32
"""Longest number text read; a count never needs more (and 5 000 digits is an attack)."""


def whole_number(value: object) -> int | None:
    """``value`` (text or a JSON number) as a finite whole number (``12`` or ``12.0``), or None
    when it is not one, is not finite, or is written with more than :data:`MAX_NUMBER_CHARS`
    characters."""
    if isinstance(value, bool):
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    if not text or len(text) > MAX_NUMBER_CHARS:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


# --- time -----------------------------------------------------------------------------------


def local_day(day: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """First and last instant (to the microsecond) of a calendar day in a time zone."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    return start, start + dt.timedelta(days=1, microseconds=-1)


def local_days(first: dt.date, last: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """First instant of ``first`` to the last instant of ``last``, local time."""
    return local_day(first, zone)[0], local_day(last, zone)[1]


# --- platforms ------------------------------------------------------------------------------

Identify = Callable[[str, str | None], Platform | None]
"""A label as a source wrote it (and the nationality the source gives, if any) → the catalogue's
platform (type, class, nationality, service) with count 1, or None when the catalogue does not
know the label or it is ambiguous."""


def catalogue_identify(label: str, nationality: str | None = None) -> Platform | None:
    """The platform catalogue's entry for a label, as a Platform template.

    An entry that only knows the class (``推定中國無人機``: some UAV) gives no type code.
    """
    entry = lookup(label, nationality=nationality)
    if entry is None:
        return None
    return Platform(
        type=None if entry.precision == "class" else entry.code,
        platform_class=entry.platform_class,
        nationality=entry.nationality,
        service=entry.service,
    )


def platform(
    identify: Identify,
    labels: Sequence[str],
    *,
    count: int = 1,
    nationality: str | None = None,
    hull_numbers: Sequence[str] = (),
) -> Platform:
    """The platform for the first label the catalogue knows, or an unidentified one.

    ``labels`` are tried in order (e.g. the source's text, then a cleaned form); ``label`` keeps
    the first, as the source wrote it. An unknown label keeps ``type`` and ``platform_class``
    None so that the import reports it instead of guessing.
    """
    written = labels[0].strip()[:200] if labels else None
    hulls = tuple(dict.fromkeys(h for h in hull_numbers if h))[:50]
    for label in labels:
        known = identify(label.strip(), nationality) if label.strip() else None
        if known is not None:
            return msgspec.structs.replace(
                known,
                count=count,
                label=written,
                hull_numbers=hulls,
                nationality=known.nationality or nationality,
            )
    return Platform(count=count, nationality=nationality, label=written, hull_numbers=hulls)


def is_unidentified(value: Platform | None) -> bool:
    """A platform whose label the catalogue did not know."""
    return value is not None and value.type is None and value.platform_class is None


# --- validation -----------------------------------------------------------------------------

_observation_encoder = msgspec.json.Encoder()
_observation_decoder = msgspec.json.Decoder(Observation)


def validated(observation: Observation) -> Observation:
    """The observation checked against every constraint of the model (ranges, lengths, zones).

    Struct constructors run only ``__post_init__``; decoding the encoded record applies the
    declared constraints too, so an importer cannot store what a partner would refuse.
    """
    try:
        return _observation_decoder.decode(_observation_encoder.encode(observation))
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None


# --- geometry -------------------------------------------------------------------------------


def _position(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise ValueError(f"position {str(value)[:40]} is not [lon, lat]")
    lon, lat = value[0], value[1]
    if isinstance(lon, bool) or isinstance(lat, bool) or not isinstance(lon, int | float):
        raise ValueError(f"position {str(value)[:40]} is not numeric")
    if not isinstance(lat, int | float):
        raise ValueError(f"position {str(value)[:40]} is not numeric")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"position {lon}, {lat} is outside lon -180..180, lat -90..90")
    return float(lon), float(lat)


def _track_part(value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list | tuple):
        raise ValueError("a line is not a list of positions")
    kept: list[tuple[float, float]] = []
    for raw in value:
        position = _position(raw)
        if not kept or kept[-1] != position:  # a repeated vertex adds no length
            kept.append(position)
    return tuple(kept)


def track_geometry(geometry: Any) -> tuple[LineString | MultiLineString, int]:
    """A GeoJSON LineString / MultiLineString as a track, and how many zero-length parts it lost.

    Repeated consecutive vertices are merged and parts left with fewer than two positions are
    dropped; a geometry with nothing left is refused (ValueError).
    """
    if not isinstance(geometry, dict):
        raise ValueError("no geometry")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "LineString":
        raw_parts = [coordinates]
    elif kind == "MultiLineString" and isinstance(coordinates, list | tuple):
        raw_parts = list(coordinates)
    else:
        raise ValueError(f"geometry type {str(kind)[:40]!r} is not a LineString or MultiLineString")
    parts = [_track_part(part) for part in raw_parts]
    kept = [part for part in parts if len(part) >= 2]
    if not kept:
        raise ValueError("the track has no part of non-zero length")
    dropped = len(parts) - len(kept)
    if len(kept) == 1:
        return LineString(coordinates=kept[0]), dropped
    return MultiLineString(coordinates=tuple(kept)), dropped


def area_geometry(geometry: Any) -> Polygon:
    """A GeoJSON Polygon as an area; rings left open are closed, rings of fewer than three
    distinct positions refused (ValueError)."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        raise ValueError(f"geometry type {str(kind)[:40]!r} is not a Polygon")
    rings = geometry.get("coordinates")
    if not isinstance(rings, list | tuple) or not rings:
        raise ValueError("a polygon without rings")
    closed: list[tuple[tuple[float, float], ...]] = []
    for raw in rings:
        ring = list(_track_part(raw))
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring.pop()
        if len(set(ring)) < 3:
            raise ValueError("a polygon ring has fewer than three distinct positions")
        closed.append((*ring, ring[0]))
    return Polygon(coordinates=tuple(closed))
