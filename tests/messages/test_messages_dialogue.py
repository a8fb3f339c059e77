"""The dialogue channel node to node, on real node directories and both stores: messages are
released under the agreement, travel in the link's own signed batches, come back read and
acknowledged, are escalated when overdue, and never reveal more of an item than the partner has.

The wire is replaced by handing frames over (as in the exchange inbox tests); the links over
mutual TLS are exercised end to end in ``tests/e2e``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from agreements import agree, agreement_text
from kuroshio.errors import MessageError
from kuroshio.exchange import outbox
from kuroshio.exchange.receipt import open_receipt
from kuroshio.exchange.wire import BatchFrame, LinkRefused
from kuroshio.federation.inbox import Inbox
from kuroshio.messages import dialogue
from kuroshio.messages.thread import Attachments, Message
from kuroshio.model import Marking, Observation, Point
from kuroshio.node import Node, init_node, open_node
from observations import observation
from pinning import pin
from sealing import sealed_batch

TO_JAPAN = Marking(tlp="AMBER", releasable_to=("JPN",))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
COARSE = (
    'action = "release"\nmatch = { kind = ["air", "sea"], tlp_at_most = "AMBER" }\n'
    "transform = { coarsen_km = 10 }"
)


def _pair(tmp_path: Path, text: str | None = None) -> tuple[Node, Node]:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements", text)
    return twn, jpn


@pytest.fixture
def pair(tmp_path: Path, backend: str) -> tuple[Node, Node]:
    return _pair(tmp_path)


def _rfi(number: int = 1, **fields: object) -> Message:
    values: dict[str, object] = {
        "id": f"TWN:msg:{number}",
        "thread": f"TWN:msg:{number}",
        "sender": "TWN",
        "recipient": "JPN",
        "kind": "rfi",
        "precedence": "priority",
        "subject": "H-6K pair east of Yonaguni",
        "body": "Do you hold this track after 0215Z?",
        "sent_at": NOW,
    }
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


def _deliver(sender: Node, receiver: Node) -> BatchFrame:
    """One batch from ``sender`` to ``receiver``, taken in, and its receipt kept by the sender."""
    frame = sealed_batch(sender, receiver.party).frame()
    signed = Inbox(receiver).accept(receiver.partners[sender.party], frame)
    sender.take_receipt(
        receiver.party, open_receipt(signed, receiver.identity.public_key_bytes), signed
    )
    return frame


def _deliver_all(sender: Node, receiver: Node) -> None:
    """Every batch due from ``sender`` to ``receiver`` (observations and messages go in
    batches of their own)."""
    while True:
        with sender.store.transaction() as tx:
            if not outbox.pending_count(tx, receiver.party, limit=1):
                return
        _deliver(sender, receiver)


def _state(node: Node, message_id: str) -> str:
    with node.store.transaction() as tx:
        return dialogue.show(tx, message_id).state


def _audited(node: Node) -> list[str]:
    return [entry.subject for entry in node.audit.entries("message")]


def test_rfi_travels_comes_back_read_and_answered(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    twn.send_message(_rfi())
    assert _state(twn, "TWN:msg:1") == "queued"
    _deliver(twn, jpn)
    assert _state(twn, "TWN:msg:1") == "delivered"
    with jpn.store.transaction() as tx:
        [received] = dialogue.listing(tx)
    assert received.message == _rfi() and received.direction == "in"
    assert received.state == "delivered"

    jpn.mark_message("TWN:msg:1", "read")
    _deliver(jpn, twn)
    assert _state(twn, "TWN:msg:1") == "read"

    reply = _rfi(
        kind="reply",
        id="JPN:msg:1",
        sender="JPN",
        recipient="TWN",
        in_reply_to="TWN:msg:1",
        subject="Re: H-6K pair",
        body="Held until 0240Z, then lost north of Miyako.",
        sent_at=NOW + dt.timedelta(minutes=3),
    )
    jpn.send_message(reply)
    assert _state(jpn, "TWN:msg:1") == "acked"  # answering acknowledges
    _deliver(jpn, twn)
    assert _state(twn, "TWN:msg:1") == "acked"
    with twn.store.transaction() as tx:
        thread = dialogue.listing(tx, thread="TWN:msg:1")
    assert [k.message.kind for k in thread] == ["reply", "rfi"]
    assert "send TWN:msg:1" in _audited(twn)
    assert any(s.startswith("receive JPN>TWN#") for s in _audited(twn))
    assert "read TWN:msg:1" in _audited(jpn)


def test_explicit_ack_travels_back(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    twn.send_message(_rfi(precedence="flash"))
    _deliver(twn, jpn)
    jpn.mark_message("TWN:msg:1", "acked")
    jpn.mark_message("TWN:msg:1", "read")  # a late "read" never undoes the acknowledgement
    _deliver(jpn, twn)
    assert _state(twn, "TWN:msg:1") == "acked"
    assert _state(jpn, "TWN:msg:1") == "acked"


def test_a_batch_resent_after_a_crash_keeps_one_message(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    twn.send_message(_rfi())
    frame = sealed_batch(twn, "JPN").frame()
    first = Inbox(jpn).accept(jpn.partners["TWN"], frame)
    again = Inbox(jpn).accept(jpn.partners["TWN"], frame)  # the receipt was lost: sent again
    assert first == again
    with jpn.store.transaction() as tx:
        assert len(dialogue.listing(tx)) == 1


def test_overdue_flash_is_escalated_resent_and_audited(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    sent_at = NOW - dt.timedelta(minutes=11)
    twn.send_message(_rfi(precedence="flash", sent_at=sent_at), now=sent_at)
    _deliver(twn, jpn)
    assert twn.escalate_messages(now=sent_at + dt.timedelta(minutes=9)) == []
    [escalated] = twn.escalate_messages(now=NOW)
    assert (escalated.state, escalated.escalations) == ("escalated", 1)
    assert escalated.deadline == NOW + dt.timedelta(minutes=10)
    assert "escalate TWN:msg:1" in _audited(twn)
    _deliver(twn, jpn)  # re-sent on the link; the partner keeps it once
    with jpn.store.transaction() as tx:
        assert len(dialogue.listing(tx)) == 1
    jpn.mark_message("TWN:msg:1", "acked")
    _deliver(jpn, twn)
    assert _state(twn, "TWN:msg:1") == "acked"
    assert twn.escalate_messages(now=NOW + dt.timedelta(hours=1)) == []


def test_replies_and_acks_are_never_escalated(pair: tuple[Node, Node]) -> None:
    twn, _ = pair
    twn.send_message(_rfi(kind="note", precedence="routine"))
    later = NOW + dt.timedelta(days=2)
    assert [k.message.id for k in twn.escalate_messages(now=later)] == ["TWN:msg:1"]


def test_nothing_leaves_without_an_agreement(tmp_path: Path, backend: str) -> None:
    twn, _ = _pair(tmp_path)
    with pytest.raises(MessageError, match="no agreement with KOR is in force"):
        twn.send_message(_rfi(recipient="KOR"))
    with twn.store.transaction() as tx:
        assert dialogue.listing(tx) == []
        assert outbox.pending_count(tx, "KOR", limit=10) == 0


def test_marking_above_the_agreement_stays_home(pair: tuple[Node, Node]) -> None:
    twn, _ = pair
    with pytest.raises(MessageError, match="TLP:RED is above"):
        twn.send_message(_rfi(tlp="RED"))
    with twn.store.transaction() as tx:
        assert dialogue.listing(tx) == []
    assert _audited(twn) == []


def test_a_withheld_attachment_stops_the_message(pair: tuple[Node, Node]) -> None:
    twn, _ = pair
    area = observation(3, kind="area", marking=TO_JAPAN)  # the agreement releases air and sea
    with pytest.raises(MessageError, match="attached TWN:test:3 v1 is withheld from JPN"):
        twn.send_message(_rfi(attachments=Attachments(observations=(area,))))


def test_a_partner_cannot_send_messages_in_another_party_s_name(pair: tuple[Node, Node]) -> None:
    twn, _ = pair
    with pytest.raises(MessageError, match="only TWN's own messages"):
        twn.send_message(_rfi(sender="JPN", recipient="TWN"))


def _precise_numbers(precise: Observation) -> list[bytes]:
    assert isinstance(precise.geometry, Point)
    lon, lat = precise.geometry.coordinates
    return [f"{lon}".encode(), f"{lat}".encode()]


def test_attached_item_given_coarsened_is_never_revealed_precisely(
    tmp_path: Path, backend: str
) -> None:
    twn, jpn = _pair(tmp_path, agreement_text(["TWN", "JPN"], {("TWN", "JPN"): COARSE}))
    precise = observation(7, lon=123.0123456, lat=24.4567891, marking=TO_JAPAN)
    twn.ingest([precise])
    _deliver(twn, jpn)  # the item as the partner was given it
    given = jpn.store.get(precise.id)
    assert given is not None and given.geometry != precise.geometry

    sent = twn.send_message(_rfi(attachments=Attachments(observations=(precise,))))
    frame = _deliver(twn, jpn)
    for number in _precise_numbers(precise):
        assert all(number not in item for item in frame.items)
    [attached] = sent.attachments.observations
    assert attached.geometry == given.geometry
    with jpn.store.transaction() as tx:
        [received] = dialogue.listing(tx)
    assert received.message.attachments.observations[0].geometry == given.geometry
    with twn.store.transaction() as tx:
        kept = dialogue.show(tx, "TWN:msg:1")
    assert kept.message.attachments.observations[0].geometry == given.geometry


def test_a_message_forged_for_another_sender_is_refused(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    twn.send_message(_rfi())
    frame = sealed_batch(twn, "JPN").frame()
    # JPN pinned TWN only: a batch with the same items claimed on another link is refused.
    forged = msgspec.structs.replace(frame, signature=bytes(64))
    with pytest.raises(LinkRefused, match="bad_signature"):
        Inbox(jpn).accept(jpn.partners["TWN"], forged)
