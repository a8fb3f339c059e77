"""``kuroshio store backup``: a copy of a serving node's store, as of one moment, that checks out
as a store of its own, and what restoring it does to the node and its partners' links."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from federation_nodes import ServedNode, agree, post_reports, wait_until

from agreements import agreement_text
from cli_run import run
from kuroshio.model import Marking
from kuroshio.store.sqlite import SQLiteStore
from observations import observation

pytestmark = pytest.mark.e2e

TO_JAPAN = Marking(releasable_to=("JPN",))


def test_a_serving_node_is_backed_up_whole_and_restored_its_links_stop_at_the_gap(
    tmp_path: Path,
) -> None:
    twn, jpn = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    twn.pin(jpn)
    jpn.pin(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))
    twn.start()
    jpn.start()
    try:
        twn.add([observation(n, marking=TO_JAPAN) for n in range(20)])
        wait_until(lambda: jpn.count("TWN:") == 20, "TWN's first reports at JPN")
        # JPN's own operators keep posting while its store is copied.
        stop = threading.Event()

        def keep_posting() -> None:
            with httpx.Client(timeout=30) as client:
                number = 0
                while not stop.is_set():
                    batch = [observation(n, origin="JPN") for n in range(number, number + 20)]
                    post_reports(client, jpn.api_url, batch, jpn.headers)
                    number += 20

        poster = threading.Thread(target=keep_posting, daemon=True)
        poster.start()
        copy = tmp_path / "jpn-backup.sqlite"
        try:
            wait_until(lambda: jpn.count("JPN:") >= 100, "JPN's own reports being posted")
            done = run("store", "backup", copy, "--node", jpn.directory, "--json", check=True)
        finally:
            stop.set()
            poster.join(60)
        report = json.loads(done.stdout)
        # The copy is one moment of the store: whole batches of posts, and every one it holds
        # has its audit entry (the command checked the copy's chain against JPN's keys).
        with SQLiteStore(copy) as store:
            assert store.integrity_problems() == []
            own = store.count_versions() - 20
        assert report["versions"] == own + 20 and own % 20 == 0 and own >= 100
        assert report["audit_size"] > 0
        refused = run("store", "backup", copy, "--node", jpn.directory)
        assert refused.returncode != 0 and "exists" in refused.stderr  # never replaced

        twn.add([observation(n, marking=TO_JAPAN) for n in range(20, 30)])
        wait_until(lambda: jpn.count("TWN:") == 30, "TWN's later reports at JPN")

        # Restored: JPN is as it was when copied, and its log checks out.
        assert jpn.stop() == 0
        for suffix in ("", "-wal", "-shm"):
            (jpn.directory / f"store.sqlite{suffix}").unlink(missing_ok=True)
        shutil.copy(copy, jpn.directory / "store.sqlite")
        jpn.start()
        assert jpn.count("TWN:") == 20 and jpn.count("JPN:") == own
        verified = run("audit", "verify", "--node", jpn.directory)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # TWN's link finds JPN behind the batches it holds receipts for: it stops there and
        # says so, rather than sending on into a gap.
        twn.add([observation(n, marking=TO_JAPAN) for n in range(30, 35)])

        def diverged() -> bool:
            status = run("link", "status", "--node", twn.directory, "--json", check=True)
            return "diverged" in status.stdout

        wait_until(diverged, "TWN's link to JPN stopped as diverged", 60)
        assert jpn.count("TWN:") == 20
    finally:
        twn.stop()
        jpn.stop()
