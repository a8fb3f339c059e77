"""The dialogue channel between real nodes (``kuroshio serve`` processes, mutual TLS on
loopback), driven through the command line as liaison officers would: a request for information
about a track and its reply, a flash message escalated when not acknowledged in time, a standing
request answered for a matching transit only, a third party that receives only the threads its
agreements allow, kill -9 of a node mid-thread, and a rescue worked by two coast-guard nodes under
a civil agreement while no exchange agreement exists."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from federation_nodes import ServedNode, agree, wait_until

from agreements import agreement_text
from cli_run import run
from kuroshio.model import LineString, Marking, Observation, Platform
from observations import observation

TO_JAPAN = Marking(tlp="AMBER", releasable_to=("JPN",))
CARRIER = Platform(type="Type 001", platform_class="carrier", count=1, nationality="CHN")
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


def _cli(node: ServedNode, *args: str) -> Any:
    return json.loads(run(*args, "--node", node.directory, "--json", check=True).stdout)


def _messages(node: ServedNode) -> list[dict[str, Any]]:
    columns = ("id", "direction", "partner", "thread", "kind", "state", "escalations", "body")
    return [
        dict(zip(columns, row, strict=True))
        for row in node.query(f"SELECT {', '.join(columns)} FROM messages ORDER BY sent_at, id")
    ]


def _one(node: ServedNode, message_id: str) -> dict[str, Any] | None:
    found = [m for m in _messages(node) if m["id"] == message_id]
    return found[0] if found else None


def _has(node: ServedNode, message_id: str, state: str | None = None) -> bool:
    found = _one(node, message_id)
    return found is not None and (state is None or found["state"] == state)


def _track(number: int, *positions: tuple[float, float]) -> Observation:
    return observation(
        number,
        origin="TWN",
        kind="sea",
        at=T0,
        until=T0 + dt.timedelta(minutes=30),
        geometry=LineString(coordinates=positions),
        platform=CARRIER,
        marking=TO_JAPAN,
        track=f"demo:carrier-{number}",
    )


def _quick_flash(node: ServedNode) -> None:
    """This party acknowledges flash messages within 3 s (its own setting)."""
    config = node.directory / "kuroshio.toml"
    text = config.read_text()
    config.write_text(text.replace("window = 4\n", "window = 4\nack_within_s = { flash = 3.0 }\n"))


def test_three_parties_talk_under_their_agreements(tmp_path: Path) -> None:
    twn, jpn, phl = (ServedNode(tmp_path, party) for party in ("TWN", "JPN", "PHL"))
    for node in (twn, jpn, phl):
        for other in (twn, jpn, phl):
            if other is not node:
                node.pin(other)
    _quick_flash(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]), "twn-jpn")
    agree([jpn, phl], agreement_text(["JPN", "PHL"], agreement_id="jpn-phl"), "jpn-phl")
    for node in (twn, jpn, phl):
        node.start()
    try:
        # A standing request, answered by TWN for the Miyako transit only.
        asked = _cli(
            jpn, "request", "add", "--to", "TWN", "--event", "strait_transit",
            "--zone", "gate-miyako", "--platform-class", "carrier",
        )  # fmt: skip
        wait_until(lambda: twn.query("SELECT count(*) FROM standing_requests")[0][0] == 1, "ask")
        miyako = _track(1, (126.0, 26.0), (127.0, 24.5))
        bashi = _track(2, (121.0, 21.5), (121.5, 19.5))
        twn.add([miyako, bashi])
        wait_until(lambda: jpn.count("TWN:test:") == 2, "both tracks at JPN")
        wait_until(lambda: any(m["kind"] == "alert" for m in _messages(jpn)), "the alert at JPN")
        alerts = [m for m in _messages(twn) if m["kind"] == "alert"]
        assert len(alerts) == 1 and alerts[0]["thread"] == asked["id"]
        alert = json.loads(alerts[0]["body"])
        assert [o["id"] for o in alert["attachments"]["observations"]] == [miyako.id]
        assert alert["subject"].startswith("strait_transit Miyako Strait")

        # A request for information about the track, and its reply.
        rfi = _cli(
            twn, "msg", "send", "--to", "JPN", "--kind", "rfi", "--precedence", "priority",
            "--subject", "Carrier east of Miyako", "--observation", miyako.id,
            "--track", "demo:carrier-1", "--body", "Do you hold it after it turned south?",
        )  # fmt: skip
        wait_until(lambda: _has(jpn, rfi["id"]), "the RFI at JPN")
        wait_until(lambda: _has(twn, rfi["id"], "delivered"), "JPN's receipt for the RFI")
        reply = _cli(
            jpn, "msg", "send", "--to", "TWN", "--kind", "reply", "--reply-to", rfi["id"],
            "--subject", "Re: carrier", "--body", "Held until 0240Z heading 160.",
        )  # fmt: skip
        wait_until(lambda: _has(twn, reply["id"]), "the reply at TWN")
        wait_until(lambda: _has(twn, rfi["id"], "acked"), "the RFI acknowledged at TWN")
        [thread] = {m["thread"] for m in _messages(twn) if m["id"] in (rfi["id"], reply["id"])}
        assert thread == rfi["id"]

        # A flash message not acknowledged in time is escalated, then acknowledged.
        flash = _cli(
            twn, "msg", "send", "--to", "JPN", "--kind", "alert", "--precedence", "flash",
            "--subject", "Carrier group launching aircraft",
        )  # fmt: skip
        wait_until(lambda: _has(jpn, flash["id"]), "the flash at JPN")
        wait_until(lambda: (_one(twn, flash["id"]) or {}).get("escalations", 0) >= 1, "escalation")
        assert any(e["subject"] == f"escalate {flash['id']}" for e in twn.audit("message"))
        assert [m["id"] for m in _messages(jpn)].count(flash["id"]) == 1
        _cli(jpn, "msg", "ack", flash["id"])
        wait_until(lambda: _has(twn, flash["id"], "acked"), "the flash acknowledged at TWN")

        # The third party: nothing from TWN (no agreement), JPN's own thread only.
        refused = run("msg", "send", "--node", twn.directory, "--to", "PHL", "--subject", "x")
        assert refused.returncode != 0 and "no agreement with PHL is in force" in refused.stderr
        note = _cli(jpn, "msg", "send", "--to", "PHL", "--kind", "note", "--subject", "Heads up")
        wait_until(lambda: _has(phl, note["id"]), "JPN's note at PHL")
        assert [(m["id"], m["partner"]) for m in _messages(phl)] == [(note["id"], "JPN")]
        assert phl.count("TWN:") == 0

        # kill -9 of the receiver mid-thread, then of the sender: no message lost or doubled.
        first = _cli(twn, "msg", "send", "--to", "JPN", "--kind", "note", "--subject", "one")
        jpn.kill()
        later = [
            _cli(twn, "msg", "send", "--to", "JPN", "--kind", "note", "--subject", word)
            for word in ("two", "three")
        ]
        jpn.start()
        last = _cli(twn, "msg", "send", "--to", "JPN", "--kind", "note", "--subject", "four")
        twn.kill()
        twn.start()
        sent = [first["id"], *(m["id"] for m in later), last["id"]]
        wait_until(lambda: all(_has(jpn, i) for i in sent), "every note at JPN")
        wait_until(lambda: all(_has(twn, i, "delivered") for i in sent), "every receipt")
        received = [m["id"] for m in _messages(jpn) if m["direction"] == "in"]
        assert len(received) == len(set(received))
        for node in (twn, jpn, phl):
            verified = run("audit", "verify", "--node", node.directory)
            assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        for node in (twn, jpn, phl):
            node.stop()


def test_coast_guards_share_a_rescue_under_a_civil_agreement(tmp_path: Path) -> None:
    cga, jcg = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    cga.pin(jcg)
    jcg.pin(cga)
    civil = agreement_text(["TWN", "JPN"], {}, agreement_id="cg-sar", extra='scope = "civil"')
    agree([cga, jcg], civil, "cg-sar")
    cga.start()
    jcg.start()
    try:
        opened = _cli(
            jcg, "incident", "open", "--kind", "vessel_in_distress",
            "--title", "Fishing vessel taking water south of Ishigaki", "--datum", "124.2,24.3",
            "--share-with", "TWN", "--search-area", "124.0,24.2;124.4,24.2;124.4,24.5;124.0,24.5",
            "--asset", "JCG Hateruma:patrol vessel", "--involved", "person:crew:11",
        )  # fmt: skip
        incident_id = opened["id"]

        def version_at(node: ServedNode) -> int:
            rows = node.query("SELECT max(version) FROM incidents WHERE id = ?", (incident_id,))
            return int(rows[0][0] or 0) if rows else 0

        wait_until(lambda: version_at(cga) == 1, "the incident at the TWN coast guard")
        military = observation(
            9, kind="sea", at=T0, platform=Platform(platform_class="destroyer", service="PLAN"),
            marking=Marking(tlp="CLEAR", releasable_to=("JPN",)),
        )  # fmt: skip
        cga.add([military])
        _cli(cga, "incident", "update", incident_id, "--asset", "CGA Yilan:patrol vessel",
             "--sitrep", "Yilan on scene 0520Z")  # fmt: skip
        wait_until(lambda: version_at(jcg) == 2, "the update at the JPN coast guard")
        _cli(jcg, "incident", "close", incident_id, "--final-report", "Eleven crew recovered")
        wait_until(lambda: version_at(cga) == 3, "the closed incident at TWN")
        [seen] = _cli(cga, "incident", "list")
        assert (seen["status"], [a["party"] for a in seen["assets"]]) == ("closed", ["JPN", "TWN"])
        assert jcg.count("TWN:") == 0
        assert cga.query("SELECT count(*) FROM outbox WHERE id = ?", (military.id,))[0][0] == 0
        assert [e["subject"] for e in jcg.audit("incident")][-1] == f"closed {incident_id} v3"
    finally:
        cga.stop()
        jcg.stop()
