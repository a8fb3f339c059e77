"""Standing requests node to node, on both stores: a partner's "tell me when…" is evaluated on
the releasing side, against what the agreement lets that partner have; each match arrives as an
alert with the item attached as released; nothing else does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_messages_dialogue import _deliver, _deliver_all, _pair

from kuroshio.errors import MessageError
from kuroshio.messages import dialogue
from kuroshio.model import LineString, Marking, Platform
from kuroshio.node import Node
from observations import observation

TO_JAPAN = Marking(tlp="AMBER", releasable_to=("JPN",))
CARRIER = Platform(type="Type 001", platform_class="carrier", count=1, nationality="CHN")


@pytest.fixture
def pair(tmp_path: Path, backend: str) -> tuple[Node, Node]:
    return _pair(tmp_path)


def _ask(jpn: Node, **criteria: object) -> str:
    draft = dialogue.Draft(recipient="TWN", subject="Tell me when", request=dict(criteria))
    return jpn.send_draft(draft).id


def _track(number: int, *positions: tuple[float, float], **fields: object) -> object:
    values: dict[str, object] = {
        "kind": "sea",
        "geometry": LineString(coordinates=positions),
        "until": observation().observed_at + dt.timedelta(hours=6),
        "platform": CARRIER,
        "marking": TO_JAPAN,
    }
    values.update(fields)
    return observation(number, **values)


def _ship(number: int, lon: float, lat: float) -> object:
    return observation(number, kind="sea", lon=lon, lat=lat, platform=CARRIER, marking=TO_JAPAN)


def _alerts(node: Node) -> list[dialogue.Kept]:
    with node.store.transaction() as tx:
        return [k for k in dialogue.listing(tx) if k.message.kind == "alert"]


def test_a_miyako_transit_gives_one_alert_and_other_tracks_none(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    asked = _ask(jpn, event="strait_transit", zone="gate-miyako", platform_class=["carrier"])
    _deliver(jpn, twn)
    twn.ingest([_track(1, (126.0, 26.0), (127.0, 24.5))])  # through the Miyako gate
    twn.ingest([_track(2, (121.0, 21.5), (121.5, 19.5))])  # through the Bashi channel
    twn.ingest(
        [_track(3, (126.0, 26.0), (127.0, 24.5), platform=Platform(platform_class="bomber"))]
    )
    twn.ingest([_track(1, (126.0, 26.0), (127.0, 24.5), version=2)])  # same item: no second
    [sent] = _alerts(twn)
    assert sent.message.in_reply_to == asked and sent.message.thread == asked
    assert [o.id for o in sent.message.attachments.observations] == ["TWN:test:1"]
    assert sent.message.subject.startswith("strait_transit Miyako Strait")
    _deliver_all(twn, jpn)
    [received] = _alerts(jpn)
    assert received.message == sent.message and received.direction == "in"
    assert any(
        s.startswith("send TWN:alert:") for s in [e.subject for e in twn.audit.entries("message")]
    )


def test_an_item_the_agreement_withholds_gives_no_alert(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    _ask(jpn, platform_class=["carrier"])
    _deliver(jpn, twn)
    twn.ingest([_track(1, (126.0, 26.0), (127.0, 24.5), marking=Marking(tlp="RED"))])
    assert _alerts(twn) == []


def test_near_a_place_and_cancelled(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    asked = _ask(
        jpn,
        platform_class=["carrier"],
        near={"place": "Yonaguni", "lon": 123.0, "lat": 24.47, "within_km": 200},
    )
    _deliver(jpn, twn)
    twn.ingest(
        [observation(1, kind="sea", lon=124.5, lat=24.5, platform=CARRIER, marking=TO_JAPAN)]
    )
    twn.ingest(
        [observation(2, kind="sea", lon=128.0, lat=24.5, platform=CARRIER, marking=TO_JAPAN)]
    )
    assert [a.message.attachments.observations[0].id for a in _alerts(twn)] == ["TWN:test:1"]

    jpn.send_draft(
        dialogue.Draft(
            recipient="TWN", subject="Cancel", kind="note", in_reply_to=asked, cancels=asked
        )
    )
    _deliver(jpn, twn)
    with twn.store.transaction() as tx:
        [kept] = dialogue.requests(tx)
    assert kept["owner"] == "JPN" and kept["cancelled_at"] is not None
    twn.ingest(
        [observation(3, kind="sea", lon=123.5, lat=24.5, platform=CARRIER, marking=TO_JAPAN)]
    )
    assert len(_alerts(twn)) == 1


def test_only_the_party_that_asked_may_cancel(pair: tuple[Node, Node]) -> None:
    twn, jpn = pair
    asked = _ask(jpn, platform_class=["carrier"])
    _deliver(jpn, twn)
    with pytest.raises(MessageError, match=f"request {asked}: no standing request of TWN"):
        twn.send_draft(
            dialogue.Draft(
                recipient="JPN", subject="x", kind="note", in_reply_to=asked, cancels=asked
            )
        )


def test_a_request_needs_a_criterion(pair: tuple[Node, Node]) -> None:
    _, jpn = pair
    with pytest.raises(MessageError, match="at least one criterion"):
        _ask(jpn)


def test_a_live_track_of_point_updates_through_the_gate_gives_one_alert(
    pair: tuple[Node, Node],
) -> None:
    twn, jpn = pair
    asked = _ask(jpn, event="strait_transit", zone="gate-miyako")
    _deliver(jpn, twn)
    start = observation().observed_at
    updates = [
        observation(
            n, kind="sea", lon=lon, lat=lat, at=start + dt.timedelta(minutes=10 * n),
            platform=CARRIER, marking=TO_JAPAN, track="ais:412000001",
        )
        for n, (lon, lat) in enumerate([(126.0, 26.0), (126.5, 25.2), (127.0, 24.5)])
    ]  # fmt: skip
    for update in updates:  # one at a time, as a live feed stores them
        twn.ingest([update])
    [sent] = _alerts(twn)
    assert sent.message.in_reply_to == asked
    assert sent.message.subject.startswith("strait_transit Miyako Strait")
    assert len(sent.message.attachments.events) == 1
