"""The exchange of ``bench_exchange`` into a node on PostgreSQL, taken in by one or several
receiving processes, beside the same exchange into a node on SQLite.

Two senders, TWN and PHL (embedded SQLite stores, served as one process each), each hold a
backlog released to JPN under the same coarsening agreement; JPN then serves and takes both
links in. JPN runs, in turn: on SQLite as one process (the embedded default, the reference); on
a schema of the PostgreSQL server (``KUROSHIO_BENCH_POSTGRES``, default the local server) as one
process; and under ``kuroshio serve --workers 1 --receivers M`` for M = 1 and 2 (M receiving
processes sharing the federation port, one sending process, one API worker). For each run:
JPN's commit rate from first arrival to last, the CPU each of JPN's processes spent per item,
each one's peak RSS, the senders' CPU per item, and the CPU the database server's backends
serving JPN spent per item (read from /proc, so the server must run on this machine for that
figure). The issue's target, a node on PostgreSQL taking in at least as fast as a node on
SQLite (the best PostgreSQL run's throughput over the SQLite run's, at least 1), is reported as
met or not met. It prints one JSON line like every ``bench_*.py``;
without a reachable server it says so and measures nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_exchange as bench
from kuroshio.store.postgres import application_name

DSN = os.environ.get("KUROSHIO_BENCH_POSTGRES", "host=127.0.0.1 user=postgres dbname=test")
PER_SENDER = 20_000 if bench.QUICK else 100_000
SENDERS = ("TWN", "PHL")
RECEIVERS = (1, 2)


def unreachable() -> str | None:
    """Why the server at :data:`DSN` cannot be reached (None: it answers)."""
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as error:
        return str(error)
    return None


def committed_pg(schema: str) -> int:
    """Versions committed in a node's schema (the history's last seq)."""
    try:
        with psycopg.connect(DSN, autocommit=True) as conn:
            row = conn.execute(f"SELECT max(seq) FROM {schema}.observation_versions").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0] or 0) if row else 0


def drain(
    count: Callable[[], int],
    until: int,
    on_first: Callable[[], None],
    serving: subprocess.Popen[bytes],
    patience_s: float = 180,
) -> tuple[float, float]:
    """Wait until ``count()`` reaches ``until``: (first arrival, last arrival)."""
    first: float | None = None
    seen, last_progress = 0, time.perf_counter()
    while True:
        if serving.poll() is not None:
            raise RuntimeError(f"the receiving node exited ({serving.returncode})")
        now = time.perf_counter()
        current = count()
        if current > seen:
            seen, last_progress = current, now
            if first is None:
                first = now
                on_first()
        if current >= until and first is not None:
            return first, now
        if now - last_progress > patience_s:
            raise RuntimeError(f"stuck at {current} of {until} versions")
        time.sleep(0.02)


def processes_of(pid: int) -> dict[str, int]:
    """A serve process and its workers, by worker name (``serve`` for the process itself)."""
    found = {"serve": pid}
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for variable in environ:
            if variable.startswith(b"KUROSHIO_WORKER="):
                found[variable.split(b"=", 1)[1].decode()] = int(child)
    return found


def server_backends(schema: str) -> list[int]:
    """The database server's processes serving a node's connections."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (application_name(schema),),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


class Sampler(threading.Thread):
    """Peak RSS (MB) of each of a node's processes, sampled every 100 ms, and their CPU seconds
    from :meth:`mark` to :meth:`finish` (and those of the database backends serving it, and of
    the ``senders``' processes)."""

    def __init__(self, pid: int, schema: str | None, senders: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pid, self.schema, self.senders = pid, schema, senders
        self.peak_mb: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.server_cpu = 0.0
        self.senders_cpu = 0.0
        self._senders: dict[str, float] = {}
        self.done = threading.Event()
        self._cpu: dict[str, float] = {}
        self._server: dict[int, float] = {}

    def run(self) -> None:
        while not self.done.wait(0.1):
            for name, pid in processes_of(self.pid).items():
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), bench.rss_mb(pid))

    def mark(self) -> None:
        self._cpu = {name: bench.cpu_s(pid) for name, pid in processes_of(self.pid).items()}
        self._senders = {name: bench.cpu_s(pid) for name, pid in self.senders.items()}
        if self.schema is not None:
            self._server = {pid: bench.cpu_s(pid) for pid in server_backends(self.schema)}

    def finish(self) -> None:
        for name, pid in processes_of(self.pid).items():
            self.cpu[name] = bench.cpu_s(pid) - self._cpu.get(name, 0.0)
        self.senders_cpu = sum(
            bench.cpu_s(pid) - self._senders[name] for name, pid in self.senders.items()
        )
        if self.schema is not None:
            self.server_cpu = sum(
                bench.cpu_s(pid) - self._server.get(pid, 0.0)
                for pid in server_backends(self.schema)
            )
        self.done.set()
        self.join()


def run(label: str, store: str, options: tuple[str, ...]) -> dict[str, float]:
    """One exchange of both backlogs into JPN, kept on ``store`` and served with ``options``."""
    schema = f"bench_{uuid.uuid4().hex[:10]}_jpn" if store == "postgres" else None
    items = PER_SENDER * len(SENDERS)
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        stores = {"JPN": {"backend": "postgres", "schema": schema}} if schema else None
        nodes = bench.make_nodes(root, store=stores, parties=(*SENDERS, "JPN"))
        for sender in SENDERS:
            bench.install_agreement(nodes, root, sender)
            bench.preload(nodes[sender], PER_SENDER)
        jpn = bench.serve(nodes["JPN"], root / "JPN.log", *options)
        senders = {p: bench.serve(nodes[p], root / f"{p}.log") for p in SENDERS}
        sampler = Sampler(jpn.pid, schema, {p: process.pid for p, process in senders.items()})
        sampler.start()
        try:
            if schema is not None:
                began, ended = drain(lambda: committed_pg(schema), items, sampler.mark, jpn)
            else:
                path = nodes["JPN"].store
                began, ended = drain(lambda: bench.committed(path), items, sampler.mark, jpn)
            sampler.finish()
        except BaseException:
            log = root / "JPN.log"
            sys.stderr.write(f"--- JPN ({label}) ---\n{log.read_text()[-3000:]}\n")
            raise
        finally:
            sampler.done.set()
            for process in (jpn, *senders.values()):
                bench.stop(process)
            if schema is not None:
                with psycopg.connect(DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    metrics[f"throughput obs/s (JPN, {label})"] = items / (ended - began)
    sys.stderr.write(f"{label}: {items / (ended - began):,.0f} obs/s\n")
    total = 0.0
    for name, seconds in sorted(sampler.cpu.items()):
        # "serve" is the node's one process, or the supervisor of its workers
        metrics[f"CPU µs per item, JPN {name} ({label})"] = seconds / items * 1e6
        total += seconds
    metrics[f"CPU µs per item, JPN all processes ({label})"] = total / items * 1e6
    if schema is not None:
        metrics[f"CPU µs per item, PostgreSQL backends of JPN ({label})"] = (
            sampler.server_cpu / items * 1e6
        )
    metrics[f"CPU µs per item, both senders ({label})"] = sampler.senders_cpu / items * 1e6
    for name, peak in sorted(sampler.peak_mb.items()):
        metrics[f"peak RSS MB, JPN {name} ({label})"] = peak
    return metrics


def main() -> None:
    why = unreachable()
    if why is not None:
        print(json.dumps({"name": "postgres", "metrics": {}, "setup": {"skipped": why}}))
        return
    os.environ["KUROSHIO_STORE_DSN"] = DSN
    load = os.getloadavg()
    metrics: dict[str, Any] = {}
    metrics.update(run("SQLite, one process", "sqlite", ()))
    metrics.update(run("PostgreSQL, one process", "postgres", ()))
    for receivers in RECEIVERS:
        label = f"PostgreSQL, {receivers} receiving"
        options = ("--workers", "1", "--receivers", str(receivers))
        metrics.update(run(label, "postgres", options))
    sqlite = metrics["throughput obs/s (JPN, SQLite, one process)"]
    best = max(metrics[f"throughput obs/s (JPN, PostgreSQL, {m} receiving)"] for m in RECEIVERS)
    target = "PostgreSQL node (best) ÷ SQLite node, throughput"
    metrics[target] = best / sqlite
    print(
        json.dumps(
            {
                "name": "postgres",
                "metrics": metrics,
                "targets": {target: ">= 1"},
                "setup": {
                    "backlog per sender": PER_SENDER,
                    "senders": "TWN and PHL, SQLite, one process each",
                    "server": subprocess.run(
                        ["psql", "--version"], capture_output=True, text=True, check=False
                    ).stdout.strip(),
                    "agreement": "as bench_exchange, one per sender",
                    "load average before (1, 5, 15 min)": load,
                },
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
