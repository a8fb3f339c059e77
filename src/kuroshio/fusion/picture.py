"""The fused picture of a set of reports: fused items, the joint episodes and daily totals.

One function for every surface that shows fusion (``kuroshio fuse``, the API): it fuses what it
is handed and stores nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from kuroshio.fusion.associate import FusedItem, fuse
from kuroshio.fusion.episodes import Episode, find_episodes
from kuroshio.fusion.totals import DailyTotal, daily_totals
from kuroshio.model import Observation


class FusedPicture(msgspec.Struct, kw_only=True):
    """Reports read, fused items, episodes, daily totals."""

    reports: int
    items: list[FusedItem]
    episodes: list[Episode]
    totals: list[DailyTotal]


def fused_picture(observations: Sequence[Observation], *, tz: dt.tzinfo) -> FusedPicture:
    """Fuse ``observations``; find the joint episodes and the daily totals (days in ``tz``)."""
    items = fuse(observations)
    return FusedPicture(
        reports=len(observations),
        items=items,
        episodes=find_episodes(items, observations),
        totals=daily_totals(items, tz=tz),
    )
