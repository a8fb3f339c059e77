"""A partner's reciprocity standing over a large ledger window: counted by the store (how the
node judges it, in the background) against building every entry of the window in Python (how the
ledger's reports count, and how the node judged it before, inside the write that asked).

One partner's window of ``ROWS`` rows (1 000 000; 200 000 under ``--quick``): half given, half
received, a third of them updates of source tracks, one in ten items with a second version and
some retracted, spread over the clause's 30 days. On a SQLite file (WAL, as a node keeps it)
and, when the PostgreSQL server answers (``KUROSHIO_BENCH_POSTGRES``, default the local one),
on a schema of it.

Novelty: a batch of ``RECEIVED`` partner reports (half of them bombers none of the node's own
reports matches, half fighters) judged against ``OWN`` own reports (20 000, the most a batch is
compared with; 5 000 under ``--quick``) in the batch's window, on a SQLite file: every pair
afresh through :func:`~kuroshio.fusion.same_sortie` (as before), and through the node's
:class:`~kuroshio.fusion.SortieGate`, which prepares each own report once and keeps it for the
next batch (its first batch, then the next); and a full batch of ``BATCH`` (1 000) received
reports through the node's gate, as above and all of them new to the node.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from kuroshio.fusion import SortieGate, same_sortie
from kuroshio.model import Observation, Platform, Point, Source
from kuroshio.policy import reciprocity
from kuroshio.policy.agreement import Reciprocity
from kuroshio.policy.ledger import ReciprocityStatus, SortieMatcher, reciprocity_status
from kuroshio.store.ledger import LedgerRow
from kuroshio.store.sql import micros
from kuroshio.store.sqlite import SQLiteStore
from kuroshio.store.transaction import Transaction

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
ROWS = 200_000 if QUICK else 1_000_000
CHUNK = 50_000
PARTNER = "JPN"
CLAUSE = Reciprocity(window_days=30, min_ratio=0.5)
OWN = 5_000 if QUICK else 20_000
RECEIVED = 10
BATCH = 1_000
"""A full batch of received reports (the exchange's), judged by the node's gate only: as above,
and all fighters none of the own reports matches (``FAR_EAST`` degrees further east, 690 km or
more from each), for which every own report in the window must be ruled out."""
FAR_EAST = 14.0
POSTGRES = os.environ.get("KUROSHIO_BENCH_POSTGRES", "host=127.0.0.1 user=postgres dbname=postgres")


def ledger_rows(now: dt.datetime, start: int) -> list[LedgerRow]:
    """Rows ``start`` to ``start + CHUNK`` of the window ending ``now``."""
    span_us = 29 * 86_400_000_000
    first_us = micros(now) - span_us
    rows: list[LedgerRow] = []
    for n in range(start, min(start + CHUNK, ROWS)):
        at = first_us + n * span_us // ROWS
        given = (n // 10) % 2 == 1  # blocks of ten rows each way
        second = n % 10 == 9  # the last of a block: a second version of the one before
        rows.append(
            (
                "given" if given else "received",
                PARTNER,
                f"{'TWN' if given else PARTNER}:bench:{n - 1 if second else n}",
                2 if second else 1,
                "air",
                at - 60_000_000,
                at,
                2,
                10.0,
                int(n % 97 == 0),
                None if given else int(n % 5 != 0),
                f"icao:{n % 3000:06X}" if n % 3 == 0 else None,
            )
        )
    return rows


def timed(read: Callable[[Callable[[Transaction], Any]], Any], count: Callable[..., Any]) -> float:
    began = time.perf_counter()
    read(count)
    return time.perf_counter() - began


def by_store(now: dt.datetime) -> Callable[[Transaction], ReciprocityStatus]:
    return lambda tx: reciprocity.standing(tx, PARTNER, CLAUSE, now)


def by_entries(now: dt.datetime) -> Callable[[Transaction], ReciprocityStatus]:
    since = now - dt.timedelta(days=CLAUSE.window_days)
    return lambda tx: reciprocity_status(
        reciprocity.entries(tx, partner=PARTNER, since=since), PARTNER, CLAUSE, now
    )


def novelty(metrics: dict[str, float]) -> None:
    chooser = random.Random(1)
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    fighter = Platform(type="J-16", platform_class="fighter", count=2, nationality="CHN")
    bomber = Platform(type="H-6K", platform_class="bomber", count=2, nationality="CHN")

    def report(origin: str, number: int, platform: Platform, east: float = 0.0) -> Observation:
        return Observation(
            id=f"{origin}:bench:{number}",
            origin=origin,
            kind="air",
            observed_at=at + dt.timedelta(seconds=chooser.uniform(-1500, 1500)),
            geometry=Point(coordinates=(chooser.uniform(119, 126) + east, chooser.uniform(20, 27))),
            platform=platform,
            source=Source(sensor="radar", confidence=0.9, uncertainty_m=1000),
        )

    def judged(
        store: SQLiteStore,
        matcher: SortieMatcher,
        number: int,
        size: int = RECEIVED,
        *,
        far: bool = False,
    ) -> float:
        received = [
            report("TWN", number * BATCH + n, fighter, east=FAR_EAST)
            if far
            else report("TWN", number * BATCH + n, bomber if n % 2 else fighter)
            for n in range(size)
        ]
        began = time.perf_counter()
        with store.transaction() as tx:
            reciprocity.judge_novelty(tx, received, "JPN", matcher)
        return (time.perf_counter() - began) * 1000

    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "s.sqlite") as store:
        own = [report("JPN", n, fighter) for n in range(OWN)]
        for start in range(0, OWN, CHUNK):
            store.append(own[start : start + CHUNK])
        label = f"novelty of {RECEIVED} received against {OWN:,} own reports"
        metrics[f"{label}: every pair afresh, ms"] = judged(store, same_sortie, 0)
        gate = SortieGate()
        metrics[f"{label}: prepared, first batch, ms"] = judged(store, gate, 1)
        metrics[f"{label}: prepared, next batch, ms"] = judged(store, gate, 2)
        label = f"novelty of a batch of {BATCH:,} received against {OWN:,} own reports"
        metrics[f"{label}: prepared, next batch, ms"] = judged(store, gate, 3, BATCH)
        metrics[f"{label}, none known (fighters far east): prepared, next batch, ms"] = judged(
            store, gate, 4, BATCH, far=True
        )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    now = dt.datetime.now(dt.UTC)
    label = f"{ROWS:,}-row window"
    metrics: dict[str, float] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "s.sqlite") as store:
        for start in range(0, ROWS, CHUNK):
            with store.transaction() as tx:
                tx.ledger.record(ledger_rows(now, start), first_stored=True)
        metrics[f"{label}: counted by the store (SQLite), s"] = min(
            timed(store.read, by_store(now)) for _ in range(3)
        )
        before = peak_mb()
        began = time.perf_counter()
        expected = store.read(by_entries(now))
        metrics[f"{label}: from every entry in Python (SQLite), s"] = time.perf_counter() - began
        metrics[f"{label}: peak memory the entries add, MB"] = peak_mb() - before
        counted = store.read(by_store(now))
        assert (counted.given, counted.received) == (
            msgspec.structs.replace(expected.given, timeliness_s=None, precision_km=None),
            msgspec.structs.replace(expected.received, timeliness_s=None, precision_km=None),
        ), "the store and the entries count differently"
    try:
        from kuroshio.store.postgres import PostgresStore

        pg = PostgresStore(POSTGRES, schema=f"bench_{uuid.uuid4().hex[:12]}")
    except Exception as error:  # no server: the SQLite figures stand alone
        notes.append(f"PostgreSQL not measured: {error}")
    else:
        try:
            for start in range(0, ROWS, CHUNK):
                with pg.transaction() as tx:
                    tx.ledger.record(ledger_rows(now, start), first_stored=True)
            metrics[f"{label}: counted by the store (PostgreSQL), s"] = min(
                timed(pg.read, by_store(now)) for _ in range(3)
            )
        finally:
            pg.drop()
            pg.close()
    novelty(metrics)
    for note in notes:
        print(note, file=sys.stderr)
    print(json.dumps({"name": "reciprocity", "metrics": metrics, "targets": {}}))


if __name__ == "__main__":
    main()
