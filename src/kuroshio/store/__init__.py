"""The store of a node: where it keeps observations (every version), derived events and every
other table (links, ledger, audit, daily counts).

This module holds the value types every backend shares (filters, pages, append outcomes); the
protocols are :mod:`kuroshio.store.backend`'s (``NodeStore``, ``Reader``), the backends
:mod:`kuroshio.store.sqlite` (the embedded default, one file per node) and
:mod:`kuroshio.store.postgres`. It does no I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum

import msgspec

from kuroshio.errors import StoreError
from kuroshio.model import Observation


class Outcome(enum.Enum):
    """What appending one observation did."""

    INSERTED = "inserted"
    """A new id: now current."""
    SUPERSEDED = "superseded"
    """A higher version of a known id: now current, the older one kept in history."""
    UNCHANGED = "unchanged"
    """The same id and version with the same content: nothing to do (idempotent)."""
    STALE = "stale"
    """A lower version than the current one: kept in history, not current."""
    CONFLICT = "conflict"
    """The same id and version with different content: refused, nothing stored."""


class AppendResult(msgspec.Struct, kw_only=True):
    """Counts of one append, and the refused items with the reason."""

    inserted: int = 0
    superseded: int = 0
    unchanged: int = 0
    stale: int = 0
    conflicts: list[tuple[str, int, str]] = msgspec.field(default_factory=list)
    outcomes: list[Outcome] = msgspec.field(default_factory=list)
    """One outcome per appended observation, in order."""

    @property
    def stored(self) -> int:
        """Observations newly written (current or history)."""
        return self.inserted + self.superseded + self.stale

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome is Outcome.INSERTED:
            self.inserted += 1
        elif outcome is Outcome.SUPERSEDED:
            self.superseded += 1
        elif outcome is Outcome.UNCHANGED:
            self.unchanged += 1
        elif outcome is Outcome.STALE:
            self.stale += 1


class ObservationFilter(msgspec.Struct, kw_only=True, frozen=True):
    """Which current observations a query returns. Empty tuples mean 'any'.

    The time window is half-open, ``[start, end)``, and matches an observation whose own interval
    ``[observed_at, until or observed_at]`` overlaps it. The bounding box (min lon, min lat,
    max lon, max lat) matches an observation whose geometry's bounding box intersects it.
    """

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    kinds: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    platform_classes: tuple[str, ...] = ()
    platform_types: tuple[str, ...] = ()
    include_retracted: bool = False


class EventFilter(msgspec.Struct, kw_only=True, frozen=True):
    """Which events a query returns; time window ``[start, end)`` on the event time."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    kinds: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()


class Page(msgspec.Struct, kw_only=True):
    """One page of a query; pass ``next_cursor`` back to get the next page (None: no more)."""

    items: list[Observation]
    next_cursor: str | None


def encode_cursor(observed_at_us: int, obs_id: str) -> str:
    raw = msgspec.json.encode([observed_at_us, obs_id])
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        at, obs_id = msgspec.json.decode(
            base64.urlsafe_b64decode(cursor.encode("ascii")), type=tuple[int, str]
        )
    except (ValueError, msgspec.DecodeError) as exc:
        raise StoreError(f"invalid cursor {cursor[:40]!r}: {exc}") from exc
    return at, obs_id


__all__ = [
    "AppendResult",
    "EventFilter",
    "ObservationFilter",
    "Outcome",
    "Page",
    "StoreError",
]
