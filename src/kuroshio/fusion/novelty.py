"""Novelty for the reciprocity ledger: was a received report already known from the receiver's
own sources?

A received report is *known* when one of the receiver's own reports passes the association gate
with it (same kind, compatible platform and count, time within tolerance, positions within the
combined uncertainty, the sender's coarsening grid counted as uncertainty). It reads nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

from kuroshio.fusion.gating import DEFAULT_GATES, GateConfig, Unit, gate, report_unit
from kuroshio.model import Observation

KEPT_UNITS: Final = 50_000
"""The receiver's own reports a :class:`SortieGate` keeps prepared, most recently used first
(more than a batch's window of own reports holds)."""


def same_sortie(
    received: Observation, own: Observation, config: GateConfig = DEFAULT_GATES
) -> bool:
    """The fusion gate as a ledger matcher: ``matcher(received, own)``.

    Reports of one origin are never each other's confirmation: the receiver's own reports must
    come from another origin than the received one.
    """
    if received.origin == own.origin or received.retracted or own.retracted:
        return False
    return gate(report_unit(received), report_unit(own), config) is not None


def already_known(
    received: Observation, own: Iterable[Observation], config: GateConfig = DEFAULT_GATES
) -> bool:
    """True when a report of the receiver's own sources is the same sortie as ``received``."""
    return any(same_sortie(received, mine, config) for mine in own)


def is_novel(
    received: Observation, own: Iterable[Observation], config: GateConfig = DEFAULT_GATES
) -> bool:
    """The opposite of :func:`already_known`."""
    return not already_known(received, own, config)


class SortieGate:
    """:func:`same_sortie` as a matcher that prepares each report once.

    Calling it is :func:`same_sortie`. The ledger's novelty judgement uses the other two
    methods when a matcher has them: :meth:`prepare` makes a report's unit once (the receiver's
    own reports, which never change under one id and version, are kept, up to
    :data:`KEPT_UNITS`, so that the next batch finds them made) and :meth:`prepared_match` gates
    two prepared reports. One instance per node; safe to share between threads."""

    def __init__(self, config: GateConfig = DEFAULT_GATES, *, keep: int = KEPT_UNITS) -> None:
        self.config = config
        self._keep = keep
        self._units: OrderedDict[tuple[str, int], Unit] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, received: Observation, own: Observation) -> bool:
        return same_sortie(received, own, self.config)

    def prepared(self, key: tuple[str, int]) -> Unit | None:
        """The unit kept for one of the receiver's own reports (id, version), if any."""
        with self._lock:
            unit = self._units.get(key)
            if unit is not None:
                self._units.move_to_end(key)
            return unit

    def prepare(self, observation: Observation, *, keep: bool) -> Unit | None:
        """The report's unit (None for a retraction, which is never a sortie); ``keep``: the
        receiver's own report, kept for the next call."""
        if observation.retracted:
            return None
        if not keep:
            return report_unit(observation)
        key = (observation.id, observation.version)
        unit = self.prepared(key)
        if unit is not None:
            return unit
        unit = report_unit(observation)
        with self._lock:
            self._units[key] = unit
            if len(self._units) > self._keep:
                self._units.popitem(last=False)
        return unit

    def prepared_match(self, received: Unit | None, own: Unit | None) -> bool:
        """:func:`same_sortie` of two prepared reports."""
        if received is None or own is None or received.origin == own.origin:
            return False
        return gate(received, own, self.config) is not None
