"""Novelty for the reciprocity ledger: was a received report already known from the receiver's
own sources?

A received report is *known* when one of the receiver's own reports passes the association gate
with it (same kind, compatible platform and count, time within tolerance, positions within the
combined uncertainty, the sender's coarsening grid counted as uncertainty). It reads nothing.

A busy own picture holds thousands of reports in a batch's window (a radar feed's plots): a
:class:`SortieGate` first rules out, for all of them at once (numpy), the own reports the gate
would refuse on kind, platform, count, time or distance, and gates only the rest one by one.
The distance it rules out by is a lower bound of the gate's own (between the two reports'
bounding boxes, on a sphere, taken short by a margin), so the verdicts are the gate's, pair by
pair.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Final, get_args

import numpy as np

from kuroshio.fusion.gating import (
    DAY_REPORT,
    DEFAULT_GATES,
    GateConfig,
    Unit,
    count_compatible,
    gate,
    platform_compatible,
    report_unit,
)
from kuroshio.geo.grid import EARTH_RADIUS_KM
from kuroshio.model import Kind, Observation

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


_KINDS: Final = {kind: code for code, kind in enumerate(get_args(Kind))}
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
SAMPLE: Final = 512
"""How many own reports, spread evenly over those in a batch's window,
:meth:`SortieGate.any_matches` looks at before all of them."""
_ROWS_AT_ONCE: Final = 128
"""Received reports compared with the sample in one go (bounds the arrays: rows × sample)."""
SPHERE_MARGIN: Final = 0.98
"""The distance bound (reckoned on a sphere) is taken this much short of itself: the gate
measures along the ellipsoid, which differs from the sphere by well under one percent."""


class PreparedReport:
    """A report made ready for :meth:`SortieGate.prepared_match`: its unit, what the gate's
    first checks (kind, platform, count) read of it, and the columns
    :meth:`SortieGate.any_matches` rules reports out by."""

    __slots__ = ("columns", "signature", "slot", "unit")

    def __init__(self, unit: Unit, signature: int) -> None:
        self.unit = unit
        self.slot = 0
        """Where its gate keeps its columns among those of every own report kept (0: not
        kept)."""
        self.signature = signature
        """The number its gate names (kind, type, class, hull numbers, count) have in the gate
        that prepared it."""
        west, south, east, north = unit.shape.bounds
        if math.isnan(west):  # an empty shape: ruled out by nothing but the gate itself
            west, south, east, north = -180.0, -90.0, 180.0, 90.0
        self.columns = (
            float(_KINDS[unit.kind]),
            float((unit.start - _EPOCH) // _MICROSECOND),
            float((unit.end - _EPOCH) // _MICROSECOND),
            float(unit.span >= DAY_REPORT),
            unit.sigma_km,
            math.radians(west),
            math.radians(south),
            math.radians(east),
            math.radians(north),
            math.cos(math.radians(min(max(abs(south), abs(north)), 90.0))),
        )
        """Kind, start and end (µs), whether it covers a day, sigma (km), bounding box (west,
        south, east, north, radians) and the least cosine of latitude in the box."""


_COLUMNS: Final = 10
_NONE_COLUMNS: Final = (-1.0,) + (0.0,) * (_COLUMNS - 1)
"""The columns of a retraction (no kind), which its signature rules out."""


class OwnReports:
    """The own reports one batch is compared with, in their order, and their columns side by
    side for :meth:`SortieGate.any_matches` (None: a retraction, never a sortie)."""

    __slots__ = ("columns", "numbers", "reports", "signatures", "signed")

    def __init__(
        self,
        reports: np.ndarray[Any, np.dtype[np.object_]],
        columns: np.ndarray[Any, np.dtype[np.float64]],
        numbers: np.ndarray[Any, np.dtype[np.intp]],
    ) -> None:
        self.reports = reports
        """Each :class:`PreparedReport` (or None)."""
        self.columns = columns
        """Each report's :attr:`PreparedReport.columns`, one column each."""
        self.numbers = numbers
        """Each report's :attr:`PreparedReport.signature` (-1: None)."""
        distinct, first, signatures = np.unique(numbers, return_index=True, return_inverse=True)
        self.signatures: np.ndarray[Any, np.dtype[np.intp]] = signatures.astype(np.intp)
        """For each report, its signature's place in :attr:`signed`."""
        self.signed: list[PreparedReport | None] = [
            None if number < 0 else reports[at]
            for number, at in zip(distinct.tolist(), first.tolist(), strict=True)
        ]
        """One report of each signature among them (None: the retractions')."""


_FIRST_SLOTS: Final = 1_024


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
        # The kept reports' columns side by side (slot 0: no report), so that a batch's are
        # taken with one index; their signatures likewise (-1: none).
        self._table = np.zeros((_COLUMNS, _FIRST_SLOTS))
        self._table[:, 0] = _NONE_COLUMNS
        self._slot_signatures = np.full(_FIRST_SLOTS, -1, dtype=np.intp)
        self._free = list(range(_FIRST_SLOTS - 1, 0, -1))

    def __call__(self, received: Observation, own: Observation) -> bool:
        return same_sortie(received, own, self.config)

    def prepared(self, key: tuple[str, int]) -> PreparedReport | None:
        """One of the receiver's own reports (id, version) as kept, if it is."""
        return self.prepared_many([key])[0]

    def prepared_many(self, keys: Sequence[tuple[str, int]]) -> list[PreparedReport | None]:
        """The receiver's own reports (id, version each) as kept, None for each that is not."""
        kept = self._kept
        found = kept.get
        with self._lock:
            reports = [found(key) for key in keys]
            touch = kept.move_to_end
            for key, report in zip(keys, reports, strict=True):
                if report is not None:
                    touch(key)
        return reports

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
            already = self._kept.get(key)
            if already is not None:  # prepared meanwhile by another thread
                return already
            self._kept[key] = kept
            self._keep_columns(kept)
            if len(self._kept) > self._keep:
                _, evicted = self._kept.popitem(last=False)
                self._free.append(evicted.slot)
                evicted.slot = 0
        return kept

    def _keep_columns(self, report: PreparedReport) -> None:
        """Give a kept report a slot of the table (under the lock)."""
        if not self._free:
            size = self._table.shape[1]
            self._table = np.concatenate([self._table, np.zeros((_COLUMNS, size))], axis=1)
            self._slot_signatures = np.concatenate(
                [self._slot_signatures, np.full(size, -1, dtype=np.intp)]
            )
            self._free = list(range(2 * size - 1, size - 1, -1))
        slot = self._free.pop()
        self._table[:, slot] = report.columns
        self._slot_signatures[slot] = report.signature
        report.slot = slot

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
        return self._first_checks(received, own) and gate(a, b, self.config) is not None

    def _first_checks(self, received: PreparedReport, own: PreparedReport | None) -> bool:
        """The gate's first checks (kind, platform, count), which read nothing but the two
        reports' signatures: made once for each pair of signatures."""
        if own is None:
            return False
        pair = (received.signature, own.signature)
        compatible = self._compatible.get(pair)
        if compatible is None:
            a, b = received.unit, own.unit
            compatible = (
                a.kind == b.kind
                and a.kind != "area"
                and platform_compatible(a, b)
                and count_compatible(a.count, b.count, self.config)
            )
            if len(self._compatible) >= MAX_SIGNATURES * 100:
                self._compatible.clear()
            self._compatible[pair] = compatible
        return compatible

    def gather(self, own: Sequence[PreparedReport | None]) -> OwnReports:
        """A batch's own reports (prepared, in any order) made ready for :meth:`any_matches`:
        the columns of those kept taken from the table at once."""
        with self._lock:
            slots = np.fromiter(
                (0 if report is None else report.slot for report in own),
                dtype=np.intp,
                count=len(own),
            )
            columns = self._table[:, slots]
            numbers = self._slot_signatures[slots]
        for position in np.flatnonzero(slots == 0):
            report = own[int(position)]
            if report is not None:  # not kept (or no longer)
                columns[:, position] = report.columns
                numbers[position] = report.signature
        reports = np.empty(len(own), dtype=object)
        reports[:] = own
        return OwnReports(reports, columns, numbers)

    def regather(
        self,
        gathered: OwnReports,
        added: Sequence[PreparedReport | None],
        take: np.ndarray[Any, np.dtype[np.intp]],
    ) -> OwnReports:
        """The reports ``gathered`` for one batch, followed by ``added``, in the order of
        ``take`` (positions among the two), made ready for :meth:`any_matches` without going
        over the gathered ones one by one: a live feed changes a few of a window's thousands
        between two batches."""
        more = self.gather(added)
        return OwnReports(
            np.concatenate([gathered.reports, more.reports])[take],
            np.concatenate([gathered.columns, more.columns], axis=1)[:, take],
            np.concatenate([gathered.numbers, more.numbers])[take],
        )

    def any_matches(
        self,
        received: Sequence[PreparedReport | None],
        own: OwnReports,
        windows: Sequence[tuple[int, int]],
    ) -> list[bool]:
        """For each received report (prepared), whether any of ``own``'s reports in its window
        (``low`` to ``high``) is :meth:`prepared_match` with it. Those the gate would refuse on
        kind, platform, count, time or distance are ruled out all at once, the rest gated one by
        one. A sample spread evenly over the batch's window is looked at first, for every
        received report at once: the gate reaches further the further apart two reports are in
        time, so a report the node already holds is usually among many, and in the sample. Only
        the reports not found there are compared with every own report in their window."""
        found = [False] * len(received)
        first: dict[int, np.ndarray[Any, np.dtype[np.bool_]]] = {}
        for index, (report, (low, high)) in enumerate(zip(received, windows, strict=True)):
            if report is None or low >= high or report.columns[0] == _KINDS["area"]:
                continue
            # Kind, platform and count: checked once for each signature among the own reports.
            checks = np.fromiter(
                (self._first_checks(report, mine) for mine in own.signed),
                dtype=bool,
                count=len(own.signed),
            )
            if checks.any():
                first[index] = checks
        if not first:
            return found
        low = min(windows[index][0] for index in first)
        high = max(windows[index][1] for index in first)
        step = (high - low) // SAMPLE
        if step > 1:
            sample = np.arange(low, high, step)
            sample_columns = own.columns[:, sample]
            sample_signatures = own.signatures[sample]
            listed = list(first)
            for at in range(0, len(listed), _ROWS_AT_ONCE):
                chunk = listed[at : at + _ROWS_AT_ONCE]
                bounds = np.array([windows[index] for index in chunk])
                admitted = (
                    np.array([first[index][sample_signatures] for index in chunk])
                    & (sample >= bounds[:, :1])
                    & (sample < bounds[:, 1:])
                )
                keep = self._within_reach(
                    np.array([received[index].columns for index in chunk]),  # type: ignore[union-attr]
                    sample_columns,
                    admitted,
                )
                for row, index in enumerate(chunk):
                    found[index] = self._gated(received[index], own, sample[keep[row]])
        for index, checks in first.items():
            if not found[index]:
                low, high = windows[index]
                report = received[index]
                assert report is not None
                keep = self._within_reach(
                    np.array([report.columns]),
                    own.columns[:, low:high],
                    checks[own.signatures[low:high]][None, :],
                )[0]
                found[index] = self._gated(report, own, np.flatnonzero(keep) + low)
        return found

    def _gated(
        self,
        received: PreparedReport | None,
        own: OwnReports,
        positions: np.ndarray[Any, np.dtype[np.intp]],
    ) -> bool:
        reports = own.reports
        return any(self.prepared_match(received, reports[int(at)]) for at in positions)

    def _within_reach(
        self,
        rows: np.ndarray[Any, np.dtype[np.float64]],
        columns: np.ndarray[Any, np.dtype[np.float64]],
        admitted: np.ndarray[Any, np.dtype[np.bool_]],
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """For each received report (a row of its columns) and own report (a column of
        ``columns``), whether the pair is ``admitted`` and within the gate's time and a lower
        bound of its distance."""
        config = self.config
        kind, start_us, end_us, day, sigma, west, south, east, north, cosine = (
            rows[:, column, None] for column in range(_COLUMNS)
        )
        # Time: the gap between the two intervals within the tolerance (a day more when either
        # covers a day).
        gap = np.maximum(np.maximum(columns[1] - end_us, start_us - columns[2]), 0.0)
        tolerance = config.time_tolerance / _MICROSECOND
        allowed = tolerance + (config.day_slack / _MICROSECOND) * np.maximum(columns[3], day)
        keep: np.ndarray[Any, np.dtype[np.bool_]] = admitted & (gap <= allowed)
        if not keep.any():
            return keep
        # Space: no two positions in the two boxes are closer than the haversine of the least
        # latitude and longitude differences between them, at the boxes' highest latitudes.
        d_lat = np.maximum(np.maximum(columns[6] - north, south - columns[8]), 0.0)
        # (Across the antimeridian too: the haversine of 2π - x is that of x.)
        d_lon = np.maximum(np.maximum(columns[5] - east, west - columns[7]), 0.0)
        haversine = np.sin(d_lat / 2) ** 2 + cosine * columns[9] * np.sin(d_lon / 2) ** 2
        speed_kms = (
            np.where(kind == _KINDS["air"], config.air_speed_mps, config.sea_speed_mps) / 1e3
        )
        limit_km = np.maximum(
            config.sigmas * np.hypot(sigma, columns[4]), config.min_gate_km
        ) + speed_kms / 1e6 * np.minimum(gap, tolerance)
        # Compared as haversines: the bound is within the reach, taken short by the margin.
        reach = np.minimum(limit_km / (SPHERE_MARGIN * EARTH_RADIUS_KM), math.pi)
        keep &= haversine <= np.sin(reach / 2) ** 2
        return keep
