"""Moving a node's store from its SQLite file to PostgreSQL (``kuroshio store move``): how long a
node that outgrew its file is stopped for.

TWN (``bench_exchange``'s node, its agreement with JPN installed) takes in ``ITEMS`` of its own
air reports, each released to JPN, so the file holds each item's history and current rows and
its outbox rows. Then ``kuroshio store move`` runs as a user runs it, into a fresh schema of the
PostgreSQL server (``KUROSHIO_BENCH_POSTGRES``, default the local one): wall time from start to
exit, rows moved, and the file's size. Without a reachable server it says so and measures
nothing. Prints one JSON line like every ``bench_*.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_exchange as bench
from bench_postgres import DSN, unreachable
from kuroshio.node import open_node

ITEMS = 20_000 if bench.QUICK else 200_000
CHUNK = 10_000


def main() -> None:
    why = unreachable()
    if why is not None:
        print(json.dumps({"name": "move", "metrics": {}, "setup": {"skipped": why}}))
        return
    schema = f"bench_move_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nodes = bench.make_nodes(root)
        bench.install_agreement(nodes, root)
        directory = nodes["TWN"].directory
        at = dt.datetime.now(dt.UTC)
        with open_node(directory) as twn:
            for start in range(0, ITEMS, CHUNK):
                twn.ingest([bench.observation(n, "bulk", at) for n in range(start, start + CHUNK)])
        file_mb = (directory / "store.sqlite").stat().st_size / 1e6
        kuroshio = Path(sys.executable).with_name("kuroshio")
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [
                    str(kuroshio),
                    "store",
                    "move",
                    "-n",
                    str(directory),
                    "--schema",
                    schema,
                    "--json",
                ],
                env={**os.environ, "KUROSHIO_STORE_DSN": DSN},
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - started
        finally:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    if done.returncode != 0:
        raise SystemExit(f"kuroshio store move failed ({done.returncode}): {done.stderr}")
    rows = sum(json.loads(done.stdout)["tables"].values())
    print(
        json.dumps(
            {
                "name": "move",
                "metrics": {
                    "store move to PostgreSQL, s": seconds,
                    "rows moved": rows,
                    "rows moved per s": rows / seconds,
                    "store file MB": file_mb,
                },
                "targets": {},
                "setup": {
                    "observations": ITEMS,
                    "what the file holds": "own air reports, each released to JPN (outbox)",
                    "server": subprocess.run(
                        ["psql", "--version"], capture_output=True, text=True, check=False
                    ).stdout.strip(),
                },
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
