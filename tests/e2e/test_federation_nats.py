"""Two ``kuroshio serve`` processes whose links run over a real NATS JetStream server."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from federation_nodes import ServedNode, agree, wait_until

from agreements import agreement_text
from cli_run import run
from conftest import service_unreachable
from kuroshio.demo.scenario import scenario

NATS_URL = os.environ.get("KUROSHIO_NATS_URL", "nats://127.0.0.1:4222")
START = dt.datetime(2026, 5, 20, 1, 0, tzinfo=dt.UTC)


def _reachable() -> None:
    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=3):
            pass
    except OSError as error:
        service_unreachable("NATS server", f"{NATS_URL}: {error}")


def _over_nats(node: ServedNode) -> None:
    """Set ``[federation] nats_url`` as an operator would, in the node's config file."""
    config = node.directory / "kuroshio.toml"
    text = config.read_text()
    config.write_text(text.replace("[federation]\n", f'[federation]\nnats_url = "{NATS_URL}"\n', 1))


@pytest.mark.e2e
def test_two_nodes_exchange_observations_over_nats(tmp_path: Path) -> None:
    _reachable()
    twn, jpn = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    for node, other in ((twn, jpn), (jpn, twn)):
        _over_nats(node)
        run("partner", "add", other.card(), "--node", node.directory, "--url", NATS_URL, check=True)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))
    from_twn = list(scenario("TWN", START, releasable_to=["JPN"]))[:40]
    from_jpn = list(scenario("JPN", START, releasable_to=["TWN"]))[:20]

    twn.start()
    jpn.start()
    try:
        for node, observations in ((twn, from_twn), (jpn, from_jpn)):
            posted = httpx.post(
                f"{node.api_url}/api/observations",
                content=b"\n".join(msgspec.json.encode(o) for o in observations),
                headers={"content-type": "application/x-ndjson", **node.headers},
                timeout=60,
            )
            assert posted.status_code == 200, posted.text
        wait_until(lambda: jpn.count("TWN:") == len(from_twn), "TWN reports at JPN", 60)
        wait_until(lambda: twn.count("JPN:") == len(from_jpn), "JPN reports at TWN", 60)
        assert jpn.versions("TWN:") == {o.key for o in from_twn}
        assert twn.versions("JPN:") == {o.key for o in from_jpn}
        # JPN's signed receipts come back over the session's "down" subject.
        wait_until(
            lambda: sum(r["count"] for r in twn.audit("receipt")) == len(from_twn),
            "JPN's receipts at TWN",
            60,
        )
        assert {r["partner"] for r in twn.audit("receipt")} == {"JPN"}
    finally:
        codes = [twn.stop(), jpn.stop()]
    assert codes == [0, 0]


@pytest.mark.e2e
def test_a_partner_over_nats_without_a_nats_server_configured_is_a_clear_error(
    tmp_path: Path,
) -> None:
    twn, jpn = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    run("partner", "add", jpn.card(), "--node", twn.directory, "--url", NATS_URL, check=True)
    served = run("serve", "--node", twn.directory, timeout=60)
    assert served.returncode != 0
    assert "partners.JPN.url" in served.stderr
    assert "set federation.nats_url" in served.stderr
