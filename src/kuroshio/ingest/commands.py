"""The ``kuroshio import``, ``kuroshio events`` and ``kuroshio report daily`` commands.

:func:`run_import` is the import as a library call (read every file whole, store, derive events),
shared by the command and the benchmark; the typer commands only parse options and print. The
importers themselves live in one module per source beside this one.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.table import Table

from kuroshio.cli_options import NodeDir, console, err_console
from kuroshio.ingest.load import LoadSummary, store_records
from kuroshio.ingest.records import ImportRecordError, Record
from kuroshio.ingest.source_files import SkippedRecord, is_unidentified
from kuroshio.model import Event, Observation
from kuroshio.store import EventFilter

if TYPE_CHECKING:
    from kuroshio.node import Node


class SourceName(StrEnum):
    """The public sources ``kuroshio import`` reads."""

    mnd_tracks = "mnd-tracks"
    jso_tracks = "jso-tracks"
    jso_press = "jso-press"
    daily_counts = "daily-counts"
    nav_warnings = "nav-warnings"


class ImportReport(msgspec.Struct, kw_only=True):
    """What one import did: the store's counts, the skipped and refused records, the events."""

    source: str
    files: list[str]
    summary: LoadSummary
    skipped: list[ImportRecordError] = msgspec.field(default_factory=list)
    unknown_labels: dict[str, int] = msgspec.field(default_factory=dict)
    notes: list[str] = msgspec.field(default_factory=list)
    events_derived: int = 0
    events_new: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.summary.inserted + self.summary.superseded + self.summary.unchanged

    def as_json(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "source": self.source,
            "files": self.files,
            "read": summary.read,
            "accepted": self.accepted,
            "inserted": summary.inserted,
            "superseded": summary.superseded,
            "unchanged": summary.unchanged,
            "stale": summary.stale,
            "skipped": [{"location": e.location, "reason": e.reason} for e in self.skipped],
            "rejected": [{"location": e.location, "reason": e.reason} for e in summary.rejected],
            "unknown_labels": self.unknown_labels,
            "notes": self.notes,
            "events_derived": self.events_derived,
            "events_new": self.events_new,
            "seconds": round(self.seconds, 3),
        }


def read_source(source: SourceName, path: Path, *, party: str) -> list[Record]:
    """Every record of one file of a source, read and checked whole (ImportFileError if bad)."""
    if source is SourceName.mnd_tracks:
        from kuroshio.ingest.mnd_tracks import read_mnd_tracks

        return read_mnd_tracks(path)
    if source is SourceName.jso_tracks:
        from kuroshio.ingest.jso_tracks import read_jso_tracks

        return read_jso_tracks(path)
    if source is SourceName.jso_press:
        from kuroshio.ingest.jso_press import read_jso_press

        return read_jso_press(path)
    if source is SourceName.nav_warnings:
        from kuroshio.ingest.nav_warnings import read_nav_warnings

        return read_nav_warnings(path, origin=party)
    raise ValueError(f"{source} has no observation records")


def derive_and_store_events(
    node: Node,
    observations: Sequence[Observation],
    reported: Mapping[tuple[str, int], Sequence[Event]] | None = None,
) -> tuple[int, int]:
    """Events of the observations, with those their source states (``reported``, by the
    observation they rest on), stored (idempotent on event id): (derived, new)."""
    from kuroshio.geo import derive_events

    events: dict[str, Event] = {}
    for observation in observations:
        for event in derive_events(observation):
            events[event.id] = event
        for event in (reported or {}).get(observation.key, ()):
            events[event.id] = event
    new = node.store.put_events(list(events.values())) if events else 0
    return len(events), new


def run_import(
    node: Node,
    source: SourceName,
    paths: Sequence[Path],
    *,
    events: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import files of one source into a node.

    Every file is read and validated whole before anything is stored, so a bad file (truncated,
    mis-encoded, missing columns) raises ImportFileError and stores nothing at all. Records are
    then stored in durable chunks; re-importing stores nothing new.
    """
    started = time.perf_counter()
    if source is SourceName.daily_counts:
        return _import_daily_counts(node, paths, started)
    records: list[Record] = []
    reported: dict[tuple[str, int], list[Event]] = {}
    if source is SourceName.jso_press:
        # Read together: a correction applies to the release it names in any of the files.
        from kuroshio.ingest.jso_press import read_jso_press_reported

        records, reported = read_jso_press_reported(paths)
    else:
        for path in paths:
            records.extend(read_source(source, path, party=node.party))
    unknown: Counter[str] = Counter()
    valid = [(location, item) for location, item in records if isinstance(item, Observation)]
    for _, observation in valid:
        platform = observation.platform
        if is_unidentified(platform) and platform is not None and platform.label:
            unknown[platform.label] += 1
    summary = store_records(
        node.ingest,
        records,
        on_chunk=(lambda s: on_progress(s.read)) if on_progress else None,
    )
    report = _report(source, paths, summary)
    report.unknown_labels = dict(unknown.most_common())
    if events:
        # A record the store refused (a conflicting duplicate) is not what the store holds.
        refused = {e.location for e in report.summary.rejected}
        kept = [observation for location, observation in valid if location not in refused]
        report.events_derived, report.events_new = derive_and_store_events(node, kept, reported)
    report.seconds = time.perf_counter() - started
    return report


def _report(source: SourceName, paths: Sequence[Path], summary: LoadSummary) -> ImportReport:
    skipped: list[ImportRecordError] = [e for e in summary.rejected if isinstance(e, SkippedRecord)]
    summary.rejected = [e for e in summary.rejected if not isinstance(e, SkippedRecord)]
    return ImportReport(
        source=source.value, files=[str(p) for p in paths], summary=summary, skipped=skipped
    )


def _import_daily_counts(node: Node, paths: Sequence[Path], started: float) -> ImportReport:
    from kuroshio.ingest.daily_counts import (
        DailyCount,
        DailyRecord,
        read_daily_counts,
        store_daily_counts,
    )

    records: list[DailyRecord] = []
    for path in paths:
        records.extend(read_daily_counts(path))
    summary = store_daily_counts(node.store, records)
    report = _report(SourceName.daily_counts, paths, summary)
    report.notes = [
        f"{item.record}: {item.note}"
        for _, item in records
        if isinstance(item, DailyCount) and item.note
    ]
    report.seconds = time.perf_counter() - started
    return report


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


def register(app: typer.Typer) -> None:
    """Add ``import``, ``events`` and ``report daily`` to the ``kuroshio`` command line."""

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

        Every file is checked whole first: a bad file stores nothing. Re-importing stores nothing
        new. Refused records are listed with where and why, and the command then exits 1.
        """
        from kuroshio.cli import _progress, open_existing

        with open_existing(node_dir) as node, _progress(as_json) as progress:
            task = progress.add_task(f"importing {source.value}", total=None)
            report = run_import(
                node,
                source,
                paths,
                events=events,
                on_progress=lambda done: progress.update(task, completed=done),
            )
            progress.stop()
            print_import_report(report, as_json=as_json, party=node.party)
        if report.summary.rejected:
            raise typer.Exit(1)

    @app.command("events")
    def events_command(
        node_dir: NodeDir = Path("."),
        start: Annotated[
            str | None, typer.Option(help="From (ISO date/time, UTC if no zone).")
        ] = None,
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
        from kuroshio.cli import CliError, _split, open_existing, parse_time

        if limit < 1:
            raise CliError("--limit must be at least 1")
        selection = EventFilter(
            start=parse_time(start, "--start"), end=parse_time(end, "--end"), kinds=_split(kind)
        )
        wanted = [z.lower() for z in _split(zone)]
        with open_existing(node_dir) as node:
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
        from kuroshio.cli import open_existing
        from kuroshio.reports import daily_report

        first, last = _day(start, "--start"), _day(end, "--end")
        with open_existing(node_dir) as node:
            comparison = daily_report(node.store, start=first, end=last, offset_days=offset_days)
        rate = comparison.agreement_rate
        if as_json:
            payload = {
                "days": [
                    {**msgspec.to_builtins(row), "day": row.day.isoformat()}
                    for row in comparison.rows
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


def _day(value: str | None, option: str) -> dt.date | None:
    from kuroshio.cli import CliError

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None
