"""A node on PostgreSQL served by several processes (``kuroshio serve --workers``): reports posted
to any API worker reach the partner once, whatever worker is killed and even when every database
connection of the node is cut, as a server restart cuts them."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import psycopg
import pytest
from federation_nodes import ServedNode, agree, wait_until

from agreements import agreement_text
from cli_run import run
from conftest import drop_postgres_schemas
from kuroshio.model import Marking, Observation
from kuroshio.store.postgres import application_name
from observations import observation

BATCHES = 30
PER_BATCH = 40


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in path.read_text().split()} if path.exists() else set()


def _roles(pid: int) -> dict[int, str]:
    """Each child of a supervisor and the role it serves (from its command line)."""
    roles = {}
    for child in _children(pid):
        with open(f"/proc/{child}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
        roles[child] = words[words.index(b"--role") + 1].decode()
    return roles


def _cut_connections(dsn: str, schema: str) -> int:
    """What a database restart does to a node: every connection of it closed at once."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name(schema),),
        ).fetchall()
    return len(rows)


def _post(
    client: httpx.Client, url: str, items: list[Observation], headers: dict[str, str]
) -> None:
    """Post, and post again after a worker died under the request: taking the same reports twice
    changes nothing."""
    body = b"\n".join(msgspec.json.encode(item) for item in items)
    for _ in range(50):
        try:
            response = client.post(
                f"{url}/api/observations",
                content=body,
                headers={**headers, "content-type": "application/x-ndjson"},
            )
        except httpx.TransportError:
            continue
        if response.status_code == 200:
            return
    raise AssertionError(f"{url} refused the reports: {response.status_code} {response.text}")


@pytest.fixture
def nodes(tmp_path: Path, postgres_dsn: str) -> Iterator[tuple[ServedNode, ServedNode]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUROSHIO_STORE_DSN", postgres_dsn)
        twn, jpn = ServedNode(tmp_path, "TWN", "postgres"), ServedNode(tmp_path, "JPN", "postgres")
        twn.pin(jpn)
        jpn.pin(twn)
        agree([twn, jpn], agreement_text(["TWN", "JPN"]))
        try:
            yield twn, jpn
        finally:
            twn.stop()
            jpn.stop()
            drop_postgres_schemas(postgres_dsn)


@pytest.mark.e2e
def test_workers_killed_and_connections_cut_lose_and_double_nothing(
    nodes: tuple[ServedNode, ServedNode], postgres_dsn: str
) -> None:
    twn, jpn = nodes
    ready = twn.start("--workers", "2")
    jpn.start("--workers", "1")
    assert twn.process is not None
    supervisor = twn.process.pid
    before = _roles(supervisor)
    assert sorted(before.values()) == ["api", "api", "exchange"]
    to_japan = Marking(tlp="AMBER", releasable_to=("JPN",))
    sent = [observation(n, marking=to_japan, kind="air") for n in range(BATCHES * PER_BATCH)]
    with httpx.Client(timeout=30.0) as client:
        for number in range(BATCHES):
            batch = sent[number * PER_BATCH : (number + 1) * PER_BATCH]
            _post(client, ready["api_url"], batch, twn.headers)
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
    after = _roles(supervisor)
    assert sorted(after.values()) == ["api", "api", "exchange"]
    assert set(after) != set(before)  # the killed workers run again, as new processes
    assert twn.stop() == 0 and jpn.stop() == 0
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stdout + verified.stderr
