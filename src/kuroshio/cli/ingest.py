"""The ``kuroshio import``, ``kuroshio events`` and ``kuroshio report daily`` commands.

They parse options, call :func:`kuroshio.ingest.public_record.run_import` or the store, and print;
the importers themselves live in :mod:`kuroshio.ingest`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from kuroshio.cli.common import (
    NodeDir,
    at_least_one,
    console,
    err_console,
    parse_day,
    parse_time,
    progress_bar,
    split_values,
)
from kuroshio.errors import ImportRecordError
from kuroshio.ingest.daily_report import daily_report
from kuroshio.ingest.public_record import ImportReport, SourceName, run_import
from kuroshio.model import Event
from kuroshio.node import open_node
from kuroshio.store import EventFilter

app = typer.Typer()

# --- presentation ---------------------------------------------------------------------------

MAX_LISTED = 30


def _reasons(errors: Sequence[ImportRecordError]) -> list[tuple[str, int, str, str]]:
    """(reason, how many, first location, first detail), the most frequent first.

    Reasons are written "what: details", so records refused for the same cause group together.
    """
    grouped: dict[str, list[ImportRecordError]] = {}
    for error in errors:
        key = error.reason.split(": ", 1)[0]
        grouped.setdefault(key if len(key) < 90 else key[:87] + "…", []).append(error)
    return sorted(
        (
            (reason, len(found), found[0].location, found[0].reason.partition(": ")[2][:120])
            for reason, found in grouped.items()
        ),
        key=lambda item: (-item[1], item[0]),
    )


def print_import_report(report: ImportReport, *, as_json: bool, party: str) -> None:

    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), ensure_ascii=False) + "\n")
        return
    summary = report.summary
    table = Table(title=f"kuroshio import {report.source} → {party}")
    columns = ("read", "accepted", "new", "corrected", "unchanged", "skipped", "rejected")
    for column in (*columns, "events (new)", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.read),
        str(report.accepted),
        str(summary.inserted),
        str(summary.superseded),
        str(summary.unchanged),
        str(len(report.skipped)),
        str(len(summary.rejected)),
        f"{report.events_derived} ({report.events_new})",
        f"{report.seconds:.2f}",
    )
    console.print(table)
    for title, errors in (("skipped", report.skipped), ("rejected", summary.rejected)):
        if not errors:
            continue
        detail = Table(title=f"{title}: reasons (--json lists every record)")
        for column in ("count", "reason", "first at", "detail"):
            detail.add_column(column, overflow="fold")
        for reason, count, where, example in _reasons(errors)[:MAX_LISTED]:
            detail.add_row(str(count), reason, where, example)
        console.print(detail)
    if report.unknown_labels:
        labels = Table(title="labels the platform catalogue does not know (not guessed)")
        labels.add_column("label")
        labels.add_column("records", justify="right")
        for label, count in list(report.unknown_labels.items())[:MAX_LISTED]:
            labels.add_row(label, str(count))
        console.print(labels)
    for note in report.notes[:MAX_LISTED]:
        err_console.print(f"[yellow]repaired[/] {note}", highlight=False)


# --- commands -------------------------------------------------------------------------------


@app.command("import")
def import_command(
    source: Annotated[SourceName, typer.Argument(help="Which public source the files are.")],
    paths: Annotated[list[Path], typer.Argument(help="Files of that source.")],
    node_dir: NodeDir = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    events: Annotated[
        bool, typer.Option(help="Derive ADIZ, median-line and strait events.")
    ] = True,
) -> None:
    """Import public records (MND / JSO tracks, JSO press texts, daily counts, MSA warnings).

    Files are read record by record into one transaction: a bad file (even one found bad at its
    end) stores nothing, nor does an import cut short. Re-importing stores nothing new. Refused
    records are listed with where and why.
    """

    with open_node(node_dir) as node, progress_bar(as_json) as progress:
        task = progress.add_task(f"importing {source.value}", total=None)
        report = run_import(
            node,
            source,
            paths,
            events=events,
            on_progress=lambda done: progress.update(task, completed=done),
            max_file_bytes=node.config.limits.max_file_bytes,
        )
        progress.stop()
        print_import_report(report, as_json=as_json, party=node.party)
    if report.summary.rejected:
        raise typer.Exit(1)


@app.command("events")
def events_command(
    node_dir: NodeDir = Path("."),
    start: Annotated[str | None, typer.Option(help="From (ISO date/time, UTC if no zone).")] = None,
    end: Annotated[str | None, typer.Option(help="Until, exclusive.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="adiz_entry, median_line_crossing, strait_transit … (repeatable)."),
    ] = None,
    zone: Annotated[
        list[str] | None, typer.Option(help="Zone or gate name, or part of it (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 1_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List derived events: ADIZ entries, median-line crossings, strait transits."""
    at_least_one(limit, "--limit")
    selection = EventFilter(
        start=parse_time(start, "--start"), end=parse_time(end, "--end"), kinds=split_values(kind)
    )
    wanted = [z.lower() for z in split_values(zone)]
    with open_node(node_dir) as node:
        found = node.store.query_events(selection, limit=1_000_000)
    if wanted:
        found = [e for e in found if any(w in e.zone.lower() for w in wanted)]
    shown = found[:limit]
    if as_json:
        payload = {"count": len(found), "events": msgspec.to_builtins(shown)}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{len(shown)} of {len(found)} events (~ estimated: within the span)")
    for column in ("at (UTC)", "kind", "zone", "direction", "platform", "origin", "rests on"):
        table.add_column(column, overflow="fold")
    for event in shown:
        platform = event.platform
        what = ""
        if platform is not None:
            what = f"{platform.type or platform.label or '?'} ×{platform.count}"
        table.add_row(
            when(event),
            event.kind,
            event.zone,
            event.direction or "",
            what,
            event.origin,
            ", ".join(obs_id for obs_id, _ in event.observations[:2]),
        )
    console.print(table)


report_app = typer.Typer(help="Reports over the node's store.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("daily")
def daily_command(
    node_dir: NodeDir = Path("."),
    start: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD), inclusive.")] = None,
    offset_days: Annotated[
        int,
        typer.Option(
            help="Set the track map of day D beside the count of day D+N (the MND report of "
            "D covers D-1 06:00 to D 06:00; -1 pairs it with the previous day's count). An "
            "area map (since 2024-01-16) says which day it reports and is always set beside "
            "that day's count."
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Aircraft per day on the MND maps beside the daily count, and how often they agree.

    The track maps show only aircraft that crossed the median line or entered the south-west
    ADIZ, so their total is expected not to exceed the daily count; the area maps count every
    aircraft. Days off by more than one are given a reason.
    """
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    with open_node(node_dir) as node:
        comparison = daily_report(node.store, start=first, end=last, offset_days=offset_days)
    rate = comparison.agreement_rate
    if as_json:
        payload = {
            "days": [
                {**msgspec.to_builtins(row), "day": row.day.isoformat()} for row in comparison.rows
            ],
            "days_compared": comparison.days_compared,
            "days_matching": comparison.days_matching,
            "days_tracks_within_count": comparison.days_tracks_within_count,
            "days_within_one": comparison.days_within_one,
            "agreement_rate": rate,
            "within_one_rate": comparison.within_one_rate,
            "consistency_rate": comparison.consistency_rate,
            "reasons": comparison.reasons,
            "by_format": msgspec.to_builtins(comparison.by_format),
            "offset_days": comparison.offset_days,
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    table = Table(title="MND maps beside the daily aircraft count (Taiwan local days)")
    for column in ("map date", "map", "tracks/areas", "aircraft on maps", "count of"):
        table.add_column(column, justify="right")
    for column in ("daily count", "match"):
        table.add_column(column, justify="right")
    table.add_column("why they differ", overflow="fold")
    for row in comparison.rows:
        table.add_row(
            row.day.isoformat(),
            row.format or "",
            _text(row.tracks),
            _text(row.track_aircraft),
            row.count_day.isoformat() if row.count_day else "",
            _text(row.daily_count),
            {True: "yes", False: "±1" if row.within_one else "no", None: ""}[row.match],
            row.reason or "",
        )
    console.print(table)
    for name, tally in comparison.by_format.items():
        share = tally.exact / tally.compared if tally.compared else 0.0
        console.print(
            f"{name} maps: {tally.exact} of {tally.compared} days exact ({share:.1%}), "
            f"{tally.within_one} within ±1"
        )
    for why, days in comparison.reasons.items():
        console.print(f"  {days} day(s) off by more than one: {why}")
    shown = "n/a" if rate is None else f"{rate:.1%}"
    consistent = comparison.consistency_rate
    console.print(
        f"agreement: {comparison.days_matching} of {comparison.days_compared} days with both "
        f"figures ({shown}) have map total = daily count; map total ≤ daily count on "
        f"{comparison.days_tracks_within_count} days "
        f"({'n/a' if consistent is None else f'{consistent:.1%}'}); "
        f"count of day D{comparison.offset_days:+d} beside the track map of day D, of the "
        "day it reports (D-1) beside an area map"
    )


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def when(event: Event) -> str:
    """An event's time in UTC; an estimate as the span it lies in, marked ``~``."""
    interval = event.interval
    if not event.estimated or isinstance(interval, msgspec.UnsetType):
        return event.at.strftime("%Y-%m-%d %H:%M")
    start, end = interval.start, interval.end
    last = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"~ {start.strftime('%Y-%m-%d %H:%M')} – {last}"
