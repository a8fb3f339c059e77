"""kill -9 during a large ``kuroshio add`` leaves a store holding a prefix of whole records."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from cli_run import kuroshio_command, run
from kuroshio.store import ObservationFilter
from kuroshio.store.sqlite import SQLiteStore
from observations import observation

RECORDS = 100_000
CHUNK = 1_000


def _stored(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM current").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.e2e
def test_kill_9_during_add_leaves_a_consistent_prefix(tmp_path: Path) -> None:
    node = tmp_path / "twn"
    run("init", "--party", "TWN", node, check=True)
    source = tmp_path / "large.ndjson"
    with source.open("wb") as out:
        for number in range(RECORDS):
            out.write(msgspec.json.encode(observation(number, lon=120 + (number % 1000) / 1000)))
            out.write(b"\n")

    process = subprocess.Popen(
        [*kuroshio_command(), "add", "--node", str(node), str(source), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store_file = node / "store.sqlite"
    deadline = time.monotonic() + 120
    while _stored(store_file) < 5 * CHUNK and process.poll() is None:
        assert time.monotonic() < deadline, "add made no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the add finished before it could be killed"

    with sqlite3.connect(store_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SQLiteStore(store_file) as store:
        stored = [o.id for o in store.iter_query(ObservationFilter(), page_size=5_000)]
    assert 0 < len(stored) < RECORDS
    assert len(stored) % CHUNK == 0, "a chunk was half-committed"
    numbers = sorted(int(i.rsplit(":", 1)[1]) for i in stored)
    assert numbers == list(range(len(stored))), "what is stored is not a prefix of the input"

    # Running the same import again completes it; what was already stored is not duplicated.
    again = run("add", "--node", node, source, "--json", check=True)
    summary = msgspec.json.decode(again.stdout)
    assert summary["unchanged"] == len(stored)
    assert summary["inserted"] == RECORDS - len(stored)
    assert _stored(store_file) == RECORDS
