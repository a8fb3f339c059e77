"""Helpers of the feed tests: a sink that collects, TAK certificates, a feed builder."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine, Sequence
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import msgspec
import pytak
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuroshio.feeds import Feed, FeedConfig
from kuroshio.model import Observation

SAMPLE_RADARS = [
    {"sac": 25, "sic": sic, "lat": 45.0 + sic / 200, "lon": 15.0 + sic / 100}
    for sic in (11, 12, 13, 14, 201, 204, 205)
]
"""Sites for the radars of asterix-decoder's CAT048 capture (``[[feeds.NAME.radars]]``). Where
they really stand is not published with it; these stand-ins place its plots."""
WAIT_S = 20.0
"""Longest a test waits for something that should come at once (it guards against a hang)."""


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (fixtures and parameters pass through)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Collector:
    """A feed sink that keeps every batch and lets a test wait until enough has arrived."""

    def __init__(self) -> None:
        self.batches: list[list[Observation]] = []
        self._arrived = asyncio.Event()

    @property
    def observations(self) -> list[Observation]:
        return [observation for batch in self.batches for observation in batch]

    async def __call__(self, observations: Sequence[Observation]) -> None:
        self.batches.append(list(observations))
        self._arrived.set()

    async def wait_for(self, count: int) -> list[Observation]:
        async def enough() -> None:
            while len(self.observations) < count:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(enough(), WAIT_S)
        return self.observations


async def eventually(condition: Any, what: str) -> None:
    """Wait (at most :data:`WAIT_S`) until ``condition()`` holds; for counters fed by sockets."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), WAIT_S)
    except TimeoutError:
        pytest.fail(f"still waiting for {what}")


def feed_config(**table: Any) -> FeedConfig:
    """A feed configuration as it would come from ``kuroshio.toml`` (batches handed at once)."""
    table.setdefault("batch_wait_ms", 0)
    return msgspec.convert(table, type=FeedConfig)  # type: ignore[arg-type]


def make_feed(sink: Collector, name: str = "test", origin: str = "TWN", **table: Any) -> Feed:
    return Feed(name, feed_config(**table), origin=origin, sink=sink)


# --- a real TAK client --------------------------------------------------------------------------


def tak_client(url: str, **settings: str) -> Any:
    """pytak's configuration of a TAK client sending to ``url``."""
    parser = ConfigParser()
    parser["tak"] = {"COT_URL": url, **settings}
    return parser["tak"]


async def send_with_pytak(config: Any, events: Sequence[bytes]) -> asyncio.StreamReader:
    """Connect as pytak does and send the events through its TXWorker."""
    reader, writer = await pytak.protocol_factory(config)
    sender = pytak.TXWorker(asyncio.Queue(), config, writer)
    for event in events:
        await sender.send_data(event)
    return reader  # type: ignore[no-any-return]


def cot_event(uid: str, cot_type: str = "a-h-A-M-F-F") -> bytes:
    return ET.tostring(  # type: ignore[no-any-return]
        pytak.gen_cot_xml(lat=24.2, lon=119.8, uid=uid, cot_type=cot_type, hae=7_000, ce=100)
    )


# --- certificates for TLS, as a TAK Server's CA would issue them --------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.with_suffix(".pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    return key, _builder(name, name, key, ca=True).sign(key, hashes.SHA256())


def _issue(
    subject: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_name(subject), ca.subject, key, ca=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make_tak_pki(directory: Path) -> Path:
    """A CA (``ca.pem``), the feed's server certificate (``server.pem/.key``, for 127.0.0.1),
    a client certificate it signed (``client.pem/.key``, CN ``ATAK-1``) and one from another CA
    (``stranger.pem/.key``), written into ``directory``."""
    ca_key, ca = _ca("TAK test CA")
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write(directory / "server", *_issue("kuroshio feed", ca_key, ca, server=True))
    _write(directory / "client", *_issue("ATAK-1", ca_key, ca, server=False))
    other_key, other = _ca("another CA")
    _write(directory / "stranger", *_issue("stranger", other_key, other, server=False))
    return directory
