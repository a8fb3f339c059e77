"""Release at egress under signed agreements, node to node without sockets: what enters each
partner's outbox, when it may leave, what is audited, how re-release and reciprocity act."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from agreements import RELEASE_AIR_SEA, agree, agreement_text, install, sign
from kuroshio import node as node_module
from kuroshio.errors import AgreementError
from kuroshio.exchange import outbox
from kuroshio.exchange.batch import GENESIS_HASH, open_batch, seal
from kuroshio.exchange.receipt import open_receipt
from kuroshio.exchange.wire import BatchFrame, LinkRefused
from kuroshio.federation import link as link_module
from kuroshio.federation.inbox import Inbox
from kuroshio.federation.transports.wss import WssTransport
from kuroshio.model import Marking, Observation, OriginatorControl, Point
from kuroshio.node import Node, open_node
from kuroshio.policy import reciprocity
from kuroshio.store import ObservationFilter
from kuroshio.store.sqlite import SQLiteStore
from observations import observation
from pinning import pinned_nodes

TO_ALL = Marking(tlp="AMBER", releasable_to=("JPN", "USA"))


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[dict[str, Node]]:
    parties = ("TWN", "JPN", "USA")
    opened = dict(zip(parties, pinned_nodes(tmp_path, parties), strict=True))
    yield opened
    for node in opened.values():
        node.close()


def _outbox(node: Node, partner: str) -> list[Observation]:
    with sqlite3.connect(node.store.path) as conn:
        rows = conn.execute(
            "SELECT coalesce(i.item, o.item) FROM outbox o"
            " LEFT JOIN outbox_items i ON i.row = o.row WHERE o.partner = ? ORDER BY o.row",
            (partner,),
        ).fetchall()
    return [msgspec.json.decode(row[0], type=Observation) for row in rows]


def _deliver(sender: Node, receiver: Node, *, now: dt.datetime | None = None) -> int:
    """Seal every due item for ``receiver``, take the batches in, store the receipts."""
    delivered = 0
    inbox = Inbox(receiver)
    while True:
        with sender.store.transaction() as tx:
            sealed = outbox.seal_next(
                tx,
                receiver.party,
                signer=sender.identity,
                sender=sender.party,
                max_items=1000,
                max_bytes=8 * 1024 * 1024,
                now=now or dt.datetime.now(dt.UTC),
            )
        if sealed is None:
            return delivered
        signed = inbox.accept(receiver.partners[sender.party], sealed.frame())
        receipt = open_receipt(signed, receiver.identity.public_key_bytes)
        with sender.store.transaction() as tx:
            outbox.record_receipt(tx, receiver.party, receipt, signed, now=receipt.received_at)
        delivered += sealed.header.count


def test_without_an_agreement_nothing_is_released_and_the_decision_is_audited(
    nodes: dict[str, Node],
) -> None:
    twn = nodes["TWN"]
    twn.ingest([observation(n, marking=TO_ALL) for n in range(3)])
    assert _outbox(twn, "JPN") == [] and _outbox(twn, "USA") == []
    [decision] = twn.audit.entries("decision")
    for party in ("JPN", "USA"):
        summary = decision.details["partners"][party]
        assert summary["agreement"] is None and summary["released"] == []
        [withheld] = summary["withheld"]
        assert (withheld["code"], withheld["count"]) == ("no_agreement", 3)


def test_released_items_leave_transformed_and_a_delay_holds_them_without_blocking_others(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    rules = {
        ("TWN", "JPN"): [
            'action = "release"\nmatch = { platform_class = ["bomber"] }\n'
            'transform = { coarsen_km = 10, delay_s = 3600, drop = ["remarks"] }',
            'action = "release"\nmatch = { kind = ["air"] }',
        ]
    }
    agree([twn, jpn], tmp_path / "a", agreement_text(["TWN", "JPN"], rules))
    now = dt.datetime.now(dt.UTC)
    bomber = observation(1, at=now, lon=121.2345, lat=22.3456, marking=TO_ALL, remarks="secret")
    fighter = observation(2, at=now, marking=TO_ALL, platform=None)
    twn.ingest([bomber, fighter])

    held, due = _outbox(twn, "JPN")
    assert held.remarks is None and held.geometry != bomber.geometry
    assert held.source.uncertainty_m >= 5_000  # at least half a 10 km cell
    assert "TWN: delayed 3600 s" in held.provenance.transforms
    assert due == msgspec.structs.replace(fighter, provenance=due.provenance)
    with twn.store.transaction() as tx:
        assert outbox.pending_count(tx, "JPN", limit=10, now=now) == 1
        assert outbox.state(tx, "JPN", now=now).held == 1
        assert outbox.due_or_next(tx, "JPN", limit=10, now=now) == (1, None)
    assert _deliver(twn, jpn, now=now) == 1  # the fighter, not waiting for the bomber
    with twn.store.transaction() as tx:  # nothing due: when the bomber falls due
        due, held_until = outbox.due_or_next(tx, "JPN", limit=10, now=now)
    assert due == 0 and held_until is not None
    assert abs((held_until - now).total_seconds() - 3600) < 60
    assert jpn.store.get(bomber.id) is None and jpn.store.get(fighter.id) is not None
    assert _deliver(twn, jpn, now=now + dt.timedelta(seconds=3601)) == 1
    with twn.store.transaction() as tx:
        later = now + dt.timedelta(seconds=3601)
        assert outbox.due_or_next(tx, "JPN", limit=10, now=later) == (0, None)
    received = jpn.store.get(bomber.id)
    assert received is not None and received.geometry == held.geometry

    [decision] = twn.audit.entries("decision")
    [first, second] = decision.details["partners"]["JPN"]["released"]
    assert (first["rule"], first["index"], first["count"]) == ("twn-jpn-1", 1, 1)
    assert first["held_until"] == (now + dt.timedelta(seconds=3600)).isoformat()
    assert "TWN: coarsened to 10 km grid" in first["transforms"]
    assert (second["rule"], second["transforms"]) == ("twn-jpn-2", [])


def test_a_new_version_installed_elsewhere_governs_the_next_release(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    air_only = {("TWN", "JPN"): 'action = "release"\nmatch = { kind = ["air"] }'}
    agree([twn, jpn], tmp_path / "v1", agreement_text(["TWN", "JPN"], air_only))
    sea = observation(1, kind="sea", marking=TO_ALL)
    twn.ingest([sea])
    assert _outbox(twn, "JPN") == []

    # Another process (the CLI) installs version 2; this open node notices at the next release.
    text = agreement_text(["TWN", "JPN"], {("TWN", "JPN"): RELEASE_AIR_SEA}, version=2)
    with open_node(twn.directory) as other:
        install(sign(text, [other, jpn]), [other], tmp_path / "v2")
    twn.ingest([observation(2, kind="sea", marking=TO_ALL)])
    [released] = _outbox(twn, "JPN")
    assert released.id == "TWN:test:2"
    last = list(twn.audit.entries("decision"))[-1].details["partners"]["JPN"]
    assert (last["agreement"], last["agreement_version"]) == ("test-exchange", 2)


def test_a_retraction_follows_what_was_given_under_a_narrower_agreement(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    agree(
        [twn, jpn],
        tmp_path / "v1",
        agreement_text(["TWN", "JPN"], {("TWN", "JPN"): RELEASE_AIR_SEA}),
    )
    given = observation(1, lon=121.2345, lat=22.3456, marking=TO_ALL, remarks="seen twice")
    never_given = observation(2, marking=TO_ALL)
    twn.ingest([given])
    assert _deliver(twn, jpn) == 1

    # Version 2 releases sea items only: air items stay home, but a withdrawal must not.
    sea_only = {("TWN", "JPN"): 'action = "release"\nmatch = { kind = ["sea"] }'}
    text = agreement_text(["TWN", "JPN"], sea_only, version=2)
    install(sign(text, [twn, jpn]), [twn, jpn], tmp_path / "v2")
    twn.ingest([msgspec.structs.replace(observation(3), marking=TO_ALL)])
    assert _outbox(twn, "JPN") == []
    retraction = msgspec.structs.replace(given, version=2, retracted=True)
    twn.ingest([retraction, msgspec.structs.replace(never_given, version=2, retracted=True)])

    [notice] = _outbox(twn, "JPN")
    assert (notice.id, notice.version, notice.retracted) == (given.id, 2, True)
    assert notice.platform is not None and notice.platform.type is None
    assert notice.remarks is None and notice.geometry != given.geometry
    assert any("retraction notice" in words for words in notice.provenance.transforms)
    assert _deliver(twn, jpn) == 1
    current = jpn.store.get(given.id)
    assert current is not None and current.retracted and current.version == 2
    assert jpn.store.get(never_given.id) is None
    last = list(twn.audit.entries("decision"))[-1].details["partners"]["JPN"]
    assert [rule["rule"] for rule in last["released"]] == ["retraction-follows-release"]


def test_unsigned_expired_or_future_agreements_release_nothing(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    folder = tmp_path / "files"
    with pytest.raises(AgreementError, match="not signed by all parties"):
        install(sign(agreement_text(["TWN", "JPN"]), [twn]), [twn], folder)
    now = dt.datetime.now(dt.UTC)
    expired = agreement_text(
        ["TWN", "JPN"],
        agreement_id="old",
        valid_from=now - dt.timedelta(days=10),
        valid_until=now - dt.timedelta(days=1),
    )
    with pytest.raises(AgreementError, match="expired"):
        install(sign(expired, [twn, jpn]), [twn], folder)
    future = agreement_text(
        ["TWN", "JPN"], agreement_id="later", valid_from=now + dt.timedelta(days=1)
    )
    install(sign(future, [twn, jpn]), [twn], folder)
    twn.ingest([observation(1, marking=TO_ALL)])
    assert _outbox(twn, "JPN") == []
    [decision] = twn.audit.entries("decision")
    assert decision.details["partners"]["JPN"]["withheld"][0]["code"] == "no_agreement"
    refused = [e.details for e in twn.audit.entries("agreement_change") if "refused" in e.details]
    assert len(refused) == 2


def test_re_release_follows_the_originator_and_counts_hops(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn, usa = nodes["TWN"], nodes["JPN"], nodes["USA"]
    rules = {
        ("TWN", "JPN"): RELEASE_AIR_SEA,
        ("JPN", "USA"): 'action = "release"\nmatch = { origin = ["TWN"] }',
        ("USA", "JPN"): 'action = "release"\nmatch = { origin = ["TWN"] }',
    }
    agree([twn, jpn, usa], tmp_path / "a", agreement_text(["TWN", "JPN", "USA"], rules))
    may_pass = Marking(control=OriginatorControl(rerelease=True, to=("USA",), max_hops=1))
    twn.ingest(
        [
            observation(1, marking=may_pass),  # may go on to USA, one further hop
            observation(2, marking=Marking()),  # no re-release
            observation(
                3,
                marking=Marking(control=OriginatorControl(rerelease=True, max_hops=0)),
            ),
        ]
    )
    assert _deliver(twn, jpn) == 3
    assert _deliver(jpn, usa) == 1
    relayed = usa.store.get("TWN:test:1")
    assert relayed is not None and relayed.marking == may_pass
    assert (relayed.provenance.partner, relayed.provenance.hops) == ("JPN", 2)
    decision = list(jpn.audit.entries("decision"))[-1].details["partners"]["USA"]
    assert {w["code"]: w["count"] for w in decision["withheld"]} == {
        "originator_control": 1,
        "hop_limit": 1,
    }

    # A retraction at the origin follows the item over every hop.
    retraction = msgspec.structs.replace(
        observation(1, marking=may_pass), version=2, retracted=True
    )
    twn.ingest([retraction])
    assert _deliver(twn, jpn) == 1 and _deliver(jpn, usa) == 1
    at_usa = usa.store.get("TWN:test:1")
    assert at_usa is not None and at_usa.retracted and at_usa.version == 2


def test_a_reciprocity_shortfall_adds_its_delay_and_is_audited_once(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    clause = (
        "[reciprocity]\nwindow_days = 7\nmin_ratio = 0.5\nmin_given = 2\n"
        'on_shortfall = "delay"\ndelay_s = 900\n'
    )
    text = agreement_text(["TWN", "JPN"], extra=clause)
    agree([twn, jpn], tmp_path / "a", text)
    now = dt.datetime.now(dt.UTC)
    twn.ingest([observation(n, at=now, marking=TO_ALL) for n in range(3)])
    assert _deliver(twn, jpn) == 3  # given 3, received 0: a shortfall from now on

    with open_node(twn.directory) as later:  # a node judges the ledger afresh
        later.ingest([observation(10, at=now, marking=TO_ALL)])
        later.ingest([observation(11, at=now, marking=TO_ALL)])
        [delayed, again] = _outbox(later, "JPN")
        assert "TWN: delayed 900 s" in delayed.provenance.transforms
        assert "TWN: delayed 900 s" in again.provenance.transforms
        changes = [e for e in later.audit.entries("decision") if e.subject.startswith("recip")]
    [change] = changes
    assert change.details["state"] == "shortfall:delay" and change.details["action"] == "delay"
    with twn.store.transaction() as tx:
        given = reciprocity.entries(tx, partner="JPN")
    assert len(given) == 3 and all(e.flow == "given" for e in given)


def test_a_standing_is_counted_again_in_the_background_and_the_change_audited(
    nodes: dict[str, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once judged, a standing is counted again on a reading connection of the node's own
    while the writes that ask for it go on with the one they have; the next write after the
    count uses the new standing and audits the change."""
    twn, jpn = nodes["TWN"], nodes["JPN"]
    clause = (
        "[reciprocity]\nwindow_days = 7\nmin_ratio = 0.5\nmin_given = 2\n"
        'on_shortfall = "delay"\ndelay_s = 900\n'
    )
    agree([twn, jpn], tmp_path / "a", agreement_text(["TWN", "JPN"], extra=clause))
    now = dt.datetime.now(dt.UTC)
    twn.ingest([observation(0, at=now, marking=TO_ALL)])  # judged: nothing given yet
    assert _deliver(twn, jpn) == 1
    twn.ingest([observation(n, at=now, marking=TO_ALL) for n in (1, 2)])
    assert _deliver(twn, jpn) == 2  # given 3, received 0: a shortfall from now on

    # the standing judged with the first item is due again from now on
    monkeypatch.setattr(node_module, "RECIPROCITY_REFRESH_S", 0.0)
    decided: list[list[str]] = []
    deadline = time.monotonic() + 30
    while not decided or "TWN: delayed 900 s" not in decided[-1]:
        assert time.monotonic() < deadline, decided
        number = 10 + len(decided)
        twn.ingest([observation(number, at=now, marking=TO_ALL)])
        [held] = [item for item in _outbox(twn, "JPN") if item.id.endswith(f":{number}")]
        decided.append(list(held.provenance.transforms))
        time.sleep(0.05)
    # the write that started the count went on under the standing it had
    assert "TWN: delayed 900 s" not in decided[0]
    changes = [e for e in twn.audit.entries("decision") if e.subject.startswith("recip")]
    assert [(c.details["previous"], c.details["state"]) for c in changes] == [
        ("not_judged", "shortfall:delay")
    ]


def test_the_receiver_refuses_a_relay_the_originator_did_not_allow(nodes: dict[str, Node]) -> None:
    jpn = nodes["JPN"]
    allowed = Marking(control=OriginatorControl(rerelease=True, to=("USA",), max_hops=1))

    def relayed(marking: Marking, hops: int) -> bytes:
        item = observation(1, marking=marking)
        item = msgspec.structs.replace(
            item, provenance=msgspec.structs.replace(item.provenance, partner="JPN", hops=hops)
        )
        return outbox.wire_bytes(item)

    def batch(item: bytes) -> BatchFrame:
        return seal(
            jpn.identity,
            sender="JPN",
            receiver="USA",
            seq=1,
            prev_hash=GENESIS_HASH,
            items=[item],
            sealed_at=dt.datetime.now(dt.UTC),
        ).frame()

    opened = open_batch(
        batch(relayed(allowed, 2)),
        sender="JPN",
        receiver="USA",
        sender_key=jpn.identity.public_key_bytes,
        max_items=10,
    )
    assert opened.observations[0].origin == "TWN"
    for marking, hops, why in (
        (Marking(), 2, "does not allow re-release"),
        (allowed, 3, "allows 1 beyond the first recipient"),
        (Marking(control=OriginatorControl(rerelease=True, to=("PHL",))), 2, "to PHL only"),
        (allowed, 1, "count at least two hops"),
    ):
        with pytest.raises(LinkRefused) as refused:
            open_batch(
                batch(relayed(marking, hops)),
                sender="JPN",
                receiver="USA",
                sender_key=jpn.identity.public_key_bytes,
                max_items=10,
            )
        assert refused.value.code == "foreign_origin" and why in refused.value.reason


def test_an_outbox_from_before_delays_keeps_its_sealed_batches(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.sqlite", isolation_level=None)
    conn.execute(
        "CREATE TABLE outbox (row INTEGER PRIMARY KEY AUTOINCREMENT, partner TEXT NOT NULL,"
        " id TEXT NOT NULL, version INTEGER NOT NULL, item BLOB NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE sent_batches (partner TEXT NOT NULL, seq INTEGER NOT NULL,"
        " first_row INTEGER NOT NULL, last_row INTEGER NOT NULL, count INTEGER NOT NULL,"
        " header BLOB NOT NULL, signature BLOB NOT NULL, hash BLOB NOT NULL,"
        " sealed_at INTEGER NOT NULL, receipt BLOB, receipt_signature BLOB, acked_at INTEGER,"
        " PRIMARY KEY (partner, seq)) WITHOUT ROWID"
    )
    conn.executemany(
        "INSERT INTO outbox (partner, id, version, item) VALUES ('JPN', ?, 1, ?)",
        [(f"TWN:test:{n}", b"{}") for n in range(5)],
    )
    conn.execute(
        "INSERT INTO sent_batches (partner, seq, first_row, last_row, count, header, signature,"
        " hash, sealed_at) VALUES ('JPN', 1, 1, 3, 3, x'00', x'00', x'00', 0)"
    )
    conn.close()
    # Opening the store migrates the outbox in place.
    with SQLiteStore(tmp_path / "old.sqlite") as store, store.transaction() as tx:
        assert outbox.pending_count(tx, "JPN", limit=10) == 2
        assert [item for item, _ in tx.outbox.batch_items("JPN", 1)] == [b"{}"] * 3


HELD = 'action = "release"\nmatch = { kind = ["air"] }\ntransform = { delay_s = 7200 }\n'
"""Air reports, held two hours after they were observed."""


def _send_at(sender: Node, receiver: Node, at: dt.datetime) -> int:
    """What a link sealing at ``at`` sends (the agreement checked at that moment)."""
    with sender.store.transaction() as tx:
        sender.enforce_at_send(tx, receiver.party, at)
    return _deliver(sender, receiver, now=at)


def test_items_held_past_the_agreements_end_never_leave(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = agreement_text(
        ["TWN", "JPN"], {("TWN", "JPN"): HELD}, valid_until=now + dt.timedelta(hours=1)
    )
    install(sign(text, [twn, jpn]), [twn, jpn], tmp_path / "agreements")
    twn.ingest([observation(n, marking=TO_ALL, at=now) for n in range(5)])
    assert len(_outbox(twn, "JPN")) == 5  # held until two hours after they were seen

    after = now + dt.timedelta(hours=3)  # the delay is over, and so is the agreement
    assert _send_at(twn, jpn, after) == 0
    assert _outbox(twn, "JPN") == [] and jpn.store.count_versions() == 0
    [withheld] = [e for e in twn.audit.entries("decision") if "withheld at send" in e.subject]
    assert withheld.details["partner"] == "JPN" and withheld.details["withdrawn"] == 5
    assert withheld.details["in_force"] is None and withheld.details["released_again"] == 0
    assert withheld.details["items"][0] == "TWN:test:0 v1"
    assert twn.audit.verify().ok


def test_items_held_when_a_narrower_version_takes_over_are_decided_again(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn = nodes["TWN"], nodes["JPN"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = agreement_text(["TWN", "JPN"], {("TWN", "JPN"): HELD})
    install(sign(first, [twn, jpn]), [twn, jpn], tmp_path / "v1")
    fighter = observation(
        1,
        marking=TO_ALL,
        at=now,
        platform=msgspec.structs.replace(
            observation(0).platform, type="J-16", platform_class="fighter"
        ),
    )
    twn.ingest([observation(0, marking=TO_ALL, at=now), fighter])
    assert len(_outbox(twn, "JPN")) == 2

    narrower = [
        'action = "withhold"\nmatch = { platform_class = ["bomber"] }\nreason = "not bombers"',
        HELD,
    ]
    second = agreement_text(["TWN", "JPN"], {("TWN", "JPN"): narrower}, version=2)
    install(sign(second, [twn, jpn]), [twn, jpn], tmp_path / "v2")

    assert _send_at(twn, jpn, now + dt.timedelta(hours=3)) == 1
    assert jpn.store.get("TWN:test:0") is None  # the bomber: withheld under v2
    assert jpn.store.get("TWN:test:1") is not None
    [withheld] = [e for e in twn.audit.entries("decision") if "withheld at send" in e.subject]
    assert withheld.details["withdrawn"] == 2 and withheld.details["released_again"] == 1
    assert withheld.details["in_force"] == "test-exchange v2"


def test_a_batch_nothing_of_which_may_go_on_is_recorded_and_its_retractions_still_follow(
    nodes: dict[str, Node], tmp_path: Path
) -> None:
    twn, jpn, usa = nodes["TWN"], nodes["JPN"], nodes["USA"]
    onward = {
        ("TWN", "JPN"): RELEASE_AIR_SEA,
        ("JPN", "USA"): 'action = "release"\nmatch = { origin = ["TWN"] }',
    }
    agree([twn, jpn, usa], tmp_path / "v1", agreement_text(["TWN", "JPN", "USA"], onward))
    may_pass = Marking(control=OriginatorControl(rerelease=True, to=("USA",), max_hops=1))
    first = observation(1, marking=may_pass)
    twn.ingest([first])
    assert _deliver(twn, jpn) == 1 and _deliver(jpn, usa) == 1

    # Version 2 has no rule from JPN to USA: nothing JPN receives may go on to USA any more.
    home_only = agreement_text(["TWN", "JPN", "USA"], {("TWN", "JPN"): RELEASE_AIR_SEA}, version=2)
    install(sign(home_only, [twn, jpn, usa]), [twn, jpn, usa], tmp_path / "v2")
    retraction = msgspec.structs.replace(first, version=2, retracted=True)
    twn.ingest([observation(2, marking=may_pass), observation(3, marking=Marking()), retraction])
    assert _deliver(twn, jpn) == 3

    # Every item is stored and enters the ledger; the decision counts each refusal.
    assert jpn.store.get("TWN:test:2") is not None and jpn.store.get("TWN:test:3") is not None
    with jpn.store.transaction() as tx:
        received = reciprocity.entries(tx, partner="TWN")
    assert sorted((e.item, e.version) for e in received) == [
        ("TWN:test:1", 1),
        ("TWN:test:1", 2),
        ("TWN:test:2", 1),
        ("TWN:test:3", 1),
    ]
    decision = list(jpn.audit.entries("decision"))[-1].details["partners"]
    assert decision["USA"]["agreement_version"] == 2
    assert {w["code"]: (w["count"], w["items"]) for w in decision["USA"]["withheld"]} == {
        "originator_control": (1, ["TWN:test:3 v1"]),
        "no_rules": (1, ["TWN:test:2 v1"]),
    }
    assert {w["code"]: w["count"] for w in decision["TWN"]["withheld"]} == {"to_origin": 3}
    # What was given is withdrawn all the same.
    assert [rule["rule"] for rule in decision["USA"]["released"]] == ["retraction-follows-release"]
    assert _deliver(jpn, usa) == 1
    # USA was given version 1 unchanged, with TWN's proof, and keeps it under TWN's id: TWN's
    # own retraction, which repeats it, goes on unchanged with its proof and withdraws it there.
    retracted = usa.store.get("TWN:test:1")
    assert (
        retracted is not None
        and retracted.version == 2
        and retracted.retracted
        and retracted.origin == "TWN"
    )
    assert retracted.provenance.partner == "JPN" and retracted.provenance.transforms == ()
    assert usa.store.get("JPN:via:TWN:test:1") is None
    visible = {o.id for o in usa.store.iter_query(ObservationFilter())}
    assert "TWN:test:1" not in visible


@pytest.mark.parametrize("given", ["coarsened", "retraction moves it"])
def test_a_retraction_that_would_tell_more_than_was_given_follows_as_a_notice(
    nodes: dict[str, Node], tmp_path: Path, given: str
) -> None:
    twn, jpn, usa = nodes["TWN"], nodes["JPN"], nodes["USA"]
    relay = 'action = "release"\nmatch = { origin = ["TWN"] }'
    if given == "coarsened":
        relay += "\ntransform = { coarsen_km = 20 }"
    onward = {("TWN", "JPN"): RELEASE_AIR_SEA, ("JPN", "USA"): relay}
    agree([twn, jpn, usa], tmp_path / "v1", agreement_text(["TWN", "JPN", "USA"], onward))
    may_pass = Marking(control=OriginatorControl(rerelease=True, to=("USA",), max_hops=1))
    first = observation(1, marking=may_pass)
    twn.ingest([first])
    assert _deliver(twn, jpn) == 1 and _deliver(jpn, usa) == 1
    held = "JPN:via:TWN:test:1" if given == "coarsened" else "TWN:test:1"
    assert usa.store.get(held) is not None

    home_only = agreement_text(["TWN", "JPN", "USA"], {("TWN", "JPN"): RELEASE_AIR_SEA}, version=2)
    install(sign(home_only, [twn, jpn, usa]), [twn, jpn, usa], tmp_path / "v2")
    retraction = msgspec.structs.replace(first, version=2, retracted=True)
    if given == "retraction moves it":
        retraction = msgspec.structs.replace(retraction, geometry=Point(coordinates=(123.5, 24.0)))
    twn.ingest([retraction])
    assert _deliver(twn, jpn) == 1 and _deliver(jpn, usa) == 1

    # The full retraction would show USA what the agreement no longer gives it (the position
    # at full precision, or a new one): a notice goes instead, on JPN's word, coarsened.
    notice = usa.store.get("JPN:via:TWN:test:1")
    assert notice is not None and notice.retracted and notice.version == 2
    assert notice.provenance.relayed_id == "TWN:test:1"
    assert any("retraction notice" in words for words in notice.provenance.transforms)
    original = usa.store.get("TWN:test:1")
    if given == "coarsened":
        # What USA held was the coarsened copy: the notice withdraws it.
        assert original is None
        assert {o.id for o in usa.store.iter_query(ObservationFilter())} == set()
    else:
        # USA keeps version 1 under TWN's id, which only TWN's proof can reach.
        assert original is not None and original.version == 1


def test_an_idle_link_that_looks_seldom_seals_a_held_item_when_it_falls_due(
    nodes: dict[str, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the node's processes announce what they store, an idle link looks for items only
    now and then (``IDLE_POLL_TOLD_S``); an item held by a delay still leaves when it falls
    due, not at the next look."""
    twn, jpn = nodes["TWN"], nodes["JPN"]
    rules = {
        ("TWN", "JPN"): [
            'action = "release"\nmatch = { kind = ["air"] }\ntransform = { delay_s = 2 }'
        ]
    }
    agree([twn, jpn], tmp_path / "a", agreement_text(["TWN", "JPN"], rules))
    monkeypatch.setattr(link_module, "IDLE_POLL_TOLD_S", 120.0)
    transport = WssTransport(twn.identity, twn.partners, max_frame_bytes=1 << 20)
    link = link_module.Link(twn, twn.partners["JPN"], transport, told=True)
    twn.ingest([observation(1, at=dt.datetime.now(dt.UTC), marking=TO_ALL)])

    async def next_batch() -> tuple[float, int]:
        started = time.monotonic()
        batch = await asyncio.wait_for(link._next_batch(), timeout=30)
        return time.monotonic() - started, batch.header.count

    try:
        waited, count = asyncio.run(next_batch())
    finally:
        link.close()
    assert count == 1
    assert waited < 30  # sealed when due (about 2 s), not after the idle look's 120 s
