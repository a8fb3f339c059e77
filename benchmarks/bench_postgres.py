"""Two ``kuroshio serve`` processes exchanging as ``bench_exchange`` does, but each node on a
schema of the PostgreSQL server (``KUROSHIO_BENCH_POSTGRES``, default the local server).

TWN ingests a backlog in process (released under the same coarsening agreement), then both nodes
serve; the figure is JPN's commit rate from first arrival to last, and the CPU each process spent
per item. With ``--workers`` figures the receiving node runs as API workers beside its exchange
process, as a deployment would. It prints one JSON line like every ``bench_*.py``; without a
reachable server it says so and measures nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_exchange as bench

DSN = os.environ.get("KUROSHIO_BENCH_POSTGRES", "host=127.0.0.1 user=postgres dbname=test")
BACKLOG = 20_000 if bench.QUICK else 100_000


def committed(schema: str) -> int:
    """Versions committed in a node's schema (the history's last seq)."""
    try:
        with psycopg.connect(DSN, autocommit=True) as conn:
            row = conn.execute(f"SELECT max(seq) FROM {schema}.observation_versions").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0] or 0) if row else 0


def drain(schema: str, until: int, patience_s: float = 120) -> tuple[float, float]:
    """Wait until the schema holds ``until`` versions: (first arrival, last arrival)."""
    first: float | None = None
    seen, last_progress = 0, time.perf_counter()
    while True:
        count = committed(schema)
        now = time.perf_counter()
        if count > seen:
            seen, last_progress = count, now
            first = first if first is not None else now
        if count >= until and first is not None:
            return first, now
        if now - last_progress > patience_s:
            raise RuntimeError(f"{schema}: stuck at {count} of {until} versions")
        time.sleep(0.02)


def run(workers: int) -> dict[str, float]:
    """One exchange of the backlog, the receiving node served with ``workers`` API workers."""
    schemas = {party: f"bench_{uuid.uuid4().hex[:10]}_{party.lower()}" for party in ("TWN", "JPN")}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nodes = bench.make_nodes(
            root, store={p: {"backend": "postgres", "schema": s} for p, s in schemas.items()}
        )
        bench.install_agreement(nodes, root)
        preload_s = bench.preload(nodes["TWN"], BACKLOG)
        options = ["--workers", str(workers)] if workers else []
        processes = {
            party: bench.serve(nodes[party], root / f"{party}.log", *extra)
            for party, extra in (("JPN", options), ("TWN", []))
        }
        try:
            before = {p: bench.cpu_s(proc.pid, children=True) for p, proc in processes.items()}
            began, ended = drain(schemas["JPN"], BACKLOG)
            after = {p: bench.cpu_s(proc.pid, children=True) for p, proc in processes.items()}
        finally:
            for process in processes.values():
                bench.stop(process)
            with psycopg.connect(DSN, autocommit=True) as conn:
                for schema in schemas.values():
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    label = f"{workers} API workers + 1 exchange process" if workers else "one process"
    return {
        "preload obs/s (TWN on PostgreSQL, in process)": BACKLOG / preload_s,
        f"throughput obs/s (JPN on PostgreSQL, {label})": BACKLOG / (ended - began),
        f"CPU µs per observation, receiver (JPN, {label})": (after["JPN"] - before["JPN"])
        / BACKLOG
        * 1e6,
        "CPU µs per observation, sender (TWN)": (after["TWN"] - before["TWN"]) / BACKLOG * 1e6,
    }


def main() -> None:
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as error:
        print(json.dumps({"name": "postgres", "metrics": {}, "setup": {"skipped": str(error)}}))
        return
    os.environ["KUROSHIO_STORE_DSN"] = DSN
    metrics: dict[str, Any] = {}
    for workers in (0, 2):
        metrics.update(run(workers))
    print(
        json.dumps(
            {
                "name": "postgres",
                "metrics": metrics,
                "targets": {},
                "setup": {
                    "backlog": BACKLOG,
                    "server": subprocess.run(
                        ["psql", "--version"], capture_output=True, text=True, check=False
                    ).stdout.strip(),
                    "agreement": "as bench_exchange",
                },
            }
        )
    )


if __name__ == "__main__":
    main()
