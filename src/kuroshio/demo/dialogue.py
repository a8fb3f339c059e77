"""The demo's short exchange on the dialogue channel: JPN asks TWN about the carrier group, TWN
replies and JPN acknowledges the reply; then the two coast guards work a rescue near the
Sakishima islands under a civil agreement.

Messages go through each node's operator API as a liaison officer's would; the incident through
the node directory, as ``kuroshio incident`` does. Each step waits for the other node to hold
what was sent (the links carry it); nothing here prints.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import httpx

from kuroshio.demo.nodes import DemoNode, newest
from kuroshio.messages import dialogue
from kuroshio.messages.incident import Asset, Change, Incident, Involved
from kuroshio.model import Point, Polygon
from kuroshio.node import open_node

CIVIL_ID: Final = "demo-coast-guards"
WAIT_S: Final = 60.0
SAKISHIMA_DATUM: Final = (124.45, 24.05)
"""South of Ishigaki, in the Sakishima islands."""


def civil_agreement_text(parties: Sequence[str], valid_from: dt.datetime) -> str:
    """The two coast guards' civil agreement: incidents only, no observation ever."""
    return (
        "\n".join(
            [
                f'id = "{CIVIL_ID}"',
                "version = 1",
                'title = "Coast guards: search and rescue, disaster relief"',
                "parties = [" + ", ".join(f'"{p}"' for p in parties) + "]",
                f"valid_from = {valid_from:%Y-%m-%dT%H:%M:%SZ}",
                f"valid_until = {valid_from + dt.timedelta(days=30):%Y-%m-%dT%H:%M:%SZ}",
                'scope = "civil"',
            ]
        )
        + "\n"
    )


def agree_civil(nodes: Sequence[DemoNode]) -> None:
    """Every coast guard signs the civil agreement; every node installs it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = civil_agreement_text([n.party for n in nodes], now - dt.timedelta(minutes=1))
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            text = node.sign_agreement_text(text, source=f"{CIVIL_ID}.toml")
    path = nodes[0].directory.parent / f"{CIVIL_ID}.v1.toml"
    path.write_text(text, encoding="utf-8")
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            node.install_agreement(path)


def _wait(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def _post(client: httpx.Client, node: DemoNode, path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"{node.api_url}{path}", json=body, headers=node.headers)
    response.raise_for_status()
    return response.json()


def _state(client: httpx.Client, node: DemoNode, message_id: str) -> str | None:
    response = client.get(f"{node.api_url}/api/messages/{message_id}", headers=node.headers)
    return str(response.json()["state"]) if response.status_code == 200 else None


def ask_about_the_carrier(client: httpx.Client, asker: DemoNode, asked: DemoNode) -> list[str]:
    """An RFI about the carrier group (with the asker's own report attached, when it has one),
    the reply, and the reply acknowledged; what happened, one line each."""
    own = newest(client, asker, "carrier")
    question = {
        "recipient": asked.party,
        "kind": "rfi",
        "precedence": "immediate",
        "subject": "Carrier group east of the Sakishima islands",
        "body": "Do you hold its escorts? Course and speed since it cleared Yonaguni?",
        "observations": [o.id for o in own],
        "area": [[123.5, 23.0], [126.5, 23.0], [126.5, 25.5], [123.5, 25.5]],
    }
    sent = client.post(f"{asker.api_url}/api/messages", json=question, headers=asker.headers)
    if sent.status_code == 422 and own:  # the agreement withholds the report: ask without it
        question["observations"] = []
        sent = client.post(f"{asker.api_url}/api/messages", json=question, headers=asker.headers)
    sent.raise_for_status()
    rfi = sent.json()
    lines = [f"{asker.party} asks {asked.party}: {rfi['subject']} ({rfi['precedence']})"]
    if not _wait(lambda: _state(client, asked, rfi["id"]) is not None):
        return [*lines, f"the request did not reach {asked.party} in {WAIT_S:.0f} s"]
    reply = _post(
        client,
        asked,
        "/api/messages",
        {
            "recipient": asker.party,
            "kind": "reply",
            "in_reply_to": rfi["id"],
            "subject": "Re: carrier group",
            "body": "Two escorts held; course 070 at 14 kn since 0300Z.",
        },
    )
    lines.append(f"{asked.party} replies: {reply['body']}")
    if not _wait(lambda: _state(client, asker, reply["id"]) is not None):
        return [*lines, f"the reply did not reach {asker.party} in {WAIT_S:.0f} s"]
    _post(client, asker, f"/api/messages/{reply['id']}/ack", {"state": "acked"})
    _wait(lambda: _state(client, asked, reply["id"]) == "acked")
    lines.append(
        f"{asker.party} acknowledges the reply; its request stands "
        f"{_state(client, asker, rfi['id'])}, the reply {_state(client, asked, reply['id'])} "
        f"at {asked.party}"
    )
    return lines


def work_a_rescue(opener: DemoNode, partner: DemoNode) -> list[str]:
    """A vessel in distress near the Sakishima islands, opened by ``opener``'s coast guard and
    worked with ``partner``'s under their civil agreement; what happened, one line each."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lon, lat = SAKISHIMA_DATUM
    box = ((lon - 0.2, lat - 0.15), (lon + 0.2, lat - 0.15), (lon + 0.2, lat + 0.15))
    with open_node(opener.directory) as node:
        incident = node.share_incident(
            Incident(
                id=f"{opener.party}:sar:demo",
                opened_by=opener.party,
                updated_by=opener.party,
                updated_at=now,
                shared_with=(partner.party,),
                kind="vessel_in_distress",
                title="Fishing vessel taking water south of Ishigaki",
                datum=Point(coordinates=SAKISHIMA_DATUM),
                datum_at=now - dt.timedelta(minutes=25),
                search_areas=(Polygon(coordinates=((*box, (lon - 0.2, lat + 0.15), box[0]),)),),
                involved=(Involved(what="person", name="crew", count=11),),
                assets=(Asset(party=opener.party, name="patrol vessel", type="PL"),),
            )
        )
    lines = [f"{opener.party} coast guard opens {incident.id}: {incident.title}"]

    def held(node: DemoNode, version: int) -> bool:
        with open_node(node.directory) as opened:
            found = opened.store.read(lambda tx: tx.incidents.latest(incident.id))
        return found is not None and dialogue.decode_incident(found).version >= version

    if not _wait(lambda: held(partner, 1)):
        return [*lines, f"the incident did not reach {partner.party} in {WAIT_S:.0f} s"]
    with open_node(partner.directory) as node:
        node.update_incident(
            incident.id,
            Change(
                sitrep="Helicopter on scene; life raft sighted",
                assets=(Asset(party=partner.party, name="helicopter", type="rotary wing"),),
            ),
        )
    lines.append(f"{partner.party} coast guard assigns a helicopter and reports")
    _wait(lambda: held(opener, 2))
    with open_node(opener.directory) as node:
        closed = node.update_incident(
            incident.id, Change(status="closed", final_report="Eleven crew recovered alive")
        )
    _wait(lambda: held(partner, closed.version))
    lines.append(f"{opener.party} closes it with a final report (v{closed.version}, audited)")
    return lines
