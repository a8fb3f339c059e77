"""Track thinning: which updates of a track are kept, so that a fast feed does not flood the store
and the exchange.

A :class:`TrackThinner` keeps every update (interval 0) or one per interval per track plus every
manoeuvre: a change of course, speed or altitude beyond its threshold since the last kept update.
A track's first update, its final one and the first after a silence are always kept. It is pure:
it reads only the updates' own times, never a clock, so the same updates give the same choice
live and in replay. It keeps one small record per track and forgets tracks not heard for a while.
"""

from __future__ import annotations

from typing import Annotated, Final, NamedTuple

import msgspec

from kuroshio.feeds.base import TrackUpdate

DEFAULT_INTERVAL_S: Final = 5.0
DEFAULT_COURSE_DEG: Final = 15.0
DEFAULT_SPEED_MPS: Final = 5.0
DEFAULT_ALTITUDE_M: Final = 150.0
DEFAULT_FORGET_AFTER_S: Final = 600.0


class Thinning(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a feed's updates are kept, per track (``[feeds.NAME.thinning]``)."""

    interval_s: Annotated[float, msgspec.Meta(ge=0.0, le=86_400.0)] = DEFAULT_INTERVAL_S
    """One update per this many seconds per track; 0 keeps every update."""
    course_deg: Annotated[float, msgspec.Meta(gt=0.0, le=180.0)] = DEFAULT_COURSE_DEG
    """A turn by more than this since the last kept update is kept at once."""
    speed_mps: Annotated[float, msgspec.Meta(gt=0.0)] = DEFAULT_SPEED_MPS
    altitude_m: Annotated[float, msgspec.Meta(gt=0.0)] = DEFAULT_ALTITUDE_M
    forget_after_s: Annotated[float, msgspec.Meta(gt=0.0)] = DEFAULT_FORGET_AFTER_S
    """A track not kept for this long is forgotten: its next update starts it again."""


class _Kept(NamedTuple):
    at: float
    course: float | None
    speed: float | None
    altitude: float | None


def _turned(before: float | None, now: float | None, limit: float) -> bool:
    if before is None or now is None:
        return False
    difference = abs(now - before) % 360.0
    return min(difference, 360.0 - difference) > limit


def _changed(before: float | None, now: float | None, limit: float) -> bool:
    return before is not None and now is not None and abs(now - before) > limit


class TrackThinner:
    """Decides, update by update, which to keep (see the module docstring)."""

    def __init__(self, thinning: Thinning) -> None:
        self.thinning = thinning
        self._kept: dict[str, _Kept] = {}

    def __len__(self) -> int:
        """Tracks remembered."""
        return len(self._kept)

    def admit(self, update: TrackUpdate) -> bool:
        """True when the update is to be kept (and is then remembered as the track's last)."""
        rule = self.thinning
        if rule.interval_s == 0.0:
            return True
        at = update.at.timestamp()
        last = self._kept.get(update.track)
        keep = (
            last is None
            or update.final
            or at - last.at >= rule.interval_s
            or (
                at > last.at
                and (
                    _turned(last.course, update.course_deg, rule.course_deg)
                    or _changed(last.speed, update.speed_mps, rule.speed_mps)
                    or _changed(last.altitude, update.altitude_m, rule.altitude_m)
                )
            )
        )
        if not keep:
            return False
        if update.final:
            self._kept.pop(update.track, None)
        elif last is None or at >= last.at:
            self._kept[update.track] = _Kept(
                at, update.course_deg, update.speed_mps, update.altitude_m
            )
        return True

    def forget_before(self, at: float) -> int:
        """Forget tracks last kept before ``at - forget_after_s`` (POSIX seconds); how many."""
        horizon = at - self.thinning.forget_after_s
        stale = [track for track, kept in self._kept.items() if kept.at < horizon]
        for track in stale:
            del self._kept[track]
        return len(stale)
