"""What a node's store offers, whichever backend keeps it: the embedded SQLite file (the default)
or a schema on a PostgreSQL server (for a node that outgrows one machine).

:class:`NodeStore` and :class:`Reader` are the two faces every other floor uses; :func:`open_store`
opens the one a node's configuration names. The PostgreSQL driver is imported only when a node
asks for it (the ``postgres`` extra), so the embedded default needs no server and no driver.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from kuroshio.errors import StoreError
from kuroshio.model import Event, Observation
from kuroshio.store import AppendResult, EventFilter, ObservationFilter, Page
from kuroshio.store.sql import Extent
from kuroshio.store.sqlite import SQLiteStore
from kuroshio.store.transaction import Transaction

T = TypeVar("T")


@runtime_checkable
class Reader(Protocol):
    """A reading connection of its own: queries, consistent snapshots of every table, the
    change feed. Nothing read through it can write."""

    def get(self, obs_id: str, version: int | None = None) -> Observation | None:
        """The current version (or the given one) of an observation, retracted or not."""
        ...

    def history(self, obs_id: str) -> list[Observation]:
        """Every stored version of an observation, oldest first."""
        ...

    def query(
        self, selection: ObservationFilter, *, limit: int = 1000, cursor: str | None = None
    ) -> Page:
        """Current observations ordered by (observed_at, id), one page at a time."""
        ...

    def query_bodies(
        self, selection: ObservationFilter, *, limit: int = 1000, cursor: str | None = None
    ) -> tuple[list[bytes], str | None]:
        """:meth:`query`'s page as each observation's stored canonical JSON, and the cursor of
        the next page (None: no more)."""
        ...

    def iter_query(
        self, selection: ObservationFilter, *, page_size: int = 1000
    ) -> Iterator[Observation]:
        """All current observations matching, fetched page by page (bounded memory)."""
        ...

    def count(self, selection: ObservationFilter) -> int: ...

    def query_events(self, selection: EventFilter, *, limit: int = 10_000) -> list[Event]: ...

    def query_event_bodies(self, selection: EventFilter, limit: int = 10_000) -> list[bytes]:
        """:meth:`query_events` as each event's stored canonical JSON."""
        ...

    def close(self) -> None: ...

    def snapshot(self) -> contextlib.AbstractContextManager[Transaction]:
        """Every table as of one moment (a read transaction)."""
        ...

    def read(self, query: Callable[[Transaction], T]) -> T:
        """``query`` run on one snapshot."""
        ...

    def extent(self) -> Extent:
        """The period the current observations cover, and how many there are."""
        ...

    def change_head(self) -> int:
        """The ``seq`` of the newest stored observation version (0: none)."""
        ...

    def changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(seq, canonical body) of observation versions stored after ``after``, in the order
        they were stored, at most ``limit``."""
        ...


@runtime_checkable
class NodeStore(Reader, Protocol):
    """A node's store: everything a :class:`Reader` does, plus the unit of work every write goes
    through."""

    @property
    def schema_version(self) -> int:
        """Migrations this store has taken (:mod:`kuroshio.store.schema`)."""
        ...

    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """One write transaction over every table, committed on exit, rolled back on error."""
        ...

    def reader(self) -> Reader:
        """A reading connection of its own, for work that must not wait for the writer."""
        ...

    def count_versions(self) -> int:
        """Every stored version (history included)."""
        ...

    def announce(self, news: str = "") -> None:
        """Tell the node's other processes that something was stored (after the commit), or,
        with ``news``, what else happened (see :meth:`watch`)."""
        ...

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None] | None:
        """Call ``callback`` whenever another process of the node announces something, with the
        news (``""``: something was stored); the function returned stops watching (None: the
        backend serves one process only)."""
        ...

    def append(self, observations: Sequence[Observation]) -> AppendResult:
        """Append in one transaction; on return the observations are durable."""
        ...

    def put_events(self, events: Sequence[Event]) -> int:
        """Store derived events (idempotent on event id); how many were new."""
        ...


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def open_store(
    backend: str,
    *,
    path: Path | None = None,
    dsn: str | None = None,
    schema: str = "kuroshio",
) -> NodeStore:
    """The store a node's configuration names: ``sqlite`` (the file at ``path``) or
    ``postgres`` (``schema`` on the server at ``dsn``)."""
    if backend == "sqlite":
        if path is None:
            raise StoreError("the embedded store needs a file path")
        return SQLiteStore(path)
    if backend == "postgres":
        if not dsn:
            raise StoreError(
                "store.backend is postgres but no DSN is given: set store.dsn in kuroshio.toml"
                " or KUROSHIO_STORE_DSN"
            )
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StoreError(f"invalid schema name {schema!r} (lower case letters, digits, _)")
        try:
            from kuroshio.store.postgres import PostgresStore
        except ImportError as error:
            raise StoreError(
                f"store.backend is postgres, but its driver is missing ({error.name}): "
                "install the extra with pip install 'kuroshio[postgres]'"
            ) from None
        return PostgresStore(dsn, schema=schema)
    raise StoreError(f"unknown store backend {backend!r} (sqlite or postgres)")


__all__ = ["NodeStore", "Reader", "open_store"]
