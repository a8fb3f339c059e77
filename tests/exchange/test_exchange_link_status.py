"""The sending links' status kept in the store for a node's other processes: an API worker or
``kuroshio link status`` shows it while the process running the links keeps it fresh, and not
once that process has stopped writing it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuroshio.exchange.status import (
    LIVE_FOR_S,
    LinkStatus,
    encode_live,
    keep_live,
    kept_live,
    link_reports,
)
from kuroshio.node import Node
from pinning import pinned_nodes


@pytest.fixture
def twn(tmp_path: Path) -> Iterator[Node]:
    node, other = pinned_nodes(tmp_path, ("TWN", "JPN"))
    other.close()
    yield node
    node.close()


def test_a_status_kept_lately_is_shown_and_a_stale_one_is_not(twn: Node) -> None:
    now = dt.datetime.now(dt.UTC)
    status = LinkStatus(
        partner="JPN", url="https://jpn.example:8443", failed_attempts=3, last_error="refused"
    )
    with twn.store.transaction() as tx:
        keep_live(tx, [encode_live(status)], now - dt.timedelta(seconds=LIVE_FOR_S + 1))
    urls = {party: partner.url for party, partner in twn.partners.items()}
    with twn.store.transaction() as tx:
        assert kept_live(tx, now) == {}
        [report] = link_reports(tx, urls)
    assert report.partner == "JPN" and report.live is None  # no process runs the link now

    status.failed_attempts = 0
    status.connected = True
    with twn.store.transaction() as tx:
        keep_live(tx, [encode_live(status)], now)  # the same row, written again
        [report] = link_reports(tx, urls)
        # Where this process runs the links, its own status is shown, not the store's.
        [own] = link_reports(tx, urls, {"JPN": LinkStatus(partner="JPN", url="x")})
    assert report.live == status
    assert own.live is not None and own.live.url == "x"
