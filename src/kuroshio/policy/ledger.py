"""The reciprocity ledger: what was given to and received from each partner, day by day, and
where that leaves the agreement's reciprocity clause.

Everything here is computation over records the caller supplies (one :class:`LedgerEntry` per
item sent or received); it stores nothing. Both sides can run it over their own receipts.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import msgspec

from kuroshio.errors import InputError
from kuroshio.model import Kind, Observation, PartyCode, latest_time
from kuroshio.policy.agreement import Measure, Reciprocity, ShortfallAction

Flow: TypeAlias = Literal["given", "received"]
SortieMatcher: TypeAlias = Callable[[Observation, Observation], bool]
"""``matcher(received, own)``: True when both describe the same sortie. The node hands in the
fusion gate (:class:`kuroshio.fusion.SortieGate`); the ledger never picks one itself. A matcher
that also has the methods of :class:`PreparingMatcher` is used through them."""


@runtime_checkable
class PreparingMatcher(Protocol):
    """A matcher that prepares each report once (its unit for the fusion gate, say), so that a
    batch compared with many of the receiver's own reports prepares each of them once."""

    def prepared_many(self, keys: Sequence[tuple[str, int]]) -> list[Any | None]:
        """The receiver's own reports (id, version each) as kept when last prepared; None for
        each not kept."""
        ...

    def prepare(self, observation: Observation, *, keep: bool) -> Any:
        """The report made ready for :meth:`prepared_match` (``keep``: one of the receiver's
        own reports, worth keeping for the next batch)."""
        ...

    def prepared_match(self, received: Any, own: Any) -> bool:
        """``matcher(received, own)`` of two prepared reports."""
        ...

    def gather(self, own: Sequence[Any]) -> Any:
        """One batch's own reports (prepared) made ready for :meth:`any_matches`."""
        ...

    def regather(self, gathered: Any, added: Sequence[Any], take: Any) -> Any:
        """What :meth:`gather` makes of the own reports ``gathered`` (as it made them ready)
        followed by ``added`` (prepared), taken in the order of ``take`` (an array of positions
        among the two); each position at most once."""
        ...

    def any_matches(
        self, received: Sequence[Any], own: Any, windows: Sequence[tuple[int, int]]
    ) -> list[bool]:
        """For each received report (prepared), whether :meth:`prepared_match` holds for it and
        any of the own reports in its window (``low`` to ``high``) that :meth:`gather` made
        ready."""
        ...


class LedgerEntry(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """One item version sent to (``given``) or received from (``received``) a partner."""

    flow: Flow
    partner: PartyCode
    item: str
    version: int
    kind: Kind
    observed_at: dt.datetime
    """The latest moment the item describes (``until``, else ``observed_at``)."""
    at: dt.datetime
    """When it was sent (given) or received."""
    sorties: int = 0
    """Aircraft or ships it reports (``platform.count`` for air and sea items, 0 for areas)."""
    grid_km: float | None = None
    """Position precision released (None: as observed)."""
    retracted: bool = False
    novel: bool | None = None
    """Received items: not already held from the receiver's own sources (None: not judged)."""
    track: str | None = None
    """The source track the item is one update of (a live feed's): the updates of one track are
    one sortie, counted on the update that began it."""


_entry_decoder = msgspec.json.Decoder(LedgerEntry)


def read_ledger_file(path: Path) -> list[LedgerEntry]:
    """Ledger entries from an NDJSON file (e.g. a partner's own ledger, to compare with ours);
    a line that is not an entry raises :class:`InputError` naming the file and line."""
    if not path.is_file():
        raise InputError(f"{path}: no such ledger file")
    records: list[LedgerEntry] = []
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                records.append(_entry_decoder.decode(line))
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                raise InputError(f"{path}:{number}: not a ledger entry: {error}") from None
    return records


def sorties_of(observation: Observation) -> int:
    """Aircraft or ships an item reports (``platform.count``; 0 for an area)."""
    if observation.kind == "area":
        return 0
    return observation.platform.count if observation.platform is not None else 1


def track_of(observation: Observation) -> str | None:
    """The source track an item is an update of, or None."""
    return observation.track if isinstance(observation.track, str) else None


def given_entry(released: Observation, partner: str, sent_at: dt.datetime) -> LedgerEntry:
    """The ledger entry for an item as released to ``partner``, once it has been sent."""
    observation = released
    return LedgerEntry(
        flow="given",
        partner=partner,
        item=observation.id,
        version=observation.version,
        kind=observation.kind,
        observed_at=latest_time(observation),
        at=sent_at,
        sorties=sorties_of(observation),
        grid_km=observation.provenance.released_grid_km,
        retracted=observation.retracted,
        track=track_of(observation),
    )


def received_entry(
    observation: Observation,
    partner: str,
    received_at: dt.datetime,
    *,
    own: Iterable[Observation] | None = None,
    matcher: SortieMatcher | None = None,
    novel: bool | None = None,
) -> LedgerEntry:
    """The ledger entry for an item received from ``partner``.

    With ``own`` (the receiver's observations from its own sources around that time) and a
    ``matcher``, novelty is judged here; else ``novel`` is as given (None: not judged).
    """
    if own is not None and matcher is not None:
        novel = is_novel(observation, own, matcher)
    return LedgerEntry(
        flow="received",
        partner=partner,
        item=observation.id,
        version=observation.version,
        kind=observation.kind,
        observed_at=latest_time(observation),
        at=received_at,
        sorties=sorties_of(observation),
        grid_km=observation.provenance.released_grid_km,
        retracted=observation.retracted,
        novel=novel,
        track=track_of(observation),
    )


# --- novelty -------------------------------------------------------------------------------------


def is_novel(received: Observation, own: Iterable[Observation], matcher: SortieMatcher) -> bool:
    """True when none of the receiver's own observations is the same sortie."""
    return not any(matcher(received, mine) for mine in own)


# --- days and windows ----------------------------------------------------------------------------


class _Item(msgspec.Struct):
    first_at: dt.datetime
    observed_at: dt.datetime
    sorties: int
    grid_km: float | None
    retracted: bool
    novel: bool | None


def _items(
    entries: Iterable[LedgerEntry], partner: str, flow: Flow, end: dt.datetime
) -> dict[str, _Item]:
    """One record per item: first sent/received when, and as its latest version stands."""
    latest: dict[str, LedgerEntry] = {}
    first: dict[str, LedgerEntry] = {}
    for entry in entries:
        if entry.partner != partner or entry.flow != flow or entry.at >= end:
            continue
        earliest = first.get(entry.item)
        if earliest is None or entry.at < earliest.at:
            first[entry.item] = entry
        known = latest.get(entry.item)
        if known is None or (entry.version, entry.at) > (known.version, known.at):
            latest[entry.item] = entry
    # A track's updates are one sortie: only the update that began it (the first to arrive)
    # carries the track's count.
    beginning: dict[tuple[str, str], str] = {}
    for item, entry in sorted(latest.items(), key=lambda pair: (first[pair[0]].at, pair[0])):
        if entry.track is not None:
            beginning.setdefault((item.split(":", 1)[0], entry.track), item)
    # Timeliness is how fast the first version arrived; the rest is as the latest version says.
    return {
        item: _Item(
            first_at=first[item].at,
            observed_at=first[item].observed_at,
            sorties=(
                entry.sorties
                if entry.track is None or beginning[(item.split(":", 1)[0], entry.track)] == item
                else 0
            ),
            grid_km=entry.grid_km,
            retracted=entry.retracted,
            novel=entry.novel,
        )
        for item, entry in latest.items()
    }


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


class FlowSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Items one way over a period; retracted items do not count."""

    items: int = 0
    sorties: int = 0
    novel_items: int = 0
    """Received: novel or not judged. Given: every item (the partner judges novelty)."""
    timeliness_s: float | None = None
    """Median delay from the latest observed moment to sending or receipt, in seconds."""
    precision_km: float | None = None
    """Median grid released (0: exact positions)."""


def _summary(items: Iterable[_Item]) -> FlowSummary:
    counted = [item for item in items if not item.retracted]
    return FlowSummary(
        items=len(counted),
        sorties=sum(item.sorties for item in counted),
        novel_items=sum(1 for item in counted if item.novel is not False),
        timeliness_s=_median([(i.first_at - i.observed_at).total_seconds() for i in counted]),
        precision_km=_median([i.grid_km or 0.0 for i in counted]),
    )


class LedgerDay(msgspec.Struct, frozen=True, kw_only=True):
    """One partner's exchange on one UTC day (items counted on the day first sent/received)."""

    partner: PartyCode
    day: dt.date
    given: FlowSummary
    received: FlowSummary


def ledger_days(
    entries: Iterable[LedgerEntry], partner: str, start: dt.date, end: dt.date
) -> list[LedgerDay]:
    """Days ``start`` .. ``end`` (inclusive) for ``partner``, one row each, empty days included."""
    entries = list(entries)
    limit = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    by_flow = {flow: _items(entries, partner, flow, limit) for flow in ("given", "received")}
    days: list[LedgerDay] = []
    day = start
    while day <= end:
        summaries = [
            _summary(
                i for i in by_flow[flow].values() if i.first_at.astimezone(dt.UTC).date() == day
            )
            for flow in ("given", "received")
        ]
        days.append(LedgerDay(partner=partner, day=day, given=summaries[0], received=summaries[1]))
        day += dt.timedelta(days=1)
    return days


class ReciprocityStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where a partner stands against the reciprocity clause at ``window_end``."""

    partner: PartyCode
    window_start: dt.datetime
    window_end: dt.datetime
    measure: Measure
    given: FlowSummary
    received: FlowSummary
    ratio: float | None
    """Received over given, with ``measure`` (None: nothing given yet)."""
    min_ratio: float
    judged: bool
    """False until ``min_given`` has been given in the window."""
    shortfall: bool
    action: ShortfallAction | None
    """What the clause does now (None: no shortfall)."""
    message: str

    @property
    def ratio_text(self) -> str:
        return "n/a" if self.ratio is None else f"{self.ratio:.2f}"


def _measured(summary: FlowSummary, measure: Measure, flow: Flow) -> int:
    if measure == "sorties":
        return summary.sorties
    if measure == "novel_items" and flow == "received":
        return summary.novel_items
    return summary.items


def reciprocity_status(
    entries: Iterable[LedgerEntry], partner: str, clause: Reciprocity, now: dt.datetime
) -> ReciprocityStatus:
    """The partner's standing over the clause's window ``[now - window_days, now)``."""
    start = now - dt.timedelta(days=clause.window_days)
    entries = list(entries)
    summaries = [
        _summary(
            item for item in _items(entries, partner, flow, now).values() if item.first_at >= start
        )
        for flow in ("given", "received")
    ]
    return judge_standing(summaries[0], summaries[1], partner, clause, now)


def judge_standing(
    given_summary: FlowSummary,
    received_summary: FlowSummary,
    partner: str,
    clause: Reciprocity,
    now: dt.datetime,
) -> ReciprocityStatus:
    """The partner's standing over the clause's window ending ``now``, from what was given to
    and received from it in that window (counted as :func:`reciprocity_status` counts them,
    or by the store: :meth:`kuroshio.store.ledger.LedgerTable.window_counts`)."""
    start = now - dt.timedelta(days=clause.window_days)
    given = _measured(given_summary, clause.measure, "given")
    received = _measured(received_summary, clause.measure, "received")
    ratio = received / given if given else None
    judged = given > 0 and given >= clause.min_given
    shortfall = judged and ratio is not None and ratio < clause.min_ratio
    measure = clause.measure.replace("_", " ")
    if not judged:
        message = (
            f"not judged: {given} {measure} given to {partner} in {clause.window_days} days, "
            f"fewer than the {max(clause.min_given, 1)} the clause needs"
        )
    elif shortfall:
        message = (
            f"shortfall: received {received} / given {given} {measure} = {ratio:.2f}, "
            f"below {clause.min_ratio:g}; action: {clause.on_shortfall}"
        )
    else:
        message = f"in balance: received {received} / given {given} {measure} = {ratio:.2f}"
    return ReciprocityStatus(
        partner=partner,
        window_start=start,
        window_end=now,
        measure=clause.measure,
        given=given_summary,
        received=received_summary,
        ratio=ratio,
        min_ratio=clause.min_ratio,
        judged=judged,
        shortfall=shortfall,
        action=clause.on_shortfall if shortfall else None,
        message=message,
    )
