"""``kuroshio msg send|list|show|ack|escalate`` through the real command, on real node
directories; batches are handed from one node to the other in process."""

from __future__ import annotations

import json
from pathlib import Path

from test_messages_incidents import CIVIL

from agreements import agree
from cli_run import run
from kuroshio.exchange.receipt import open_receipt
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking
from kuroshio.node import Node, init_node, open_node
from observations import observation
from pinning import pin
from sealing import sealed_batch


def _deliver(sender: Node, receiver: Node) -> None:
    signed = Inbox(receiver).accept(
        receiver.partners[sender.party], sealed_batch(sender, receiver.party).frame()
    )
    sender.take_receipt(
        receiver.party, open_receipt(signed, receiver.identity.public_key_bytes), signed
    )


def _json(*args: str | Path) -> object:
    return json.loads(run(*args, "--json", check=True).stdout)


def test_rfi_reply_and_ack_from_the_command_line(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements")
    twn.ingest([observation(1, marking=Marking(tlp="AMBER", releasable_to=("JPN",)))])
    _deliver(twn, jpn)

    sent = _json(
        "msg", "send", "--node", twn.directory, "--to", "JPN", "--kind", "rfi",
        "--precedence", "immediate", "--subject", "Carrier group heading", "--body", "Course?",
        "--observation", "TWN:test:1", "--track", "cat062:4711",
        "--area", "123,24;124,24;124,25;123,25",
    )  # fmt: skip
    assert isinstance(sent, dict)
    assert sent["recipient"] == "JPN" and sent["precedence"] == "immediate"
    assert [o["id"] for o in sent["attachments"]["observations"]] == ["TWN:test:1"]
    assert sent["attachments"]["area"]["coordinates"][0][0] == [123.0, 24.0]
    _deliver(twn, jpn)

    [received] = _json("msg", "list", "--node", jpn.directory)  # type: ignore[misc]
    assert received["direction"] == "in" and received["state"] == "delivered"
    shown = run("msg", "show", sent["id"], "--node", jpn.directory, check=True).stdout
    assert "Carrier group heading" in shown and "attached track:cat062:4711" in shown

    reply = _json(
        "msg", "send", "--node", jpn.directory, "--to", "TWN", "--kind", "reply",
        "--reply-to", sent["id"], "--subject", "Re: carrier", "--body", "Heading 090.",
    )  # fmt: skip
    assert isinstance(reply, dict) and reply["thread"] == sent["id"]
    _deliver(jpn, twn)
    [theirs, ours] = _json("msg", "list", "--node", twn.directory, "--thread", sent["id"])  # type: ignore[misc]
    assert (theirs["message"]["kind"], ours["state"]) == ("reply", "acked")

    acked = _json("msg", "ack", reply["id"], "--node", twn.directory)
    assert isinstance(acked, dict) and acked["state"] == "acked"
    assert _json("msg", "escalate", "--node", twn.directory) == []


def test_refusals_are_one_line_naming_the_cause(tmp_path: Path) -> None:
    init_node(tmp_path / "twn", "TWN").close()
    result = run("msg", "send", "--node", tmp_path / "twn", "--to", "JPN", "--subject", "x")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: message TWN:msg:{result.stderr.split('TWN:msg:')[1].split(':')[0]}: "
        "no agreement with JPN is in force"
    ]
    bad = run("msg", "send", "--node", tmp_path / "twn", "--to", "JPN", "--subject", "x",
              "--precedence", "urgent")  # fmt: skip
    assert bad.returncode != 0 and "--precedence 'urgent' is not one of" in bad.stderr
    missing = run("msg", "ack", "NOPE", "--node", tmp_path / "twn")
    assert missing.stderr == "error: message NOPE: no such message here\n"


def test_standing_request_add_list_cancel(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements")
    asked = _json(
        "request", "add", "--node", jpn.directory, "--to", "TWN", "--event", "strait_transit",
        "--zone", "gate-miyako", "--platform-class", "carrier",
    )  # fmt: skip
    assert isinstance(asked, dict) and asked["request"]["zone"] == "gate-miyako"
    _deliver(jpn, twn)
    [held] = _json("request", "list", "--node", twn.directory)  # type: ignore[misc]
    assert (held["id"], held["owner"], held["cancelled_at"]) == (asked["id"], "JPN", None)
    listed = run("request", "list", "--node", jpn.directory, check=True).stdout
    assert "zone=gate-miyako" in listed and "active" in listed
    _json("request", "cancel", asked["id"], "--node", jpn.directory)
    _deliver(jpn, twn)
    [gone] = _json("request", "list", "--node", twn.directory)  # type: ignore[misc]
    assert gone["cancelled_at"] is not None
    bad = run("request", "add", "--node", jpn.directory, "--to", "TWN", "--near", "Yonaguni,x")
    assert bad.returncode != 0 and "--near 'Yonaguni,x': expected PLACE,LON,LAT,KM" in bad.stderr


def test_incident_open_update_close_list(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements", CIVIL)
    opened = _json(
        "incident", "open", "--node", jpn.directory, "--kind", "person_overboard",
        "--title", "Crew member overboard NE of Yonaguni", "--datum", "123.2,24.6",
        "--share-with", "TWN", "--search-area", "123.1,24.5;123.3,24.5;123.3,24.7;123.1,24.7",
        "--asset", "JCG Yonakuni:patrol vessel", "--involved", "person:crew member:1",
        "--sitrep", "Reported 0312Z by the master",
    )  # fmt: skip
    assert isinstance(opened, dict) and opened["shared_with"] == ["TWN"]
    _deliver(jpn, twn)
    updated = _json(
        "incident", "update", opened["id"], "--node", twn.directory,
        "--asset", "CGA helicopter:AS365", "--sitrep", "Helicopter on scene",
    )  # fmt: skip
    assert isinstance(updated, dict) and updated["version"] == 2
    _deliver(twn, jpn)
    closed = _json(
        "incident", "close", opened["id"], "--node", jpn.directory,
        "--final-report", "Recovered alive 0455Z",
    )  # fmt: skip
    assert isinstance(closed, dict) and closed["status"] == "closed"
    _deliver(jpn, twn)
    [seen] = _json("incident", "list", "--node", twn.directory)  # type: ignore[misc]
    assert (seen["version"], seen["status"], len(seen["assets"])) == (3, "closed", 2)
    table = run("incident", "list", "--node", twn.directory, check=True).stdout
    assert "person_overboard" in table and "closed" in table
    bad = run("incident", "update", opened["id"], "--node", twn.directory, "--status", "done")
    assert bad.returncode != 0 and "--status 'done'" in bad.stderr
