"""The fused picture: observations of every origin associated into sorties and tracks.

:class:`FusionEngine` takes reports one at a time, in any order, late or corrected, and keeps
the picture current: only the part of the association graph a report touches is worked again,
and the result depends on the set of reports only, so adding them one by one gives what adding
them all at once gives. Reports are compared when the picture is next read (each pair once,
however many of its reports came in between). Every fused item lists all its sources; counts
of a sortie seen by several parties are never added up. It stores nothing.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from kuroshio.fusion.gating import (
    DEFAULT_GATES,
    MAX_COAST,
    TRACK_SERIES,
    GateConfig,
    Unit,
    count_compatible,
    gate,
    is_plot,
    may_share,
    platform_compatible,
    precision_of,
    report_unit,
    series_key,
)
from kuroshio.fusion.reach import ReachIndex
from kuroshio.geo.shapes import shape_of
from kuroshio.model import Geometry, LineString, Observation, PartyCode, Point

if TYPE_CHECKING:
    from kuroshio.fusion.kinematic import FollowedTrack

NEIGHBOURHOOD: Final = dt.timedelta(days=4)
"""Units further apart in time than this are never compared (beyond every gate's reach)."""


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """One report a fused item rests on."""

    id: str
    origin: PartyCode
    version: int


class FusedPlatform(msgspec.Struct, frozen=True, kw_only=True):
    type: str | None = None
    platform_class: str | None = None
    count: int = 0
    """Aircraft or ships in the sortie: the largest any one party reported, never a sum."""


class FusedItem(msgspec.Struct, frozen=True, kw_only=True):
    """One sortie or track as the node's parties saw it together."""

    id: str
    """``fused:<id of the earliest source>``."""
    kind: str
    start: dt.datetime
    end: dt.datetime
    at: dt.datetime
    """Best single moment: the middle of the time all origins agree on, else of the whole span."""
    geometry: Geometry
    """From the most precise origin."""
    uncertainty_m: float
    platform: FusedPlatform
    origins: tuple[PartyCode, ...]
    counts: dict[str, int]
    """Aircraft or ships each origin reported in this sortie."""
    jointly_seen: bool
    sources: tuple[Source, ...]


class _Forest:
    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {key: key for key in keys}
        self.members = {key: [key] for key in self.parent}

    def find(self, key: str) -> str:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, first: str, second: str) -> None:
        a, b = sorted((self.find(first), self.find(second)))
        self.parent[b] = a
        self.members[a].extend(self.members.pop(b))


class FusionEngine:
    """The fused picture, kept current as reports arrive (in any order)."""

    def __init__(self, config: GateConfig = DEFAULT_GATES) -> None:
        self.config = config
        self._observations: dict[str, Observation] = {}
        self._plots: dict[tuple[str, str, str], dict[str, Observation]] = {}
        self._units: dict[str, Unit] = {}
        self._unit_of: dict[str, str] = {}
        self._edges: dict[str, dict[str, float]] = {}
        self._by_day: dict[dt.date, dict[tuple[str, str, bool], set[str]]] = {}
        """Units by day, origin, channel and whether kinematic (one channel's tracks are never
        compared: its tracker has decided; other parties' tracks are found by their reach)."""
        self._buckets: Counter[tuple[str, str, bool]] = Counter()
        """Units held per (origin, channel, kinematic), to skip looking through the days when
        a track has no unit there to meet."""
        self._reaches = ReachIndex()
        """Kinematic units' reaches, to find the other parties' tracks a track may meet."""
        self._unreached: dict[str, dict[str, Unit]] = {}
        """Kinematic units not yet in the index, by origin: no other party had a track yet."""
        self._cluster_of: dict[str, str] = {}
        self._items: dict[str, FusedItem] = {}
        self._item_units: dict[str, list[str]] = {}
        self._merged: dict[tuple[str, ...], MergedMembers] = {}
        """The members of each cluster of several units, in order, kept between rebuilds."""
        self._dissolved: set[tuple[str, ...]] = set()
        """Clusters of several units dissolved since the picture was last read."""
        self._dirty: set[str] = set()
        self._unconnected: dict[str, None] = {}
        """Units put since the picture was last read, in the order they were put (their edges
        are made then)."""
        self._pending: dict[tuple[str, str, str], list[dt.datetime]] = {}
        self._arrived: dict[tuple[str, str, str], list[Observation]] = {}
        """New plots of each series since the picture was last made."""
        self._followed: dict[tuple[str, str, str], FollowedTrack] = {}
        """The last track of each source track's series, to extend with later updates."""

    # --- reports in ------------------------------------------------------------------------

    def extend(self, observations: Iterable[Observation]) -> int:
        """Add many reports; returns how many changed what the engine holds."""
        return sum(self.add(observation) for observation in observations)

    def add(self, observation: Observation) -> bool:
        """Add one report (a new one, a correction, a retraction, or a repeat: no change)."""
        known = self._observations.get(observation.id)
        if known is not None and known.version >= observation.version:
            return False
        if known is not None:
            self._forget(known)
        self._observations[observation.id] = observation
        if observation.retracted:
            return True
        if is_plot(observation):
            key = series_key(observation)
            self._plots.setdefault(key, {})[observation.id] = observation
            self._arrived.setdefault(key, []).append(observation)
            self._retrack(observation)
        else:
            self._put_unit(report_unit(observation))
        return True

    def _forget(self, observation: Observation) -> None:
        if is_plot(observation):
            series = self._plots.get(series_key(observation), {})
            series.pop(observation.id, None)
            self._retrack(observation)
        else:
            self._drop_unit(observation.id)

    def _retrack(self, observation: Observation) -> None:
        """Mark the plot's segment for tracking again (done when the picture is next read)."""
        key = series_key(observation)
        self._pending.setdefault(key, []).append(observation.observed_at)
        unit = self._unit_of.get(observation.id)
        if unit is not None:
            self._drop_unit(unit)

    def _track_pending(self) -> None:
        """Track again every segment of plots (gaps ≤ MAX_COAST) a new or gone plot touched;
        a source track's later updates only extend its track (all the tracks extended at once)."""
        from kuroshio.fusion.kinematic import TrackStates, extend_tracks, track_plots, track_unit

        keys = sorted(self._pending)
        extensions: dict[tuple[str, str, str], tuple[FollowedTrack, Unit, list[Observation]]] = {}
        for key in keys:
            moments = sorted(self._pending[key])
            extension = self._extension(key, moments, self._arrived.get(key, []))
            if extension is not None:
                extensions[key] = extension
        extend_tracks(
            [(followed, plots) for followed, _, plots in extensions.values()],
            reach=len(self._reaches) > 0,  # else no track's reach is made
        )
        for key in keys:
            moments = sorted(self._pending[key])
            extension = extensions.get(key)
            if extension is not None:
                self._put_extended(extension[0], extension[1])
                continue
            series = self._plots.get(key, {})
            segments: list[list[Observation]] = []
            for plot in sorted(series.values(), key=lambda o: (o.observed_at, o.id)):
                if segments and plot.observed_at - segments[-1][-1].observed_at <= MAX_COAST:
                    segments[-1].append(plot)
                else:
                    segments.append([plot])
            for number, segment in enumerate(segments):
                low = segment[0].observed_at - MAX_COAST
                high = segment[-1].observed_at + MAX_COAST
                if not any(low <= moment <= high for moment in moments):
                    continue
                stale = sorted({self._unit_of[p.id] for p in segment if p.id in self._unit_of})
                for unit in stale:
                    self._drop_unit(unit)
                follow = key[2].startswith(TRACK_SERIES)
                tracks = track_plots(segment, self.config, follow=follow)
                for members, states in tracks:
                    self._put_unit(track_unit(members, states))
                if number == len(segments) - 1:
                    self._followed.pop(key, None)
                    last = tracks[0][1] if len(tracks) == 1 else None
                    if isinstance(last, TrackStates) and last.followed is not None:
                        self._followed[key] = last.followed
            if not series:
                self._followed.pop(key, None)
        self._pending.clear()
        self._arrived.clear()

    def _extension(
        self, key: tuple[str, str, str], moments: list[dt.datetime], arrived: list[Observation]
    ) -> tuple[FollowedTrack, Unit, list[Observation]] | None:
        """The source track, its unit and the updates later than its last that extend it (what
        tracking its segment again gives); None when the track must be tracked again."""
        followed = self._followed.get(key)
        if followed is None or len(arrived) != len(moments):
            return None  # a report gone or replaced
        unit = self._units.get(f"track:{followed.members[0].id}")
        if unit is None or unit.members[-1] is not followed.members[-1]:
            return None
        plots = sorted(arrived, key=lambda o: (o.observed_at, o.id))
        previous = followed.end
        for plot in plots:
            if plot.observed_at <= followed.end or plot.observed_at - previous > MAX_COAST:
                return None
            previous = plot.observed_at
        if followed.plane_with(plots) != followed.degrees:
            return None
        return followed, unit, plots

    def _put_extended(self, followed: FollowedTrack, unit: Unit) -> None:
        """Put a source track's unit again, the track extended."""
        from kuroshio.fusion.kinematic import TrackStates, track_unit

        self._drop_unit(unit.key, members_kept=True)
        states = TrackStates(followed.plane, followed=followed)
        extended = track_unit(tuple(followed.members), states, followed.summary)
        self._put_unit(extended, mapped=len(unit.members))

    def _days(self, unit: Unit) -> list[dt.date]:
        day = unit.start.astimezone(dt.UTC).date()
        last = unit.end.astimezone(dt.UTC).date()
        days = []
        while day <= last:
            days.append(day)
            day += dt.timedelta(days=1)
        return days

    def _put_unit(self, unit: Unit, mapped: int = 0) -> None:
        """Hold a unit (its first ``mapped`` members already point to its key); its edges are
        made when the picture is next read (:meth:`_connect`)."""
        self._units[unit.key] = unit
        for member in unit.members[mapped:]:
            self._unit_of[member.id] = unit.key
        bucket = (unit.origin, unit.channel, unit.kinematic)
        self._buckets[bucket] += 1
        for day in self._days(unit):
            self._by_day.setdefault(day, {}).setdefault(bucket, set()).add(unit.key)
        if unit.kinematic:
            self._place_reach(unit)
        self._edges.setdefault(unit.key, {})
        self._unconnected[unit.key] = None
        self._dirty.add(unit.key)

    def _connect(self) -> None:
        """Edges of the units put since the picture was last read, in the order they were put.

        Each unit is compared with the units held before it and with those put before it here,
        so each pair is compared once (as the later unit, as when each was connected on being
        put): a track updated by both parties within one read is tested once, not twice.
        """
        waiting = self._unconnected
        self._unconnected = {}
        connected: set[str] = set()
        for key in waiting:
            unit = self._units[key]
            edges = self._edges[key]
            for other_key in self._neighbours(unit):
                if other_key in waiting and other_key not in connected:
                    continue  # put after this one: it compares itself with this one
                cost = self._cost(unit, self._units[other_key])
                if cost is not None:
                    edges[other_key] = cost
                    self._edges[other_key][key] = cost
            connected.add(key)

    def _neighbours(self, unit: Unit) -> list[str]:
        """Units the unit may be associated with: other parties' tracks its reach meets, and
        units of the days around (never one tracker's own tracks)."""
        neighbours: set[str] = set(self._tracks_met(unit)) if unit.kinematic else set()
        if unit.kinematic and not any(
            not kinematic or (origin == unit.origin and channel != unit.channel)
            for origin, channel, kinematic in self._buckets
        ):
            return sorted(neighbours)  # the days hold no unit it may meet
        first = (unit.start - NEIGHBOURHOOD).astimezone(dt.UTC).date()
        last = (unit.end + NEIGHBOURHOOD).astimezone(dt.UTC).date()
        day = first
        while day <= last:
            for (origin, channel, kinematic), keys in self._by_day.get(day, {}).items():
                if (
                    kinematic
                    and unit.kinematic
                    and (channel == unit.channel or origin != unit.origin)
                ):
                    continue  # one tracker's decision, or found by reach above
                neighbours |= keys
            day += dt.timedelta(days=1)
        neighbours.discard(unit.key)
        return sorted(neighbours)

    def _place_reach(self, unit: Unit) -> None:
        """Put a kinematic unit's reach in the index (or aside, while no other party has a
        track: the reach is made when one comes)."""
        from kuroshio.fusion.kinematic import track_reach

        others = [
            origin
            for origin, waiting in self._unreached.items()
            if origin != unit.origin and waiting
        ]
        for origin in others:
            for waiting in self._unreached.pop(origin).values():
                self._reaches.add(track_reach(waiting, self.config))
        if not others and not self._reaches.holds_other_than(unit.origin):
            self._unreached.setdefault(unit.origin, {})[unit.key] = unit
            return
        self._reaches.add(track_reach(unit, self.config))

    def _tracks_met(self, unit: Unit) -> list[str]:
        """Other parties' kinematic units whose reach meets this one's (every pair the
        track-to-track association could accept)."""
        reach = self._reaches.get(unit.key)
        if reach is None:
            return []  # aside: no other party has a track
        met = self._reaches.meeting(reach)
        return [key for key in met if self._units[key].origin != unit.origin]

    def _cost(self, a: Unit, b: Unit) -> float | None:
        if a.kinematic and b.kinematic:
            if a.channel == b.channel:
                return None  # the tracker has already decided
            if not platform_compatible(a, b) or not count_compatible(a.count, b.count):
                return None
            if a.origin != b.origin:
                from kuroshio.fusion.kinematic import tracks_associated

                return tracks_associated(a, b, self.config)
        return gate(a, b, self.config)

    def _drop_unit(self, key: str, *, members_kept: bool = False) -> None:
        """Forget a unit; ``members_kept``: its members stay with its key (a track about to be
        put again, extended, so only its new members need pointing to it)."""
        unit = self._units.pop(key, None)
        if unit is None:
            return
        if not members_kept:
            for member in unit.members:
                if self._unit_of.get(member.id) == key:
                    del self._unit_of[member.id]
        bucket = (unit.origin, unit.channel, unit.kinematic)
        self._buckets[bucket] -= 1
        if not self._buckets[bucket]:
            del self._buckets[bucket]
        for day in self._days(unit):
            self._by_day.get(day, {}).get(bucket, set()).discard(key)
        self._unconnected.pop(key, None)
        if unit.kinematic:
            self._reaches.remove(key)
            self._unreached.get(unit.origin, {}).pop(key, None)
        for other in self._edges.pop(key, {}):
            self._edges[other].pop(key, None)
            self._dirty.add(other)
        cluster = self._cluster_of.get(key)
        if cluster is not None:
            self._dirty.update(unit for unit in self._dissolve(cluster) if unit != key)
        self._dirty.discard(key)

    # --- association -----------------------------------------------------------------------

    def _component(self, start: str, seen: set[str]) -> list[str]:
        stack, found = [start], []
        seen.add(start)
        while stack:
            key = stack.pop()
            found.append(key)
            for other in self._edges.get(key, {}):
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return sorted(found)

    def _dissolve(self, item_id: str) -> list[str]:
        """Remove a fused item; its units, no longer placed, are returned."""
        self._items.pop(item_id, None)
        units = self._item_units.pop(item_id, [])
        for unit in units:
            self._cluster_of.pop(unit, None)
        if len(units) > 1:
            self._dissolved.add(tuple(units))
        return units

    def _refresh(self) -> None:
        self._track_pending()
        self._connect()
        # The smallest key waiting first (a heap: a read takes in about every track).
        pending = [key for key in self._dirty if key in self._units]
        heapq.heapify(pending)
        self._dirty.clear()
        seen: set[str] = set()
        components: list[list[str]] = []
        while pending:
            key = heapq.heappop(pending)
            if key in seen:
                continue
            component = self._component(key, seen)
            components.append(component)
            for member in component:
                placed = self._cluster_of.get(member)
                if placed is None:
                    continue
                for unit in self._dissolve(placed):
                    if unit not in seen and unit in self._units:
                        heapq.heappush(pending, unit)
        for component in components:
            for cluster in self._associate(component):
                merged = None
                if len(cluster) > 1:
                    merged = self._merged.setdefault(tuple(cluster), MergedMembers())
                fused = fuse_units([self._units[k] for k in cluster], merged)
                for member in cluster:
                    self._cluster_of[member] = fused.id
                self._items[fused.id] = fused
                self._item_units[fused.id] = cluster
        for dissolved in self._dissolved:  # what no cluster is any longer
            item = self._cluster_of.get(dissolved[0])
            if item is None or tuple(self._item_units[item]) != dissolved:
                self._merged.pop(dissolved, None)
        self._dissolved.clear()

    def _associate(self, component: list[str]) -> list[list[str]]:
        """Greedy, cheapest edge first (ties by key), never joining one channel's reports of
        the same time: deterministic for a given set of units."""
        forest = _Forest(component)
        edges = sorted(
            (cost, a, b) for a in component for b, cost in self._edges.get(a, {}).items() if a < b
        )
        for _, a, b in edges:
            root_a, root_b = forest.find(a), forest.find(b)
            if root_a == root_b or self._conflict(forest.members[root_a], forest.members[root_b]):
                continue
            forest.join(root_a, root_b)
        return sorted(sorted(members) for members in forest.members.values())

    def _conflict(self, first: list[str], second: list[str]) -> bool:
        for a in first:
            unit_a = self._units[a]
            for b in second:
                unit_b = self._units[b]
                if not may_share(unit_a, unit_b, self.config):
                    return True
        return False

    # --- picture out -----------------------------------------------------------------------

    def picture(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[FusedItem]:
        """Fused items overlapping ``[start, end)``, ordered by (start, id)."""
        self._refresh()
        items = [
            item
            for item in self._items.values()
            if (start is None or item.end >= start) and (end is None or item.start < end)
        ]
        return sorted(items, key=lambda item: (item.start, item.id))

    def item_of(self, observation_id: str) -> FusedItem | None:
        """The fused item a report is part of (None: unknown or retracted)."""
        self._refresh()
        unit = self._unit_of.get(observation_id)
        cluster = self._cluster_of.get(unit) if unit is not None else None
        return self._items.get(cluster) if cluster is not None else None

    def __len__(self) -> int:
        return len(self._observations)


def fuse(
    observations: Iterable[Observation], config: GateConfig = DEFAULT_GATES
) -> list[FusedItem]:
    """The fused picture of a set of reports (what adding them one by one to an engine gives)."""
    engine = FusionEngine(config)
    engine.extend(observations)
    return engine.picture()


# --- one fused item ------------------------------------------------------------------------------


def _middle(start: dt.datetime, end: dt.datetime) -> dt.datetime:
    return start + (end - start) / 2


def _agreed_time(units: list[Unit]) -> dt.datetime:
    spans: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for unit in units:
        low, high = spans.get(unit.origin, (unit.start, unit.end))
        spans[unit.origin] = (min(low, unit.start), max(high, unit.end))
    start = max(low for low, _ in spans.values())
    end = min(high for _, high in spans.values())
    if start <= end:
        return _middle(start, end)
    return _middle(min(u.start for u in units), max(u.end for u in units))


def _geometry(units: list[Unit]) -> Geometry:
    if len(units) == 1 and not units[0].kinematic:
        return units[0].members[0].geometry
    followed = getattr(units[0].states, "followed", None) if len(units) == 1 else None
    line = followed.line_of(units[0]) if followed is not None else None
    if line is not None:  # a source track's line, kept as it grew
        if len(line) == 1:
            return Point(coordinates=line[0])
        return LineString.of_clean(line)
    positions: list[tuple[float, float]] = []
    for unit in sorted(units, key=lambda u: (u.start, u.key)):
        for member in unit.members:
            for position in member.geometry.positions():
                if not positions or positions[-1] != position:
                    positions.append(position)
    if len(positions) == 1:
        return Point(coordinates=positions[0])
    return LineString(coordinates=tuple(positions))


def _tally(values: Iterable[str | None]) -> dict[str, int]:
    """How many times each value is given (empty ones left out), in the order first given: what
    ``Counter`` gives, without its cost on the two or three units of a cluster."""
    found: dict[str, int] = {}
    for value in values:
        if value:
            found[value] = found.get(value, 0) + 1
    return found


def _platform(units: list[Unit], counts: dict[str, int]) -> FusedPlatform:
    if len(units) == 1:  # what the ranking below gives for one unit
        (unit,) = units
        return FusedPlatform(
            type=unit.type_code or None,
            platform_class=unit.platform_class or None,
            count=unit.count,
        )
    types = _tally(u.type_code for u in units)
    precise = [t for t in types if precision_of(t) == "type"]
    ranked = sorted(precise or types, key=lambda t: (-types[t], t))
    classes = _tally(u.platform_class for u in units)
    general = {"other_aircraft", "other_vessel"}
    class_ranked = sorted(classes, key=lambda c: (c in general, -classes[c], c))
    return FusedPlatform(
        type=ranked[0] if ranked else None,
        platform_class=class_ranked[0] if class_ranked else None,
        count=max(counts.values()) if counts else 0,
    )


def _source(member: Observation) -> Source:
    return Source(id=member.id, origin=member.origin, version=member.version)


def _member_order(member: Observation) -> tuple[dt.datetime, str, int]:
    return member.observed_at, member.id, member.version


class MergedMembers:
    """A cluster's members and their sources in (time, id, version) order, kept between
    rebuilds of its fused item: when each of its units has only grown at its end (a source
    track extended), the new members are put in their places, not every member sorted again."""

    def __init__(self) -> None:
        self.held: tuple[tuple[Observation, ...], ...] = ()
        """Each unit's members when last merged."""
        self.members: list[Observation] = []
        self.sources: list[Source] = []

    def update(self, units: list[Unit]) -> None:
        """Merge the units' members (the same units, in the same order, as last time, or any)."""
        held = self.held
        grown = len(held) == len(units) and all(
            unit.members[: len(old)] == old for unit, old in zip(units, held, strict=True)
        )
        if grown:
            fresh = [m for u, old in zip(units, held, strict=True) for m in u.members[len(old) :]]
            for member in sorted(fresh, key=_member_order):
                at = bisect.bisect_right(self.members, _member_order(member), key=_member_order)
                self.members.insert(at, member)
                self.sources.insert(at, _source(member))
        else:
            self.members = sorted((m for u in units for m in u.members), key=_member_order)
            self.sources = [_source(member) for member in self.members]
        self.held = tuple(unit.members for unit in units)


def _sources(units: list[Unit], members: Sequence[Observation]) -> tuple[Source, ...]:
    followed = getattr(units[0].states, "followed", None) if len(units) == 1 else None
    kept = followed.sources_of(units[0]) if followed is not None else None
    if kept is None:
        return tuple(_source(member) for member in members)
    # A source track's sources, kept as it grew: only the new updates' are made.
    for member in members[len(kept) :]:
        kept.append(_source(member))
    return tuple(kept)


def fuse_units(units: list[Unit], merged: MergedMembers | None = None) -> FusedItem:
    """One fused item from associated units (all from one cluster); ``merged``: the cluster's
    members as last merged, to merge only what is new."""
    members: Sequence[Observation]
    if len(units) == 1 and units[0].kinematic:
        members = units[0].members  # a track's plots are in (time, id) order already
        sources = _sources(units, members)
    elif merged is not None:
        merged.update(units)
        members, sources = merged.members, tuple(merged.sources)
    else:
        members = sorted((m for u in units for m in u.members), key=_member_order)
        sources = _sources(units, members)
    counts: dict[str, int] = {}
    sigma: dict[str, list[float]] = {}
    for unit in units:
        counts[unit.origin] = max(counts.get(unit.origin, 0), unit.count)
        sigma.setdefault(unit.origin, []).append(unit.sigma_km)
    best = min(sigma, key=lambda origin: (min(sigma[origin]), origin))
    best_units = [u for u in units if u.origin == best]
    geometry = _geometry(best_units)
    if not isinstance(geometry, Point | LineString):  # points and lines always make one
        shape_of(geometry)  # a geometry the rest of the system can read
    origins = tuple(sorted(counts))
    return FusedItem(
        id=f"fused:{members[0].id}",
        kind=units[0].kind,
        start=min(u.start for u in units),
        end=max(u.end for u in units),
        at=_agreed_time(units),
        geometry=geometry,
        uncertainty_m=round(min(sigma[best]) * 1000.0, 1),
        platform=_platform(units, counts),
        origins=origins,
        counts={origin: counts[origin] for origin in origins},
        jointly_seen=len(origins) > 1,
        sources=sources,
    )
