"""The ``kuroshio fuse`` command: the fused picture of a node, its joint episodes, daily totals.

The command reads the node's current observations in the window, fuses them
(:func:`kuroshio.fusion.picture.fused_picture`) and prints; it stores nothing. ``--report`` lists
the episodes two or more parties reported, with counts per party and fused; ``--daily`` the daily
totals with each jointly seen sortie counted once.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table

from kuroshio.cli.common import AsJson, NodeDir, console, parse_time
from kuroshio.errors import InputError
from kuroshio.fusion.episodes import Episode
from kuroshio.fusion.picture import fused_picture
from kuroshio.node import open_node
from kuroshio.store import ObservationFilter

app = typer.Typer()


def _zone(offset: str) -> dt.tzinfo:
    try:
        moment = dt.datetime.fromisoformat(f"2000-01-01T00:00{offset}")
    except ValueError:
        raise InputError(f"--tz {offset!r} is not a UTC offset like +08:00") from None
    if moment.tzinfo is None:
        raise InputError(f"--tz {offset!r} is not a UTC offset like +08:00")
    return moment.tzinfo


def _sides(episode: Episode) -> str:
    parts = []
    for origin, side in episode.by_origin.items():
        parts.append(f"{origin}: {side.items} rep, {side.aircraft} ac, {side.ships} ships")
    return "\n".join(parts)


def _episode_json(episode: Episode, tz: dt.tzinfo) -> dict[str, Any]:
    first, last = episode.days(tz)
    payload: dict[str, Any] = msgspec.to_builtins(episode)
    payload["first_day"], payload["last_day"] = first.isoformat(), last.isoformat()
    return payload


@app.command("fuse")
def fuse_command(
    node_dir: NodeDir = Path("."),
    start: Annotated[str | None, typer.Option(help="From (ISO date/time, UTC if no zone).")] = None,
    end: Annotated[str | None, typer.Option(help="Until, exclusive.")] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Episodes reported by two or more parties.")
    ] = False,
    daily: Annotated[
        bool, typer.Option("--daily", help="Daily totals, a jointly seen sortie once.")
    ] = False,
    tz: Annotated[str, typer.Option("--tz", help="UTC offset of days.")] = "+08:00",
    as_json: AsJson = False,
) -> None:
    """Fuse the node's reports of every origin into sorties and tracks, each counted once.

    Without options: the sorties two or more parties reported. --report: the episodes found
    in more than one party's reports, counts per party and fused. --daily: daily totals.
    """
    zone = _zone(tz)
    selection = ObservationFilter(
        start=parse_time(start, "--start"), end=parse_time(end, "--end"), kinds=("air", "sea")
    )
    with open_node(node_dir) as node:
        observations = list(node.store.iter_query(selection))
    picture = fused_picture(observations, tz=zone)
    joint = [item for item in picture.items if item.jointly_seen]
    if as_json:
        payload: dict[str, Any] = {
            "reports": picture.reports,
            "fused_items": len(picture.items),
            "jointly_seen": len(joint),
            "tz": tz,
        }
        if report:
            payload["episodes"] = [_episode_json(e, zone) for e in picture.episodes]
        if daily:
            payload["daily"] = [
                {**msgspec.to_builtins(t), "double_counted": t.double_counted}
                for t in picture.totals
            ]
        if not report and not daily:
            payload["items"] = msgspec.to_builtins(joint)
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    if report:
        table = Table(title=f"episodes reported by more than one party (days at UTC{tz})")
        for column in ("days", "episode", "per party", "fused", "jointly seen"):
            table.add_column(column, overflow="fold")
        for episode in picture.episodes:
            first, last = episode.days(zone)
            fused = episode.fused
            table.add_row(
                f"{first} – {last}",
                episode.name,
                _sides(episode),
                f"{fused.items} items, {fused.aircraft} ac, {fused.ships} ships",
                str(episode.jointly_seen),
            )
        console.print(table)
    if daily:
        table = Table(title=f"daily totals (days at UTC{tz}); a jointly seen sortie once")
        for column in (
            "day",
            "kind",
            "per party",
            "fused",
            "jointly seen",
            "not counted twice",
        ):
            table.add_column(column)
        for total in picture.totals:
            table.add_row(
                total.day.isoformat(),
                total.kind,
                ", ".join(f"{o} {n}" for o, n in total.by_origin.items()),
                str(total.fused),
                str(total.jointly_seen),
                str(total.double_counted),
            )
        console.print(table)
    if not report and not daily:
        table = Table(title="sorties and tracks reported by more than one party")
        for column in ("from (UTC)", "kind", "platform", "per party", "sources"):
            table.add_column(column, overflow="fold")
        for item in joint:
            platform = item.platform
            table.add_row(
                item.start.strftime("%Y-%m-%d %H:%M"),
                item.kind,
                f"{platform.type or platform.platform_class or '?'} ×{platform.count}",
                ", ".join(f"{o} {n}" for o, n in item.counts.items()),
                "\n".join(source.id for source in item.sources),
            )
        console.print(table)
    console.print(
        f"{picture.reports} reports → {len(picture.items)} fused items, "
        f"{len(joint)} reported by more than one party; {len(picture.episodes)} joint episodes"
    )
