"""Command line for the dialogue channel: ``msg send|list|show|ack|escalate``, standing
requests (``request add|list|cancel``) and incidents (``incident open|update|close|list``).

Commands build a message from the options, hand it to the node (which releases it under the
agreement, queues it on the partner's link and audits it) and print (rich tables for people, JSON
for machines). The rules live in :mod:`kuroshio.messages`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from kuroshio.cli.common import AsJson, NodeDir, console, parse_time, split_values
from kuroshio.errors import InputError
from kuroshio.messages import dialogue
from kuroshio.messages.incident import Asset, Change, Incident, Involved
from kuroshio.messages.incident import Draft as IncidentDraft
from kuroshio.messages.thread import PRECEDENCES
from kuroshio.model import Polygon
from kuroshio.node import open_node

app = typer.Typer()
msg_app = typer.Typer(
    help="The dialogue channel: send, list, show and acknowledge messages between parties.",
    no_args_is_help=True,
)
app.add_typer(msg_app, name="msg")


def _area(value: str | None) -> list[list[float]] | None:
    """``lon,lat;lon,lat;…`` as a ring of positions."""
    if value is None:
        return None
    try:
        return [[float(n) for n in pair.split(",")] for pair in value.split(";") if pair]
    except ValueError:
        raise InputError(f"--area {value!r}: expected lon,lat;lon,lat;…") from None


def _print_json(value: object) -> None:
    typer.echo(msgspec.json.encode(value).decode())


@msg_app.command("send")
def send(
    to: Annotated[str, typer.Option("--to", help="The recipient party, e.g. JPN.")],
    subject: Annotated[str, typer.Option("--subject", help="One line.")],
    kind: Annotated[str, typer.Option("--kind", help="rfi, reply, ack, alert or note.")] = "rfi",
    body: Annotated[str, typer.Option("--body", help="The text of the message.")] = "",
    precedence: Annotated[
        str, typer.Option("--precedence", help="routine, priority, immediate or flash.")
    ] = "routine",
    tlp: Annotated[str, typer.Option("--tlp", help="TLP marking of the message.")] = "AMBER",
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", help="The message this answers (its thread).")
    ] = None,
    observation: Annotated[
        list[str] | None,
        typer.Option("--observation", help="Attach an item kept here: ID or ID@VERSION."),
    ] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help="Attach an event id.")] = None,
    track: Annotated[list[str] | None, typer.Option("--track", help="Attach a track id.")] = None,
    area: Annotated[
        str | None, typer.Option("--area", help="Attach an area: lon,lat;lon,lat;…")
    ] = None,
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Send a message to a partner, under the agreement in force with it."""
    if precedence not in PRECEDENCES:
        raise InputError(f"--precedence {precedence!r} is not one of {', '.join(PRECEDENCES)}")
    draft = dialogue.Draft(
        recipient=to,
        subject=subject,
        kind=kind,
        body=body,
        precedence=precedence,
        tlp=tlp,
        in_reply_to=reply_to,
        observations=split_values(observation),
        events=split_values(event),
        tracks=split_values(track),
        area=_area(area),
    )
    with open_node(node_dir) as node:
        sent = node.send_draft(draft)
    if as_json:
        _print_json(msgspec.to_builtins(sent))
        return
    console.print(f"{sent.kind} {sent.id} queued for {sent.recipient} ({sent.precedence})")


@msg_app.command("list")
def list_messages(
    partner: Annotated[str | None, typer.Option("--partner", help="Only this party.")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Only this thread.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only queued, delivered, read, acked or escalated."),
    ] = None,
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Messages sent and received, newest first."""
    with open_node(node_dir) as node, node.store.transaction() as tx:
        found = dialogue.listing(tx, partner=partner, thread=thread, state=state)
    if as_json:
        _print_json([k.as_builtins() for k in found])
        return
    table = Table("sent", "id", "", "partner", "kind", "precedence", "state", "subject")
    for k in found:
        table.add_row(
            f"{k.message.sent_at:%Y-%m-%d %H:%M:%SZ}",
            k.message.id,
            "→" if k.direction == "out" else "←",
            k.partner,
            k.message.kind,
            k.message.precedence,
            k.state,
            k.message.subject,
        )
    console.print(table)


@msg_app.command("show")
def show(message_id: str, node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """One message, its attachments and where it stands."""
    with open_node(node_dir) as node, node.store.transaction() as tx:
        item = dialogue.show(tx, message_id)
    if as_json:
        _print_json(item.as_builtins())
        return
    m = item.message
    console.print(f"[bold]{m.subject}[/]  ({m.kind}, {m.precedence}, TLP:{m.tlp})", markup=True)
    console.print(f"{m.sender} → {m.recipient}  sent {m.sent_at:%Y-%m-%d %H:%M:%SZ}")
    console.print(f"thread {m.thread}  state {item.state}  escalations {item.escalations}")
    if m.body:
        console.print(m.body, markup=False, highlight=False)
    for ref in m.attachments.refs():
        console.print(f"  attached {ref}", markup=False, highlight=False)


@msg_app.command("ack")
def ack(
    message_id: str,
    read_only: Annotated[
        bool, typer.Option("--read", help="Mark read only, not acknowledged.")
    ] = False,
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Acknowledge (or only mark read) a message received; its sender is told."""
    with open_node(node_dir) as node:
        item = node.mark_message(message_id, "read" if read_only else "acked")
    if as_json:
        _print_json(item.as_builtins())
        return
    console.print(f"{message_id} {item.state}; {item.partner} will be told")


@msg_app.command("escalate")
def escalate(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Escalate every message sent from here past its acknowledgement deadline (a serving node
    does this by itself)."""
    with open_node(node_dir) as node:
        found = node.escalate_messages()
    if as_json:
        _print_json([k.as_builtins() for k in found])
        return
    for k in found:
        console.print(f"{k.message.id} escalated ({k.escalations}), re-sent to {k.partner}")


request_app = typer.Typer(
    help="Standing requests: ask a partner to tell you when something happens.",
    no_args_is_help=True,
)
app.add_typer(request_app, name="request")


def _near(value: str | None) -> dict[str, object] | None:
    """``PLACE,LON,LAT,KM`` as the ``near`` criterion."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        place, lon, lat, km = parts[0], *map(float, parts[1:])
    except ValueError:
        raise InputError(f"--near {value!r}: expected PLACE,LON,LAT,KM") from None
    return {"place": place, "lon": lon, "lat": lat, "within_km": km}


@request_app.command("add")
def add_request(
    to: Annotated[str, typer.Option("--to", help="The party asked, e.g. JPN.")],
    event: Annotated[
        str | None,
        typer.Option("--event", help="strait_transit, median_line_crossing, adiz_entry…"),
    ] = None,
    zone: Annotated[
        str | None, typer.Option("--zone", help="Zone or gate, e.g. gate-miyako.")
    ] = None,
    platform_class: Annotated[
        list[str] | None, typer.Option("--platform-class", help="e.g. carrier, bomber.")
    ] = None,
    near: Annotated[
        str | None, typer.Option("--near", help="PLACE,LON,LAT,KM e.g. Yonaguni,123.0,24.47,200")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Lapses at (ISO 8601).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="One line.")] = None,
    precedence: Annotated[
        str, typer.Option("--precedence", help="Of the alerts: routine … flash.")
    ] = "priority",
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Ask a partner: tell me when… (every criterion given must hold)."""
    criteria: dict[str, object] = {
        "event": event,
        "zone": zone,
        "platform_class": list(split_values(platform_class)),
        "near": _near(near),
        "until": until,
    }
    words = [w for w in (event, zone, *split_values(platform_class), near) if w]
    draft = dialogue.Draft(
        recipient=to,
        subject=subject or ("Tell me when: " + " ".join(words))[:200],
        kind="rfi",
        precedence=precedence,
        request=criteria,
    )
    with open_node(node_dir) as node:
        sent = node.send_draft(draft)
    if as_json:
        _print_json(msgspec.to_builtins(sent))
        return
    console.print(f"standing request {sent.id} sent to {sent.recipient}")


@request_app.command("list")
def list_requests(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Standing requests made here and made of this node."""
    with open_node(node_dir) as node, node.store.transaction() as tx:
        found = dialogue.requests(tx)
    if as_json:
        _print_json(found)
        return
    table = Table("id", "asked by", "of", "criteria", "state")
    for r in found:
        criteria = r["request"] if isinstance(r["request"], dict) else {}
        words = ", ".join(f"{k}={v}" for k, v in criteria.items() if v not in (None, []))
        asked_of = r["partner"] if r["owner"] != r["partner"] else "this node"
        state = "cancelled" if r["cancelled_at"] else "active"
        table.add_row(str(r["id"]), str(r["owner"]), str(asked_of), words, state)
    console.print(table)


@request_app.command("cancel")
def cancel_request(request_id: str, node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Cancel a standing request made here; the partner is told."""
    with open_node(node_dir) as node:
        with node.store.transaction() as tx:
            asked = dialogue.show(tx, request_id)
        draft = dialogue.Draft(
            recipient=asked.partner,
            subject=f"Cancelled: {asked.message.subject}"[:200],
            kind="note",
            in_reply_to=request_id,
            cancels=request_id,
        )
        sent = node.send_draft(draft)
    if as_json:
        _print_json(msgspec.to_builtins(sent))
        return
    console.print(f"standing request {request_id} cancelled; {sent.recipient} is told")


incident_app = typer.Typer(
    help="Search-and-rescue and disaster incidents, shared under civil agreements.",
    no_args_is_help=True,
)
app.add_typer(incident_app, name="incident")


def _point(value: str, option: str) -> list[float]:
    try:
        lon, lat = (float(n) for n in value.split(","))
    except ValueError as error:
        raise InputError(f"{option} {value!r}: expected LON,LAT ({error})") from None
    return [lon, lat]


def _named(value: str) -> tuple[str, str]:
    """``NAME`` or ``NAME:TYPE``."""
    name, _, kind = value.partition(":")
    return name, kind


def _polygon(value: str, option: str) -> Polygon:
    ring = _area(value) or []
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    try:
        return msgspec.convert({"type": "Polygon", "coordinates": [ring]}, Polygon)
    except msgspec.ValidationError as error:
        raise InputError(f"{option} {value!r}: {error}") from None


def _assets(values: list[str] | None, party: str) -> tuple[Asset, ...]:
    """``NAME`` or ``NAME:TYPE``, assigned by this node's party."""
    return tuple(Asset(party=party, name=n, type=t) for n, t in map(_named, values or ()))


def _involved(values: list[str] | None) -> tuple[Involved, ...]:
    """``person:NAME[:COUNT]``, ``vessel:NAME`` or ``aircraft:NAME``."""
    found = []
    for value in values or ():
        what, _, rest = value.partition(":")
        name, _, count = rest.partition(":")
        try:
            found.append(
                msgspec.convert({"what": what, "name": name, "count": int(count or 1)}, Involved)
            )
        except (ValueError, msgspec.ValidationError) as error:
            raise InputError(f"--involved {value!r}: {error}") from None
    return tuple(found)


def _print_incident(incident: Incident, as_json: bool, said: str) -> None:
    if as_json:
        _print_json(msgspec.to_builtins(incident))
        return
    console.print(f"incident {incident.id} v{incident.version} {said} ({incident.status})")


Assets = Annotated[
    list[str] | None, typer.Option("--asset", help="An asset this party assigns: NAME[:TYPE].")
]
Areas = Annotated[
    list[str] | None, typer.Option("--search-area", help="A search area: lon,lat;lon,lat;…")
]
Involvement = Annotated[
    list[str] | None,
    typer.Option("--involved", help="person:NAME[:COUNT], vessel:NAME or aircraft:NAME."),
]


@incident_app.command("open")
def open_incident(
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="person_overboard, vessel_in_distress, aircraft_down, typhoon, earthquake, "
            "tsunami or other.",
        ),
    ],
    title: Annotated[str, typer.Option("--title", help="One line.")],
    datum: Annotated[str, typer.Option("--datum", help="Datum position: LON,LAT.")],
    share_with: Annotated[
        list[str] | None, typer.Option("--share-with", help="Parties to work it with.")
    ] = None,
    datum_at: Annotated[
        str | None, typer.Option("--datum-at", help="Datum time (ISO 8601); default now.")
    ] = None,
    search_area: Areas = None,
    asset: Assets = None,
    involved: Involvement = None,
    sitrep: Annotated[str | None, typer.Option("--sitrep", help="A first report.")] = None,
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Open an incident and share it under the civil agreement with each party named."""
    draft = IncidentDraft(
        kind=kind,
        title=title,
        datum=_point(datum, "--datum"),
        datum_at=parse_time(datum_at, "--datum-at"),
        share_with=split_values(share_with),
        search_areas=[_area(a) or [] for a in search_area or ()],
        involved=_involved(involved),
        assets=[_named(a) for a in asset or ()],
        sitrep=sitrep,
    )
    with open_node(node_dir) as node:
        shared = node.open_incident(draft)
    _print_incident(shared, as_json, "opened")


@incident_app.command("update")
def update_incident(
    incident_id: str,
    sitrep: Annotated[str | None, typer.Option("--sitrep", help="A situation report.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open or suspended.")] = None,
    search_area: Areas = None,
    asset: Assets = None,
    involved: Involvement = None,
    share_with: Annotated[
        list[str] | None, typer.Option("--share-with", help="Also work it with these parties.")
    ] = None,
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Add to an incident (sitrep, assets, search areas, …); every party working it is sent
    the new version."""
    if status not in (None, "open", "suspended"):
        raise InputError(f"--status {status!r}: open or suspended (close with 'incident close')")
    with open_node(node_dir) as node:
        change = Change(
            sitrep=sitrep,
            status=status,  # type: ignore[arg-type]
            search_areas=tuple(_polygon(a, "--search-area") for a in search_area or ()),
            assets=_assets(asset, node.party),
            involved=_involved(involved),
            share_with=split_values(share_with),
        )
        updated = node.update_incident(incident_id, change)
    _print_incident(updated, as_json, "updated")


@incident_app.command("close")
def close_incident(
    incident_id: str,
    final_report: Annotated[str, typer.Option("--final-report", help="The final report.")],
    node_dir: NodeDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Close an incident with its final report."""
    with open_node(node_dir) as node:
        closed = node.update_incident(
            incident_id, Change(status="closed", final_report=final_report)
        )
    _print_incident(closed, as_json, "closed")


@incident_app.command("list")
def list_incidents(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Incidents kept here (the newest version of each)."""
    with open_node(node_dir) as node, node.store.transaction() as tx:
        found = dialogue.incidents(tx)
    if as_json:
        _print_json([msgspec.to_builtins(i) for i in found])
        return
    table = Table("updated", "id", "v", "kind", "status", "parties", "assets", "title")
    for i in found:
        table.add_row(
            f"{i.updated_at:%Y-%m-%d %H:%M:%SZ}",
            i.id,
            str(i.version),
            i.kind,
            i.status,
            ", ".join(i.parties()),
            str(len(i.assets)),
            i.title,
        )
    console.print(table)
