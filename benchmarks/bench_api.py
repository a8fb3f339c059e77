"""Operators opening the picture at once: what the operator API serves as one process and as
several API workers (``kuroshio serve --workers N``, a node on PostgreSQL).

TWN holds ``REPORTS`` of its own air reports of the last hour. ``OPERATORS`` clients (threads of
``CLIENT_PROCESSES`` processes, each with its own keep-alive connection and the node's admin
token) each ask, again and again for ``SECONDS``, for what a picture asks first: every current
report of the window (``GET /api/observations``, the whole page). TWN runs, in turn: on SQLite
as one process (the embedded default); on a schema of the PostgreSQL server
(``KUROSHIO_BENCH_POSTGRES``, default the local one) as one process; and as 1 and 2 API
workers. For each: answers per second, their latency (median and p99), and the CPU per answer
of the node's processes and of the database server's backends serving them (read from /proc,
so the server must run on this machine). The clients share the machine's cores with the node.
No target: the figures are for sizing ``--workers``. Without a reachable server only the SQLite
run is measured. Prints one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_exchange as bench
from bench_postgres import DSN, server_backends, unreachable
from kuroshio.node import open_node

REPORTS = 1_000
OPERATORS = 16
CLIENT_PROCESSES = 4
"""The operators' threads are spread over this many processes, so that the clients' own
interpreter lock does not bound what they ask for."""
SECONDS = 5.0 if bench.QUICK else 20.0
WORKERS = (1, 2)


def _load(url: str, headers: dict[str, str], until: float, latencies: list[float]) -> None:
    """One operator: ask for the window again and again until ``until`` (each answer read
    whole, and as long as the first, which was checked to hold every report)."""
    with httpx.Client(headers=headers, timeout=60) as client:
        size = None
        while time.monotonic() < until:
            began = time.perf_counter()
            response = client.get(url)
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200 or size not in (None, len(response.content)):
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
            size = len(response.content)


def _operators(url: str, headers: dict[str, str], until: float, count: int) -> list[float]:
    """``count`` operators in threads of this (client) process; every answer's latency."""
    latencies: list[list[float]] = [[] for _ in range(count)]
    threads = [
        threading.Thread(target=_load, args=(url, headers, until, latencies[n]))
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [value for each in latencies for value in each]


def run(label: str, schema: str | None, options: tuple[str, ...]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        stores = {"TWN": {"backend": "postgres", "schema": schema}} if schema else None
        node = bench.make_nodes(root, store=stores, parties=("TWN",))["TWN"]
        now = dt.datetime.now(dt.UTC)
        with open_node(node.directory) as twn:
            twn.ingest(
                [
                    bench.observation(n, "api", now - dt.timedelta(seconds=REPORTS - n))
                    for n in range(REPORTS)
                ]
            )
        token = (node.directory / "keys" / "admin.token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        start = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (now + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = f"{node.api}/api/observations?start={start}&end={end}&limit=10000"
        serving = bench.serve(node, root / "TWN.log", *options)
        try:
            bench.wait_http(f"{node.api}/api/health")
            # Each worker answers once before the clock starts (its first request warms it).
            with httpx.Client(headers=headers, timeout=60) as client:
                for _ in range(8):
                    first = client.get(url)
                    first.raise_for_status()
                    assert len(first.json()["items"]) == REPORTS
            backends = server_backends(schema) if schema else []
            cpu = bench.cpu_s(serving.pid, children=True)
            served = sum(bench.cpu_s(pid) for pid in backends)
            began = time.monotonic()
            until, each = began + SECONDS, OPERATORS // CLIENT_PROCESSES
            with ProcessPoolExecutor(CLIENT_PROCESSES) as clients:
                latencies = list(
                    clients.map(
                        _operators,
                        *([value] * CLIENT_PROCESSES for value in (url, headers, until, each)),
                    )
                )
            took = time.monotonic() - began
            cpu = bench.cpu_s(serving.pid, children=True) - cpu
            backends = server_backends(schema) if schema else []
            served = sum(bench.cpu_s(pid) for pid in backends) - served
        finally:
            bench.stop(serving)
            if schema is not None:
                with psycopg.connect(DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    answers = sorted(value for each in latencies for value in each)
    count = len(answers)
    sys.stderr.write(f"{label}: {count / took:,.1f} answers/s\n")
    metrics = {
        f"answers/s ({label})": count / took,
        f"latency ms, median ({label})": statistics.median(answers) * 1e3,
        f"latency ms, p99 ({label})": answers[min(count - 1, int(count * 0.99))] * 1e3,
        f"CPU ms per answer, node ({label})": cpu / count * 1e3,
    }
    if schema is not None:
        metrics[f"CPU ms per answer, PostgreSQL backends ({label})"] = served / count * 1e3
    return metrics


def main() -> None:
    metrics: dict[str, Any] = {}
    metrics.update(run("SQLite, one process", None, ()))
    setup: dict[str, Any] = {
        "reports in the window": REPORTS,
        "operators": f"{OPERATORS}, in {CLIENT_PROCESSES} client processes",
        "seconds per run": SECONDS,
        "request": "GET /api/observations of the last hour, limit 10 000 (the picture's first)",
    }
    why = unreachable()
    if why is not None:
        setup["postgres skipped"] = why
    else:
        os.environ["KUROSHIO_STORE_DSN"] = DSN
        metrics.update(run("PostgreSQL, one process", _schema(), ()))
        for workers in WORKERS:
            label = f"PostgreSQL, {workers} API workers"
            metrics.update(run(label, _schema(), ("--workers", str(workers))))
        setup["server"] = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    print(json.dumps({"name": "api", "metrics": metrics, "targets": {}, "setup": setup}))


def _schema() -> str:
    return f"bench_{uuid.uuid4().hex[:10]}_twn"


if __name__ == "__main__":
    main()
