"""Reading the records of a large JSON document one at a time, in bounded memory.

:func:`json_records` yields the elements under one place of a document (``item`` of an array,
``features.item`` of a GeoJSON FeatureCollection) as ijson parses them, so memory holds one record
and never the file. Before the parser sees a byte, :class:`_Guard` bounds what it is given: the
file's size, each record's size and the nesting depth (a parser handed 100 000 nested brackets
needs memory growing with the square of the depth), and it reads pandas' ``NaN`` as null. A bad
document (malformed, truncated, too deep, too large) raises :class:`ImportFileError` naming the
file, the line the parser reached and the record it was in; what came before was already yielded,
so callers store the records inside one transaction that such an error rolls back. It stores
nothing and checks no record's content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final, Protocol

import ijson
import numpy as np

from kuroshio.errors import ImportFileError

MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects read (a GeoJSON MultiPolygon needs 6)."""
READ_BYTES: Final = 64 * 1024

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRING_OR_CONSTANT = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")|-?Infinity|NaN', re.DOTALL)
_TOKEN_BYTES: Final = bytes(b for b in range(256) if b not in b' \t\r\n[]{},:"')
"""Bytes of a number or a literal (``true``, ``NaN``), which a read may cut in two."""
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEP: Final = np.zeros(256, dtype=np.int64)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


class ByteSource(Protocol):
    """Where the document's bytes come from: a file opened in binary mode, or a wrapper."""

    def read(self, size: int = -1, /) -> bytes: ...


def _constant_as_null(match: re.Match[bytes]) -> bytes:
    return match[1] or b"null"


class _Guard:
    """The file as ijson reads it, bounded: a record larger than ``max_record_bytes``, nesting
    deeper than ``max_depth`` or more than ``max_file_bytes`` in all raise ImportFileError.

    A chunk is handed on only up to a point outside any string and number, so that the depth
    count and the ``NaN`` rewrite see whole tokens; the rest waits for the next read.
    """

    def __init__(
        self,
        stream: ByteSource,
        name: str,
        *,
        max_record_bytes: int,
        max_file_bytes: int,
        max_depth: int,
        place: str,
    ) -> None:
        self._stream, self.name, self._place = stream, name, place
        self._max_record, self._max_file, self._max_depth = (
            max_record_bytes,
            max_file_bytes,
            max_depth,
        )
        self._carry = b""
        self._depth = 0
        self.chunk = min(READ_BYTES, max_record_bytes)
        self._read = 0
        self._handed = 0
        self._spanned = 0
        self._records_at_read = -1
        self._lines = 0
        self._too_deep_at: int | None = None
        """The line of a bracket too deep: the parser was given what came before it."""
        self.records = 0
        """Records the caller has taken: the one being parsed is number ``records``."""

    @property
    def line(self) -> int:
        """The line the parser has read up to."""
        return self._lines + 1

    def record_done(self) -> None:
        self.records += 1

    def where(self) -> str:
        """The record being parsed, as errors name it (``maps.geojson#12``)."""
        return self._place.format(self.records)

    def too_deep(self) -> ImportFileError | None:
        """The error for a bracket too deep, once the parser has been given what came before."""
        if self._too_deep_at is None:
            return None
        return ImportFileError(
            f"{self.name}: JSON nested deeper than {self._max_depth} levels, in record "
            f"{self.where()} (line {self._too_deep_at}); nothing of the file is stored"
        )

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # the parser asks for nothing to learn that the file gives bytes
        error = self.too_deep()
        if error is not None:
            raise error
        # The record being parsed spans at least every chunk handed on since a record ended.
        if self._records_at_read == self.records:
            self._spanned += self._handed
        else:
            self._spanned = 0
        self._records_at_read = self.records
        while True:
            raw = self._stream.read(max(self.chunk, len(self._carry)))
            if not self._read and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark
                self._read += 3
            self._read += len(raw)
            if self._read > self._max_file:
                raise ImportFileError(
                    f"{self.name}: more than limits.max_file_bytes ({self._max_file}) bytes"
                )
            data = self._carry + raw
            if not raw:
                self._carry = b""
                return self._hand_on(data, _STRING.sub(b"", data))
            stripped = _STRING.sub(b"", data)
            open_string = stripped.find(b'"')
            if open_string >= 0:
                tail = len(stripped) - open_string
            else:
                tail = len(stripped) - len(stripped.rstrip(_TOKEN_BYTES))
            cut = len(data) - tail
            self._carry = data[cut:]
            if self._spanned + len(self._carry) > self._max_record:
                raise ImportFileError(
                    f"{self.name}: record {self.where()} is larger than the limit of "
                    f"{self._max_record} bytes; nothing of the file is stored"
                )
            if cut:
                return self._hand_on(data[:cut], stripped[: len(stripped) - tail])

    def _hand_on(self, data: bytes, outside_strings: bytes) -> bytes:
        """``data`` for the parser, cut short before a bracket too deep (the error is raised at
        the next read, once the parser has given every record before it)."""
        brackets = np.frombuffer(outside_strings.translate(None, _NOT_BRACKETS), dtype=np.uint8)
        if brackets.size:
            depths = np.cumsum(_STEP[brackets]) + self._depth
            too_deep = np.flatnonzero(depths > self._max_depth)
            if too_deep.size:
                data = self._before_bracket(data, int(too_deep[0]))
                self._too_deep_at = self._lines + data.count(b"\n") + 1
                self._carry = b""
            else:
                self._depth = int(depths[-1])
        if b"NaN" in outside_strings or b"Infinity" in outside_strings:
            data = _STRING_OR_CONSTANT.sub(_constant_as_null, data)
        self._handed = len(data)
        self._lines += data.count(b"\n")
        return data

    @staticmethod
    def _before_bracket(data: bytes, number: int) -> bytes:
        """``data`` up to its ``number``-th bracket outside strings (0-based)."""
        seen = -1
        position = 0
        for match in re.finditer(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', data, re.DOTALL):
            if match[0][:1] != b'"':
                seen += 1
                if seen == number:
                    return data[: match.start()]
            position = match.end()
        return data[:position]


def json_records(
    stream: ByteSource,
    name: str,
    *,
    prefix: str = "item",
    place: str,
    max_record_bytes: int,
    max_file_bytes: int,
    max_records: int | None = None,
    max_depth: int = MAX_DEPTH,
) -> Iterator[Any]:
    """Each element at ``prefix`` of the JSON document in ``stream``, parsed (numbers as int or
    float, ``NaN`` as None). Errors name the file ``name`` and the record ``place`` filled with
    its index (``"maps.geojson#{}"`` → ``maps.geojson#12``)."""
    guard = _Guard(
        stream,
        name,
        max_record_bytes=max_record_bytes,
        max_file_bytes=max_file_bytes,
        max_depth=max_depth,
        place=place,
    )
    try:
        for element in ijson.items(guard, prefix, use_float=True, buf_size=guard.chunk):
            guard.record_done()
            if max_records is not None and guard.records > max_records:
                raise ImportFileError(
                    f"{name}: more than {max_records} records; nothing of the file is stored"
                )
            yield element
    except ijson.JSONError as exc:
        # Nothing handed on before a bracket too deep reads as the end of the file.
        error = guard.too_deep()
        if error is not None:
            raise error from None
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else "malformed"
        raise ImportFileError(
            f"{name}:{guard.line}: malformed or truncated JSON ({what[:80]}), in record "
            f"{guard.where()}; nothing of the file is stored"
        ) from None
