"""kill -9 of the sender, or of the receiver, in the middle of a stream of 100 000 observations
(added 5 000 at a time, as a source sends them).

After restart the receiver holds exactly the (id, version) set the sender released, each item
taken in once, every batch signed for, and both audit logs verify.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from federation_nodes import ServedNode, agree, wait_until, write_ndjson

from agreements import agreement_text
from cli_run import kuroshio_command, run
from kuroshio.model import Marking, Observation
from observations import observation

REPORTS = 100_000
CORRECTIONS = 2_000
RETRACTIONS = 500
CHUNK = 5_000
T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


def _stream() -> list[Observation]:
    marking = Marking(tlp="AMBER", releasable_to=("JPN",))
    reports = [
        observation(
            n,
            at=T0 + dt.timedelta(seconds=n),
            lon=118 + (n % 700) / 100,
            lat=20 + (n % 900) / 100,
            marking=marking,
        )
        for n in range(REPORTS)
    ]
    corrections = [
        msgspec.structs.replace(reports[n], version=2, remarks="corrected")
        for n in range(0, CORRECTIONS * 7, 7)
    ]
    retractions = [
        msgspec.structs.replace(reports[n], version=3, retracted=True)
        for n in range(0, RETRACTIONS * 7, 7)
    ]
    return reports + corrections + retractions


def _pair(root: Path, backend: str) -> tuple[ServedNode, ServedNode]:
    twn, jpn = ServedNode(root, "TWN", backend), ServedNode(root, "JPN", backend)
    twn.pin(jpn)
    jpn.pin(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))
    return twn, jpn


_ADD_EACH = """
import subprocess, sys
split = sys.argv.index("--")
command, files = sys.argv[1:split], sys.argv[split + 1 :]
for name in files:
    code = subprocess.run([*command, name], stdout=subprocess.DEVNULL).returncode
    if code:
        sys.exit(code)
"""
"""Runs ``kuroshio add`` on each file in turn, stopping at the first that fails."""


def _start_adding(twn: ServedNode, observations: list[Observation]) -> subprocess.Popen[bytes]:
    """The stream arrives as a source sends it: ``kuroshio add`` of CHUNK observations at a
    time, one after the other (each add is one transaction: stored whole or not at all)."""
    files = []
    for number, start in enumerate(range(0, len(observations), CHUNK)):
        source = twn.directory.parent / f"stream-{number:03d}.ndjson"
        write_ndjson(source, observations[start : start + CHUNK])
        files.append(str(source))
    add = [*kuroshio_command(), "add", "--node", str(twn.directory), "--json"]
    return subprocess.Popen([sys.executable, "-c", _ADD_EACH, *add, "--", *files])


def _check_exactly_once(twn: ServedNode, jpn: ServedNode, sent: list[Observation]) -> None:
    expected = {o.key for o in sent}
    assert jpn.versions("TWN:") == expected
    # Every place an item was taken in from: its version's history row, or a later batch.
    taken_in = (
        jpn.query("SELECT count(*) FROM observation_versions WHERE sent_by IS NOT NULL")[0][0]
        + jpn.query("SELECT count(*) FROM inbox_items")[0][0]
    )
    assert taken_in == len(expected), "an item was taken in twice"
    receipts = twn.query(
        "SELECT count(*), sum(count) FROM sent_batches WHERE acked_at IS NOT NULL",
    )[0]
    sealed = twn.query("SELECT count(*) FROM sent_batches")[0][0]
    assert receipts[0] == sealed and receipts[1] == len(expected)
    assert twn.query("SELECT count(*) FROM outbox")[0][0] == 0
    current = jpn.query("SELECT count(*), sum(retracted) FROM current")[0]
    assert current == (REPORTS, RETRACTIONS)
    for node in (twn, jpn):
        verified = run("audit", "verify", "--node", node.directory)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def _run_with_kills(tmp_path: Path, victim: str, backend: str) -> None:
    twn, jpn = _pair(tmp_path, backend)
    sent = _stream()
    twn.start()
    jpn.start()
    adding = _start_adding(twn, sent)
    try:
        for threshold in (15_000, 55_000):
            wait_until(lambda t=threshold: jpn.count("TWN:") >= t, f"{threshold} at JPN")
            node = twn if victim == "TWN" else jpn
            node.kill()
            assert jpn.count("TWN:") < len(sent), "the stream ended before the kill"
            node.start()
        assert adding.wait(timeout=300) == 0
        wait_until(lambda: jpn.count("TWN:") >= len(sent), "the whole stream at JPN", 300)
        wait_until(
            lambda: twn.query("SELECT count(*) FROM outbox")[0][0] == 0,
            "every receipt at TWN",
        )
    finally:
        if adding.poll() is None:
            adding.kill()
        twn.stop()
        jpn.stop()
    _check_exactly_once(twn, jpn, sent)


@pytest.mark.e2e
def test_kill_9_of_the_sender_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, backend: str
) -> None:
    _run_with_kills(tmp_path, "TWN", backend)


@pytest.mark.e2e
def test_kill_9_of_the_receiver_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, backend: str
) -> None:
    _run_with_kills(tmp_path, "JPN", backend)
