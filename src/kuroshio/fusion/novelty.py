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

from kuroshio.fusion.gating import (
    DEFAULT_GATES,
    GateConfig,
    Unit,
    count_compatible,
    gate,
    platform_compatible,
    report_unit,
)
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


class PreparedReport:
    """A report made ready for :meth:`SortieGate.prepared_match`: its unit, and what the gate's
    first checks (kind, platform, count) read of it."""

    __slots__ = ("signature", "unit")

    def __init__(self, unit: Unit, signature: int) -> None:
        self.unit = unit
        self.signature = signature
        """The number its gate names (kind, type, class, hull numbers, count) have in the gate
        that prepared it."""


MAX_SIGNATURES: Final = 1_000
"""Distinct signatures (kind, type, class, hull numbers, count) a :class:`SortieGate` numbers,
and remembers the first checks of for each pair, before it starts again."""


class SortieGate:
    """:func:`same_sortie` as a matcher that prepares each report once.

    Calling it is :func:`same_sortie`. The ledger's novelty judgement uses the other three
    methods when a matcher has them: :meth:`prepare` makes a report's unit once (the receiver's
    own reports, which never change under one id and version, are kept, up to
    :data:`KEPT_UNITS`, so that the next batch finds them made: :meth:`prepared`) and
    :meth:`prepared_match` gates two prepared reports, checking kind, platform and count once
    for each pair of what the two reports say of them. One instance per node; safe to share
    between threads."""

    def __init__(self, config: GateConfig = DEFAULT_GATES, *, keep: int = KEPT_UNITS) -> None:
        self.config = config
        self._keep = keep
        self._kept: OrderedDict[tuple[str, int], PreparedReport] = OrderedDict()
        self._signatures: dict[tuple[object, ...], int] = {}
        self._base = 0
        self._compatible: dict[tuple[int, int], bool] = {}
        self._lock = threading.Lock()

    def __call__(self, received: Observation, own: Observation) -> bool:
        return same_sortie(received, own, self.config)

    def prepared(self, key: tuple[str, int]) -> PreparedReport | None:
        """One of the receiver's own reports (id, version) as kept, if it is."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
            return kept

    def prepare(self, observation: Observation, *, keep: bool) -> PreparedReport | None:
        """The report prepared (None for a retraction, which is never a sortie); ``keep``: the
        receiver's own report, kept for the next call."""
        if observation.retracted:
            return None
        if not keep:
            return self._prepared(observation)
        key = (observation.id, observation.version)
        kept = self.prepared(key)
        if kept is not None:
            return kept
        kept = self._prepared(observation)
        with self._lock:
            self._kept[key] = kept
            if len(self._kept) > self._keep:
                self._kept.popitem(last=False)
        return kept

    def _prepared(self, observation: Observation) -> PreparedReport:
        unit = report_unit(observation)
        signature = (unit.kind, unit.type_code, unit.platform_class, unit.hulls, unit.count)
        with self._lock:
            number = self._signatures.get(signature)
            if number is None:
                if len(self._signatures) >= MAX_SIGNATURES:
                    # start again: the numbers kept reports carry stay theirs
                    self._signatures.clear()
                    self._compatible.clear()
                    self._base += MAX_SIGNATURES
                number = self._signatures[signature] = self._base + len(self._signatures)
        return PreparedReport(unit, number)

    def prepared_match(self, received: PreparedReport | None, own: PreparedReport | None) -> bool:
        """:func:`same_sortie` of two prepared reports."""
        if received is None or own is None:
            return False
        a, b = received.unit, own.unit
        if a.origin == b.origin:
            return False
        pair = (received.signature, own.signature)
        compatible = self._compatible.get(pair)
        if compatible is None:
            # the gate's first checks, which read nothing but the signatures
            compatible = (
                a.kind == b.kind
                and a.kind != "area"
                and platform_compatible(a, b)
                and count_compatible(a.count, b.count, self.config)
            )
            if len(self._compatible) >= MAX_SIGNATURES * 100:
                self._compatible.clear()
            self._compatible[pair] = compatible
        return compatible and gate(a, b, self.config) is not None
