"""Reading the public source files safely, and the vocabulary every source importer shares.

Bounded size and record count, strict UTF-8 with a clear word on UTF-16 or Latin-1 files, required
CSV columns and whole rows to the end, bounded whole numbers, local calendar days, the public
marking and the catalogue lookup. It parses no source.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

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
"""Largest source file read (besides the node's own ``limits.max_file_bytes``)."""
MAX_RECORD_BYTES: Final = 16 * 1024 * 1024
"""Largest record (a GeoJSON feature) of a file read record by record."""
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


def _refuse_larger(path: Path, max_bytes: int) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise ImportFileError(f"{path}: {size} bytes, more than the limit of {max_bytes}")


def read_bytes(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The whole file, refused when missing or larger than ``max_bytes``."""
    _refuse_larger(path, max_bytes)
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
    stream = CsvStream(path, required, max_bytes=max_bytes, max_records=max_records)
    return CsvTable(path=path, header=stream.header, rows=tuple(stream.rows()))


class CsvStream:
    """A UTF-8 CSV file with a header holding every ``required`` column, read row by row.

    The header is read at once; :meth:`rows` gives each row with the line it starts on as it is
    read, and raises :class:`ImportFileError` where the file turns out bad (a byte that is not
    UTF-8, a malformed row, a file cut off inside its last row), possibly after rows were given.
    """

    def __init__(
        self,
        path: Path,
        required: Sequence[str],
        *,
        max_bytes: int = MAX_FILE_BYTES,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.path, self._max_bytes, self._max_records = path, max_bytes, max_records
        _refuse_larger(path, max_bytes)
        with self._open() as handle:
            first = next(csv.reader(_text_lines(path, handle, max_bytes)), [])
        self.header = tuple(name.strip() for name in first)
        if not self.header:
            raise ImportFileError(f"{path}: empty file (a CSV header is expected)")
        missing = [name for name in required if name not in self.header]
        if missing:
            header = self.header
            raise ImportFileError(
                f"{path}: missing required column(s) {', '.join(missing)} "
                f"(the header has {', '.join(header[:12])}{' …' if len(header) > 12 else ''})"
            )

    def location(self, line: int) -> str:
        return f"{self.path.name}:{line}"

    def _open(self) -> BinaryIO:
        try:
            return self.path.open("rb")
        except OSError as exc:
            raise ImportFileError(f"{self.path}: cannot open: {exc.strerror or exc}") from exc

    def rows(self) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Each row that is not empty, with the line it starts on."""
        path, header = self.path, self.header
        with self._open() as handle:
            lines = _Lines(_text_lines(path, handle, self._max_bytes))
            reader = csv.reader(lines)
            last: tuple[int, tuple[str, ...]] | None = None
            count = 0
            try:
                next(reader, None)
                start = reader.line_num + 1
                for row in reader:
                    if any(cell.strip() for cell in row):
                        count += 1
                        if count > self._max_records:
                            raise ImportFileError(f"{path}: more than {self._max_records} rows")
                        last = (start, tuple(row))
                        yield last
                    start = reader.line_num + 1
            except csv.Error as exc:
                raise ImportFileError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
        if last is not None and not lines.ended_line:
            line, cells = last
            if len(cells) < len(header) or lines.last.count('"') % 2:
                raise ImportFileError(
                    f"{path}:{line}: truncated CSV (the file ends inside row {line}, "
                    f"{len(cells)} of {len(header)} columns); nothing of it is stored"
                )


class _Lines:
    """Text lines, remembering the last one (to tell a file cut off inside a row)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.last = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._lines)
        return self.last

    @property
    def ended_line(self) -> bool:
        """Whether the last line ends with a line end (a whole last row needs none)."""
        return self.last.endswith(("\n", "\r"))


def _text_lines(path: Path, handle: BinaryIO, max_bytes: int) -> Iterator[str]:
    """The lines of a UTF-8 file (a byte-order mark is allowed), each with its line end;
    anything else is refused, naming the line."""
    offset = 0
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or raw[:200].count(b"\x00") > 10:
                raise ImportFileError(
                    f"{path}: the file is UTF-16 text; save it as UTF-8 and import again"
                )
            if raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
        if offset + len(raw) > max_bytes:
            raise ImportFileError(f"{path}: more than the limit of {max_bytes} bytes")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                f"{offset + exc.start}; Latin-1, Big5 or Shift-JIS?); save it as UTF-8 and "
                "import again"
            ) from None
        offset += len(raw)


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
