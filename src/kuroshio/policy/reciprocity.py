"""The reciprocity ledger as a node keeps it: an entry per item version given or received, written
in the transaction that records the receipt or takes the batch in, and the partner's standing
noted when it changes.

It turns the items of a receipt or of a batch taken in into rows (:mod:`kuroshio.store.ledger`)
and rows back into :class:`~kuroshio.policy.ledger.LedgerEntry` records, judges novelty with
the sortie matcher it is handed, and notes standings; the arithmetic (days, windows, ratios)
stays in :mod:`kuroshio.policy.ledger`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple, TypeAlias

import msgspec
import numpy as np

from kuroshio.model import Kind, Observation, latest_time
from kuroshio.policy.agreement import Reciprocity
from kuroshio.policy.book import AgreementBook
from kuroshio.policy.ledger import (
    FlowSummary,
    LedgerDay,
    LedgerEntry,
    PreparingMatcher,
    ReciprocityStatus,
    SortieMatcher,
    judge_standing,
    ledger_days,
    reciprocity_status,
    sorties_of,
    track_of,
)
from kuroshio.store.ledger import LedgerRow
from kuroshio.store.outbox import GivenFields
from kuroshio.store.sql import micros, utc_time
from kuroshio.store.transaction import Transaction

MAX_OWN_CANDIDATES: Final = 20_000
"""Own observations compared against one batch for novelty (a bound, not an expectation)."""
_MICROSECOND: Final = dt.timedelta(microseconds=1)
NOVELTY_WINDOW: Final = dt.timedelta(minutes=30)
"""Own observations this much before or after a received one are candidates for the same
sortie (the matcher decides)."""


def entries(
    tx: Transaction, *, partner: str | None = None, since: dt.datetime | None = None
) -> list[LedgerEntry]:
    """Recorded entries, oldest first, for one partner or all, from ``since`` on."""
    return [
        LedgerEntry(
            flow=flow,  # type: ignore[arg-type]
            partner=party,
            item=item,
            version=version,
            kind=kind,  # type: ignore[arg-type]
            observed_at=utc_time(observed_at),
            at=utc_time(at),
            sorties=sorties,
            grid_km=grid_km,
            retracted=bool(retracted),
            novel=None if novel is None else bool(novel),
            track=track,
        )
        for (
            flow,
            party,
            item,
            version,
            kind,
            observed_at,
            at,
            sorties,
            grid_km,
            retracted,
            novel,
            track,
        ) in tx.ledger.rows(partner=partner, since=since)
    ]


def standing(
    tx: Transaction, partner: str, clause: Reciprocity, now: dt.datetime
) -> ReciprocityStatus:
    """The partner's standing against ``clause`` at ``now``, counted by the store over the
    clause's window: the node's refresh, whose cost stays in the database however many rows
    the window holds. The counts are those :func:`~kuroshio.policy.ledger.reciprocity_status`
    makes from the entries; the medians (timeliness, precision), which no clause judges, are
    left out (the ledger's reports compute them from the entries)."""
    start = now - dt.timedelta(days=clause.window_days)
    counts = tx.ledger.window_counts(partner, start, now)
    given, received = (
        FlowSummary(items=c.items, sorties=c.sorties, novel_items=c.novel_items)
        if (c := counts.get(flow)) is not None
        else FlowSummary()
        for flow in ("given", "received")
    )
    return judge_standing(given, received, partner, clause, now)


class _Count(msgspec.Struct):
    count: int = 1


class _Released(msgspec.Struct):
    grid_km: float | None = None


class _GivenItem(msgspec.Struct):
    """The fields of an item as sent that the ledger keeps (the rest is not decoded)."""

    id: str
    version: int
    kind: Kind
    observed_at: dt.datetime
    until: dt.datetime | None = None
    platform: _Count | None = None
    provenance: _Released = msgspec.field(default_factory=_Released)
    retracted: bool = False
    track: str | None = None


_given_decoder = msgspec.json.Decoder(_GivenItem)


def given_fields(released: Observation) -> GivenFields:
    """What the ledger keeps of an item released to a partner, but the partner and the time of
    receipt: queued with the item, so that the batch's receipt enters it as given in one
    statement, without reading the item back (:meth:`~kuroshio.store.outbox.OutboxTable.give`).
    The same fields :func:`given_ledger_rows` decodes from an item as sent."""
    return (
        released.kind,
        micros(latest_time(released)),
        sorties_of(released),
        released.provenance.released_grid_km,
        int(released.retracted),
        track_of(released),
    )


def given_ledger_rows(
    items: Iterable[bytes], partner: str, received_at: dt.datetime
) -> list[LedgerRow]:
    """The ledger's rows for the items (as sent, canonical JSON) of a batch the partner signed
    for at ``received_at``, made without an entry each; the precision released is the items'
    own ``provenance.grid_km``. The items were validated when released, so only the ledger's
    fields are decoded here."""
    at = micros(received_at)
    rows: list[LedgerRow] = []
    for item in items:
        given = _given_decoder.decode(item)
        sorties = 0 if given.kind == "area" else given.platform.count if given.platform else 1
        rows.append(
            (
                "given",
                partner,
                given.id,
                given.version,
                given.kind,
                micros(given.until or given.observed_at),
                at,
                sorties,
                given.provenance.grid_km,
                int(given.retracted),
                None,
                given.track,
            )
        )
    return rows


# --- novelty -------------------------------------------------------------------------------------


WIDEN: Final = dt.timedelta(minutes=10)
"""How much later than a batch's window an :class:`OwnWindow` reads, so that the next batches,
later in time, fall inside what it kept."""


MAX_CHANGED: Final = 1_000
"""Own observations stored since a batch's reading that the next batch reads again by id, in
place of reading its whole window afresh."""

Key: TypeAlias = tuple[int, int, str, int, int]
"""An own observation as :meth:`current_keys_of_origin` gives it: start and end (µs), id,
version, history seq."""


class _Reading(NamedTuple):
    """The node's own current observations read for one window, made ready for a matcher, in
    order of start."""

    origin: str
    start_us: int
    end_us: int
    mark: str
    """Where the store's history stood before they were read (its
    :meth:`~kuroshio.store.transaction.ObservationRows.mark`)."""
    starts: np.ndarray[Any, np.dtype[np.int64]]
    """Each one's start (µs)."""
    spans: np.ndarray[Any, np.dtype[np.int64]]
    """Each one's end less its start (µs)."""
    ids: np.ndarray[Any, np.dtype[np.str_]]
    gathered: Any
    matcher: object


class OwnWindow:
    """The node's own current observations last read for a received batch's novelty, kept for
    the next batches: while nothing of the node's own origin is stored, they serve as they are,
    and when a few are (a live feed's), only those are read again. A node does not read and
    gather thousands of own reports afresh for every batch. What was stored since a reading is
    what the store says was stored after the mark it gave before it (SQLite: history seqs, in
    commit order; PostgreSQL: the transactions not seen committed). Kept only once the
    transaction that read them commits; one per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading: _Reading | None = None

    def recall(
        self, tx: Transaction, origin: str, start_us: int, end_us: int, matcher: object, mark: str
    ) -> tuple[_Reading, list[str]] | None:
        """The reading kept, when it covers the window and the store has it still but for the
        ids listed (stored again since, at most :data:`MAX_CHANGED`); ``mark``: the store's,
        taken before this call."""
        with self._lock:
            reading = self._reading
        if (
            reading is None
            or (reading.origin, reading.matcher) != (origin, matcher)
            or not reading.start_us <= start_us <= end_us <= reading.end_us
        ):
            return None
        changed = tx.observations.ids_of_origin_since(origin, reading.mark, MAX_CHANGED + 1)
        if changed is None or len(changed) > MAX_CHANGED:
            return None
        if not changed:
            # Still the store's: once this transaction commits, from its mark on.
            tx.after_commit(lambda: self._keep(reading._replace(mark=mark), reading))
        return reading, changed

    def keep(self, tx: Transaction, reading: _Reading) -> None:
        """Keep ``reading`` once ``tx`` (which read it) commits."""
        tx.after_commit(lambda: self._keep(reading, None))

    def _keep(self, reading: _Reading, replacing: _Reading | None) -> None:
        with self._lock:
            if replacing is None or self._reading is replacing:
                self._reading = reading


def _own_reading(
    tx: Transaction,
    origin: str,
    start_us: int,
    end_us: int,
    preparing: PreparingMatcher,
    matcher: object,
    window: OwnWindow | None,
) -> _Reading | None:
    """The node's own current observations meeting ``start_us`` to ``end_us`` (or a wider
    window), prepared; None when there are none."""
    mark, recalled = "", None
    if window is not None:
        # Taken before anything is read: what is stored after it is read again next time.
        mark = tx.observations.mark()
        recalled = window.recall(tx, origin, start_us, end_us, matcher, mark)
    if recalled is not None and not recalled[1]:
        return recalled[0]
    reading = None
    if recalled is not None:
        reading = _read_again(tx, *recalled, preparing, mark)
    if reading is None:
        end_us += WIDEN // _MICROSECOND if window is not None else 0
        keys = tx.observations.current_keys_of_origin(origin, start_us, end_us, MAX_OWN_CANDIDATES)
        if not keys:
            return None
        begins, ends, ids = _columns(keys)
        reading = _Reading(
            origin=origin,
            start_us=start_us,
            end_us=end_us,
            mark=mark,
            starts=begins,
            spans=ends - begins,
            ids=ids,
            gathered=preparing.gather(_prepared_own(tx, preparing, keys)),
            matcher=matcher,
        )
    if not len(reading.starts):
        return None
    if window is not None and len(reading.starts) < MAX_OWN_CANDIDATES:
        window.keep(tx, reading)
    return reading


def _columns(
    keys: Sequence[Key],
) -> tuple[
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.str_]],
]:
    """Starts, ends and ids of ``keys`` as arrays."""
    if not keys:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.str_)
    begins, ends, ids, _, _ = zip(*keys, strict=True)
    return (
        np.array(begins, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        np.array(ids, dtype=np.str_),
    )


def _prepared_own(tx: Transaction, preparing: PreparingMatcher, keys: Sequence[Key]) -> list[Any]:
    """The own observations ``keys`` prepared: those the matcher keeps as kept, the rest read."""
    own: list[Any] = preparing.prepared_many([(key[2], key[3]) for key in keys])
    unread = [position for position, unit in enumerate(own) if unit is None]
    if unread:
        read = tx.observations.versions_at([keys[position][4] for position in unread])
        for position, observation in zip(unread, read, strict=True):
            own[position] = preparing.prepare(observation, keep=True)
    return own


def _read_again(
    tx: Transaction,
    kept: _Reading,
    changed: list[str],
    preparing: PreparingMatcher,
    mark: str,
) -> _Reading | None:
    """``kept`` with the own observations ``changed`` (stored since) as they are now: those
    kept taken out, their current versions in the window prepared and put in their place by
    start; None when that makes as many as a window is read for (read it as a window is)."""
    fresh = tx.observations.current_keys_of_ids(kept.origin, changed, kept.start_us, kept.end_us)
    stays = np.flatnonzero(~np.isin(kept.ids, np.array(changed, dtype=np.str_)))
    if len(stays) + len(fresh) >= MAX_OWN_CANDIDATES:
        return None
    begins, ends, ids = _columns(fresh)
    starts = np.concatenate([kept.starts[stays], begins])
    order = np.argsort(starts, kind="stable")
    # Positions among the kept ones followed by the fresh ones, in order of start.
    take = np.concatenate([stays, np.arange(len(kept.starts), len(kept.starts) + len(fresh))])
    return kept._replace(
        mark=mark,
        starts=starts[order],
        spans=np.concatenate([kept.spans[stays], ends - begins])[order],
        ids=np.concatenate([kept.ids[stays], ids])[order],
        gathered=preparing.regather(
            kept.gathered, _prepared_own(tx, preparing, fresh), take[order]
        ),
    )


def judge_novelty(
    tx: Transaction,
    received: Sequence[Observation],
    own_party: str,
    matcher: SortieMatcher,
    window: OwnWindow | None = None,
) -> list[bool]:
    """For each received item: True when this node holds no observation of its own of the same
    sortie, as ``matcher(received, own)`` judges (the node hands in the fusion gate: each
    report's uncertainty and the sender's coarsening grid, platform family, count). The one
    place novelty is judged.

    The candidates are this node's current observations from :data:`NOVELTY_WINDOW` before the
    first item to as long after the last (at most :data:`MAX_OWN_CANDIDATES`). A matcher that
    prepares reports (:class:`~kuroshio.policy.ledger.PreparingMatcher`) prepares each once,
    however many items meet it, and the own reports it kept from earlier batches are not read
    again; any other matcher is asked pair by pair. With ``window`` (the node's), what was read
    for one batch serves the next ones, the own observations stored since read again."""
    if not received:
        return []
    preparing: PreparingMatcher = (
        matcher if isinstance(matcher, PreparingMatcher) else _PairByPair(matcher)
    )
    start_us = micros(min(o.observed_at for o in received) - NOVELTY_WINDOW)
    end_us = micros(max(latest_time(o) for o in received) + NOVELTY_WINDOW)
    reading = _own_reading(tx, own_party, start_us, end_us, preparing, matcher, window)
    if reading is None:
        return [True] * len(received)
    window_us = NOVELTY_WINDOW // _MICROSECOND
    # For each item, the own observations that start late enough to overlap its tolerance
    # window.
    reach_back = window_us + int(reading.spans.max())
    windows = list(
        zip(
            np.searchsorted(
                reading.starts,
                [micros(item.observed_at) - reach_back for item in received],
                side="left",
            ).tolist(),
            np.searchsorted(
                reading.starts,
                [micros(latest_time(item)) + window_us for item in received],
                side="right",
            ).tolist(),
            strict=True,
        )
    )
    known = preparing.any_matches(
        [preparing.prepare(item, keep=False) for item in received], reading.gathered, windows
    )
    return [not seen for seen in known]


class _PairByPair:
    """A matcher that prepares nothing, in the shape of one that does: each report is itself
    prepared, and none is kept."""

    def __init__(self, matcher: SortieMatcher) -> None:
        self._matcher = matcher

    def prepared_many(self, keys: Sequence[tuple[str, int]]) -> list[Observation | None]:
        return [None] * len(keys)

    def prepare(self, observation: Observation, *, keep: bool) -> Observation:
        return observation

    def prepared_match(self, received: Observation, own: Observation) -> bool:
        return self._matcher(received, own)

    def gather(self, own: Sequence[Observation]) -> Sequence[Observation]:
        return own

    def regather(
        self,
        gathered: Sequence[Observation],
        added: Sequence[Observation],
        take: np.ndarray[Any, np.dtype[np.intp]],
    ) -> Sequence[Observation]:
        both = [*gathered, *added]
        return [both[at] for at in take.tolist()]

    def any_matches(
        self,
        received: Sequence[Observation],
        own: Sequence[Observation],
        windows: Sequence[tuple[int, int]],
    ) -> list[bool]:
        return [
            any(self._matcher(item, mine) for mine in own[low:high])
            for item, (low, high) in zip(received, windows, strict=True)
        ]


def received_ledger_rows(
    received: Sequence[Observation],
    partner: str,
    received_at: dt.datetime,
    novel: Sequence[bool],
    latest_us: Sequence[int] | None = None,
) -> list[LedgerRow]:
    """The ledger's rows for items taken in from ``partner`` at ``received_at`` (``novel``: each
    one's novelty), made without an entry each: the rows a batch taken in adds. ``latest_us``:
    each item's latest time in µs (the ``t1`` of its ``current`` row), when already known."""
    at = micros(received_at)
    if latest_us is None:
        latest_us = [micros(latest_time(observation)) for observation in received]
    return [
        (
            "received",
            partner,
            observation.id,
            observation.version,
            observation.kind,
            latest,
            at,
            sorties_of(observation),
            observation.provenance.released_grid_km,
            int(observation.retracted),
            int(is_new),
            track_of(observation),
        )
        for observation, is_new, latest in zip(received, novel, latest_us, strict=True)
    ]


# --- reciprocity status --------------------------------------------------------------------------


def status_state(status: ReciprocityStatus) -> str:
    """A reciprocity status in one word, to notice when it changes."""
    if status.shortfall:
        return f"shortfall:{status.action}"
    return "in_balance" if status.judged else "not_judged"


def note_status(
    tx: Transaction,
    status: ReciprocityStatus,
    agreement: str,
    now: dt.datetime,
) -> str | None:
    """Keep the partner's latest reciprocity state; the previous state when it changed (``""``
    for the first one judged), None when unchanged."""
    state = status_state(status)
    noted = tx.ledger.standing(status.partner)
    if noted is not None and noted == (agreement, state):
        return None
    previous: str | None = noted[1] if noted is not None else ""
    if noted is None and state == "not_judged":
        previous = None  # nothing to tell until the clause is first judged
    tx.ledger.note_standing(status.partner, agreement, state, status.message, now)
    return previous


# --- the report ----------------------------------------------------------------------------------


class PartnerLedger(msgspec.Struct, frozen=True, kw_only=True):
    """One partner's ledger as ``kuroshio ledger`` and ``GET /api/ledger`` show it."""

    partner: str
    agreement: str | None
    """The agreement in force with the partner (``id vN``), None when there is none."""
    status: ReciprocityStatus | None
    """Standing against that agreement's reciprocity clause (None: no clause)."""
    days: list[LedgerDay]


def partner_ledgers(
    records: Sequence[LedgerEntry],
    book: AgreementBook,
    parties: Iterable[str],
    *,
    now: dt.datetime,
    days: int,
) -> list[PartnerLedger]:
    """The last ``days`` UTC days (ending with ``now``'s) for each of ``parties``."""
    end = now.astimezone(dt.UTC).date()
    start = end - dt.timedelta(days=max(days, 1) - 1)
    report: list[PartnerLedger] = []
    for party in parties:
        enforced = book.in_force(party, now)
        clause = enforced.agreement.reciprocity if enforced is not None else None
        report.append(
            PartnerLedger(
                partner=party,
                agreement=None if enforced is None else f"{enforced.id} v{enforced.version}",
                status=None if clause is None else reciprocity_status(records, party, clause, now),
                days=ledger_days(records, party, start, end),
            )
        )
    return report
