"""kill -9 during a large ``kuroshio add`` or ``kuroshio import`` leaves the store as it was
before: every chunk of one run goes into one transaction, committed only at its end."""

from __future__ import annotations

import json
import os
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
MND = "twreporter/Taiwan/20220801-20230915_fixed.geojson"


def _read_so_far(pid: int, path: Path) -> int:
    """How far process ``pid`` has read the file ``path`` (0 when it has it not open)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            if os.readlink(fd) == str(path):
                info = (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text()
                return int(info.split("pos:", 1)[1].split()[0])
    except OSError:
        pass
    return 0


def _kill_when_a_third_is_read(args: list[str], source: Path) -> None:
    process = subprocess.Popen(
        [*kuroshio_command(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    third = source.stat().st_size // 3
    while _read_so_far(process.pid, source) < third and process.poll() is None:
        assert time.monotonic() < deadline, "the command made no progress"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the command finished before it could be killed"


def _state(node: Path) -> tuple[list[str], int, int]:
    """(current ids, events, ingest audit entries), after checking the file is whole."""
    store_file = node / "store.sqlite"
    with sqlite3.connect(store_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        events = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE kind = 'ingest'")
        ingests = int(audited.fetchone()[0])
    with SQLiteStore(store_file) as store:
        ids = sorted(o.id for o in store.iter_query(ObservationFilter(), page_size=5_000))
    return ids, events, ingests


@pytest.fixture
def node(tmp_path: Path) -> Path:
    node = tmp_path / "twn"
    run("init", "--party", "TWN", node, check=True)
    return node


@pytest.mark.e2e
def test_kill_9_during_add_leaves_the_store_as_it_was(tmp_path: Path, node: Path) -> None:
    before = tmp_path / "before.ndjson"
    before.write_bytes(msgspec.json.encode(observation(RECORDS + 1)) + b"\n")
    run("add", "--node", node, before, check=True)
    stored_before = _state(node)
    source = tmp_path / "large.ndjson"
    with source.open("wb") as out:
        for number in range(RECORDS):
            out.write(msgspec.json.encode(observation(number, lon=120 + (number % 1000) / 1000)))
            out.write(b"\n")

    _kill_when_a_third_is_read(["add", "--node", str(node), str(source), "--json"], source)
    assert _state(node) == stored_before

    # Running it again stores the whole file.
    again = run("add", "--node", node, source, "--json", check=True)
    assert msgspec.json.decode(again.stdout)["inserted"] == RECORDS
    assert len(_state(node)[0]) == RECORDS + 1


@pytest.mark.e2e
def test_kill_9_during_import_leaves_the_store_as_it_was(
    shared_data: Path, tmp_path: Path, node: Path
) -> None:
    run("import", "mnd-tracks", shared_data / MND, "--node", node)  # one record is refused
    stored_before = _state(node)
    assert len(stored_before[0]) > 900
    document = json.loads((shared_data / MND).read_text(encoding="utf-8"))
    document["features"] = document["features"] * 10
    source = tmp_path / "maps.geojson"
    source.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")

    _kill_when_a_third_is_read(["import", "mnd-tracks", str(source), "--node", str(node)], source)
    assert _state(node) == stored_before
