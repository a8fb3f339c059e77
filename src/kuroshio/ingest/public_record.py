"""Importing the public record: one call per source reads its files record by record, stores
them through the node in one transaction and derives their events.

:func:`run_import` is shared by ``kuroshio import`` and the benchmark; the readers themselves live
in one module per source beside this one. It prints nothing.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import msgspec

from kuroshio.errors import ImportRecordError
from kuroshio.geo import derive_events
from kuroshio.ingest.daily_counts import (
    DailyCount,
    DailyRecord,
    store_daily_counts,
    stream_daily_counts,
)
from kuroshio.ingest.jso_press import read_jso_press, read_jso_press_reported
from kuroshio.ingest.jso_tracks import read_jso_tracks
from kuroshio.ingest.load import LoadSummary, store_records
from kuroshio.ingest.mnd_tracks import stream_mnd_tracks
from kuroshio.ingest.nav_warnings import read_nav_warnings
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import SkippedRecord, check_size, is_unidentified
from kuroshio.model import Event, Observation
from kuroshio.store import AppendResult, Outcome
from kuroshio.store.backend import NodeStore


class ImportSession(Protocol):
    """One import's transaction on a node (:meth:`kuroshio.node.Node.intake`)."""

    def ingest(self, observations: Sequence[Observation]) -> AppendResult: ...

    def put_events(self, events: Sequence[Event]) -> int: ...


class Intake(Protocol):
    """What an import needs of a node: its party, its store (for the daily counts, which are
    not observations) and one transaction for the whole import."""

    @property
    def party(self) -> str: ...

    @property
    def store(self) -> NodeStore: ...

    def intake(self) -> AbstractContextManager[ImportSession]: ...


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


def read_source(source: SourceName, path: Path, *, party: str) -> Iterable[Record]:
    """The records of one file of a source, as they are read; a bad file raises
    ImportFileError, possibly after records were given (see :func:`run_import`)."""
    if source is SourceName.mnd_tracks:
        return stream_mnd_tracks(path)
    if source is SourceName.jso_tracks:
        return read_jso_tracks(path)
    if source is SourceName.jso_press:
        return read_jso_press(path)
    if source is SourceName.nav_warnings:
        return read_nav_warnings(path, origin=party)
    raise ValueError(f"{source} has no observation records")


def derive_and_store_events(
    put_events: Callable[[Sequence[Event]], int],
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
    new = put_events(list(events.values())) if events else 0
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

    Files are read record by record and stored in chunks (events derived chunk by chunk), so
    memory holds a chunk and never a file; every chunk of every file goes into one transaction,
    so a bad file (larger than ``max_file_bytes``, truncated or malformed even at its very end,
    mis-encoded, missing columns) raises ImportFileError and stores nothing at all, and neither
    does an import interrupted midway. Re-importing stores nothing new.
    """
    started = time.perf_counter()
    if max_file_bytes is not None:
        for path in paths:
            check_size(path, max_file_bytes)
    if source is SourceName.daily_counts:
        return _import_daily_counts(node, paths, started)
    records: Iterable[Record]
    reported: dict[tuple[str, int], list[Event]] = {}
    if source is SourceName.jso_press:
        # Read together: a correction applies to the release it names in any of the files.
        records, reported = read_jso_press_reported(paths)
    else:
        records = itertools.chain.from_iterable(
            read_source(source, path, party=node.party) for path in paths
        )
    unknown: Counter[str] = Counter()
    derived = new = 0

    with node.intake() as session:

        def store_chunk(chunk: Sequence[Observation]) -> AppendResult:
            nonlocal derived, new
            result = session.ingest(chunk)
            for observation in chunk:
                platform = observation.platform
                if is_unidentified(platform) and platform is not None and platform.label:
                    unknown[platform.label] += 1
            if events:
                # A record the store refused (a conflicting duplicate) is not what it holds.
                kept = [
                    observation
                    for observation, outcome in zip(chunk, result.outcomes, strict=True)
                    if outcome is not Outcome.CONFLICT
                ]
                found, fresh = derive_and_store_events(session.put_events, kept, reported)
                derived, new = derived + found, new + fresh
            return result

        summary = store_records(
            store_chunk,
            records,
            on_chunk=(lambda s: on_progress(s.read)) if on_progress else None,
        )
    report = _report(source, paths, summary)
    report.unknown_labels = dict(unknown.most_common())
    report.events_derived, report.events_new = derived, new
    report.seconds = time.perf_counter() - started
    return report


def _report(source: SourceName, paths: Sequence[Path], summary: LoadSummary) -> ImportReport:
    skipped: list[ImportRecordError] = [e for e in summary.rejected if isinstance(e, SkippedRecord)]
    summary.rejected = [e for e in summary.rejected if not isinstance(e, SkippedRecord)]
    return ImportReport(
        source=source.value, files=[str(p) for p in paths], summary=summary, skipped=skipped
    )


def _import_daily_counts(node: Intake, paths: Sequence[Path], started: float) -> ImportReport:
    notes: list[str] = []

    def noted(records: Iterable[DailyRecord]) -> Iterator[DailyRecord]:
        for location, item in records:
            if isinstance(item, DailyCount) and item.note:
                notes.append(f"{item.record}: {item.note}")
            yield location, item

    records = itertools.chain.from_iterable(stream_daily_counts(path) for path in paths)
    summary = store_daily_counts(node.store, noted(records))
    report = _report(SourceName.daily_counts, paths, summary)
    report.notes = notes
    report.seconds = time.perf_counter() - started
    return report
