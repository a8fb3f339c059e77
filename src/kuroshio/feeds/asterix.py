"""ASTERIX CAT062 (system tracks) and CAT048 (monoradar target reports) as track updates.

A small codec of its own: it walks a data block's records by their FSPEC and the item formats of
the user application profiles (CAT048 edition 1.21, CAT062 edition 1.18, as EUROCONTROL publishes
them), skips what it does not need and reads what a track update needs. It was written rather than
taken from ``asterix-decoder`` because that decoder builds a dictionary of every item and reaches
about 30 000 records a second here, below what a radar picture needs; the tests check this codec
against it on its own sample captures. Other categories (CAT034, CAT065 …) are counted as skipped.

CAT048 positions are polar: the radar's site (``RadarSite``, a feed option per SAC/SIC) places
them (:func:`kuroshio.geo.polar.polar_position`); a plot from a radar without a site is skipped,
never placed by guess. This module does not open sockets or build observations.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple

from kuroshio.catalogue import lookup
from kuroshio.feeds.base import Decoder, Framer, MalformedFrame, TrackUpdate
from kuroshio.geo.polar import polar_position

# --- item formats ------------------------------------------------------------------------------
# (code, argument): fixed length; variable (parts of n bytes, FX in each part's last bit);
# repetitive (one REP byte, then REP parts of n bytes); explicit (first byte: length including
# itself); compound (an FX-extended primary subfield whose bits, 7 per byte, announce subfields).

_FIXED, _VARIABLE, _REPETITIVE, _EXPLICIT, _COMPOUND = range(5)
Format = tuple[int, Any]
"""(format code, its argument: a length, or the subfields of a compound)."""


def _f(length: int) -> Format:
    return (_FIXED, length)


def _v(part: int) -> Format:
    return (_VARIABLE, part)


def _r(part: int) -> Format:
    return (_REPETITIVE, part)


_E: Final[Format] = (_EXPLICIT, None)


def _c(*subfields: Format | None) -> Format:
    return (_COMPOUND, subfields)


# CAT048 edition 1.21: FRN -> (item, format); None for spare.
CAT048_UAP: Final[tuple[tuple[str, Format] | None, ...]] = (
    None,  # FRN 0 does not exist
    ("010", _f(2)), ("140", _f(3)), ("020", _v(1)), ("040", _f(4)), ("070", _f(2)),
    ("090", _f(2)), ("130", _c(*[_f(1)] * 7)),
    ("220", _f(3)), ("240", _f(6)), ("250", _r(8)), ("161", _f(2)), ("042", _f(4)),
    ("200", _f(4)), ("170", _v(1)),
    ("210", _f(4)), ("030", _v(1)), ("080", _f(2)), ("100", _f(4)), ("110", _f(2)),
    ("120", _c(_f(2), _r(6))), ("230", _f(2)),
    ("260", _f(7)), ("055", _f(1)), ("050", _f(2)), ("065", _f(1)), ("060", _f(2)),
    ("SP", _E), ("RE", _E),
)  # fmt: skip

_I380: Final = _c(
    _f(3), _f(6), _f(2), _f(2), _f(2), _f(2), _f(2), _v(1), _r(15), _f(2), _f(2), _f(7), _f(2),
    _f(2), _f(2), _f(2), _f(2), _f(2), _f(1), _f(8), _f(1), _f(6), _f(2), _f(1), _r(8), _f(2),
    _f(2), _f(2),
)  # fmt: skip
_I390: Final = _c(
    _f(2), _f(7), _f(4), _f(1), _f(4), _f(1), _f(4), _f(4), _f(3), _f(2), _f(2), _r(4), _f(6),
    _f(1), _f(7), _f(7), _f(2), _f(7),
)  # fmt: skip

_I500: Final = _c(_f(4), _f(2), _f(4), _f(1), _f(1), _f(2), _f(2), _f(1))

# CAT062 edition 1.18.
CAT062_UAP: Final[tuple[tuple[str, Format] | None, ...]] = (
    None,
    ("010", _f(2)), None, ("015", _f(1)), ("070", _f(3)), ("105", _f(8)), ("100", _f(6)),
    ("185", _f(4)),
    ("210", _f(2)), ("060", _f(2)), ("245", _f(7)), ("380", _I380), ("040", _f(2)),
    ("080", _v(1)), ("290", _c(_f(1), _f(1), _f(1), _f(1), _f(2), _f(1), _f(1), _f(1), _f(1),
                               _f(1))),
    ("200", _f(1)), ("295", _c(*[_f(1)] * 31)), ("136", _f(2)), ("130", _f(2)), ("135", _f(2)),
    ("220", _f(2)), ("390", _I390),
    ("270", _v(1)), ("300", _f(1)), ("110", _c(_f(1), _f(4), _f(6), _f(2), _f(2), _f(1), _f(1))),
    ("120", _f(2)), ("510", _v(3)), ("500", _I500),
    ("340", _c(_f(2), _f(4), _f(2), _f(2), _f(2), _f(1))),
    None, None, None, None, None, ("RE", _E), ("SP", _E),
)  # fmt: skip

_UAPS: Final = {48: CAT048_UAP, 62: CAT062_UAP}

# --- units -------------------------------------------------------------------------------------

FOOT_M: Final = 0.3048
NAUTICAL_MILE_M: Final = 1852.0
_WGS84_LSB: Final = 180.0 / 2**25
"""CAT062 I105: degrees per unit."""
_ANGLE_LSB: Final = 360.0 / 2**16
_TIME_LSB: Final = 1.0 / 128
_DAY: Final = 86_400.0
_SIX_BIT: Final = "?ABCDEFGHIJKLMNOPQRSTUVWXYZ????? ???????????????0123456789??????"
"""ICAO Annex 10 6-bit character set (IA-5 subset) used by aircraft identification items."""


class AsterixError(MalformedFrame):
    """A data block or record that does not follow its category's format."""


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _six_bit_text(data: bytes) -> str | None:
    value = int.from_bytes(data, "big")
    count = len(data) * 8 // 6
    chars = [_SIX_BIT[(value >> (6 * (count - 1 - i))) & 0x3F] for i in range(count)]
    text = "".join(chars).strip()
    return text if text and "?" not in text else None


def _ascii(data: bytes) -> str | None:
    text = data.decode("ascii", "replace").strip()
    return text if text and text.isprintable() and "\ufffd" not in text else None


# --- walking records ---------------------------------------------------------------------------
# Hot path: a fixed-length item is a plain int in the tables below, and the bits of every
# possible FSPEC or primary-subfield octet are looked up rather than tested one by one.

_BITS: Final[tuple[tuple[int, ...], ...]] = tuple(
    tuple(bit for bit in range(7) if octet & (0x80 >> bit)) for octet in range(256)
)
"""For each octet value: which of its seven presence bits (0 = most significant) are set."""

Layout = int | Format
"""A fixed length as an int, any other format as a (code, argument) pair."""


@functools.cache
def _layout(fmt: Format) -> Layout:
    code, arg = fmt
    if code == _FIXED:
        return int(arg)
    if code == _COMPOUND:
        subfields = tuple(None if sub is None else _layout(sub) for sub in arg)
        return (_COMPOUND, (subfields, _fixed_sums(subfields)))
    return fmt


def _fixed_sums(subfields: tuple[Layout | None, ...]) -> tuple[tuple[int, ...], ...]:
    """Per primary-subfield octet, per octet value: the total length of the subfields it
    announces when all of them are of fixed length, else -1 (then they are walked one by one)."""
    tables = []
    for octet_index in range((len(subfields) + 6) // 7):
        table = []
        for value in range(256):
            total = 0
            for bit in _BITS[value]:
                index = octet_index * 7 + bit
                sub = subfields[index] if index < len(subfields) else None
                if not isinstance(sub, int):
                    total = -1
                    break
                total += sub
            table.append(total)
        tables.append(tuple(table))
    return tuple(tables)


def _length(data: bytes, pos: int, layout: Layout) -> int:
    if isinstance(layout, int):
        return layout
    code, arg = layout
    if code == _VARIABLE:
        part: int = arg
        size = part
        while data[pos + size - 1] & 1:
            size += part
        return size
    if code == _REPETITIVE:
        return 1 + data[pos] * int(arg)
    if code == _EXPLICIT:
        if data[pos] < 1:
            raise AsterixError("explicit item of length 0", data)
        return int(data[pos])
    subfields: tuple[Layout | None, ...]
    subfields, sums = arg
    size = total = 0
    while True:  # the common case: every subfield announced has a fixed length
        octet = data[pos + size]
        add = sums[size][octet] if size < len(sums) else -1
        if add < 0:
            break
        total += add
        size += 1
        if not octet & 1:
            return size + total
    size, present = _primary(data, pos)
    for index in present:
        sub = subfields[index] if index < len(subfields) else None
        if sub is None:
            raise AsterixError(f"compound subfield {index + 1} is not defined", data)
        size += sub if isinstance(sub, int) else _length(data, pos + size, sub)
    return size


def _primary(data: bytes, pos: int) -> tuple[int, list[int]]:
    """(length of an FX-extended primary subfield, the subfield indices it announces)."""
    present: list[int] = []
    size = 0
    while True:
        octet = data[pos + size]
        base = size * 7
        present.extend([base + bit for bit in _BITS[octet]])
        size += 1
        if not octet & 1:
            return size, present


def _subfields(data: bytes, pos: int, layout: Layout) -> dict[int, int]:
    """Where each present subfield of a compound item starts."""
    size, present = _primary(data, pos)
    assert not isinstance(layout, int)
    subfields: tuple[Layout | None, ...] = layout[1][0]
    starts: dict[int, int] = {}
    for index in present:
        sub = subfields[index]
        assert sub is not None  # the item's length was already checked
        starts[index] = pos + size
        size += _length(data, pos + size, sub)
    return starts


Entries = tuple[tuple[str, Layout], ...]
Profile = tuple[tuple[Entries | None, ...], ...]
"""Per FSPEC octet, per octet value: the items it announces in order, or None when it announces
an FRN the category does not define."""


def _profile(uap: tuple[tuple[str, Format] | None, ...]) -> Profile:
    return tuple(
        tuple(_announced(octet_index, value, uap) for value in range(256))
        for octet_index in range((len(uap) - 1 + 6) // 7)
    )


def _announced(
    octet_index: int, value: int, uap: tuple[tuple[str, Format] | None, ...]
) -> Entries | None:
    entries: list[tuple[str, Layout]] = []
    for bit in _BITS[value]:
        frn = octet_index * 7 + bit + 1
        entry = uap[frn] if frn < len(uap) else None
        if entry is None:
            return None
        entries.append((entry[0], _layout(entry[1])))
    return tuple(entries)


def _undefined_frn(octet_index: int, octet: int, uap: tuple[tuple[str, Format] | None, ...]) -> int:
    for bit in _BITS[octet]:
        frn = octet_index * 7 + bit + 1
        if frn >= len(uap) or uap[frn] is None:
            return frn
    raise AssertionError("every FRN of the octet is defined")


_PROFILES: Final[dict[int, Profile]] = {category: _profile(uap) for category, uap in _UAPS.items()}
_I380_LAYOUT: Final = _layout(_I380)
_I390_LAYOUT: Final = _layout(_I390)
_I500_LAYOUT: Final = _layout(_I500)


def records(block: bytes) -> Iterator[tuple[int, dict[str, int]]]:
    """(category, {item: offset in ``block``}) of every record of one data block.

    Raises :class:`AsterixError` naming the record and the reason when the block is not whole
    or a record does not follow its category's format; categories without a profile here give
    no records.
    """
    if len(block) < 3:
        raise AsterixError("data block shorter than its 3-byte header", block)
    category = block[0]
    length = int.from_bytes(block[1:3], "big")
    if length != len(block):
        raise AsterixError(f"data block length {length} but {len(block)} bytes", block)
    if category not in _PROFILES:
        return
    pos = 3
    number = 0
    while pos < length:
        number += 1
        try:
            items, pos = _record(block, pos, category)
        except IndexError:
            raise AsterixError(
                f"CAT{category:03d} record {number} runs past the end of its block", block
            ) from None
        except AsterixError as error:
            raise AsterixError(
                f"CAT{category:03d} record {number}: {error.reason}", block
            ) from None
        if pos > length:
            raise AsterixError(
                f"CAT{category:03d} record {number} runs past the end of its block", block
            )
        yield category, items


def _record(block: bytes, pos: int, category: int) -> tuple[dict[str, int], int]:
    profile = _PROFILES[category]
    start = pos
    while block[pos] & 1:
        pos += 1
    pos += 1
    fspec = block[start:pos]
    if not any(octet & 0xFE for octet in fspec):
        raise AsterixError("empty FSPEC")
    items: dict[str, int] = {}
    for octet_index, octet in enumerate(fspec):
        entries = profile[octet_index][octet] if octet_index < len(profile) else None
        if entries is None:
            frn = _undefined_frn(octet_index, octet, _UAPS[category])
            raise AsterixError(f"FRN {frn} is not defined")
        for name, layout in entries:
            items[name] = pos
            pos += layout if isinstance(layout, int) else _length(block, pos, layout)
    return items, pos


def split_blocks(data: bytes) -> list[bytes | MalformedFrame]:
    """The data blocks of one datagram; a tail that is not a whole block is given back bad."""
    out: list[bytes | MalformedFrame] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            out.append(AsterixError("datagram ends inside a data block header", data[pos:]))
            break
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        if length < 3 or pos + length > len(data):
            out.append(AsterixError(f"data block length {length} does not fit", data[pos:]))
            break
        out.append(data[pos : pos + length])
        pos += length
    return out


class BlockFramer(Framer):
    """ASTERIX data blocks from a byte stream (TCP, a recorded file): each says its length.

    The format has no sync marker, so after a block whose length cannot be right the rest of
    the buffer is given back as malformed and reading starts again with the next bytes.
    """

    def __init__(self) -> None:
        self._rest = b""

    def push(self, data: bytes) -> list[bytes | MalformedFrame]:
        buffer = self._rest + data
        out: list[bytes | MalformedFrame] = []
        pos = 0
        while len(buffer) - pos >= 3:
            length = int.from_bytes(buffer[pos + 1 : pos + 3], "big")
            if length < 3:
                out.append(AsterixError(f"data block length {length}", buffer[pos:]))
                pos = len(buffer)
                break
            if len(buffer) - pos < length:
                break
            out.append(buffer[pos : pos + length])
            pos += length
        self._rest = buffer[pos:]
        return out


# --- track updates ------------------------------------------------------------------------------


class RadarSite(NamedTuple):
    """Where a radar stands: WGS84 longitude, latitude and antenna height (metres)."""

    lon: float
    lat: float
    height_m: float = 0.0


def utc_from_time_of_day(seconds_of_day: float, received_at: float) -> float:
    """POSIX time of an ASTERIX time of day (seconds since UTC midnight): the day that puts it
    nearest the reception time, so reports just before or after midnight keep their own day."""
    candidate = math.floor(received_at / _DAY) * _DAY + seconds_of_day
    if candidate - received_at > _DAY / 2:
        candidate -= _DAY
    elif received_at - candidate > _DAY / 2:
        candidate += _DAY
    return candidate


def _utc(posix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(posix, dt.UTC)


def _course_speed(east: float, north: float) -> tuple[float, float]:
    course = math.degrees(math.atan2(east, north)) % 360.0
    return (0.0 if course >= 359.99999995 else course), math.hypot(east, north)


@functools.lru_cache(maxsize=4_096)
def _aircraft_type(designator: str) -> tuple[str | None, str | None]:
    """(catalogue code, class) of an ICAO type designator the catalogue knows, else (None, None)."""
    entry = lookup(designator)
    if entry is None or entry.domain != "air":
        return None, None
    return entry.code, entry.platform_class


class AsterixDecoder(Decoder):
    """CAT062 system tracks and CAT048 target reports; other categories are skipped.

    ``radars`` places CAT048 plots, by (SAC, SIC); ``categories`` limits what is decoded.
    Simulated tracks and plots are skipped; a CAT062 track marked ended (TSE) or a CAT048 track
    marked ended (TRE) gives a final update.
    """

    kind = "asterix"

    def __init__(
        self,
        skipped: Counter[str],
        *,
        radars: Mapping[tuple[int, int], RadarSite] | None = None,
        categories: frozenset[int] = frozenset({48, 62}),
    ) -> None:
        super().__init__(skipped)
        self._radars = dict(radars or {})
        self._categories = categories

    def framer(self) -> Framer:
        return BlockFramer()

    def datagram(self, data: bytes) -> list[bytes | MalformedFrame]:
        return split_blocks(data)

    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        category = frame[0] if frame else -1
        if category not in self._categories:
            # read the header anyway, so that a truncated block is still found bad
            if len(frame) < 3 or int.from_bytes(frame[1:3], "big") != len(frame):
                raise AsterixError("data block length does not match its bytes", frame)
            self.skipped[f"CAT{category:03d} not decoded"] += 1
            return []
        updates: list[TrackUpdate] = []
        read = self._cat062 if category == 62 else self._cat048
        for _, items in records(frame):
            update = read(frame, items, received_at)
            if update is not None:
                updates.append(update)
        return updates

    # --- CAT062 -----------------------------------------------------------------------------

    def _cat062(self, b: bytes, items: dict[str, int], received_at: float) -> TrackUpdate | None:
        p = items.get("080")
        if p is not None and b[p] & 1 and b[p + 1] & 0x80:
            self.skipped["CAT062 simulated track"] += 1
            return None
        p010, p040, p105 = items.get("010"), items.get("040"), items.get("105")
        if p010 is None or p040 is None:
            raise AsterixError("CAT062 record without data source (I010) or track number (I040)", b)
        if p105 is None:
            self.skipped["CAT062 track without a WGS-84 position (I105)"] += 1
            return None
        final = p is not None and bool(b[p] & 1) and bool(b[p + 1] & 0x40)
        lat = _signed(int.from_bytes(b[p105 : p105 + 4], "big"), 32) * _WGS84_LSB
        lon = _signed(int.from_bytes(b[p105 + 4 : p105 + 8], "big"), 32) * _WGS84_LSB
        p = items.get("070")
        at = (
            utc_from_time_of_day(int.from_bytes(b[p : p + 3], "big") * _TIME_LSB, received_at)
            if p is not None
            else received_at
        )
        course = speed = None
        p = items.get("185")
        if p is not None:
            east = _signed(int.from_bytes(b[p : p + 2], "big"), 16) * 0.25
            north = _signed(int.from_bytes(b[p + 2 : p + 4], "big"), 16) * 0.25
            course, speed = _course_speed(east, north)
        platform_type = platform_class = label = None
        name = self._cat062_name(b, items)
        p = items.get("390")
        if p is not None:
            parts = _subfields(b, p, _I390_LAYOUT)
            if 4 in parts:
                designator = _ascii(b[parts[4] : parts[4] + 4])
                if designator:
                    label = f"ICAO type {designator}"
                    platform_type, platform_class = _aircraft_type(designator)
            if name is None and 1 in parts:
                name = _ascii(b[parts[1] : parts[1] + 7])
        uncertainty = None
        p = items.get("500")
        if p is not None:
            parts = _subfields(b, p, _I500_LAYOUT)
            if 0 in parts:
                q = parts[0]
                sigma_x = int.from_bytes(b[q : q + 2], "big") * 0.5
                sigma_y = int.from_bytes(b[q + 2 : q + 4], "big") * 0.5
                uncertainty = math.hypot(sigma_x, sigma_y)
        return TrackUpdate(
            track=f"cat062:{b[p010]}/{b[p010 + 1]}:{int.from_bytes(b[p040 : p040 + 2], 'big')}",
            kind="air",
            at=_utc(at),
            lon=lon,
            lat=lat,
            course_deg=course,
            speed_mps=speed,
            altitude_m=_cat062_altitude(b, items),
            platform_class=platform_class,
            platform_type=platform_type,
            label=label,
            name=name,
            uncertainty_m=uncertainty,
            final=final,
        )

    @staticmethod
    def _cat062_name(b: bytes, items: dict[str, int]) -> str | None:
        p = items.get("245")
        if p is not None:
            name = _six_bit_text(b[p + 1 : p + 7])
            if name:
                return name
        p = items.get("380")
        if p is not None:
            parts = _subfields(b, p, _I380_LAYOUT)
            if 1 in parts:
                return _six_bit_text(b[parts[1] : parts[1] + 6])
        return None

    # --- CAT048 -----------------------------------------------------------------------------

    def _cat048(self, b: bytes, items: dict[str, int], received_at: float) -> TrackUpdate | None:
        p = items.get("020")
        if p is not None and b[p] & 0x10:
            self.skipped["CAT048 simulated plot"] += 1
            return None
        p010, p040 = items.get("010"), items.get("040")
        if p010 is None:
            raise AsterixError("CAT048 record without its data source identifier (I010)", b)
        if p040 is None:
            # a track's end or a coasted track: nothing seen to place
            self.skipped["CAT048 report without a measured position (I040)"] += 1
            return None
        sac, sic = b[p010], b[p010 + 1]
        track = self._cat048_track(b, items, sac, sic)
        if track is None:
            self.skipped["CAT048 plot without track number or address"] += 1
            return None
        site = self._radars.get((sac, sic))
        if site is None:
            self.skipped[f"CAT048 radar {sac}/{sic} has no site configured"] += 1
            return None
        altitude = None
        p = items.get("090")
        if p is not None and not b[p] & 0x80:  # validated flight level only
            altitude = _signed(int.from_bytes(b[p : p + 2], "big") & 0x3FFF, 14) * 25 * FOOT_M
        rho = int.from_bytes(b[p040 : p040 + 2], "big") / 256 * NAUTICAL_MILE_M
        theta = int.from_bytes(b[p040 + 2 : p040 + 4], "big") * _ANGLE_LSB
        lon, lat = polar_position(site.lon, site.lat, site.height_m, theta, rho, altitude)
        p = items.get("140")
        at = (
            utc_from_time_of_day(int.from_bytes(b[p : p + 3], "big") * _TIME_LSB, received_at)
            if p is not None
            else received_at
        )
        course = speed = None
        p = items.get("200")
        if p is not None:
            speed = int.from_bytes(b[p : p + 2], "big") / 2**14 * NAUTICAL_MILE_M
            course = int.from_bytes(b[p + 2 : p + 4], "big") * _ANGLE_LSB
        name = None
        p = items.get("240")
        if p is not None:
            name = _six_bit_text(b[p : p + 6])
        p = items.get("170")
        final = p is not None and bool(b[p] & 1) and bool(b[p + 1] & 0x80)
        return TrackUpdate(
            track=track,
            kind="air",
            at=_utc(at),
            lon=lon,
            lat=lat,
            course_deg=course,
            speed_mps=speed,
            altitude_m=altitude,
            name=name,
            final=final,
        )

    @staticmethod
    def _cat048_track(b: bytes, items: dict[str, int], sac: int, sic: int) -> str | None:
        p = items.get("161")
        if p is not None:
            return f"cat048:{sac}/{sic}:{int.from_bytes(b[p : p + 2], 'big') & 0x0FFF}"
        p = items.get("220")
        if p is not None:
            return f"icao:{b[p : p + 3].hex().upper()}"
        return None


def _cat062_altitude(b: bytes, items: dict[str, int]) -> float | None:
    """Geometric altitude (I130), else barometric (I135), else measured flight level (I136)."""
    p = items.get("130")
    if p is not None:
        return _signed(int.from_bytes(b[p : p + 2], "big"), 16) * 6.25 * FOOT_M
    p = items.get("135")
    if p is not None:
        return _signed(int.from_bytes(b[p : p + 2], "big") & 0x7FFF, 15) * 25 * FOOT_M
    p = items.get("136")
    if p is not None:
        return _signed(int.from_bytes(b[p : p + 2], "big"), 16) * 25 * FOOT_M
    return None
