"""Storing validated records in chunks, as they are read: memory holds one chunk.

Every importer and ``kuroshio add`` go through :func:`store_records`; it keeps the location of each
record so a refusal by the store (a conflicting duplicate) is reported like a parse error. Whether
a chunk is committed on its own or with the rest of the import is the caller's ``append``'s to
say (the importers store every chunk in one transaction, :meth:`kuroshio.node.Node.intake`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import msgspec

from kuroshio.errors import ImportRecordError
from kuroshio.ingest.records import Record
from kuroshio.model import Observation
from kuroshio.store import AppendResult, Outcome

CHUNK_SIZE = 1_000


class LoadSummary(msgspec.Struct, kw_only=True):
    """What an import did: counts, and each refused record with where and why."""

    read: int = 0
    inserted: int = 0
    superseded: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: list[ImportRecordError] = msgspec.field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.inserted + self.superseded + self.stale

    def add(self, result: AppendResult, locations: list[str]) -> None:
        self.inserted += result.inserted
        self.superseded += result.superseded
        self.unchanged += result.unchanged
        self.stale += result.stale
        for location, outcome in zip(locations, result.outcomes, strict=True):
            if outcome is Outcome.CONFLICT:
                self.rejected.append(
                    ImportRecordError(
                        location,
                        "conflicts with a stored record of the same id and version "
                        "(a correction needs a higher version)",
                    )
                )


def store_records(
    append: Callable[[Sequence[Observation]], AppendResult],
    records: Iterable[Record],
    *,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[LoadSummary], None] | None = None,
    on_stored: Callable[[list[Observation]], None] | None = None,
) -> LoadSummary:
    """Validate-and-store loop: each chunk of valid records goes to ``append``.

    ``append`` is :meth:`kuroshio.node.IntakeTransaction.ingest` (every chunk in the import's
    one transaction) or :meth:`kuroshio.node.Node.ingest` (each chunk its own); either stores a
    chunk together with everything that must happen with it (release to partners, audit).
    """
    summary = LoadSummary()
    batch: list[Observation] = []
    locations: list[str] = []

    def flush() -> None:
        if not batch:
            return
        result = append(batch)
        summary.add(result, locations)
        if on_stored is not None:
            fresh = [
                obs
                for obs, outcome in zip(batch, result.outcomes, strict=True)
                if outcome in (Outcome.INSERTED, Outcome.SUPERSEDED)
            ]
            on_stored(fresh)
        batch.clear()
        locations.clear()
        if on_chunk is not None:
            on_chunk(summary)

    for location, item in records:
        summary.read += 1
        if isinstance(item, ImportRecordError):
            summary.rejected.append(item)
            continue
        batch.append(item)
        locations.append(location)
        if len(batch) >= chunk_size:
            flush()
    flush()
    return summary
