"""Small PNG icons for KMZ files: the MIL-STD-2525 frame of a standard identity (hostile a
diamond, friend a circle, unknown a rounded square) in its fill colour, rimmed in the colour of
the item's origin. Painted pixel by pixel with the standard library; no image library needed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Final

SIZE: Final = 32
OWN_COLOUR: Final = "#1565c0"
FUSED_COLOUR: Final = "#c2185b"
PARTNER_COLOURS: Final = (
    "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#8d6e63", "#5d4037", "#455a64",
)  # fmt: skip
"""The picture's colours (``web/src/features.js``): own, fused, partners in turn."""
IDENTITY_FILL: Final = {
    "hostile": "#ff8080", "suspect": "#ff8080", "friend": "#80e0ff",
    "assumed_friend": "#80e0ff", "neutral": "#aaffaa", "unknown": "#ffff80", "pending": "#ffff80",
}  # fmt: skip


def origin_colours(
    own_party: str, partners: Sequence[str], origins: Sequence[str]
) -> dict[str, str]:
    """A colour per origin, as the picture gives them: own, each partner, then any other."""
    colours = {own_party: OWN_COLOUR}
    for party in [*sorted(partners), *sorted(origins)]:
        if party not in colours:
            colours[party] = PARTNER_COLOURS[(len(colours) - 1) % len(PARTNER_COLOURS)]
    return colours


def _rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def _inside(identity: str) -> Callable[[float, float], float]:
    """A signed distance-like measure of the frame (<= 0 inside), centred on 0, 0."""
    if identity in ("hostile", "suspect"):
        return lambda x, y: abs(x) + abs(y) - 14.0
    if identity in ("friend", "assumed_friend"):
        return lambda x, y: (x * x + y * y) ** 0.5 - 12.5
    return lambda x, y: max(abs(x), abs(y)) - 11.5


def frame_png(identity: str, rim: str) -> bytes:
    """A 32×32 RGBA PNG of the frame of ``identity``, rimmed in ``rim``."""
    inside = _inside(identity)
    fill = _rgb(IDENTITY_FILL.get(identity, IDENTITY_FILL["unknown"]))
    edge = _rgb(rim)
    rows = bytearray()
    for row in range(SIZE):
        rows.append(0)  # no filter
        for column in range(SIZE):
            measure = inside(column - SIZE / 2 + 0.5, row - SIZE / 2 + 0.5)
            if measure <= -3.0:
                rows.extend((*fill, 255))
            elif measure <= 0.0:
                rows.extend((*edge, 255))
            else:
                rows.extend((0, 0, 0, 0))
    return _png(bytes(rows))


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _png(raw: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
