"""The published canonical-encoding vectors (docs/canonical-vectors.json) are what kuroshio
produces: a partner writing a node in another language checks its encoder against them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kuroshio.audit import entry_hash
from kuroshio.model import Event, Marking, Observation, Party, canonical_bytes

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "canonical-vectors.json").read_text("utf-8")
)["vectors"]
TYPES: dict[str, type[Any]] = {
    "Observation": Observation,
    "Event": Event,
    "Marking": Marking,
    "Party": Party,
}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_each_vector_encodes_to_its_published_bytes(vector: dict[str, Any]) -> None:
    expected = vector["canonical"].encode("utf-8")
    assert hashlib.sha256(expected).hexdigest() == vector["sha256"]
    if vector["type"] == "AuditEntry":
        record = vector["record"]
        details = canonical_bytes(record["details"])
        digest = entry_hash(
            seq=record["seq"],
            at=record["at"],
            party=record["party"],
            kind=record["kind"],
            subject=record["subject"],
            details=details,
            prev_hash=bytes.fromhex(record["prev_hash"]),
        )
        assert digest.hex() == vector["sha256"]
        return
    kind = TYPES[vector["type"]]
    value = msgspec.json.decode(json.dumps(vector["record"]).encode(), type=kind)
    assert canonical_bytes(value) == expected
    # The canonical bytes decode to the same record and encode to themselves.
    assert canonical_bytes(msgspec.json.decode(expected, type=kind)) == expected


def test_the_vectors_cover_normalisation_a_partner_must_reproduce() -> None:
    full = next(v for v in VECTORS if v["name"] == "observation-full")["canonical"]
    assert '"observed_at":"2023-04-09T15:00:00Z"' in full  # +09:00 written in UTC
    assert "[0.0,25.0]" in full and "123.1234568" in full  # rounding, -0.0
    assert '"releasable_to":["TWN","USA"]' in full  # sorted, no repeats
    assert '"grid_km":10.0' in full
    minimal = next(v for v in VECTORS if v["name"] == "observation-minimal")["canonical"]
    assert "grid_km" not in minimal and '"retracted":false' in minimal
