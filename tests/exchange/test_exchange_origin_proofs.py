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
from kuroshio.exchange.batch import seal
from kuroshio.exchange.inbox import ReceivedCheck, item_proof, link_state, verify_received
from kuroshio.exchange.proofs import (
    ProofFinder,
    content_bytes,
    verify_batch_proof,
    verify_item_proof,
)
from kuroshio.exchange.receipt import open_receipt
from kuroshio.exchange.wire import BatchFrame, ItemProof, LinkRefused, encode
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking, Observation, OriginatorControl, Provenance, canonical_bytes
from kuroshio.node import Node, init_node, open_node
from observations import observation
from pinning import pin_all
from sealing import sealed_batch

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
    _take(twn, jpn, sealed_batch(twn, jpn.party).frame())

    sealed = sealed_batch(jpn, usa.party)
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

    # USA passes it on with TWN's proof, but AUS has not pinned TWN and cannot check it: the
    # item rests on USA's word, so AUS keeps it as USA's, never under TWN's id.
    sealed = sealed_batch(usa, aus.party)
    assert [p.proof for p in sealed.origin_proofs][:1] == [proof]
    _take(usa, aus, sealed.frame())
    assert aus.store.get("TWN:test:1") is None
    kept = aus.store.get("USA:via:TWN:test:1")
    assert kept is not None and kept.origin == "USA"
    assert kept.provenance.relayed_id == "TWN:test:1" and kept.provenance.relayed_origin == "TWN"
    status, detail = _check(aus, "USA:via:TWN:test:1")
    assert status == "relayed"
    assert detail.startswith("USA's word: passed on by USA as TWN's TWN:test:1")


def test_a_relay_that_transforms_an_item_sends_no_origin_proof(tmp_path: Path) -> None:
    nodes = _network(tmp_path, ("TWN", "JPN", "USA"))
    twn, jpn, usa = nodes.values()
    try:
        coarser = RELAY_TWN + "\ntransform = { coarsen_km = 20 }"
        rules = {("TWN", "JPN"): RELEASE_AIR_SEA, ("JPN", "USA"): coarser}
        _agree([twn, jpn, usa], tmp_path, rules, "twn-jpn-usa")
        twn.ingest([observation(1, marking=ONWARD, lon=121.2345, lat=22.3456)])
        _take(twn, jpn, sealed_batch(twn, jpn.party).frame())

        sealed = sealed_batch(jpn, usa.party)
        assert sealed.origin_proofs == []  # TWN's proof would show the finer position
        _take(jpn, usa, sealed.frame())
        # The changed item is JPN's word, kept in JPN's id space and not under TWN's id.
        assert usa.store.get("TWN:test:1") is None
        at_usa = usa.store.get("JPN:via:TWN:test:1")
        at_jpn = jpn.store.get("TWN:test:1")
        assert at_usa is not None and at_jpn is not None
        assert at_usa.origin == "JPN" and at_usa.provenance.relayed_id == "TWN:test:1"
        assert at_usa.geometry != at_jpn.geometry
        assert _item_proof(usa, "JPN:via:TWN:test:1", 1) is None
        status, detail = _check(usa, "JPN:via:TWN:test:1")
        assert status == "relayed"
        assert detail.startswith("JPN's word: passed on by JPN as TWN's TWN:test:1, changed by it")

        # TWN's own item, sent by TWN itself, is taken in beside it: nothing stands in its way.
        _agree([twn, usa], tmp_path, {("TWN", "USA"): RELEASE_AIR_SEA}, "twn-usa")
        twn.ingest([observation(1, version=2, marking=ONWARD, lon=121.2345, lat=22.3456)])
        _take(twn, usa, sealed_batch(twn, usa.party).frame())
        own = usa.store.get("TWN:test:1")
        assert own is not None and own.version == 2 and own.origin == "TWN"
        assert _check(usa, "TWN:test:1")[0] == "verified"
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
        _take(twn, jpn, sealed_batch(twn, jpn.party).frame())
        frame = sealed_batch(jpn, usa.party).frame()

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


def _forged_batch(
    relay: Node, receiver: Node, items: Sequence[Observation], seq: int = 1
) -> BatchFrame:
    """A batch ``relay`` signs validly, holding items of other origins as a relay would send
    them (re-release allowed, two hops, no origin proof)."""
    relayed = [
        msgspec.structs.replace(
            item,
            provenance=Provenance(
                partner=relay.party, hops=2, transforms=(f"{relay.party}: changed",)
            ),
        )
        for item in items
    ]
    with receiver.store.transaction() as tx:
        prev = link_state(tx, relay.party).last_hash
    return seal(
        relay.identity,
        sender=relay.party,
        receiver=receiver.party,
        seq=seq,
        prev_hash=prev,
        items=[canonical_bytes(item) for item in relayed],
        sealed_at=dt.datetime.now(dt.UTC),
    ).frame()


ANYONE = Marking(tlp="GREEN", control=OriginatorControl(rerelease=True, max_hops=4))


def test_a_partner_cannot_forge_the_receivers_own_items(tmp_path: Path) -> None:
    nodes = _network(tmp_path, ("TWN", "JPN"))
    twn, jpn = nodes.values()
    try:
        forged = observation(1, origin="TWN", marking=ANYONE, id="TWN:pre:1")
        inbox = Inbox(twn)
        with pytest.raises(LinkRefused) as refused:
            inbox.accept(twn.partners["JPN"], _forged_batch(jpn, twn, [forged]))
        assert refused.value.code == "own_origin"
        assert "TWN:pre:1" in refused.value.reason
        assert twn.store.count_versions() == 0
        # The genuine item is TWN's own and is stored as ever.
        twn.ingest([observation(1, origin="TWN", id="TWN:pre:1")])
        assert twn.store.get("TWN:pre:1") is not None
    finally:
        _close(nodes)


@pytest.mark.parametrize("pinned", [True, False], ids=["origin-pinned", "origin-unpinned"])
def test_a_partner_cannot_take_a_third_partys_id_space(tmp_path: Path, pinned: bool) -> None:
    unpinned = frozenset() if pinned else frozenset({("TWN", "USA")})
    nodes = _network(tmp_path, ("TWN", "JPN", "USA"), unpinned=unpinned)
    twn, jpn, usa = nodes.values()
    try:
        forged = observation(1, origin="USA", marking=ANYONE, id="USA:pre:1", lon=140.0)
        Inbox(twn).accept(twn.partners["JPN"], _forged_batch(jpn, twn, [forged]))
        # Kept on JPN's word, in JPN's id space; the picture says whose word it is.
        assert twn.store.get("USA:pre:1") is None
        kept = twn.store.get("JPN:via:USA:pre:1")
        assert kept is not None and kept.origin == "JPN"
        assert kept.provenance.relayed_id == "USA:pre:1"
        status, detail = _check(twn, "JPN:via:USA:pre:1")
        assert status == "relayed" and detail.startswith("JPN's word:")

        # USA's genuine item, through USA's own batch, is stored under its id: no conflict.
        if not pinned:
            return
        _agree([usa, twn], tmp_path, {("USA", "TWN"): RELEASE_AIR_SEA}, "usa-twn")
        usa.ingest([observation(1, origin="USA", id="USA:pre:1", lon=121.0)])
        _take(usa, twn, sealed_batch(usa, twn.party).frame())
        genuine = twn.store.get("USA:pre:1")
        assert genuine is not None and genuine.geometry.coordinates == (121.0, 22.0)
        assert _check(twn, "USA:pre:1")[0] == "verified"
        [receive] = [e for e in twn.audit.entries("receive") if e.details["partner"] == "USA"]
        assert "conflicts" not in receive.details
    finally:
        _close(nodes)


def test_items_of_one_batch_checked_together_each_check_out_and_only_with_the_signers_key(
    chain: dict[str, Node],
) -> None:
    """A node checking many received items at once (the TAK outputs do) checks each batch
    signature once; a signature found good for one key is never taken as good for another."""
    twn, jpn, _, _ = chain.values()
    twn.ingest([observation(1), observation(2, lon=121.5)])
    _take(twn, jpn, sealed_batch(twn, jpn.party).frame())
    received = [jpn.store.get("TWN:test:1"), jpn.store.get("TWN:test:2")]
    assert all(item is not None for item in received)
    pinned = jpn.pinned_keys()
    forged = {**pinned, "TWN": jpn.identity.public_key_bytes}  # the wrong key for TWN
    with jpn.store.transaction() as tx:
        finder = ProofFinder(tx)
        good = [verify_received(tx, pinned, item, finder).status for item in received if item]
        bad = [verify_received(tx, forged, item, finder).status for item in received if item]
    assert good == ["verified", "verified"]
    assert len(finder.checked) == 1  # one batch, its signature checked once
    assert bad == ["failed", "failed"]


def test_a_version_that_arrives_again_from_another_partner_is_proven_to_each_sender(
    tmp_path: Path,
) -> None:
    """TWN sends an item to USA, and JPN passes the same version on to USA with TWN's proof:
    USA can show each sender's batch for it, the first kept with the version it stored, the
    second where the version came again."""
    nodes = _network(tmp_path, ("TWN", "JPN", "USA"))
    twn, jpn, usa = nodes.values()
    try:
        rules = {
            ("TWN", "JPN"): RELEASE_AIR_SEA,
            ("TWN", "USA"): RELEASE_AIR_SEA,
            ("JPN", "USA"): RELAY_TWN,
        }
        _agree([twn, jpn, usa], tmp_path, rules, "three")
        twn.ingest([observation(1, marking=ONWARD)])
        _take(twn, usa, sealed_batch(twn, usa.party).frame())
        _take(twn, jpn, sealed_batch(twn, jpn.party).frame())
        _take(jpn, usa, sealed_batch(jpn, usa.party).frame())

        stored = usa.store.get("TWN:test:1")
        assert stored is not None and stored.provenance.partner == "TWN"
        with sqlite3.connect(usa.store.path) as conn:
            places = conn.execute(
                "SELECT sent_by, sent_seq, sent_position FROM observation_versions"
            ).fetchall()
            again = conn.execute("SELECT partner, seq, position FROM inbox_items").fetchall()
        assert places == [("TWN", 1, 0)]
        assert again == [("JPN", 1, 0)]
        with usa.store.transaction() as tx:
            finder = ProofFinder(tx)
            from_twn = finder.batch_proof(stored, "TWN")
            from_jpn = finder.batch_proof(stored, "JPN")
        assert from_twn is not None and from_jpn is not None
        header, as_sent = verify_batch_proof(from_twn, twn.identity.public_key_bytes)
        assert (header.sender, header.seq) == ("TWN", 1)
        assert content_bytes(as_sent) == content_bytes(stored)
        header, as_sent = verify_batch_proof(from_jpn, jpn.identity.public_key_bytes)
        assert (header.sender, header.seq) == ("JPN", 1)
        assert content_bytes(as_sent) == content_bytes(stored)
        with pytest.raises(VerificationError):
            verify_batch_proof(from_jpn, twn.identity.public_key_bytes)
        assert _check(usa, "TWN:test:1")[0] == "verified"
    finally:
        _close(nodes)
