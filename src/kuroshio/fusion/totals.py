"""Daily totals over the fused picture: each sortie once, however many parties reported it.

Beside the fused total it gives what each origin alone reported and how many were seen jointly,
so the difference (what adding the parties' own totals would have double counted) is visible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from kuroshio.fusion.associate import FusedItem


class DailyTotal(msgspec.Struct, frozen=True, kw_only=True):
    """Aircraft and ships of one local day."""

    day: dt.date
    kind: str
    fused: int
    """Platforms in the fused picture: a jointly seen sortie counts once."""
    by_origin: dict[str, int]
    """Platforms each origin reported on its own."""
    jointly_seen: int
    """Fused items (sorties or tracks) reported by two or more origins."""
    items: int

    @property
    def double_counted(self) -> int:
        """What adding up the origins' own totals would have counted twice."""
        return sum(self.by_origin.values()) - self.fused


class _Tally(msgspec.Struct):
    fused: int = 0
    joint: int = 0
    items: int = 0
    by_origin: dict[str, int] = msgspec.field(default_factory=dict)


def daily_totals(
    items: Iterable[FusedItem], *, tz: dt.tzinfo = dt.UTC, kinds: tuple[str, ...] = ("air", "sea")
) -> list[DailyTotal]:
    """One total per (local day of each item's ``at``, kind), in day order."""
    tallies: dict[tuple[dt.date, str], _Tally] = {}
    for item in items:
        if item.kind not in kinds:
            continue
        tally = tallies.setdefault((item.at.astimezone(tz).date(), item.kind), _Tally())
        tally.fused += item.platform.count
        tally.joint += 1 if item.jointly_seen else 0
        tally.items += 1
        for origin, count in item.counts.items():
            tally.by_origin[origin] = tally.by_origin.get(origin, 0) + count
    return [
        DailyTotal(
            day=day,
            kind=kind,
            fused=tally.fused,
            by_origin=dict(sorted(tally.by_origin.items())),
            jointly_seen=tally.joint,
            items=tally.items,
        )
        for (day, kind), tally in sorted(tallies.items())
    ]
