"""The unit of work: one transaction on a store, with every table the node keeps.

Release, inbox, outbox, audit and ledger write through one :class:`Transaction`, so what one
step of the node does (store a batch, release it on, keep its receipt, audit it) commits or
rolls back as one. A read snapshot is the same object on a reading connection. It holds no rows
itself; each table's statements live in its own module beside this one.
"""

from __future__ import annotations

import functools
from typing import Any

from kuroshio.store.audit import AuditTable
from kuroshio.store.daily_counts import DailyCountTable
from kuroshio.store.inbox import InboxTable
from kuroshio.store.ledger import LedgerTable
from kuroshio.store.nonces import NonceTable
from kuroshio.store.observations import ObservationTable
from kuroshio.store.operators import OperatorTable
from kuroshio.store.outbox import OutboxTable
from kuroshio.store.revocations import RevocationTable


class Transaction:
    """Every table of one store on the connection of one transaction (or read snapshot)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @functools.cached_property
    def observations(self) -> ObservationTable:
        return ObservationTable(self._conn)

    @functools.cached_property
    def outbox(self) -> OutboxTable:
        return OutboxTable(self._conn)

    @functools.cached_property
    def inbox(self) -> InboxTable:
        return InboxTable(self._conn)

    @functools.cached_property
    def ledger(self) -> LedgerTable:
        return LedgerTable(self._conn)

    @functools.cached_property
    def audit(self) -> AuditTable:
        return AuditTable(self._conn)

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


__all__ = ["Transaction"]
