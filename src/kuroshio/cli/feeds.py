"""``kuroshio feed run|replay|status``: a node's live feeds from the command line.

``run`` runs one configured feed into the node's store without serving (the node's links send
what it stored once the node serves); ``replay`` runs a capture file through one feed, at its own
pace or faster; ``status`` shows what the process running the node's feeds last reported (read
from the store, so it is the serving node's real state). The feeds themselves are
:mod:`kuroshio.feeds`; this module parses options and prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from kuroshio.cli.common import AsJson, NodeDir, console, err_console
from kuroshio.errors import InputError
from kuroshio.federation.feeds import NodeFeeds
from kuroshio.feeds.status import FeedReport, feed_reports
from kuroshio.node import open_node

app = typer.Typer(
    help="Live feeds: run one, replay a capture through one, show their status.",
    add_completion=False,
)

FeedName = Annotated[str, typer.Argument(help="The feed's name ([feeds.NAME] in kuroshio.toml).")]


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command("run")
def feed_run(name: FeedName, node_dir: NodeDir = Path(".")) -> None:
    """Run feed NAME into the node's store until Ctrl-C (without serving the node: use this
    when the node does not run it itself, e.g. to try a feed's configuration)."""
    _logging()
    with open_node(node_dir) as node:
        feeds = NodeFeeds(node, [name])
        feed = feeds.feed(name)
        err_console.print(
            f"feed {name} ({feed.config.kind}) on {feed.config.endpoint} into {node.party}'s "
            "store; Ctrl-C stops",
            highlight=False,
        )
        asyncio.run(_until_stopped(feeds))
        _print_counters(feeds)


async def _until_stopped(feeds: NodeFeeds) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await feeds.run()


def _print_counters(feeds: NodeFeeds) -> None:
    for feed in feeds.feeds:
        status = feed.status()
        err_console.print(
            f"feed {status.name}: {status.frames} frames, {status.malformed} malformed, "
            f"{status.updates} updates, {status.delivered} stored, {status.dropped} dropped",
            highlight=False,
        )


@app.command("replay")
def feed_replay(
    name: FeedName,
    capture: Annotated[
        Path, typer.Argument(help="A libpcap file (tcpdump -w) or a recorded TCP stream.")
    ],
    node_dir: NodeDir = Path("."),
    speed: Annotated[
        float | None,
        typer.Option(help="1: the capture's own pace, 10: ten times faster (default: at once)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run a capture file through feed NAME into the node's store."""
    if speed is not None and speed <= 0:
        raise InputError(f"--speed must be more than 0, not {speed}")
    if not capture.is_file():
        raise InputError(f"{capture}: no such file")
    with open_node(node_dir) as node:
        feeds = NodeFeeds(node, [name])
        summary = asyncio.run(feeds.replay(name, capture, speed=speed))
        status = feeds.feed(name).status()
    if as_json:
        sys.stdout.write(msgspec.json.encode(status).decode() + "\n")
        return
    console.print(
        f"{capture.name} through feed {name}: {summary.frames} frames read, {status.malformed} "
        f"malformed, {status.updates} track updates, {status.thinned} thinned, "
        f"{summary.observations} observations stored in {status.tracks} tracks",
        highlight=False,
    )


def _when(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else ""


_STATE_STYLE = {"up": "green", "down": "red", "starting": "yellow"}


@app.command("status")
def feed_status(node_dir: NodeDir = Path("."), as_json: AsJson = False) -> None:
    """Each configured feed of the node as the process running it last reported: up, down
    (with its last error; it is being restarted) or not running."""
    with open_node(node_dir) as node:
        rows = node.store.read(lambda tx: tx.feeds.all())
        reports = feed_reports(node.config.feeds, rows, dt.datetime.now(dt.UTC))
    if as_json:
        sys.stdout.write(msgspec.json.encode(reports).decode() + "\n")
        return
    if not reports:
        console.print(f"{node.party} has no feeds configured ([feeds.NAME] in kuroshio.toml)")
        return
    table = Table(title=f"{node.party}: feeds")
    for column in (
        "feed", "kind", "endpoint", "state", "since (UTC)", "frames", "malformed", "updates",
        "stored", "dropped", "tracks", "connections", "restarts", "last error",
    ):  # fmt: skip
        table.add_column(column, overflow="fold")
    for report in reports:
        table.add_row(*_row(report))
    console.print(table)


def _row(report: FeedReport) -> list[str]:
    style = _STATE_STYLE.get(report.state, "dim")
    state = f"[{style}]{report.state}[/]"
    status = report.status
    if status is None:
        return [report.name, report.kind, report.endpoint, state, *[""] * 10]
    error = ""
    if status.last_error:
        error = f"{status.last_error} ({_when(status.last_error_at)})"
    return [
        report.name,
        report.kind,
        report.endpoint,
        state,
        _when(status.since) if report.state != "not running" else _when(report.reported_at),
        str(status.frames),
        str(status.malformed),
        str(status.updates),
        str(status.delivered),
        str(status.dropped),
        str(status.tracks),
        str(status.connections),
        str(status.restarts),
        error,
    ]


__all__ = ["app"]
