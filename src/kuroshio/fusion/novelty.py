"""Novelty for the reciprocity ledger: was a received report already known from the receiver's
own sources?

A received report is *known* when one of the receiver's own reports passes the association gate
with it (same kind, compatible platform and count, time within tolerance, positions within the
combined uncertainty, the sender's coarsening grid counted as uncertainty). It reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from kuroshio.fusion.gating import DEFAULT_GATES, GateConfig, gate, report_unit
from kuroshio.model import Observation


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
