"""``kuroshio demo``: two (or three) sovereign nodes on loopback exchanging the scenario live.

Creates fresh nodes with new identities under ``demo-nodes/``, pins them to each other, has every
party sign one release agreement and every node install it, starts each as its own
``kuroshio serve`` process, replays each party's side of the built-in scenario into its own node
through the operator API (sped up), and reports what each side sent, received and signed for. The
parts live in :mod:`kuroshio.demo`; this module runs them and prints.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from kuroshio.cli.common import console
from kuroshio.demo.dialogue import CIVIL_ID, agree_civil, ask_about_the_carrier, work_a_rescue
from kuroshio.demo.nodes import (
    DRAIN_TIMEOUT_S,
    PAIR,
    PROGRESS_S,
    TICK_S,
    WATCH,
    DemoNode,
    FeedSender,
    agree,
    corrections,
    drained,
    holdings,
    links_of,
    make_nodes,
    newest,
    post,
    reports_of,
    start_node,
    stop_nodes,
    tracks_and_events,
    wait_ready,
)
from kuroshio.demo.scenario import scenario
from kuroshio.demo.sources import FEEDS, Message, messages
from kuroshio.errors import InputError
from kuroshio.model import Observation, is_party
from kuroshio.policy.agreement import EnforcedAgreement
from kuroshio.policy.describe import describe_match, describe_transforms

app = typer.Typer(add_completion=False)


class _Stop(Exception):
    """The first Ctrl-C or SIGTERM while the demo runs."""


@app.command("demo")
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo nodes live (recreated).")
    ] = Path("demo-nodes"),
    duration: Annotated[
        float, typer.Option(help="Wall-clock seconds the scenario replay should take.")
    ] = 90.0,
    speed: Annotated[
        float | None, typer.Option(help="Replay speed-up instead, e.g. 300 (overrides --duration).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Stop the nodes when the scenario is done.")
    ] = False,
    third: Annotated[str | None, typer.Option(help="Add a third party's node, e.g. USA.")] = None,
) -> None:
    """Run TWN and JPN nodes on loopback exchanging a built-in scenario live (Ctrl-C stops)."""
    run_demo(directory, console, duration=duration, speed=speed, once=once, third=third)


def _describe_agreement(console: Console, enforced: EnforcedAgreement) -> None:
    agreement = enforced.agreement
    console.print(
        f"Agreement in force: [bold]{agreement.id} v{agreement.version}[/] between "
        f"{', '.join(agreement.parties)}, signed by every party (digest {enforced.digest[:16]}), "
        f"valid until {agreement.valid_until:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    for direction in agreement.direction:
        for recipient in direction.to:
            for rule in direction.rule:
                console.print(
                    f"  {direction.sender} → {recipient}: "
                    f"{describe_match(rule.match)} — {describe_transforms(rule.transform)}",
                    highlight=False,
                )
    console.print("  anything else: withheld (default deny)", highlight=False)


def _progress(console: Console, client: httpx.Client, nodes: Sequence[DemoNode]) -> bool:
    """Print one line per node; True when every outbox is empty and every batch acked."""
    done = True
    for demo_node in nodes:
        links = links_of(client, demo_node)
        done = drained(links) and done
        parts = []
        for link in links:
            out, into, live = link["outgoing"], link["incoming"], link.get("live") or {}
            state = "[green]up[/]" if live.get("connected") else "[red]down[/]"
            parts.append(
                f"→ {link['partner']} {state}: {live.get('sent_items', 0)} sent in "
                f"{out['sealed_seq']} batches, {out['acked_seq']} signed for; "
                f"{into['last_seq']} batches in"
            )
            held = out.get("held", 0)
            if held:
                parts[-1] += f"; {held} held by the agreement's delay"
        console.print(f"  [bold]{demo_node.party}[/] " + " | ".join(parts), highlight=False)
    return done


def _summary(console: Console, nodes: Sequence[DemoNode], parties: Sequence[str]) -> None:
    table = Table(title="What each node holds: observations (track updates) and tracks, by origin")
    table.add_column("node")
    for party in parties:
        table.add_column(f"from {party}", justify="right")
    table.add_column("events derived", justify="right")
    tracks = tracks_and_events(nodes, parties)
    for party, counts in holdings(nodes, parties).items():
        held, events = tracks[party]
        cells = [
            f"{count} in {tracked} tracks" if tracked else str(count)
            for count, tracked in zip(counts, held, strict=True)
        ]
        table.add_row(party, *cells, str(events))
    console.print(table)
    for demo_node in nodes:
        console.print(
            f"Try: kuroshio events --node {demo_node.directory} | "
            f"kuroshio fuse --daily --node {demo_node.directory} | "
            f"kuroshio feed status --node {demo_node.directory}",
            highlight=False,
            soft_wrap=True,
        )


def _on_stop(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM: both are ignored from here on, before anything else runs,
    so that a second one, however soon it comes, cannot cut the nodes' stopping short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop


def run_demo(
    directory: Path,
    console: Console,
    *,
    duration: float = 90.0,
    speed: float | None = None,
    once: bool = False,
    third: str | None = None,
) -> None:
    """Run the federated demo (see the module docstring); blocks until done or interrupted."""
    parties = list(PAIR)
    if third is not None:
        third = third.upper()
        if not is_party(third) or third in PAIR:
            raise InputError(f"--third {third!r}: a party code other than TWN and JPN, e.g. USA")
        parties.append(third)
    span_end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sim_span = max(o.observed_at for o in scenario("JPN", span_end)) - span_end
    start = span_end - sim_span
    sent: list[Message] = [m for party in parties for m in messages(party, start)]
    posted = {party: reports_of(party, parties, start) for party in parties if party not in FEEDS}
    replay_speed = speed if speed else max(sim_span.total_seconds() / max(duration, 1.0), 1.0)

    console.print(f"[bold]kuroshio demo[/] — {', '.join(parties)} nodes in {directory}")
    nodes = make_nodes(directory, parties)
    _describe_agreement(console, agree(nodes, parties))
    pair = [n for n in nodes if n.party in PAIR]
    agree_civil(pair)
    console.print(
        f"Civil agreement in force: {CIVIL_ID} v1 ({' – '.join(PAIR)} coast guards; incidents "
        "only, never an observation)",
        highlight=False,
    )
    previous = signal.signal(signal.SIGTERM, _on_stop)
    previous_int = signal.signal(signal.SIGINT, _on_stop)
    try:
        for demo_node in nodes:
            start_node(demo_node)
        with httpx.Client(timeout=30.0) as client:
            for demo_node in nodes:
                wait_ready(client, demo_node)
            console.print("Nodes (each its own process; identities made just now):")
            for demo_node in nodes:
                # One line each and never wrapped: the addresses are there to be copied.
                console.print(
                    f"  {demo_node.party}  picture and API {demo_node.api_url}/  "
                    f"log in as {WATCH} / {demo_node.password}  "
                    f"federation (mTLS) {demo_node.federation_url}  "
                    f"log {demo_node.directory / 'serve.log'}",
                    highlight=False,
                    soft_wrap=True,
                )
            _describe_feeds(console, nodes)
            total = len(sent) + sum(len(r) for r in posted.values())
            console.print(
                f"Replaying {total} sensor messages ({sim_span} of activity) at "
                f"{replay_speed:.0f}× — about {sim_span.total_seconds() / replay_speed:.0f} s",
                highlight=False,
            )
            sender = FeedSender(nodes)
            try:
                _replay(console, client, nodes, sender, sent, posted, start, replay_speed)
            finally:
                sender.close()
            _correct(console, client, nodes)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while not _progress(console, client, nodes) and time.monotonic() < deadline:
                time.sleep(1.0)
            _summary(console, nodes, parties)
            _talk(console, client, pair)
            for demo_node in nodes:
                console.print(
                    f"Try: kuroshio audit receipts --node {demo_node.directory} "
                    f"{next(p for p in parties if p != demo_node.party)}",
                    highlight=False,
                )
            if once:
                return
            console.print("Nodes keep serving; Ctrl-C stops them.")
            while all(n.process is not None and n.process.poll() is None for n in nodes):
                time.sleep(0.5)
            console.print("[red]a node stopped[/]; see its serve.log")
    except (KeyboardInterrupt, _Stop):
        # The nodes are told first: printing cannot hold their stopping up. The waiting for
        # them is the ``finally``'s, with both signals still ignored.
        stop_nodes(nodes, wait=False)
        console.print("\nstopping nodes …")
    finally:
        stop_nodes(nodes)
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous)


def _talk(console: Console, client: httpx.Client, pair: Sequence[DemoNode]) -> None:
    """The dialogue channel: an RFI and its acknowledged reply; a rescue worked jointly."""
    twn, jpn = sorted(pair, key=lambda n: n.party != "TWN")
    console.print("On the dialogue channel (kuroshio msg list -n DIR):")
    for line in ask_about_the_carrier(client, jpn, twn):
        console.print(f"  {line}", highlight=False)
    console.print("Coast guards (kuroshio incident list -n DIR):")
    for line in work_a_rescue(jpn, twn):
        console.print(f"  {line}", highlight=False)


def _describe_feeds(console: Console, nodes: Sequence[DemoNode]) -> None:
    console.print("Sensors send to each node's live feeds (kuroshio feed status -n DIR):")
    for demo_node in nodes:
        for feed in FEEDS.get(demo_node.party, ()):
            console.print(
                f"  {demo_node.party} {feed.name}: {_FORMAT[feed.kind]} over {feed.scheme.upper()}"
                f" to 127.0.0.1:{demo_node.feed_ports[feed.name]} ({feed.carries})",
                highlight=False,
            )


_FORMAT = {
    "asterix": "ASTERIX CAT062 system tracks",
    "ais": "AIS NMEA sentences",
    "cot": "Cursor-on-Target from a TAK client",
}


def _correct(console: Console, client: httpx.Client, nodes: Sequence[DemoNode]) -> None:
    """A correction and a retraction of a track update: later versions travel too."""
    for demo_node in nodes:
        if demo_node.party not in FEEDS:
            continue
        chosen = newest(client, demo_node, "bomber") + newest(client, demo_node, "fighter")
        fixes = corrections(chosen)
        post(client, demo_node, fixes)
        if fixes:
            what = " and ".join(
                "a retraction" if fix.retracted else "a correction" for fix in fixes
            )
            console.print(
                f"  {demo_node.party} issues {what}: later versions travel like any report",
                highlight=False,
            )


def _replay(
    console: Console,
    client: httpx.Client,
    nodes: Sequence[DemoNode],
    sender: FeedSender,
    sent: list[Message],
    posted: dict[str, list[Observation]],
    start: dt.datetime,
    speed: float,
) -> None:
    """Send each sensor message to its feed, and post a third party's reports to its API, as
    the scenario's time reaches them."""
    by_party = {n.party: n for n in nodes}
    queue: list[tuple[dt.datetime, str, Message | Observation]] = sorted(
        [(m.at, m.party, m) for m in sent]
        + [(o.observed_at, party, o) for party, items in posted.items() for o in items],
        key=lambda entry: (entry[0], entry[1]),
    )
    began = time.monotonic()
    last_progress = began
    position = 0
    while position < len(queue):
        now_sim = start + dt.timedelta(seconds=(time.monotonic() - began) * speed)
        due: dict[str, list[Observation]] = {}
        while position < len(queue) and queue[position][0] <= now_sim:
            _, party, item = queue[position]
            if isinstance(item, Message):
                sender.send(item)
            else:
                due.setdefault(party, []).append(item)
            position += 1
        for party, observations in due.items():
            post(client, by_party[party], observations)
        if time.monotonic() - last_progress >= PROGRESS_S:
            last_progress = time.monotonic()
            console.print(
                f"[dim]{now_sim:%H:%M} UTC scenario time, {position}/{len(queue)} messages[/]",
                highlight=False,
            )
            _progress(console, client, nodes)
        time.sleep(TICK_S)


__all__ = ["app", "run_demo"]
