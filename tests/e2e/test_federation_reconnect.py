"""A partner that comes back is reached at once: its own link's hello wakes this node's link to
it out of the wait between attempts, however long that wait has grown.

TWN and USA run as real ``kuroshio serve`` processes over mutual TLS. TWN serves first, with an
observation released to USA and a longest wait of an hour between attempts (``exchange.
reconnect_max_s``), and fails to reach USA until its waits have doubled six times (the next is
12.8 s or more). USA then starts; its link to TWN says hello, and TWN's link tries USA again
without waiting out the rest. TWN runs as one process on SQLite, and as several on PostgreSQL
(``--workers 1 --receivers 1``), where the hello reaches a receiving process and the link runs
in the sending process.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from federation_nodes import ServedNode, agree, wait_until

from agreements import agreement_text
from conftest import drop_postgres_schemas
from kuroshio.model import Marking
from observations import observation

FAILURES = 6
"""Attempts TWN's link makes before USA starts: the wait after the sixth is 12.8 s or more."""


def _failed_attempts(node: ServedNode, partner: str) -> int:
    """Attempts of ``node``'s link to reach ``partner`` that failed since it last connected, as
    the node's API reports them."""
    links = httpx.get(f"{node.api_url}/api/links", headers=node.headers, timeout=30).json()
    live = next(link["live"] for link in links if link["partner"] == partner)
    return int(live["failed_attempts"]) if live else 0


@pytest.mark.e2e
@pytest.mark.parametrize("processes", ["one", "several"])
def test_a_partner_back_up_is_reached_without_waiting_out_the_back_off(
    tmp_path: Path, processes: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    options: tuple[str, ...] = ()
    backend = "sqlite"
    if processes == "several":
        monkeypatch.setenv("KUROSHIO_STORE_DSN", request.getfixturevalue("postgres_dsn"))
        options, backend = ("--workers", "1", "--receivers", "1"), "postgres"
    twn, usa = ServedNode(tmp_path, "TWN", backend), ServedNode(tmp_path, "USA")
    twn.pin(usa)
    usa.pin(twn)
    agree([twn, usa], agreement_text(["TWN", "USA"]))
    config = twn.directory / "kuroshio.toml"
    text = config.read_text()
    assert "\nreconnect_max_s = 2.0\n" in text  # the default, written by `kuroshio init`
    config.write_text(text.replace("\nreconnect_max_s = 2.0\n", "\nreconnect_max_s = 3600.0\n"))
    sighting = observation(1, marking=Marking(releasable_to=("USA",)))

    twn.start(*options)
    try:
        twn.add([sighting])
        wait_until(
            lambda: _failed_attempts(twn, "USA") >= FAILURES, f"{FAILURES} failed attempts to USA"
        )
        usa.start()
        wait_until(lambda: usa.count("TWN:") == 1, "the sighting at USA")
        log = twn.log.read_text()
        assert "link TWN>USA: USA reached this node; trying it again now" in log
        assert usa.versions("TWN:") == {(sighting.id, 1)}
        wait_until(lambda: _failed_attempts(twn, "USA") == 0, "the count cleared once connected")
    finally:
        usa.stop()
        twn.stop()
        if backend == "postgres":
            drop_postgres_schemas(request.getfixturevalue("postgres_dsn"))
