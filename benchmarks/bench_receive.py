"""The receiving hot path in one process, timed in CPU seconds (steady on a busy machine).

TWN ingests and seals batches of 1 000 (agreement on, as in ``bench_exchange``); JPN opens each
batch (signature, Merkle root, every item decoded, validated and checked canonical) and takes it
in (store, inbox, ledger, receipt, audit, commit), without sockets; then again at a node whose
own picture is busy (``OWN_PICTURE`` reports in the window, which novelty compares each batch
with), unchanged between batches and changing before each, on the embedded store and, when
the server answers (``KUROSHIO_BENCH_POSTGRES``, default the local one), on a schema of
PostgreSQL. Also one observation's decode
and canonical encode on their own. Use it to compare code changes; ``bench_exchange`` gives the
figures that count.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import psycopg

from kuroshio.exchange import outbox
from kuroshio.exchange.batch import SealedBatch, open_batch
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Observation, Point, canonical_bytes
from kuroshio.node import Node, open_node

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_exchange as bench

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
BATCHES = 10 if QUICK else 40
DSN = os.environ.get("KUROSHIO_BENCH_POSTGRES", "host=127.0.0.1 user=postgres dbname=test")
OWN_PICTURE = 5_000 if QUICK else 15_000
"""The node's own reports in the window of the batches it takes in (below the most novelty
compares a batch with, 20 000)."""


def _best_per_item(run: Callable[[], object], items: int, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        run()
        best = min(best, time.process_time() - began)
    return best / items * 1e6


def sealed_for_jpn(twn: Node, observations: list[Observation]) -> SealedBatch:
    """``observations`` ingested at TWN (released to JPN) and sealed as one batch."""
    twn.ingest(observations)
    with twn.store.transaction() as tx:
        batch = outbox.seal_next(
            tx,
            "JPN",
            signer=twn.identity,
            sender="TWN",
            max_items=len(observations),
            max_bytes=16 * 1024 * 1024,
            now=dt.datetime.now(dt.UTC),
        )
    assert batch is not None and batch.header.count == len(observations)
    return batch


def busy_own_picture(metrics: dict[str, float], schema: str | None = None) -> None:
    """Taking batches in at a node whose own picture holds ``OWN_PICTURE`` reports in the
    batches' window (J-16 fighters where TWN's are, over the last 25 minutes): the CPU
    milliseconds a batch of 20 (a live exchange's) and of 1 000 take, median, when the own
    picture does not change between batches and when one own report is stored before each (a
    live own feed: the own reports stored since the batch before are read again). JPN keeps
    its store in PostgreSQL's ``schema`` when given one."""
    chooser = random.Random(4)
    now = dt.datetime.now(dt.UTC)
    stores = None if schema is None else {"JPN": {"backend": "postgres", "schema": schema}}
    backend = "SQLite" if schema is None else "PostgreSQL"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nodes = bench.make_nodes(root, store=stores)
        bench.install_agreement(nodes, root)
        with open_node(nodes["TWN"].directory) as twn, open_node(nodes["JPN"].directory) as jpn:

            def own(number: int, at: dt.datetime) -> Observation:
                return msgspec.structs.replace(
                    bench.observation(number, "own", at, "JPN"),
                    geometry=Point(
                        coordinates=(chooser.uniform(118, 123), chooser.uniform(20, 27))
                    ),
                )

            for start in range(0, OWN_PICTURE, 1_000):
                jpn.ingest(
                    [
                        own(n, now - dt.timedelta(seconds=chooser.uniform(0, 1_500)))
                        for n in range(start, start + 1_000)
                    ]
                )
            inbox, partner = Inbox(jpn), jpn.partners["TWN"]
            number = 0
            for changing in (False, True):
                for size, count in ((20, 30), (1_000, 5)):
                    cpu_ms = []
                    for _ in range(count + 1):  # the first prepares the own picture
                        at = dt.datetime.now(dt.UTC)
                        batch = sealed_for_jpn(
                            twn, [bench.observation(number + n, "busy", at) for n in range(size)]
                        )
                        number += size
                        if changing:
                            jpn.ingest([own(OWN_PICTURE + number, at)])
                        checked = inbox.open(partner, batch.frame())
                        began = time.process_time()
                        inbox.take_in(partner, checked)
                        cpu_ms.append((time.process_time() - began) * 1_000)
                    label = "changing" if changing else "unchanged"
                    metrics[
                        f"take in a batch of {size:,} against {OWN_PICTURE:,} own reports"
                        f" ({label}, {backend}), CPU ms"
                    ] = statistics.median(cpu_ms[1:])


def busy_own_picture_on_postgres(metrics: dict[str, float]) -> str | None:
    """:func:`busy_own_picture` with JPN on a PostgreSQL schema of its own (dropped after);
    why not, when the server does not answer."""
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL not reachable ({error})"
    os.environ["KUROSHIO_STORE_DSN"] = DSN
    schema = f"bench_{uuid.uuid4().hex[:10]}_receive"
    try:
        busy_own_picture(metrics, schema)
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return None


def main() -> None:
    at = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nodes = bench.make_nodes(root)
        bench.install_agreement(nodes, root)
        with open_node(nodes["TWN"].directory) as twn, open_node(nodes["JPN"].directory) as jpn:
            sealed: list[SealedBatch] = []
            for number in range(BATCHES):
                sealed.append(
                    sealed_for_jpn(
                        twn,
                        [bench.observation(number * 1_000 + n, "rx", at) for n in range(1_000)],
                    )
                )
            partner = jpn.partners["TWN"]
            items = sealed[0].items
            decoder = msgspec.json.Decoder(Observation)
            decoded = [decoder.decode(item) for item in items]
            decode_us = _best_per_item(lambda: [decoder.decode(i) for i in items], len(items))
            encode_us = _best_per_item(lambda: [canonical_bytes(o) for o in decoded], len(items))
            frames = [batch.frame() for batch in sealed]
            open_us = _best_per_item(
                lambda: [
                    open_batch(f, sender="TWN", receiver="JPN", sender_key=partner.signing_key)
                    for f in frames[:5]
                ],
                5_000,
            )
            inbox = Inbox(jpn)
            began = time.process_time()
            for frame in frames:
                inbox.accept(partner, frame)
            accept_us = (time.process_time() - began) / (len(frames) * 1_000) * 1e6
    metrics: dict[str, float] = {
        "decode µs per observation (validated)": decode_us,
        "canonical encode µs per observation": encode_us,
        "open batch µs per observation (CPU)": open_us,
        "take in µs per observation (CPU, open + store + commit)": accept_us,
        "take-in obs/s per core": 1e6 / accept_us,
    }
    busy_own_picture(metrics)
    skipped = busy_own_picture_on_postgres(metrics)
    print(
        json.dumps(
            {
                "name": "receive",
                "metrics": metrics,
                "targets": {},
                "setup": {
                    "batches": BATCHES,
                    "items_per_batch": 1_000,
                    **({"postgres": skipped} if skipped else {}),
                },
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
