"""Reading observation records from JSON documents: NDJSON, a JSON array, or one JSON object.

Each record comes back with its location (``file:line`` for NDJSON, ``file[index]`` for an
array, read element by element in bounded memory) and either a validated
:class:`~kuroshio.model.Observation` or the reason it was refused;
:func:`own_only` refuses the records of any party but the node's own (what an operator adds is
the node's own word; a partner's items come only over links). It stores nothing; see
:mod:`kuroshio.ingest.load`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import msgspec

from kuroshio.errors import ImportFileError, ImportRecordError
from kuroshio.ingest.json_stream import json_records
from kuroshio.model import Observation

_decoder = msgspec.json.Decoder(Observation)
_encoder = msgspec.json.Encoder()
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


Record = tuple[str, Observation | ImportRecordError]


def _reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        return text
    return f"malformed JSON ({text.removeprefix('JSON is malformed: ')})"


TOO_DEEP: Final = "JSON nested deeper than the decoder allows"


def decode_record(location: str, data: bytes) -> Record:
    try:
        return location, _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return location, ImportRecordError(location, _reason(exc))
    except RecursionError:
        return location, ImportRecordError(location, TOO_DEEP)


def record_list(data: bytes) -> list[msgspec.Raw]:
    """The elements of a JSON array held in memory (a request body), each undecoded; raises
    :class:`msgspec.DecodeError` (also for an array nested deeper than the decoder allows)."""
    try:
        return _raw_list.decode(data)
    except RecursionError:
        raise msgspec.DecodeError(TOO_DEEP) from None


def _record_of(location: str, element: Any, max_record_bytes: int) -> Record:
    """An array element as parsed (numbers as int or float) checked as an observation."""
    try:
        data = _encoder.encode(element)
        if len(data) > max_record_bytes:
            message = f"record longer than the limit of {max_record_bytes} bytes"
            return location, ImportRecordError(location, message)
        return location, _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, msgspec.EncodeError) as exc:
        return location, ImportRecordError(location, _reason(exc))


class _Prepended:
    """A byte stream with the bytes already taken from it put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO | _Bounded) -> None:
        self._head, self._stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        head, self._head = self._head, b""
        return (
            head + self._stream.read(max(size - len(head), 0))
            if size >= 0
            else head + self._stream.read()
        )


def own_only(records: Iterable[Record], party: str) -> Iterator[Record]:
    """``records`` with every observation of another origin than ``party`` refused."""
    for location, item in records:
        if isinstance(item, Observation) and item.origin != party:
            item = ImportRecordError(
                location,
                f"origin {item.origin}: this node adds only {party}'s own observations "
                f"(a partner's come over its link) - at $.origin",
            )
        yield location, item


def read_observations(
    path: Path | None,
    *,
    max_record_bytes: int = 1024 * 1024,
    max_file_bytes: int = 4 * 1024 * 1024 * 1024,
) -> Iterator[Record]:
    """Records of a JSON/NDJSON file, or of standard input when ``path`` is None or ``-``.

    A file larger than ``max_file_bytes`` is refused before anything of it is read; standard
    input is read up to that many bytes and refused there. A malformed or truncated array
    raises ImportFileError where it shows, after the records before it: store them in one
    transaction (:meth:`kuroshio.node.Node.intake`)."""
    if path is None or str(path) == "-":
        stream = _Bounded(sys.stdin.buffer, "<stdin>", max_file_bytes)
        yield from _read_stream(stream, "<stdin>", max_record_bytes)
        return
    try:
        handle = path.open("rb")
        size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with handle:
        if size > max_file_bytes:
            raise ImportFileError(
                f"{path}: {size} bytes, more than limits.max_file_bytes ({max_file_bytes})"
            )
        yield from _read_stream(handle, str(path), max_record_bytes)


class _Bounded:
    """A byte stream that refuses to give more than ``limit`` bytes."""

    def __init__(self, stream: BinaryIO, name: str, limit: int) -> None:
        self._stream, self._name, self._left, self._limit = stream, name, limit, limit

    def _took(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise ImportFileError(
                f"{self._name}: more than limits.max_file_bytes ({self._limit}) bytes"
            )
        return data

    def read(self, size: int = -1) -> bytes:
        return self._took(self._stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._took(self._stream.readline(size))


def _read_stream(stream: BinaryIO | _Bounded, name: str, max_record_bytes: int) -> Iterator[Record]:
    first = stream.read(1)
    while first in (b" ", b"\t", b"\r", b"\n", b"\xef", b"\xbb", b"\xbf"):
        first = stream.read(1)  # skip leading white space and a UTF-8 byte-order mark
    if not first:
        return
    if first == b"[":
        elements = json_records(
            _Prepended(first, stream),
            name,
            place=f"{Path(name).name}[{{}}]",
            max_record_bytes=max_record_bytes,
            max_file_bytes=sys.maxsize,  # the file's size is bounded where it is opened
        )
        for index, element in enumerate(elements):
            yield _record_of(f"{name}[{index}]", element, max_record_bytes)
        return
    yield from _read_lines(first, stream, name, max_record_bytes)


def _read_lines(
    first: bytes, stream: BinaryIO | _Bounded, name: str, max_record_bytes: int
) -> Iterator[Record]:
    number = 0
    pending = first
    while True:
        line = stream.readline(max_record_bytes + 1)
        if not line and not pending:
            return
        line = pending + line
        pending = b""
        number += 1
        if len(line) > max_record_bytes and not line.endswith(b"\n"):
            # Skip the rest of an oversized line without holding it in memory.
            while True:
                rest = stream.readline(max_record_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
            yield (
                f"{name}:{number}",
                ImportRecordError(
                    f"{name}:{number}", f"record longer than the limit of {max_record_bytes} bytes"
                ),
            )
            continue
        if not line.strip():
            continue
        yield decode_record(f"{name}:{number}", line)
