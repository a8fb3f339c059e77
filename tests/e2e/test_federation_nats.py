"""Two ``kuroshio serve`` processes whose links run over a real NATS JetStream server."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from federation_nodes import ServedNode, agree, free_port, wait_until

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


def _over_nats(node: ServedNode, url: str, cafile: Path | None = None) -> None:
    """Set ``[federation] nats_url`` (and ``nats_cafile``) as an operator would, in the node's
    config file."""
    config = node.directory / "kuroshio.toml"
    settings = f'nats_url = "{url}"\n'
    if cafile is not None:
        settings += f'nats_cafile = "{cafile}"\n'
    text = config.read_text()
    config.write_text(text.replace("[federation]\n", f"[federation]\n{settings}", 1))


def _exchange(twn: ServedNode, jpn: ServedNode, url: str) -> None:
    """Pin each other over NATS at ``url``, agree, serve, and post from both sides: every report
    arrives and every receipt comes back."""
    for node, other in ((twn, jpn), (jpn, twn)):
        run("partner", "add", other.card(), "--node", node.directory, "--url", url, check=True)
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
def test_two_nodes_exchange_observations_over_nats(tmp_path: Path) -> None:
    _reachable()
    twn, jpn = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    for node in (twn, jpn):
        _over_nats(node, NATS_URL)
    _exchange(twn, jpn, NATS_URL)


@contextlib.contextmanager
def _nats_over_tls(directory: Path, pki: Path, clients_ca: bytes) -> Iterator[str]:
    """A NATS JetStream server of its own that speaks only TLS (its certificate from ``pki``)
    and verifies its clients' certificates against ``clients_ca``; its URL."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).is_file():
        service_unreachable("NATS server", "nats-server is not installed")
    port = free_port()
    (directory / "clients-ca.pem").write_bytes(clients_ca)
    with (directory / "nats.log").open("wb") as out:
        server = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(directory / "js"),
             "--tls", "--tlscert", str(pki / "server.pem"), "--tlskey", str(pki / "server.key"),
             "--tlsverify", "--tlscacert", str(directory / "clients-ca.pem")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: _listening(port), "the NATS server with TLS", 20)
        yield f"tls://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(20)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.e2e
def test_two_nodes_exchange_over_a_nats_server_that_requires_tls_and_client_certificates(
    tmp_path: Path, tak_pki: Path
) -> None:
    twn, jpn = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    # The bus's operator trusts the two parties' CAs for its clients.
    clients_ca = b"".join((n.directory / "keys" / "ca.pem").read_bytes() for n in (twn, jpn))
    with _nats_over_tls(tmp_path, tak_pki, clients_ca) as url:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 5) as raw:
            info = raw.recv(4096)
        assert info.startswith(b"INFO ") and b'"tls_required":true' in info
        for node in (twn, jpn):
            _over_nats(node, url, cafile=tak_pki / "ca.pem")
        _exchange(twn, jpn, url.replace("tls://", "nats://"))


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
