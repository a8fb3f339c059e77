"""The unit of work: one transaction on a store, with every table the node keeps.

Release, inbox, outbox, audit and ledger write through one :class:`Transaction`, so what one
step of the node does (store a batch, release it on, keep its receipt, audit it) commits or
rolls back as one. A read snapshot is the same object on a reading connection. It holds no rows
itself; each table's statements live in its own module beside this one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeAlias

from kuroshio.model import Event, Observation
from kuroshio.store import AppendResult
from kuroshio.store.audit import AuditTable
from kuroshio.store.daily_counts import DailyCountTable
from kuroshio.store.inbox import InboxRow, InboxTable
from kuroshio.store.ledger import LedgerTable
from kuroshio.store.messages import IncidentTable, MessageTable, RequestTable
from kuroshio.store.nonces import NonceTable
from kuroshio.store.observations import ObservationTable, PreparedRow
from kuroshio.store.operators import OperatorTable
from kuroshio.store.outbox import OutboxTable
from kuroshio.store.revocations import RevocationTable
from kuroshio.store.tracks import FeedStatusTable, TrackTable

Dialect: TypeAlias = Literal["sqlite", "postgres"]


class ObservationRows(Protocol):
    """The observation and event rows of one backend (:mod:`kuroshio.store.observations` for
    SQLite, :mod:`kuroshio.store.postgres` for PostgreSQL)."""

    def mark(self) -> str:
        """Where the history stands as this transaction sees it now: what
        :meth:`ids_of_origin_since` reads the versions stored after."""
        ...

    def ids_of_origin_since(self, origin: str, mark: str, limit: int) -> list[str] | None:
        """The ids of ``origin``'s of which a version not received from a partner (the node's
        own: every one) was stored after :meth:`mark` gave ``mark``, at most ``limit`` (None:
        ``mark`` no longer names a place in this history)."""
        ...

    def current_keys_of_ids(
        self, origin: str, ids: Sequence[str], start_us: int, end_us: int
    ) -> list[tuple[int, int, str, int, int]]:
        """``origin``'s current, unretracted observations not received from a partner among
        ``ids`` whose interval meets ``[start_us, end_us]``: (start µs, end µs, id, version,
        history seq) each."""
        ...

    def append(
        self,
        observations: Sequence[Observation],
        prepared: Sequence[PreparedRow] | None = None,
        sent_in: Sequence[InboxRow] | None = None,
    ) -> AppendResult:
        """Append inside the transaction; the outcome of each observation, in order (``sent_in``:
        where each sat in the partner's batch it came in, kept with each version stored)."""
        ...

    def get(self, obs_id: str, version: int | None = None) -> Observation | None: ...

    def current_keys_of_origin(
        self, origin: str, start_us: int, end_us: int, limit: int
    ) -> list[tuple[int, int, str, int, int]]:
        """``origin``'s current, unretracted observations not received from a partner (the
        node's own: every one) whose interval meets ``[start_us, end_us]``, by start time, at
        most ``limit``, undecoded: (start µs, end µs, id, version, history seq) each."""
        ...

    def versions_at(self, seqs: Sequence[int]) -> list[Observation]:
        """The versions stored as history rows ``seqs``, in that order."""
        ...

    def put_events(self, events: Sequence[Event]) -> int:
        """Store derived events (idempotent on event id); how many were new."""
        ...


class Transaction:
    """Every table of one store on the connection of one transaction (or read snapshot).

    ``conn`` takes the tables' SQL as written (``?`` placeholders); ``dialect`` says which
    backend it is, for the few statements that differ (locks that keep the audit chain and each
    link's batches in order when several processes share a PostgreSQL store)."""

    def __init__(
        self,
        conn: Any,
        *,
        dialect: Dialect = "sqlite",
        observations: ObservationRows | None = None,
    ) -> None:
        self._conn = conn
        self.dialect: Dialect = dialect
        self._observations = observations
        self._after_commit: list[Callable[[], None]] = []

    @property
    def connection(self) -> Any:
        """The transaction's connection itself, for work over every table at once (moving a
        store: :mod:`kuroshio.store.move`)."""
        return self._conn

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this transaction has committed (never, if it rolls back): for
        what a process keeps of what the transaction read or wrote."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        """Run the :meth:`after_commit` callbacks (the store calls it after the commit)."""
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    @functools.cached_property
    def observations(self) -> ObservationRows:
        return self._observations or ObservationTable(self._conn)

    @functools.cached_property
    def outbox(self) -> OutboxTable:
        return OutboxTable(self._conn, self.dialect)

    @functools.cached_property
    def inbox(self) -> InboxTable:
        return InboxTable(self._conn, self.dialect)

    @functools.cached_property
    def ledger(self) -> LedgerTable:
        return LedgerTable(self._conn, self.dialect)

    @functools.cached_property
    def audit(self) -> AuditTable:
        return AuditTable(self._conn, self.dialect)

    @functools.cached_property
    def daily_counts(self) -> DailyCountTable:
        return DailyCountTable(self._conn)

    @functools.cached_property
    def operators(self) -> OperatorTable:
        return OperatorTable(self._conn)

    @functools.cached_property
    def nonces(self) -> NonceTable:
        return NonceTable(self._conn)

    @functools.cached_property
    def revocations(self) -> RevocationTable:
        return RevocationTable(self._conn)

    @functools.cached_property
    def tracks(self) -> TrackTable:
        return TrackTable(self._conn)

    @functools.cached_property
    def feeds(self) -> FeedStatusTable:
        return FeedStatusTable(self._conn)

    @functools.cached_property
    def messages(self) -> MessageTable:
        return MessageTable(self._conn)

    @functools.cached_property
    def requests(self) -> RequestTable:
        return RequestTable(self._conn)

    @functools.cached_property
    def incidents(self) -> IncidentTable:
        return IncidentTable(self._conn)


__all__ = ["Dialect", "ObservationRows", "Transaction"]
