"""The record-by-record JSON reader gives exactly what the whole-document parser gives, however
the file's bytes arrive (reads cut inside strings, escapes, numbers and brackets), and refuses
depth and size beyond its bounds before holding them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kuroshio.errors import ImportFileError
from kuroshio.ingest.json_stream import json_records

TEXT = st.text(alphabet=st.sampled_from('ab"\\[]{},: \n\t/é中NaN-1.5e'), max_size=30)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**18), 10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


class ShortReads(io.RawIOBase):
    """A file that gives at most ``step`` bytes per read, as a pipe might."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._at = data, step, 0

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        part = self._data[self._at : self._at + n]
        self._at += len(part)
        return part


def _records(data: bytes, step: int, **limits: Any) -> list[Any]:
    return list(
        json_records(
            ShortReads(data, step),
            "t.json",
            place="t.json[{}]",
            max_record_bytes=limits.get("max_record_bytes", 1 << 20),
            max_file_bytes=1 << 30,
            max_depth=limits.get("max_depth", 64),
        )
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(VALUES, max_size=8), st.integers(1, 17), st.booleans())
def test_any_document_reads_as_the_whole_parser_reads_it(
    values: list[Any], step: int, indent: bool
) -> None:
    data = json.dumps(values, ensure_ascii=False, indent=1 if indent else None).encode()
    assert _records(data, step) == json.loads(data)


def test_nan_and_infinity_outside_strings_are_null() -> None:
    data = b'[{"a": NaN, "b": "NaN", "c": -Infinity, "d": [Infinity, 1]}]'
    assert _records(data, 3) == [{"a": None, "b": "NaN", "c": None, "d": [None, 1]}]


def test_brackets_in_strings_do_not_count_as_depth() -> None:
    data = json.dumps([{"remarks": "[" * 500 + "{" * 500}]).encode()
    assert _records(data, 5, max_depth=4) == json.loads(data)


def test_depth_beyond_the_bound_names_the_record() -> None:
    data = b"[1, 2, " + b"[" * 100_000 + b"]" * 100_000 + b"]"
    with pytest.raises(
        ImportFileError, match=r"nested deeper than 64 levels, in record t\.json\[2\]"
    ):
        _records(data, 4096)


def test_depth_beyond_the_bound_at_the_start_of_a_read_is_named_so() -> None:
    data = b"[" * 64 + b"]" * 64
    with pytest.raises(
        ImportFileError, match=r"nested deeper than 63 levels, in record t\.json\[0\]"
    ):
        _records(data, 63, max_depth=63)


def test_a_record_over_the_bound_is_refused_before_it_is_held() -> None:
    data = b'[1, {"a": "' + b"x" * 300_000 + b'"}, 3]'
    with pytest.raises(ImportFileError, match=r"record t\.json\[1\] is larger than the limit"):
        _records(data, 65_536, max_record_bytes=65_536)
