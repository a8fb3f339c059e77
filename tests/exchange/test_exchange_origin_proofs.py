"""A relayed item stays verifiable to its origin: the relay carries the origin's proof beside its
own batch, the receiver checks and keeps it, and passes it on again. Real node directories (keys,
SQLite stores); frames are handed over without sockets."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest

from agreements import RELEASE_AIR_SEA, agreement_text, install, sign
from kuroshio.errors import VerificationError
from kuroshio.exchange import outbox
from kuroshio.exchange.batch import SealedBatch
from kuroshio.exchange.inbox import ReceivedCheck, item_proof, verify_received
from kuroshio.exchange.proofs import verify_item_proof
from kuroshio.exchange.receipt import open_receipt
from kuroshio.exchange.wire import BatchFrame, ItemProof, LinkRefused, encode
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking, Observation, OriginatorControl
from kuroshio.node import Node, init_node, open_node
from observations import observation
from pinning import pin_all

ONWARD = Marking(control=OriginatorControl(rerelease=True, to=("USA", "AUS"), max_hops=2))
RELAY_TWN = 'action = "release"\nmatch = { origin = ["TWN"] }'


def _item_proof(node: Node, obs_id: str, version: int) -> ItemProof | None:
    with node.store.transaction() as tx:
        return item_proof(tx, obs_id, version)


def _verify_received(node: Node, observation: Observation) -> ReceivedCheck:
    with node.store.transaction() as tx:
        return verify_received(tx, node.pinned_keys(), observation)


def _network(
    tmp_path: Path, parties: Sequence[str], *, unpinned: frozenset[tuple[str, str]] = frozenset()
) -> dict[str, Node]:
    """Nodes for ``parties``, each pinning every other but the (node, other) pairs listed."""
    made = [init_node(tmp_path / p.lower(), p) for p in parties]
    pin_all(made, unpinned=unpinned)
    for node in made:
        node.close()
    return {p: open_node(tmp_path / p.lower()) for p in parties}


def _agree(
    nodes: Sequence[Node], folder: Path, rules: dict[tuple[str, str], str], name: str
) -> None:
    text = agreement_text([n.party for n in nodes], rules, agreement_id=name)
    install(sign(text, nodes), nodes, folder / name)


def _seal(sender: Node, receiver: Node) -> SealedBatch:
    with sender.store.transaction() as tx:
        sealed = outbox.seal_next(
            tx,
            receiver.party,
            signer=sender.identity,
            sender=sender.party,
            max_items=1000,
            max_bytes=8 * 1024 * 1024,
            now=dt.datetime.now(dt.UTC),
        )
    assert sealed is not None
    return sealed


def _take(sender: Node, receiver: Node, frame: BatchFrame) -> None:
    signed = Inbox(receiver).accept(receiver.partners[sender.party], frame)
    receipt = open_receipt(signed, receiver.identity.public_key_bytes)
    with sender.store.transaction() as tx:
        outbox.record_receipt(tx, receiver.party, receipt, signed, now=receipt.received_at)


def _check(node: Node, obs_id: str) -> tuple[str, str]:
    stored = node.store.get(obs_id)
    assert stored is not None
    check = _verify_received(node, stored)
    return check.status, check.detail


def _close(nodes: dict[str, Node]) -> None:
    for node in nodes.values():
        node.close()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[dict[str, Node]]:
    """TWN → JPN → USA → AUS, relaying TWN's items as they came; AUS has not pinned TWN."""
    nodes = _network(tmp_path, ("TWN", "JPN", "USA", "AUS"), unpinned=frozenset({("AUS", "TWN")}))
    twn, jpn, usa, aus = nodes.values()
    rules = {("TWN", "JPN"): RELEASE_AIR_SEA, ("JPN", "USA"): RELAY_TWN}
    _agree([twn, jpn, usa], tmp_path, rules, "twn-jpn-usa")
    _agree([usa, aus], tmp_path, {("USA", "AUS"): RELAY_TWN}, "usa-aus")
    yield nodes
    _close(nodes)


def test_a_relayed_item_verifies_to_its_origin_and_its_proof_travels_on(
    chain: dict[str, Node],
) -> None:
    twn, jpn, usa, aus = chain.values()
    twn.ingest([observation(1, marking=ONWARD), observation(2, marking=ONWARD, lon=121.5)])
    _take(twn, jpn, _seal(twn, jpn).frame())

    sealed = _seal(jpn, usa)
    assert sorted(p.position for p in sealed.origin_proofs) == [0, 1]
    # A resend after a restart is the same frame, byte for byte, origin proofs included.
    with jpn.store.transaction() as tx:
        again = outbox.sealed_batch(tx, "USA", sealed.header.seq)
    assert again is not None and encode(again.frame()) == encode(sealed.frame())
    _take(jpn, usa, sealed.frame())

    relayed = usa.store.get("TWN:test:1")
    assert relayed is not None and relayed.provenance.partner == "JPN"
    proof = _item_proof(usa, "TWN:test:1", 1)
    assert proof is not None
    as_signed: Observation = verify_item_proof(proof, twn.identity.public_key_bytes)
    original = twn.store.get("TWN:test:1")
    assert original is not None
    assert msgspec.structs.replace(as_signed, provenance=original.provenance) == original
    with pytest.raises(VerificationError):
        verify_item_proof(proof, jpn.identity.public_key_bytes)
    status, detail = _check(usa, "TWN:test:1")
    assert status == "verified" and "TWN" in detail and "relayed by JPN" in detail

    # USA passes it on: AUS gets TWN's own proof, kept although AUS cannot check it yet.
    _take(usa, aus, _seal(usa, aus).frame())
    at_aus = _item_proof(aus, "TWN:test:1", 1)
    assert at_aus == proof
    assert verify_item_proof(at_aus, twn.identity.public_key_bytes) == as_signed
    assert _check(aus, "TWN:test:1") == (
        "relayed",
        "origin TWN not pinned here; batch verified to USA",
    )


def test_a_relay_that_transforms_an_item_sends_no_origin_proof(tmp_path: Path) -> None:
    nodes = _network(tmp_path, ("TWN", "JPN", "USA"))
    twn, jpn, usa = nodes.values()
    try:
        coarser = RELAY_TWN + "\ntransform = { coarsen_km = 20 }"
        rules = {("TWN", "JPN"): RELEASE_AIR_SEA, ("JPN", "USA"): coarser}
        _agree([twn, jpn, usa], tmp_path, rules, "twn-jpn-usa")
        twn.ingest([observation(1, marking=ONWARD, lon=121.2345, lat=22.3456)])
        _take(twn, jpn, _seal(twn, jpn).frame())

        sealed = _seal(jpn, usa)
        assert sealed.origin_proofs == []  # TWN's proof would show the finer position
        _take(jpn, usa, sealed.frame())
        at_usa = usa.store.get("TWN:test:1")
        at_jpn = jpn.store.get("TWN:test:1")
        assert at_usa is not None and at_jpn is not None
        assert at_usa.geometry != at_jpn.geometry
        assert _item_proof(usa, "TWN:test:1", 1) is None
        status, detail = _check(usa, "TWN:test:1")
        assert status == "relayed"
        assert "relayed by JPN with transforms" in detail and "verified to JPN" in detail
    finally:
        _close(nodes)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.mark.parametrize("part", ["item", "signature", "path"])
def test_a_tampered_origin_proof_refuses_the_whole_batch(tmp_path: Path, part: str) -> None:
    nodes = _network(tmp_path, ("TWN", "JPN", "USA"))
    twn, jpn, usa = nodes.values()
    try:
        rules = {("TWN", "JPN"): RELEASE_AIR_SEA, ("JPN", "USA"): RELAY_TWN}
        _agree([twn, jpn, usa], tmp_path, rules, "twn-jpn-usa")
        # Two items, so the inclusion path has a step to tamper with.
        twn.ingest([observation(1, marking=ONWARD), observation(2, marking=ONWARD, lon=121.5)])
        _take(twn, jpn, _seal(twn, jpn).frame())
        frame = _seal(jpn, usa).frame()

        first, *rest = frame.origin_proofs
        proof = first.proof
        if part == "item":
            # Flip a byte of the position: still valid JSON, no longer what TWN signed.
            proof = msgspec.structs.replace(proof, item=proof.item.replace(b"121.0", b"121.1", 1))
        elif part == "signature":
            proof = msgspec.structs.replace(proof, signature=_flip(proof.signature, 10))
        else:
            path = [_flip(proof.proof.path[0], 0), *proof.proof.path[1:]]
            proof = msgspec.structs.replace(
                proof, proof=msgspec.structs.replace(proof.proof, path=path)
            )
        tampered = msgspec.structs.replace(
            frame, origin_proofs=[msgspec.structs.replace(first, proof=proof), *rest]
        )
        inbox = Inbox(usa)
        with pytest.raises(LinkRefused) as refused:
            inbox.accept(usa.partners["JPN"], tampered)
        assert refused.value.code == "bad_origin_proof"
        assert "TWN:test:" in refused.value.reason
        inbox.refuse("JPN", "test", refused.value)

        assert usa.store.count_versions() == 0
        with sqlite3.connect(usa.store.path) as conn:
            for table in ("inbox_items", "inbox_batches", "origin_proofs"):
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        [failure] = usa.audit.entries("verify_failure")
        assert failure.details["code"] == "bad_origin_proof"
        assert usa.audit.verify().ok
        # The untouched batch is still taken in.
        inbox.accept(usa.partners["JPN"], frame)
        assert usa.store.count_versions() == 2
    finally:
        _close(nodes)
