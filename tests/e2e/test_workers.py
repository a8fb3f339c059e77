"""A node on PostgreSQL served by several processes (``kuroshio serve --workers``, ``--receivers``):
reports posted to any API worker reach the partner once, whatever worker is killed (a receiving
process in the middle of the stream included), when every database connection of the node is
cut, and when the database server itself crashes and restarts (a private cluster of the test's
own, so the shared server is never restarted)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from federation_nodes import (
    ServedNode,
    WaitingPost,
    agree,
    post_reports,
    wait_until,
    worker_roles,
)
from postgres_cluster import PostgresCluster, ShutdownMode, missing_requirement, server_bindir

from agreements import agreement_text
from cli_run import run
from conftest import drop_postgres_schemas, service_unreachable
from kuroshio.federation.serve import FORCED_EXIT, STOP_GRACE_S
from kuroshio.model import Marking, Observation
from kuroshio.store.postgres import application_name
from observations import observation

BATCHES = 30
PER_BATCH = 40
STEADY_BATCHES = 8
"""Batches posted before the first restart, between the restarts and after the last."""
SOURCE_PACE_S = 0.05
"""The pause between batches while the server restarts (a source posting 500 reports a second)."""
RESTARTS: tuple[ShutdownMode, ...] = (
    "immediate",  # a crash: every backend killed, the WAL replayed on start
    "fast",  # every session cut, then a clean shutdown
)


def _holding(pids: set[int], port: int) -> set[int]:
    """Which of ``pids`` hold an established connection on local ``port`` (a partner's link)."""
    return {pid for pid, held in _held(pids, port).items() if held}


def _held(pids: set[int], port: int) -> dict[int, int]:
    """How many established connections on local ``port`` each of ``pids`` holds."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    established.add(f"socket:[{inode}]")
    held = dict.fromkeys(pids, 0)
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in established:
                        held[pid] += 1
    return held


def _link_holders(supervisor: int, port: int) -> set[int]:
    """The receiving processes of a supervisor that hold a partner's connection now."""
    receivers = {pid for pid, role in worker_roles(supervisor).items() if role == "receive"}
    return _holding(receivers, port)


def _cut_connections(dsn: str, schema: str) -> int:
    """What a database restart does to a node: every connection of it closed at once."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name(schema),),
        ).fetchall()
    return len(rows)


@contextlib.contextmanager
def _pair(root: Path, dsn: str) -> Iterator[tuple[ServedNode, ServedNode]]:
    """TWN and JPN, each in a schema of the server ``dsn`` names, pinned to each other under an
    agreement; stopped and their schemas dropped afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUROSHIO_STORE_DSN", dsn)
        twn, jpn = ServedNode(root, "TWN", "postgres"), ServedNode(root, "JPN", "postgres")
        twn.pin(jpn)
        jpn.pin(twn)
        agree([twn, jpn], agreement_text(["TWN", "JPN"]))
        try:
            yield twn, jpn
        finally:
            twn.stop()
            jpn.stop()
            drop_postgres_schemas(dsn)


@pytest.fixture
def nodes(tmp_path: Path, postgres_dsn: str) -> Iterator[tuple[ServedNode, ServedNode]]:
    with _pair(tmp_path, postgres_dsn) as pair:
        yield pair


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own, started (skips, or fails when services are
    required, where the machine has no PostgreSQL server programs)."""
    bindir = server_bindir()
    missing = missing_requirement(bindir)
    if bindir is None or missing is not None:
        service_unreachable("a private PostgreSQL server", missing or "")
    cluster = PostgresCluster(bindir)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def private_nodes(
    tmp_path: Path, private_postgres: PostgresCluster
) -> Iterator[tuple[ServedNode, ServedNode]]:
    with _pair(tmp_path, private_postgres.dsn) as pair:
        yield pair


@pytest.mark.e2e
def test_workers_killed_and_connections_cut_lose_and_double_nothing(
    nodes: tuple[ServedNode, ServedNode], postgres_dsn: str
) -> None:
    twn, jpn = nodes
    ready = twn.start("--workers", "2")
    jpn.start("--workers", "1")
    assert twn.process is not None
    supervisor = twn.process.pid
    before = worker_roles(supervisor)
    assert sorted(before.values()) == ["api", "api", "exchange"]
    to_japan = Marking(tlp="AMBER", releasable_to=("JPN",))
    sent = [observation(n, marking=to_japan, kind="air") for n in range(BATCHES * PER_BATCH)]
    with httpx.Client(timeout=30.0) as client:
        for number in range(BATCHES):
            batch = sent[number * PER_BATCH : (number + 1) * PER_BATCH]
            post_reports(client, ready["api_url"], batch, twn.headers)
            if number == BATCHES // 3:
                api = next(pid for pid, role in before.items() if role == "api")
                os.kill(api, signal.SIGKILL)
                exchange = next(pid for pid, role in before.items() if role == "exchange")
                os.kill(exchange, signal.SIGKILL)
            if number == 2 * BATCHES // 3:
                assert _cut_connections(postgres_dsn, twn.schema) > 0
    wait_until(lambda: jpn.count("TWN:") >= len(sent), "every report at JPN", 300)
    wait_until(
        lambda: twn.query("SELECT count(*) FROM outbox")[0][0] == 0, "every receipt at TWN", 120
    )
    # Every report once, as one version; nothing more.
    assert jpn.versions("TWN:") == {(item.id, 1) for item in sent}
    after = worker_roles(supervisor)
    assert sorted(after.values()) == ["api", "api", "exchange"]
    assert set(after) != set(before)  # the killed workers run again, as new processes
    assert twn.stop() == 0 and jpn.stop() == 0
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def _restart(cluster: PostgresCluster, mode: ShutdownMode) -> tuple[dt.datetime, dt.datetime]:
    """Restart the server; when it had started before, and when it started again."""
    before = cluster.started_at()
    cluster.restart(mode)
    return before, cluster.started_at()


@pytest.mark.e2e
def test_database_server_restarts_lose_and_double_nothing(
    private_nodes: tuple[ServedNode, ServedNode], private_postgres: PostgresCluster
) -> None:
    """Both nodes keep their stores on one server, which crashes and restarts (``pg_ctl restart
    -m immediate``), then restarts cleanly (``-m fast``), while reports stream in; the source
    posts again whatever was refused meanwhile. TWN serves as workers, JPN as one process."""
    twn, jpn = private_nodes
    ready = twn.start("--workers", "2")
    jpn.start()
    assert twn.process is not None
    supervisor = twn.process.pid
    to_japan = Marking(tlp="AMBER", releasable_to=("JPN",))
    sent: list[Observation] = []

    def post_next(client: httpx.Client) -> None:
        batch = [observation(len(sent) + n, marking=to_japan, kind="air") for n in range(PER_BATCH)]
        post_reports(client, ready["api_url"], batch, twn.headers)
        sent.extend(batch)

    with httpx.Client(timeout=30.0) as client, ThreadPoolExecutor(1) as pg_ctl:
        for mode in RESTARTS:
            for _ in range(STEADY_BATCHES):
                post_next(client)
            restart = pg_ctl.submit(_restart, private_postgres, mode)
            # The stream goes on while the server goes down, is down, recovers and is back:
            # posts land on each of these, and the refused ones are posted again.
            while not restart.done():
                post_next(client)
                time.sleep(SOURCE_PACE_S)
            before, after = restart.result()
            assert after > before, private_postgres.server_log()
        for _ in range(STEADY_BATCHES):
            post_next(client)
    count = len(sent)
    wait_until(lambda: jpn.count("TWN:") >= count, "every report at JPN", 120)
    wait_until(
        lambda: twn.query("SELECT count(*) FROM outbox")[0][0] == 0, "every receipt at TWN", 120
    )
    # Every report once, as one version, at both ends; nothing more.
    expected = {(item.id, 1) for item in sent}
    assert jpn.versions("TWN:") == expected and jpn.count("TWN:") == count
    assert twn.versions("TWN:") == expected and twn.count("TWN:") == count
    assert sorted(worker_roles(supervisor).values()) == ["api", "api", "exchange"]
    assert twn.stop() == 0 and jpn.stop() == 0
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # A restart of the database is routine: warnings, never an unhandled error.
        log = node.log.read_text()
        assert "Traceback" not in log, log


@pytest.mark.e2e
def test_receiving_processes_killed_mid_stream_lose_and_double_nothing(
    nodes: tuple[ServedNode, ServedNode],
) -> None:
    twn, jpn = nodes
    ready = twn.start("--workers", "1")
    jpn_ready = jpn.start("--workers", "1", "--receivers", "2")
    assert jpn.process is not None
    supervisor = jpn.process.pid
    before = worker_roles(supervisor)
    assert sorted(before.values()) == ["api", "receive", "receive", "send"]
    federation_port = int(jpn_ready["federation_url"].rsplit(":", 1)[1])
    to_japan = Marking(tlp="AMBER", releasable_to=("JPN",))
    sent = [observation(n, marking=to_japan, kind="air") for n in range(BATCHES * PER_BATCH)]
    killed: set[int] = set()
    with httpx.Client(timeout=30.0) as client:
        for number in range(BATCHES):
            batch = sent[number * PER_BATCH : (number + 1) * PER_BATCH]
            post_reports(client, ready["api_url"], batch, twn.headers)
            if number in (BATCHES // 3, 2 * BATCHES // 3):
                # The receiving process that holds TWN's link now, while batches stream in.
                wait_until(
                    lambda: bool(_link_holders(supervisor, federation_port)), "TWN's link taken in"
                )
                holder = min(_link_holders(supervisor, federation_port))
                os.kill(holder, signal.SIGKILL)
                killed.add(holder)
    wait_until(lambda: jpn.count("TWN:") >= len(sent), "every report at JPN", 300)
    wait_until(
        lambda: twn.query("SELECT count(*) FROM outbox")[0][0] == 0, "every receipt at TWN", 120
    )
    # Every report once, as one version; nothing more.
    assert jpn.versions("TWN:") == {(item.id, 1) for item in sent}
    assert len(killed) == 2
    # The supervisor starts a killed worker again after a short wait (back-off), which the
    # stream may well have outrun.
    wait_until(
        lambda: sorted(worker_roles(supervisor).values()) == ["api", "receive", "receive", "send"],
        "both receiving processes running again",
        30,
    )
    after = worker_roles(supervisor)
    assert not killed & set(after)  # the killed receivers run again, as new processes
    # Each batch TWN sealed was taken in once: one receive entry per batch, in sequence.
    seqs = [entry["seq"] for entry in jpn.audit("receive")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert twn.stop() == 0 and jpn.stop() == 0
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.e2e
def test_receiving_processes_share_the_partners_links(tmp_path: Path, postgres_dsn: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUROSHIO_STORE_DSN", postgres_dsn)
        parties = ("TWN", "PHL", "JPN")
        twn, phl, jpn = (ServedNode(tmp_path, party, "postgres") for party in parties)
        try:
            for node in (twn, phl, jpn):
                for other in (twn, phl, jpn):
                    if other is not node:
                        node.pin(other)
            agree([twn, phl, jpn], agreement_text(list(parties)))
            # JPN's receiving processes are up before its partners connect...
            ready = jpn.start("--workers", "1", "--receivers", "2")
            twn.start()
            phl.start()
            assert jpn.process is not None
            port = int(ready["federation_url"].rsplit(":", 1)[1])
            supervisor = jpn.process.pid

            def spread() -> bool:
                receivers = {p for p, role in worker_roles(supervisor).items() if role == "receive"}
                return sorted(_held(receivers, port).values()) == [1, 1]

            wait_until(spread, "one partner's link in each receiving process")
            # ...and after one of them is killed, the one started in its place takes a link
            # back from the other.
            os.kill(min(_link_holders(supervisor, port)), signal.SIGKILL)
            wait_until(spread, "the links spread again over both receiving processes")
            to_japan = Marking(tlp="AMBER", releasable_to=("JPN",))
            for node in (twn, phl):
                node.add(
                    observation(n, origin=node.party, marking=to_japan, kind="air")
                    for n in range(PER_BATCH)
                )
            for prefix in ("TWN:", "PHL:"):
                wait_until(lambda p=prefix: jpn.count(p) >= PER_BATCH, f"{prefix} reports at JPN")
                assert len(jpn.versions(prefix)) == PER_BATCH
            assert twn.stop() == 0 and phl.stop() == 0 and jpn.stop() == 0
            verified = run("audit", "verify", "--node", jpn.directory)
            assert verified.returncode == 0, verified.stdout + verified.stderr
        finally:
            for node in (twn, phl, jpn):
                node.stop()
            drop_postgres_schemas(postgres_dsn)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a killed one nobody reaped is a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.e2e
def test_ctrl_c_again_stops_every_process_of_the_node_now(
    nodes: tuple[ServedNode, ServedNode], postgres_dsn: str
) -> None:
    """Stopping a node served as several processes as a single process stops: a second SIGTERM
    (systemd signals every process of the unit) changes nothing, Ctrl+C again stops every one
    of them at once, and what was committed stays."""
    twn, _ = nodes
    twn.start("--workers", "1")
    assert twn.process is not None
    process = twn.process
    roles = worker_roles(process.pid)
    workers = set(roles)
    api = {pid for pid, role in roles.items() if role == "api"}
    assert len(workers) == 2 and len(api) == 1
    twn.add([observation(n) for n in range(3)])
    # A transaction that holds the node's audit log: a post waits for it in the API worker, and
    # holds that worker's stop up (for up to its grace).
    holder = psycopg.connect(postgres_dsn)
    poster = WaitingPost(twn.api_url, twn.headers, [observation(n) for n in range(3, 6)])
    try:
        holder.execute(f"SET search_path TO {twn.schema}")
        holder.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit_log'))")
        poster.start()
        time.sleep(2.0)  # the post reaches the API worker and waits there
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert process.poll() is None, "the supervisor did not wait for its workers"
        assert all(_running(pid) for pid in api), "the API worker did not wait for its post"
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=STOP_GRACE_S / 2)
        took = time.monotonic() - began
    finally:
        holder.rollback()
        holder.close()
        twn.kill()
    assert code == FORCED_EXIT and took < 5, (code, took)
    wait_until(lambda: not any(_running(pid) for pid in workers), "every worker gone", 10)
    poster.join(10)
    assert isinstance(poster.answer, httpx.RemoteProtocolError), (
        poster.answer
    )  # cut off, never told "stored"
    log = twn.log.read_text()
    assert "Ctrl+C again: stopping every process of the node now" in log
    assert "Traceback" not in log
    assert twn.versions("TWN:") == {(observation(n).id, 1) for n in range(3)}
    verified = run("audit", "verify", "--node", twn.directory)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    twn.start("--workers", "1")  # and it serves again
    assert twn.stop() == 0
