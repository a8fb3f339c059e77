"""Command line for the dialogue channel: ``msg send|list|show|ack|escalate``.

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

from kuroshio.cli.common import AsJson, NodeDir, console, split_values
from kuroshio.errors import InputError
from kuroshio.messages import dialogue
from kuroshio.messages.thread import PRECEDENCES
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
