"""Fusion: reports of several parties (and one party's repeated reports) as one picture.

:mod:`~kuroshio.fusion.gating` says whether two reports can be one sortie;
:mod:`~kuroshio.fusion.kinematic` tracks point reports and associates tracks on Stone Soup;
:mod:`~kuroshio.fusion.reach` finds the other parties' tracks a track can be associated with;
:mod:`~kuroshio.fusion.associate` keeps the fused picture as reports arrive;
:mod:`~kuroshio.fusion.totals` counts it by day and :mod:`~kuroshio.fusion.episodes` finds the
periods two or more parties reported; :mod:`~kuroshio.fusion.novelty` serves the ledger.
Kinematic tracking needs Stone Soup (the ``fusion`` extra); the rest does not.
"""

from kuroshio.fusion.associate import FusedItem, FusedPlatform, FusionEngine, Source, fuse
from kuroshio.fusion.gating import DEFAULT_GATES, GateConfig
from kuroshio.fusion.novelty import SortieGate, already_known, is_novel, same_sortie
from kuroshio.fusion.totals import DailyTotal, daily_totals

__all__ = [
    "DEFAULT_GATES",
    "DailyTotal",
    "FusedItem",
    "FusedPlatform",
    "FusionEngine",
    "GateConfig",
    "SortieGate",
    "Source",
    "already_known",
    "daily_totals",
    "fuse",
    "is_novel",
    "same_sortie",
]
