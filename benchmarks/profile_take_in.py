"""Taking batches in, in one process and without sockets: the CPU per item of the node and of the
database server's backend serving it, and the statements sent per batch.

TWN (SQLite) seals batches of 1 000 of ``bench_exchange``'s records for JPN; JPN, on SQLite or
on a schema of the PostgreSQL server (``KUROSHIO_BENCH_POSTGRES``, default the local one), opens
them all (signature, Merkle root, items) and then takes them in one by one, as its inbox does.
Only the take-in is timed: the node's CPU (``time.process_time``) and the server backend's
(``/proc/<pid>/schedstat``, so the server must run on this machine). CPU time is what the code
costs whatever else the machine is doing, which makes it the figure to compare on a shared one.

Usage: ``python benchmarks/profile_take_in.py [sqlite|postgres] [BATCHES]``.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

import bench_exchange as bench
from kuroshio.exchange import outbox
from kuroshio.exchange.batch import SealedBatch
from kuroshio.federation.inbox import Inbox
from kuroshio.node import Node, open_node
from kuroshio.store.postgres import PostgresStore

DSN = os.environ.get("KUROSHIO_BENCH_POSTGRES", "host=127.0.0.1 user=postgres dbname=test")
ITEMS = 1_000


def count_statements(into: collections.Counter[str]) -> None:
    """Count every statement psycopg sends from now on (executemany: once per call)."""
    for name in ("execute", "executemany", "copy"):
        original: Callable[..., Any] = getattr(psycopg.Cursor, name)

        def counted(self: Any, query: Any, *args: Any, _o: Any = original, **kw: Any) -> Any:
            into[str(query)[:100]] += 1
            return _o(self, query, *args, **kw)

        setattr(psycopg.Cursor, name, counted)


def server_ns(node: Node) -> Callable[[], int]:
    """The CPU nanoseconds spent so far by the server backend of ``node``'s store (0 on SQLite)."""
    store = node.store
    if not isinstance(store, PostgresStore):
        return lambda: 0
    path = Path(f"/proc/{store.connection.info.backend_pid}/schedstat")
    return lambda: int(path.read_text().split()[0])


def seal_one(twn: Node) -> SealedBatch:
    """TWN's next batch for JPN, of ``ITEMS`` items due, sealed in a transaction of its own."""
    with twn.store.transaction() as tx:
        sealed = outbox.seal_next(
            tx,
            "JPN",
            signer=twn.identity,
            sender="TWN",
            max_items=ITEMS,
            max_bytes=8 * 1024 * 1024,
            now=dt.datetime.now(dt.UTC),
        )
    assert sealed is not None and len(sealed.items) == ITEMS
    return sealed


def seal(twn: Node, batches: int) -> list[Any]:
    at = dt.datetime.now(dt.UTC)
    frames = []
    for number in range(batches):
        twn.ingest(
            [bench.observation(n, "bulk", at) for n in range(number * ITEMS, (number + 1) * ITEMS)]
        )
        frames.append(seal_one(twn).frame())
    return frames


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "postgres"
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 21
    os.environ["KUROSHIO_STORE_DSN"] = DSN
    schema = f"bench_{uuid.uuid4().hex[:10]}_jpn"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store = (
            {"JPN": {"backend": "postgres", "schema": schema}} if backend == "postgres" else None
        )
        nodes = bench.make_nodes(root, store=store)
        bench.install_agreement(nodes, root)
        twn, jpn = open_node(nodes["TWN"].directory), open_node(nodes["JPN"].directory)
        try:
            frames = seal(twn, batches)
            inbox, partner = Inbox(jpn), jpn.partners["TWN"]
            inbox.take_in(partner, inbox.open(partner, frames[0]))  # warm: caches, prepared
            opened = [inbox.open(partner, frame) for frame in frames[1:]]
            statements: collections.Counter[str] = collections.Counter()
            count_statements(statements)
            server = server_ns(jpn)
            cpu, wall, served = time.process_time(), time.perf_counter(), server()
            for batch in opened:
                inbox.take_in(partner, batch)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            served = server() - served
        finally:
            twn.close()
            jpn.close()
            if backend == "postgres":
                with psycopg.connect(DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    items = len(opened) * ITEMS
    print(
        f"{backend}: take-in CPU {cpu / items * 1e6:.1f} µs/item (node),"
        f" {served / items / 1e3:.1f} µs/item (server backend),"
        f" wall {wall / items * 1e6:.1f} µs/item;"
        f" {sum(statements.values()) / len(opened):.1f} statements per batch of {ITEMS}"
    )
    for query, count in statements.most_common(12):
        print(f"  {count / len(opened):5.1f}  {query}")


if __name__ == "__main__":
    main()
