"""Where a long-lived link stands: what ``kuroshio link status``, ``GET /api/links`` and every
scrape of ``GET /metrics`` read of a link's sending side, and the newest receipts ``kuroshio audit
receipts`` lists, on a node whose link has sealed ``BATCHES`` batches (every one is kept, with
its header, signature and receipt, for proofs; 500 000 batches of 20 items are about a week of
live traffic at 1 000 reports/s, in batches cut every 20 ms). The last three are not yet signed
for. Rows are written straight into the node's SQLite file at the sizes a link writes them.
No target: the figures must not grow with the link's age. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from kuroshio.exchange import outbox
from kuroshio.node import Node, init_node, open_node

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
BATCHES = 50_000 if QUICK else 500_000
ITEMS = 20
UNACKED = 3
PARTNER = "JPN"
T0_US = 1_700_000_000_000_000
RECEIPTS = 1_000


def fill(store: Path) -> None:
    """``BATCHES`` sealed batches to ``PARTNER``, all but the last ``UNACKED`` signed for."""
    # The sizes of a link's own rows: a header of 165 bytes, a receipt of about 400 (its audit
    # proof grows with the partner's log), signatures and the batch's hash.
    header, signature, digest, receipt = (os.urandom(n) for n in (165, 64, 32, 420))
    with sqlite3.connect(store) as conn:
        conn.executemany(
            "INSERT INTO sent_batches (partner, seq, first_row, last_row, count, header,"
            " signature, hash, sealed_at, receipt, receipt_signature, acked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    PARTNER,
                    seq,
                    seq * ITEMS,
                    seq * ITEMS + ITEMS - 1,
                    ITEMS,
                    header,
                    signature,
                    digest,
                    T0_US + seq * 20_000,
                    None if seq > BATCHES - UNACKED else receipt,
                    None if seq > BATCHES - UNACKED else signature,
                    None if seq > BATCHES - UNACKED else T0_US + seq * 20_000 + 5_000,
                )
                for seq in range(1, BATCHES + 1)
            ),
        )


def timed_ms(node: Node, read: str) -> float:
    """Median of five reads, each in a transaction of its own, after one to warm the cache."""
    times = []
    for _ in range(6):
        began = time.perf_counter()
        with node.store.transaction() as tx:
            if read == "state":
                state = outbox.state(tx, PARTNER)
                assert (state.sealed_seq, state.unacked_items) == (BATCHES, UNACKED * ITEMS)
            else:
                rows = outbox.receipts(tx, PARTNER, limit=RECEIPTS)
                assert rows[-1].seq == BATCHES and len(rows) == RECEIPTS
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times[1:])


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder) / "twn"
        init_node(directory, "TWN").close()
        began = time.perf_counter()
        fill(directory / "store.sqlite")
        filled_s = time.perf_counter() - began
        size_mb = (directory / "store.sqlite").stat().st_size / 1e6
        with open_node(directory) as node:
            metrics = {
                f"link state ms ({BATCHES:,} batches sealed)": timed_ms(node, "state"),
                f"newest {RECEIPTS:,} receipts ms ({BATCHES:,} batches sealed)": timed_ms(
                    node, "receipts"
                ),
            }
    setup = {
        "batches": BATCHES,
        "items per batch": ITEMS,
        "not signed for": UNACKED,
        "store MB": round(size_mb),
        "fill s": round(filled_s, 1),
        "quick": QUICK,
    }
    print(json.dumps({"name": "links", "metrics": metrics, "targets": {}, "setup": setup}))


if __name__ == "__main__":
    main()
