"""Stopping ``kuroshio serve`` as an operator does (SIGTERM, what systemd and Docker send): at
once with the picture's live streams open, and, when something holds it up, saying what.

The streams are read as a browser's EventSource reads them (``test_cop_browser`` has the real
browser carry on across a restart).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from federation_nodes import ServedNode, StreamReader, WaitingPost, wait_until

from cli_run import run
from kuroshio.cli.serve import STOP_REPORT_S
from kuroshio.federation.serve import FORCED_EXIT, STOP_GRACE_S
from observations import observation

pytestmark = pytest.mark.e2e


def test_a_node_with_live_streams_open_stops_at_once_and_ends_them_cleanly(
    tmp_path: Path,
) -> None:
    node = ServedNode(tmp_path, "TWN")
    node.start()
    try:
        readers = [
            StreamReader(f"{node.api_url}/api/stream", 10**6, node.headers) for _ in range(3)
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            assert reader.connected.wait(30) and reader.error is None, reader.error

        began = time.monotonic()
        assert node.stop() == 0
        took = time.monotonic() - began
    finally:
        node.stop()  # a failed test does not leave the node serving

    # Streams never end by themselves: the node ends them, it does not wait out its grace for
    # requests in progress and then cut them.
    assert took < STOP_GRACE_S / 2, f"stopping took {took:.1f} s"
    for reader in readers:
        reader.join(10)
        assert not reader.is_alive()
        assert reader.error is None, f"the stream was cut, not ended: {reader.error!r}"


def test_a_node_held_up_while_stopping_says_where_and_keeps_what_it_was_storing(
    tmp_path: Path,
) -> None:
    node = ServedNode(tmp_path, "TWN")
    node.start()
    assert node.process is not None
    process = node.process
    poster = WaitingPost(node.api_url, node.headers, [observation(1)])
    # Another process holds the store's write lock (a long `kuroshio import`, say): the post's
    # transaction waits for it, and a stop that comes meanwhile waits for the post.
    holder = sqlite3.connect(node.directory / "store.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        poster.start()
        time.sleep(2.0)  # the post reaches the node (a loopback request) and waits there
        process.send_signal(signal.SIGTERM)
        wait_until(
            lambda: "still stopping" in node.log.read_text(errors="replace"),
            "the slow stop reported",
            timeout=STOP_REPORT_S + 30,
        )
        assert process.poll() is None
        log = node.log.read_text(errors="replace")
        report = log[log.index("still stopping") :]
        # Where each thread is: the post waiting for its transaction.
        assert "Current thread" in report or "Thread 0x" in report
        assert "in transaction" in report and "in ingest" in report
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        try:
            code = process.wait(timeout=60)  # the stop goes on once the post is through
        finally:
            node.kill()  # whatever failed, the node does not outlive the test
    assert code == 0
    poster.join(30)
    answer = poster.answer
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200 and answer.json()["inserted"] == 1
    stored = node.query("SELECT count(*) FROM current WHERE id = ?", (observation(1).id,))
    assert stored == [(1,)]


def _events(node: ServedNode, count: int, headers: dict[str, str]) -> list[tuple[str, str]]:
    """The first ``count`` (event id, observation id) of a stream opened with ``headers``."""
    seen: list[tuple[str, str]] = []
    with (
        httpx.Client(timeout=httpx.Timeout(10.0, read=30.0)) as client,
        client.stream(
            "GET", f"{node.api_url}/api/stream?after=0", headers={**node.headers, **headers}
        ) as response,
    ):
        response.raise_for_status()
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "data" in fields:  # an event ends at a blank line, its fields in any order
                seen.append((fields["id"], json.loads(fields["data"])["id"]))
                if len(seen) == count:
                    return seen
            fields = {}
    raise AssertionError(f"the stream ended after {seen}")


def test_a_stream_reconnected_after_a_restart_goes_on_from_the_last_event_it_had(
    tmp_path: Path,
) -> None:
    node = ServedNode(tmp_path, "TWN")
    node.start()
    try:
        node.add([observation(n) for n in range(3)])
        first = _events(node, 3, {})
        assert [obs_id for _, obs_id in first] == [observation(n).id for n in range(3)]
        assert node.stop() == 0
        node.start()
        node.add([observation(n) for n in range(3, 5)])
        # As a browser reconnects: the page's address (after=0) and the last event it had.
        again = _events(node, 2, {"Last-Event-ID": first[-1][0]})
        assert [obs_id for _, obs_id in again] == [observation(n).id for n in (3, 4)]
        assert all(int(event) > int(first[-1][0]) for event, _ in again)
    finally:
        node.stop()


def test_ctrl_c_again_stops_the_node_now_and_it_loses_nothing_committed(
    tmp_path: Path,
) -> None:
    """What uvicorn's "CTRL+C to force quit" promises: the first Ctrl+C stops the node as it
    should, the second at once, as ``kill -9`` would. A second SIGTERM does not (a worker gets
    one from systemd and one from its supervisor)."""
    node = ServedNode(tmp_path, "TWN")
    node.start()
    assert node.process is not None
    process = node.process
    node.add([observation(n) for n in range(3)])
    holder = sqlite3.connect(node.directory / "store.sqlite", isolation_level=None)
    try:
        # A post that waits for the store holds the first stop up (for up to STOP_GRACE_S).
        holder.execute("BEGIN IMMEDIATE")
        poster = WaitingPost(node.api_url, node.headers, [observation(n) for n in range(3, 6)])
        poster.start()
        time.sleep(2.0)  # the post reaches the node (a loopback request) and waits there
        # As systemd and a worker's supervisor both send SIGTERM: the stop waits all the same.
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert process.poll() is None, "the stop did not wait for the post"
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=STOP_GRACE_S / 2)
        took = time.monotonic() - began
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        node.kill()
    assert code == FORCED_EXIT and took < 5, (code, took)
    poster.join(10)
    assert isinstance(poster.answer, httpx.RemoteProtocolError), (
        poster.answer
    )  # cut off, never told "stored"
    assert "Ctrl+C again: stopping now, without waiting" in node.log.read_text()
    # What was committed is there, the post that never got the store is not, the log verifies.
    assert node.versions("TWN:") == {(observation(n).id, 1) for n in range(3)}
    verified = run("audit", "verify", "--node", node.directory)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    node.start()
    node.stop()
