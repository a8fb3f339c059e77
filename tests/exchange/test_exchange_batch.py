"""Batches and receipts: what a receiver accepts, what it refuses and why, before any I/O."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from kuroshio.exchange.batch import GENESIS_HASH, open_batch, seal
from kuroshio.exchange.receipt import Receipt, open_receipt, sign_receipt
from kuroshio.exchange.wire import (
    BatchFrame,
    Hello,
    LinkRefused,
    Refusal,
    Welcome,
    decode,
    encode,
)
from kuroshio.model import Marking, canonical_bytes
from kuroshio.pki import NodeIdentity, create_identity
from observations import observation

NOW = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def taiwan(tmp_path_factory: pytest.TempPathFactory) -> NodeIdentity:
    return create_identity(tmp_path_factory.mktemp("twn"), "TWN", "twn-1")


@pytest.fixture(scope="module")
def japan(tmp_path_factory: pytest.TempPathFactory) -> NodeIdentity:
    return create_identity(tmp_path_factory.mktemp("jpn"), "JPN", "jpn-1")


def _items(count: int, origin: str = "TWN") -> list[bytes]:
    marking = Marking(releasable_to=("JPN",))
    return [
        canonical_bytes(observation(n, origin=origin, lon=120 + n / 100, marking=marking))
        for n in range(count)
    ]


def _frame(signer: NodeIdentity, items: list[bytes], *, seq: int = 1) -> BatchFrame:
    sealed = seal(
        signer,
        sender="TWN",
        receiver="JPN",
        seq=seq,
        prev_hash=GENESIS_HASH,
        items=items,
        sealed_at=NOW,
    )
    return sealed.frame()


def _open(frame: BatchFrame, key: bytes) -> list[str]:
    opened = open_batch(frame, sender="TWN", receiver="JPN", sender_key=key)
    return [o.id for o in opened.observations]


def test_a_sealed_batch_opens_with_the_senders_key_and_survives_the_wire(
    taiwan: NodeIdentity,
) -> None:
    frame = decode(encode(_frame(taiwan, _items(5))))
    assert isinstance(frame, BatchFrame)
    assert _open(frame, taiwan.public_key_bytes) == [f"TWN:test:{n}" for n in range(5)]


def test_a_batch_signed_by_another_key_is_refused_as_bad_signature(
    taiwan: NodeIdentity, japan: NodeIdentity
) -> None:
    forged = _frame(japan, _items(3))  # right header, wrong key
    with pytest.raises(LinkRefused) as refused:
        _open(forged, taiwan.public_key_bytes)
    assert refused.value.code == "bad_signature"


def test_an_altered_item_breaks_the_signed_merkle_root(taiwan: NodeIdentity) -> None:
    frame = _frame(taiwan, _items(4))
    altered = bytearray(frame.items[2])
    altered[altered.index(b'"count":2') + 8] = ord("9")
    tampered = msgspec.structs.replace(
        frame, items=[*frame.items[:2], bytes(altered), frame.items[3]]
    )
    with pytest.raises(LinkRefused) as refused:
        _open(tampered, taiwan.public_key_bytes)
    assert refused.value.code == "bad_merkle_root"
    dropped = msgspec.structs.replace(frame, items=frame.items[:3])
    with pytest.raises(LinkRefused) as refused:
        _open(dropped, taiwan.public_key_bytes)
    assert refused.value.code == "bad_merkle_root"


def test_items_must_be_valid_canonical_and_from_the_sender(taiwan: NodeIdentity) -> None:
    not_canonical = [_items(1)[0].replace(b'"kind":"air"', b'"kind": "air"')]
    with pytest.raises(LinkRefused) as refused:
        _open(_frame(taiwan, not_canonical), taiwan.public_key_bytes)
    assert refused.value.code == "non_canonical_item"

    invalid = [_items(1)[0].replace(b'"kind":"air"', b'"kind":"space"')]
    with pytest.raises(LinkRefused) as refused:
        _open(_frame(taiwan, invalid), taiwan.public_key_bytes)
    assert refused.value.code == "invalid_item" and "$.kind" in refused.value.reason

    foreign = _items(2, origin="USA")  # re-release waits for agreements
    with pytest.raises(LinkRefused) as refused:
        _open(_frame(taiwan, foreign), taiwan.public_key_bytes)
    assert refused.value.code == "foreign_origin" and "USA" in refused.value.reason


def test_a_batch_for_another_link_or_too_large_is_refused(taiwan: NodeIdentity) -> None:
    frame = _frame(taiwan, _items(3))
    with pytest.raises(LinkRefused) as refused:
        open_batch(frame, sender="TWN", receiver="USA", sender_key=taiwan.public_key_bytes)
    assert refused.value.code == "wrong_link"
    with pytest.raises(LinkRefused) as refused:
        open_batch(
            frame, sender="TWN", receiver="JPN", sender_key=taiwan.public_key_bytes, max_items=2
        )
    assert refused.value.code == "too_many_items"


def test_malformed_messagepack_is_refused_with_the_reason() -> None:
    for garbage in (
        b"",
        b"\xc1",
        b"\x92\x01",
        encode(Hello(protocol="x", sender="TWN", receiver="JPN", acked_seq=0))[:-3],
    ):
        with pytest.raises(LinkRefused) as refused:
            decode(garbage)
        assert refused.value.code == "malformed"


def test_wire_messages_round_trip() -> None:
    welcome = Welcome(last_seq=3, last_hash=bytes(range(32)), receipts=[])
    refusal = Refusal(code="out_of_order", reason="expected batch 4, got 6", seq=6)
    assert decode(encode(welcome)) == welcome
    assert decode(encode(refusal)) == refusal


def test_a_receipt_verifies_with_the_receivers_key_only(
    taiwan: NodeIdentity, japan: NodeIdentity
) -> None:
    receipt = Receipt(
        sender="TWN",
        receiver="JPN",
        seq=7,
        batch_hash=bytes(32),
        count=1000,
        stored=998,
        unchanged=2,
        received_at=NOW,
    )
    signed = sign_receipt(japan, receipt)
    assert open_receipt(signed, japan.public_key_bytes) == receipt
    with pytest.raises(LinkRefused) as refused:
        open_receipt(signed, taiwan.public_key_bytes)
    assert refused.value.code == "bad_signature"
