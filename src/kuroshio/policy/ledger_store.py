"""The reciprocity ledger as a node keeps it: one row per item version given or received, in a
table of the node's SQLite file, written in the transaction that records the receipt or takes
the batch in.

It records and reads :class:`~kuroshio.policy.ledger.LedgerEntry` rows and judges novelty for
received items; the arithmetic (days, windows, ratios) stays in :mod:`kuroshio.policy.ledger`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Final

import msgspec

from kuroshio.model import Kind, Observation
from kuroshio.policy.book import AgreementBook
from kuroshio.policy.ledger import (
    SAME_SORTIE_TIME,
    LedgerDay,
    LedgerEntry,
    ReciprocityStatus,
    fused_same_sortie,
    grid_of_transforms,
    is_novel,
    ledger_days,
    reciprocity_status,
    released_grid_km,
)

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS ledger (
        flow TEXT NOT NULL,
        partner TEXT NOT NULL,
        item TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        observed_at INTEGER NOT NULL,
        at INTEGER NOT NULL,
        sorties INTEGER NOT NULL,
        grid_km REAL,
        retracted INTEGER NOT NULL,
        novel INTEGER,
        PRIMARY KEY (flow, partner, item, version)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ledger_by_time ON ledger (partner, at)",
    """CREATE TABLE IF NOT EXISTS reciprocity_state (
        partner TEXT PRIMARY KEY,
        agreement TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        changed_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
)
MAX_OWN_CANDIDATES: Final = 20_000
"""Own observations compared against one batch for novelty (a bound, not an expectation)."""

_observation_decoder = msgspec.json.Decoder(Observation)


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


def _micros(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _time(micros: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)


def _sorties(observation: Observation) -> int:
    if observation.kind == "area":
        return 0
    return observation.platform.count if observation.platform is not None else 1


class _Count(msgspec.Struct):
    count: int = 1


class _Transforms(msgspec.Struct):
    transforms: tuple[str, ...] = ()


class _GivenItem(msgspec.Struct):
    """The fields of an item as sent that the ledger keeps (the rest is not decoded)."""

    id: str
    version: int
    kind: Kind
    observed_at: dt.datetime
    until: dt.datetime | None = None
    platform: _Count | None = None
    provenance: _Transforms = msgspec.field(default_factory=_Transforms)
    retracted: bool = False


_given_decoder = msgspec.json.Decoder(_GivenItem)


def given_entries(
    items: Iterable[bytes], partner: str, received_at: dt.datetime
) -> list[LedgerEntry]:
    """Ledger entries for the items (as sent, canonical JSON) of a batch the partner signed for
    at ``received_at``; the precision released is read from the items' own transforms. The items
    were validated when released, so only the ledger's fields are decoded here."""
    entries: list[LedgerEntry] = []
    for item in items:
        given = _given_decoder.decode(item)
        sorties = 0 if given.kind == "area" else given.platform.count if given.platform else 1
        entries.append(
            LedgerEntry(
                flow="given",
                partner=partner,
                item=given.id,
                version=given.version,
                kind=given.kind,
                observed_at=given.until or given.observed_at,
                at=received_at,
                sorties=sorties,
                grid_km=grid_of_transforms(given.provenance.transforms),
                retracted=given.retracted,
            )
        )
    return entries


def record(conn: sqlite3.Connection, entries: Sequence[LedgerEntry]) -> int:
    """Write entries (an item version already recorded for that partner and flow is kept as first
    recorded); the number written."""
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO ledger (flow, partner, item, version, kind, observed_at, at,"
        " sorties, grid_km, retracted, novel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.flow,
                e.partner,
                e.item,
                e.version,
                e.kind,
                _micros(e.observed_at),
                _micros(e.at),
                e.sorties,
                e.grid_km,
                int(e.retracted),
                None if e.novel is None else int(e.novel),
            )
            for e in entries
        ],
    )
    return conn.total_changes - before


def entries(
    conn: sqlite3.Connection,
    *,
    partner: str | None = None,
    since: dt.datetime | None = None,
) -> list[LedgerEntry]:
    """Recorded entries, oldest first, for one partner or all, from ``since`` on."""
    where: list[str] = []
    params: list[object] = []
    if partner is not None:
        where.append("partner = ?")
        params.append(partner)
    if since is not None:
        where.append("at >= ?")
        params.append(_micros(since))
    sql = (
        "SELECT flow, partner, item, version, kind, observed_at, at, sorties, grid_km,"
        " retracted, novel FROM ledger"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY at"
    )
    return [
        LedgerEntry(
            flow=flow,
            partner=party,
            item=item,
            version=version,
            kind=kind,
            observed_at=_time(observed_at),
            at=_time(at),
            sorties=sorties,
            grid_km=grid_km,
            retracted=bool(retracted),
            novel=None if novel is None else bool(novel),
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
        ) in conn.execute(sql, params)
    ]


def partners(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT DISTINCT partner FROM ledger ORDER BY partner")]


# --- novelty -------------------------------------------------------------------------------------


def judge_novelty(
    conn: sqlite3.Connection, received: Sequence[Observation], own_party: str
) -> list[bool]:
    """For each received item: True when this node holds no observation of its own of the same
    sortie, by the fusion gate (:func:`~kuroshio.policy.ledger.fused_same_sortie`: each report's
    uncertainty and the sender's coarsening grid, platform family, count). The one place novelty
    is judged."""
    if not received:
        return []
    start = min(o.observed_at for o in received) - SAME_SORTIE_TIME
    end = max(o.until or o.observed_at for o in received) + SAME_SORTIE_TIME
    rows = conn.execute(
        "SELECT c.t0, v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
        " WHERE c.origin = ? AND c.retracted = 0 AND c.t1 >= ? AND c.t0 <= ?"
        " ORDER BY c.t0 LIMIT ?",
        (own_party, _micros(start), _micros(end), MAX_OWN_CANDIDATES),
    ).fetchall()
    if not rows:
        return [True] * len(received)
    starts = [int(row[0]) for row in rows]
    own = [_observation_decoder.decode(row[1]) for row in rows]
    longest = max(((o.until or o.observed_at) - o.observed_at) for o in own)
    verdicts: list[bool] = []
    for item in received:
        # Own observations that start late enough to overlap the tolerance window.
        low = bisect.bisect_left(starts, _micros(item.observed_at - SAME_SORTIE_TIME - longest))
        high = bisect.bisect_right(
            starts, _micros((item.until or item.observed_at) + SAME_SORTIE_TIME)
        )
        verdicts.append(is_novel(item, own[low:high], fused_same_sortie))
    return verdicts


def received_entries(
    received: Sequence[Observation],
    partner: str,
    received_at: dt.datetime,
    novel: Sequence[bool],
) -> list[LedgerEntry]:
    """Ledger entries for items taken in from ``partner`` at ``received_at``."""
    return [
        LedgerEntry(
            flow="received",
            partner=partner,
            item=observation.id,
            version=observation.version,
            kind=observation.kind,
            observed_at=observation.until or observation.observed_at,
            at=received_at,
            sorties=_sorties(observation),
            grid_km=released_grid_km(observation),
            retracted=observation.retracted,
            novel=is_new,
        )
        for observation, is_new in zip(received, novel, strict=True)
    ]


# --- reciprocity status --------------------------------------------------------------------------


def status_state(status: ReciprocityStatus) -> str:
    """A reciprocity status in one word, to notice when it changes."""
    if status.shortfall:
        return f"shortfall:{status.action}"
    return "in_balance" if status.judged else "not_judged"


def note_status(
    conn: sqlite3.Connection,
    status: ReciprocityStatus,
    agreement: str,
    now: dt.datetime,
) -> str | None:
    """Keep the partner's latest reciprocity state; the previous state when it changed (``""``
    for the first one judged), None when unchanged."""
    state = status_state(status)
    row = conn.execute(
        "SELECT agreement, state FROM reciprocity_state WHERE partner = ?", (status.partner,)
    ).fetchone()
    if row is not None and row[0] == agreement and row[1] == state:
        return None
    previous: str | None = str(row[1]) if row is not None else ""
    if row is None and state == "not_judged":
        previous = None  # nothing to tell until the clause is first judged
    conn.execute(
        "INSERT OR REPLACE INTO reciprocity_state (partner, agreement, state, message,"
        " changed_at) VALUES (?, ?, ?, ?, ?)",
        (status.partner, agreement, state, status.message, _micros(now)),
    )
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
