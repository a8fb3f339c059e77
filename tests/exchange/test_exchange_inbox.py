"""Node to node without sockets: release into the outbox, seal, take in, receipt, proof to origin.

Two real node directories (keys, SQLite stores); the wire is replaced by handing frames over, so
the sequence rules and the one-transaction take-in are tested on their own.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import msgspec
import pytest

from agreements import agree
from kuroshio.errors import VerificationError
from kuroshio.exchange import outbox
from kuroshio.exchange.batch import GENESIS_HASH, seal
from kuroshio.exchange.inbox import as_received, item_proof, link_state, received_rows
from kuroshio.exchange.proofs import SENT_AS_KEPT, provenance_as_sent, verify_item_proof
from kuroshio.exchange.receipt import open_receipt
from kuroshio.exchange.wire import ItemProof, LinkRefused
from kuroshio.federation.inbox import Inbox
from kuroshio.model import (
    Marking,
    Observation,
    OriginatorControl,
    Platform,
    Provenance,
    Source,
    canonical_bytes,
)
from kuroshio.node import Node, init_node, open_node
from kuroshio.policy import reciprocity
from kuroshio.policy.ledger import ledger_days
from kuroshio.store import ObservationFilter
from kuroshio.store.observations import prepare
from observations import T0, observation
from pinning import pin
from sealing import sealed_batch

TO_JAPAN = Marking(tlp="AMBER", releasable_to=("JPN",))
FIVE_MINUTES = dt.timedelta(minutes=5)


def _item_proof(node: Node, obs_id: str, version: int) -> ItemProof | None:
    with node.store.transaction() as tx:
        return item_proof(tx, obs_id, version)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Node, Node]:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements")  # air and sea up to TLP:AMBER, both ways
    return twn, jpn


def _stored_ids(node: Node, origin: str) -> list[str]:
    return [o.id for o in node.store.iter_query(ObservationFilter(origins=(origin,)))]


def test_ingest_releases_only_what_the_agreement_and_marking_allow(
    pair: tuple[Node, Node],
) -> None:
    twn, _ = pair
    reports = [
        observation(0, marking=TO_JAPAN),
        observation(1, marking=Marking(releasable_to=("USA",))),  # not releasable to JPN
        observation(2, marking=Marking(tlp="RED", releasable_to=("JPN",))),
        observation(3, kind="area", marking=TO_JAPAN),  # no rule for areas
    ]
    twn.ingest(reports)
    twn.ingest(reports)  # the same again: nothing new, nothing released twice
    with twn.store.transaction() as tx:
        assert outbox.state(tx, "JPN").pending == 1
    ingest = [e for e in twn.audit.entries("ingest")]
    assert ingest[0].details["released"] == {"JPN": 1}
    assert ingest[0].details["withheld"] == {
        "JPN": {"releasable_to": 1, "tlp_red": 1, "default_deny": 1}
    }
    assert ingest[1].details["unchanged"] == 4 and "released" not in ingest[1].details
    [decision] = twn.audit.entries("decision")  # one per transaction that decided anything
    to_japan = decision.details["partners"]["JPN"]
    assert (to_japan["agreement"], to_japan["agreement_version"]) == ("test-exchange", 1)
    [rule] = to_japan["released"]
    assert (rule["rule"], rule["index"], rule["count"]) == ("twn-jpn-1", 1, 1)
    assert rule["items"] == ["TWN:test:0 v1"]
    withheld = {w["code"]: w for w in to_japan["withheld"]}
    assert withheld["default_deny"]["items"] == ["TWN:test:3 v1"]
    assert "TLP:RED" in withheld["tlp_red"]["reason"]


def test_a_report_of_a_sortie_the_receiver_already_saw_is_not_novel(
    pair: tuple[Node, Node],
) -> None:
    twn, jpn = pair
    # JPN's own radar saw the bombers 4 km from where TWN puts them, five minutes later.
    jpn.ingest([observation(1, origin="JPN", lon=121.03, lat=22.02, at=T0 + FIVE_MINUTES)])
    seen_by_both = observation(1, marking=TO_JAPAN)
    elsewhere = observation(2, lon=124.0, lat=25.0, marking=TO_JAPAN)
    fighters = observation(
        3, marking=TO_JAPAN, platform=Platform(type="J-16", platform_class="fighter", count=4)
    )
    twn.ingest([seen_by_both, elsewhere, fighters])
    Inbox(jpn).accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame())
    with jpn.store.transaction() as tx:
        received = reciprocity.entries(tx, partner="TWN")
    assert {e.item: e.novel for e in received} == {
        seen_by_both.id: False,
        elsewhere.id: True,
        fighters.id: True,
    }


def test_a_batch_is_taken_in_once_with_provenance_and_a_signed_receipt(
    pair: tuple[Node, Node],
) -> None:
    twn, jpn = pair
    twn.ingest([observation(n, marking=TO_JAPAN) for n in range(3)])
    frame = sealed_batch(twn, "JPN").frame()
    inbox = Inbox(jpn)
    signed = inbox.accept(jpn.partners["TWN"], frame)
    receipt = open_receipt(signed, jpn.identity.public_key_bytes)
    assert (receipt.sender, receipt.receiver, receipt.seq, receipt.count) == ("TWN", "JPN", 1, 3)
    assert receipt.stored == 3
    stored = jpn.store.get("TWN:test:1")
    assert stored is not None
    assert stored.provenance.partner == "TWN" and stored.provenance.batch == "TWN>JPN#1"
    assert stored.provenance.hops == 1

    # The same batch again (a lost receipt): the same receipt, nothing stored twice.
    assert inbox.accept(jpn.partners["TWN"], frame) == signed
    assert jpn.store.count_versions() == 3
    # Installing the agreement, deciding (TWN's items go back to no one), taking in: once each.
    # (After the access entry of the admin operator init made.)
    assert [e.kind for e in jpn.audit.entries()] == [
        "access",
        "agreement_change",
        "decision",
        "receive",
    ]
    with jpn.store.transaction() as tx:
        received = reciprocity.entries(tx, partner="TWN")
    assert {(e.flow, e.item, e.novel) for e in received} == {
        ("received", f"TWN:test:{n}", True) for n in range(3)
    }

    # The sender stores the receipt; the items leave its outbox and enter its ledger as given.
    with twn.store.transaction() as tx:
        assert outbox.record_receipt(tx, "JPN", receipt, signed, now=dt.datetime.now(dt.UTC))
        state = outbox.state(tx, "JPN")
        given = reciprocity.entries(tx, partner="JPN")
    assert (state.acked_seq, state.pending, state.unacked_items) == (1, 0, 0)
    assert {(e.flow, e.item, e.at) for e in given} == {
        ("given", f"TWN:test:{n}", receipt.received_at) for n in range(3)
    }


def test_both_ledgers_count_the_updates_of_a_track_as_one_sortie(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    track = "cat062:25/100:4980"
    updates = [
        observation(n, marking=TO_JAPAN, at=T0 + n * FIVE_MINUTES, lon=121.0 + n / 10, track=track)
        for n in range(3)
    ]
    twn.ingest(updates)
    signed = Inbox(jpn).accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame())
    receipt = open_receipt(signed, jpn.identity.public_key_bytes)
    with twn.store.transaction() as tx:
        assert outbox.record_receipt(tx, "JPN", receipt, signed, now=dt.datetime.now(dt.UTC))
    day = receipt.received_at.date()
    for node, partner, flow in ((twn, "JPN", "given"), (jpn, "TWN", "received")):
        with node.store.transaction() as tx:
            kept = reciprocity.entries(tx, partner=partner)
        assert {e.track for e in kept} == {track}
        [today] = ledger_days(kept, partner, day, day)
        summary = today.given if flow == "given" else today.received
        assert (summary.items, summary.sorties) == (3, 2)  # a pair of aircraft, not six


def test_replays_gaps_and_broken_chains_are_refused_and_nothing_is_stored(
    pair: tuple[Node, Node],
) -> None:
    twn, jpn = pair
    inbox = Inbox(jpn)
    partner = jpn.partners["TWN"]
    frames = []
    for batch in range(3):
        twn.ingest([observation(10 * batch + n, marking=TO_JAPAN) for n in range(2)])
        frames.append(sealed_batch(twn, "JPN").frame())
    inbox.accept(partner, frames[0])

    with pytest.raises(LinkRefused) as refused:
        inbox.accept(partner, frames[2])
    assert refused.value.code == "out_of_order" and "expected batch 2, got 3" in str(refused.value)
    inbox.accept(partner, frames[1])
    with pytest.raises(LinkRefused) as refused:
        inbox.accept(partner, frames[0])
    assert refused.value.code == "replayed"

    # A batch 3 signed by the sender but chained to something else.
    rogue = seal(
        twn.identity,
        sender="TWN",
        receiver="JPN",
        seq=3,
        prev_hash=GENESIS_HASH,
        items=frames[2].items,
        sealed_at=dt.datetime.now(dt.UTC),
    )
    with pytest.raises(LinkRefused) as refused:
        inbox.accept(partner, rogue.frame())
    assert refused.value.code == "chain_broken"
    assert sorted(_stored_ids(jpn, "TWN")) == [
        "TWN:test:0",
        "TWN:test:1",
        "TWN:test:10",
        "TWN:test:11",
    ]
    with jpn.store.transaction() as tx:
        assert link_state(tx, "TWN").last_seq == 2
    inbox.accept(partner, frames[2])
    assert len(_stored_ids(jpn, "TWN")) == 6


def test_corrections_and_retractions_travel_as_later_versions(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    inbox = Inbox(jpn)
    first = observation(1, marking=TO_JAPAN)
    twn.ingest([first])
    inbox.accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame())
    corrected = msgspec.structs.replace(first, version=2, remarks="count corrected")
    retracted = msgspec.structs.replace(first, version=3, retracted=True)
    twn.ingest([corrected])
    twn.ingest([retracted])
    inbox.accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame())
    current = jpn.store.get("TWN:test:1")
    assert current is not None and current.version == 3 and current.retracted
    assert [o.version for o in jpn.store.history("TWN:test:1")] == [1, 2, 3]


def test_a_received_item_stays_provable_to_its_origin(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    twn.ingest([observation(n, marking=TO_JAPAN, lon=121 + n / 10) for n in range(7)])
    Inbox(jpn).accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame())

    proof = _item_proof(jpn, "TWN:test:5", 1)
    assert proof is not None
    as_sent: Observation = verify_item_proof(proof, twn.identity.public_key_bytes)
    original = twn.store.get("TWN:test:5")
    assert original is not None
    # What the origin released: its report, marked as released by TWN (one hop).
    assert as_sent.provenance.partner == "TWN" and as_sent.provenance.hops == 1
    assert msgspec.structs.replace(as_sent, provenance=original.provenance) == original
    with pytest.raises(VerificationError):
        verify_item_proof(proof, jpn.identity.public_key_bytes)
    other = _item_proof(jpn, "TWN:test:4", 1)
    assert other is not None
    with pytest.raises(VerificationError):
        verify_item_proof(
            msgspec.structs.replace(proof, item=other.item), twn.identity.public_key_bytes
        )


def test_a_refused_batch_leaves_no_trace_but_the_audit_entry(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    twn.ingest([observation(n, marking=TO_JAPAN) for n in range(2)])
    frame = sealed_batch(twn, "JPN").frame()
    forged = msgspec.structs.replace(frame, signature=bytes(64))
    inbox = Inbox(jpn)
    with pytest.raises(LinkRefused) as refused:
        inbox.accept(jpn.partners["TWN"], forged)
    inbox.refuse("TWN", "test", refused.value)
    assert jpn.store.count_versions() == 0
    with sqlite3.connect(jpn.store.path) as conn:
        assert conn.execute("SELECT count(*) FROM inbox_items").fetchone()[0] == 0
    [entry] = [e for e in jpn.audit.entries() if e.kind not in ("agreement_change", "access")]
    assert entry.kind == "verify_failure" and entry.details["code"] == "bad_signature"
    assert jpn.audit.verify().ok


def test_a_report_built_in_code_with_whole_numbers_travels(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    built = observation(1, marking=TO_JAPAN, source=Source(sensor="radar", uncertainty_m=1000))
    twn.ingest([built])
    receipt = open_receipt(
        Inbox(jpn).accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame()),
        jpn.identity.public_key_bytes,
    )
    assert receipt.stored == 1


def test_a_received_item_is_stored_as_its_canonical_bytes_with_this_nodes_provenance() -> None:
    relayable = Marking(
        tlp="GREEN", releasable_to=("JPN",), control=OriginatorControl(rerelease=True, max_hops=3)
    )
    sent_provenance = Provenance(
        partner="USA", batch="USA>TWN#3", hops=1, transforms=("USA: coarsened to 10 km grid",)
    )
    sent = [
        observation(0),
        observation(1, provenance=Provenance(importer="mnd", record="file.json#1")),
        # The provenance as encoded, word for word in a text field too.
        observation(2, remarks=canonical_bytes(Provenance()).decode()),
        observation(3, remarks='"provenance":{"batch":null}'),
        observation(4, origin="USA", marking=relayable, provenance=sent_provenance),
        observation(5, origin="USA", marking=relayable, provenance=sent_provenance),
        observation(6, retracted=True, version=2),
        # An origin's own items as it releases them: sent by itself, one hop, coarsened or not.
        observation(
            7,
            provenance=Provenance(
                partner="TWN", hops=1, transforms=("TWN: coarsened to 10 km grid",), grid_km=10
            ),
        ),
        observation(8, provenance=Provenance(partner="TWN", hops=1)),
    ]
    items = [canonical_bytes(o) for o in sent]
    # Item 4 came with its origin's proof, item 5 rests on TWN's word (kept under TWN's id).
    received = as_received(sent, "TWN", "TWN>JPN#9", frozenset({4}))
    assert received[5].id == "TWN:via:USA:test:5"

    rows, places = received_rows("TWN", 9, items, sent, received)

    assert rows == prepare(received)
    assert [place[:5] for place in places] == [
        ("TWN", 9, position, kept.id, kept.version) for position, kept in enumerate(received)
    ]
    # Each place gives back the provenance as sent, keeping nothing of one the kept provenance
    # gives back: an origin's own item as it releases it.
    assert [
        provenance_as_sent(kept, place[5]) for place, kept in zip(places, received, strict=True)
    ] == [o.provenance for o in sent]
    assert [place[5] == SENT_AS_KEPT for place in places] == [False] * 7 + [True, True]
    for (body, _, _), kept in zip(rows, received, strict=True):
        assert msgspec.json.decode(body, type=Observation) == kept


def test_the_link_state_counts_what_waits_and_when_each_step_last_came(
    pair: tuple[Node, Node],
) -> None:
    """What ``link status``, ``GET /api/links`` and ``GET /metrics`` show of the sending side,
    batch by batch: the items not signed for, and when the link last sealed and was signed for;
    the receipts listed are the newest batches."""
    twn, jpn = pair
    inbox = Inbox(jpn)
    signed = []
    for n in range(1, 4):  # batches of 1, 2 and 3 items
        twn.ingest([observation(10 * n + k, marking=TO_JAPAN) for k in range(n)])
        signed.append(inbox.accept(jpn.partners["TWN"], sealed_batch(twn, "JPN").frame()))
    twn.ingest([observation(99, marking=TO_JAPAN)])  # released, not sealed
    with twn.store.transaction() as tx:
        state = outbox.state(tx, "JPN")
        sealed_at = [row.sealed_at for row in outbox.receipts(tx, "JPN", limit=3)]
    assert (state.sealed_seq, state.acked_seq, state.unacked_items, state.pending) == (3, 0, 6, 1)
    assert state.last_sealed_at == sealed_at[-1] and state.last_acked_at is None

    acked_at = []
    for receipt in signed[:2]:
        acked_at.append(dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1))
        with twn.store.transaction() as tx:
            opened = open_receipt(receipt, jpn.identity.public_key_bytes)
            assert outbox.record_receipt(tx, "JPN", opened, receipt, now=acked_at[-1])
    with twn.store.transaction() as tx:
        state = outbox.state(tx, "JPN")
        newest = outbox.receipts(tx, "JPN", limit=2)
    assert (state.acked_seq, state.unacked_items, state.pending) == (2, 3, 1)
    assert state.last_acked_at == acked_at[-1] and state.last_sealed_at == sealed_at[-1]
    assert [(row.seq, row.receipt is not None) for row in newest] == [(2, True), (3, False)]
