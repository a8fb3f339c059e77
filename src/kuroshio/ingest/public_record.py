"""Importing the public record: one call per source reads every file whole, stores its records
through the node and derives their events.

:func:`run_import` is shared by ``kuroshio import`` and the benchmark; the readers themselves live
in one module per source beside this one. It prints nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import msgspec

from kuroshio.errors import ImportRecordError
from kuroshio.geo import derive_events
from kuroshio.ingest.daily_counts import (
    DailyCount,
    DailyRecord,
    read_daily_counts,
    store_daily_counts,
)
from kuroshio.ingest.jso_press import read_jso_press, read_jso_press_reported
from kuroshio.ingest.jso_tracks import read_jso_tracks
from kuroshio.ingest.load import LoadSummary, store_records
from kuroshio.ingest.mnd_tracks import read_mnd_tracks
from kuroshio.ingest.nav_warnings import read_nav_warnings
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import SkippedRecord, check_size, is_unidentified
from kuroshio.model import Event, Observation
from kuroshio.store import AppendResult
from kuroshio.store.backend import NodeStore


class Intake(Protocol):
    """What an import needs of a node: its party, its one door and its store (for events and
    the daily counts, which are not observations)."""

    @property
    def party(self) -> str: ...

    @property
    def store(self) -> NodeStore: ...

    def ingest(self, observations: Sequence[Observation], *, via: str = ...) -> AppendResult: ...


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
        return read_mnd_tracks(path)
    if source is SourceName.jso_tracks:
        return read_jso_tracks(path)
    if source is SourceName.jso_press:
        return read_jso_press(path)
    if source is SourceName.nav_warnings:
        return read_nav_warnings(path, origin=party)
    raise ValueError(f"{source} has no observation records")


def derive_and_store_events(
    node: Intake,
    observations: Sequence[Observation],
    reported: Mapping[tuple[str, int], Sequence[Event]] | None = None,
) -> tuple[int, int]:
    """Events of the observations, with those their source states (``reported``, by the
    observation they rest on), stored (idempotent on event id): (derived, new)."""
    events: dict[str, Event] = {}
    for observation in observations:
        for event in derive_events(observation):
            events[event.id] = event
        for event in (reported or {}).get(observation.key, ()):
            events[event.id] = event
    new = node.store.put_events(list(events.values())) if events else 0
    return len(events), new


def run_import(
    node: Intake,
    source: SourceName,
    paths: Sequence[Path],
    *,
    events: bool = True,
    on_progress: Callable[[int], None] | None = None,
    max_file_bytes: int | None = None,
) -> ImportReport:
    """Import files of one source into a node.

    Every file is read and validated whole before anything is stored, so a bad file (larger
    than ``max_file_bytes``, truncated, mis-encoded, missing columns) raises ImportFileError and
    stores nothing at all. Records are then stored in durable chunks; re-importing stores
    nothing new.
    """
    started = time.perf_counter()
    if max_file_bytes is not None:
        for path in paths:
            check_size(path, max_file_bytes)
    if source is SourceName.daily_counts:
        return _import_daily_counts(node, paths, started)
    records: list[Record] = []
    reported: dict[tuple[str, int], list[Event]] = {}
    if source is SourceName.jso_press:
        # Read together: a correction applies to the release it names in any of the files.
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


def _import_daily_counts(node: Intake, paths: Sequence[Path], started: float) -> ImportReport:
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
