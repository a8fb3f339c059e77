"""The demo's nodes: fresh identities pinned to each other, one agreement every party signs, each
node its own ``kuroshio serve`` process fed through its operator API.

``kuroshio demo`` (:mod:`kuroshio.cli.demo`) drives these parts and prints what happens; they
drive real nodes and never bypass the exchange. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from kuroshio.demo.scenario import plots, scenario
from kuroshio.demo.sources import FEEDS, Message
from kuroshio.errors import ConfigError
from kuroshio.model import (
    Kinematics,
    Marking,
    Observation,
    Platform,
    Point,
    Provenance,
    Source,
)
from kuroshio.node import ADMIN_TOKEN, init_node, open_node, save_config
from kuroshio.partners import PartnerConfig, make_card, store_card
from kuroshio.policy.agreement import EnforcedAgreement
from kuroshio.store import EventFilter, ObservationFilter

PAIR: Final = ("TWN", "JPN")
TICK_S: Final = 0.25
PROGRESS_S: Final = 3.0
DRAIN_TIMEOUT_S: Final = 60.0
START_TIMEOUT_S: Final = 30.0
WATCH: Final = "watch"
"""The operator the demo makes on each node for logging in to the picture."""


class DemoNode(msgspec.Struct, kw_only=True):
    party: str
    directory: Path
    federation_port: int
    api_port: int
    feed_ports: dict[str, int] = msgspec.field(default_factory=dict)
    """Where each of the node's feeds listens (on loopback)."""
    process: subprocess.Popen[bytes] | None = None
    password: str = ""
    """The password of the demo's ``watch`` operator (role operator) for the picture."""

    @property
    def headers(self) -> dict[str, str]:
        """Credentials of the node's admin (the token ``kuroshio init`` made) for its API."""
        token = (self.directory / ADMIN_TOKEN).read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def federation_url(self) -> str:
        return f"https://127.0.0.1:{self.federation_port}"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def feed_tables(demo_node: DemoNode, parties: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The ``[feeds]`` of a demo node: each of its sensors on a loopback port, marked for its
    partners."""
    partners = [p for p in parties if p != demo_node.party]
    tables: dict[str, dict[str, Any]] = {}
    for feed in FEEDS.get(demo_node.party, ()):
        tables[feed.name] = {
            "kind": feed.kind,
            "listen": f"{feed.scheme}://127.0.0.1:{demo_node.feed_ports[feed.name]}",
            "marking": {"tlp": "AMBER", "releasable_to": partners},
        }
        if feed.kind == "asterix":
            tables[feed.name]["categories"] = [62]
    return tables


def make_nodes(directory: Path, parties: Sequence[str]) -> list[DemoNode]:
    if directory.exists():
        shutil.rmtree(directory)
    feeds = sum(len(FEEDS.get(party, ())) for party in parties)
    ports = free_ports(2 * len(parties) + feeds)
    spare = iter(ports[2 * len(parties) :])
    nodes = [
        DemoNode(
            party=party,
            directory=directory / party.lower(),
            federation_port=ports[2 * i],
            api_port=ports[2 * i + 1],
            feed_ports={feed.name: next(spare) for feed in FEEDS.get(party, ())},
        )
        for i, party in enumerate(parties)
    ]
    cards = {}
    for demo_node in nodes:
        with init_node(
            demo_node.directory,
            demo_node.party,
            port=demo_node.federation_port,
            api_port=demo_node.api_port,
        ) as node:
            demo_node.password = secrets.token_urlsafe(12)
            node.add_operator(WATCH, "operator", demo_node.password)
            identity = node.identity
            cards[demo_node.party] = make_card(
                node.party,
                node.config.node.name,
                node.config.federation.url(),
                identity.ca_certificate_pem,
                identity.public_key_b64,
            )
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            for party, card in cards.items():
                if party == demo_node.party:
                    continue
                store_card(node.directory, card)
                node.config.partners[party] = PartnerConfig(url=card.url)
            node.config.feeds = feed_tables(demo_node, parties)
            save_config(node.directory, node.config)
    return nodes


AGREEMENT_ID: Final = "demo-exchange"
COARSEN_KM: Final = 10
DELAY_S: Final = 20


def demo_agreement_text(parties: Sequence[str], valid_from: dt.datetime) -> str:
    """The demo's agreement: TWN releases air and sea reports to JPN on a 10 km grid after a short
    delay; JPN releases its reports to TWN as observed; a third party exchanges as observed with
    both. Nothing is re-released (each party sends its own reports to each partner)."""
    others = [p for p in parties if p not in PAIR]
    lines = [
        f'id = "{AGREEMENT_ID}"',
        "version = 1",
        f'title = "{" – ".join(parties)} demonstration exchange"',
        "parties = [" + ", ".join(f'"{p}"' for p in parties) + "]",
        f"valid_from = {valid_from:%Y-%m-%dT%H:%M:%SZ}",
        f"valid_until = {valid_from + dt.timedelta(days=30):%Y-%m-%dT%H:%M:%SZ}",
        "",
        "[[direction]]",
        'from = "TWN"',
        'to = ["JPN"]',
        "[[direction.rule]]",
        'id = "twn-jpn-air-sea"',
        'action = "release"',
        'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
        f"transform = {{ coarsen_km = {COARSEN_KM}, delay_s = {DELAY_S}, "
        'drop = ["provenance.record"] }',
        "",
        "[[direction]]",
        'from = "JPN"',
        'to = ["TWN"]',
        "[[direction.rule]]",
        'id = "jpn-twn-air-sea"',
        'action = "release"',
        'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
    ]
    for third in others:
        lines += [
            "",
            "[[direction]]",
            'from = "TWN"',
            f'to = ["{third}"]',
            "[[direction.rule]]",
            f'id = "twn-{third.lower()}-sea"',
            'action = "release"',
            'match = { kind = ["sea"], tlp_at_most = "AMBER" }',
            f"transform = {{ coarsen_km = {COARSEN_KM} }}",
            "",
            "[[direction]]",
            'from = "JPN"',
            f'to = ["{third}"]',
            "[[direction.rule]]",
            f'id = "jpn-{third.lower()}-air-sea"',
            'action = "release"',
            'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
            "",
            "[[direction]]",
            f'from = "{third}"',
            'to = ["JPN", "TWN"]',
            "[[direction.rule]]",
            f'id = "{third.lower()}-all"',
            'action = "release"',
            'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
        ]
    return "\n".join(lines) + "\n"


def agree(nodes: Sequence[DemoNode], parties: Sequence[str]) -> EnforcedAgreement:
    """Every party signs the demo agreement with its node key; every node installs it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = demo_agreement_text(parties, now - dt.timedelta(minutes=1))
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            text = node.sign_agreement_text(text, source=f"{AGREEMENT_ID}.toml")
    path = nodes[0].directory.parent / f"{AGREEMENT_ID}.v1.toml"
    path.write_text(text, encoding="utf-8")
    installed: EnforcedAgreement | None = None
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            installed, _ = node.install_agreement(path)
    assert installed is not None
    return installed


def start_node(demo_node: DemoNode) -> None:
    log = (demo_node.directory / "serve.log").open("ab")
    demo_node.process = subprocess.Popen(
        [sys.executable, "-m", "kuroshio", "serve", "--node", str(demo_node.directory)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()


def wait_ready(client: httpx.Client, demo_node: DemoNode) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        process = demo_node.process
        if process is not None and process.poll() is not None:
            raise ConfigError(
                f"the {demo_node.party} node exited ({process.returncode}); "
                f"see {demo_node.directory / 'serve.log'}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if client.get(f"{demo_node.api_url}/api/health").status_code == 200:
                return
        time.sleep(0.1)
    raise ConfigError(f"the {demo_node.party} node did not start within {START_TIMEOUT_S:.0f} s")


def stop_nodes(nodes: Sequence[DemoNode], *, wait: bool = True) -> None:
    """SIGTERM to every node still running, then (``wait``) wait for each to stop, killing one
    that takes more than 15 s."""
    for demo_node in nodes:
        if demo_node.process is not None and demo_node.process.poll() is None:
            demo_node.process.send_signal(signal.SIGTERM)
    if not wait:
        return
    for demo_node in nodes:
        if demo_node.process is None:
            continue
        try:
            demo_node.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            demo_node.process.kill()
            demo_node.process.wait()


def third_party_reports(
    party: str, start: dt.datetime, *, releasable_to: Sequence[str], seed: int = 7
) -> Iterator[Observation]:
    """What a third party's wide-area sensors report: every fifth plot of the sea groups and of
    the bombers, coarser than the coastal radars of the two neighbours."""
    rng = random.Random(f"{seed}:{party}")
    for plot in plots(start):
        sortie = plot.sortie
        if plot.index % 5 or sortie.platform_class not in ("bomber", "carrier", "survey"):
            continue
        lon = plot.lon + rng.gauss(0, 0.03)
        lat = plot.lat + rng.gauss(0, 0.03)
        yield Observation(
            id=f"{party}:demo:{sortie.name}:{plot.index}",
            origin=party,
            kind="air" if sortie.kind == "air" else "sea",
            observed_at=plot.at,
            geometry=Point(coordinates=(lon, lat)),
            platform=Platform(
                type=sortie.type,
                platform_class=sortie.platform_class,
                count=sortie.count,
                nationality="CHN",
            ),
            kinematics=Kinematics(course_deg=round(plot.course_deg, 1) % 360),
            source=Source(sensor="satellite", confidence=0.7, uncertainty_m=5_000.0),
            marking=Marking(tlp="AMBER", releasable_to=tuple(releasable_to)),
            provenance=Provenance(importer="demo", record=sortie.name),
        )


def reports_of(party: str, parties: Sequence[str], start: dt.datetime) -> list[Observation]:
    others = [p for p in parties if p != party]
    if party in PAIR:
        return list(scenario(party, start, releasable_to=others))
    return list(third_party_reports(party, start, releasable_to=others))


def corrections(reports: list[Observation]) -> list[Observation]:
    """A correction (higher count) and a retraction, to show later versions travel too."""
    bombers = [o for o in reports if o.platform and o.platform.platform_class == "bomber"]
    fighters = [o for o in reports if o.platform and o.platform.platform_class == "fighter"]
    out: list[Observation] = []
    if bombers and bombers[0].platform is not None:
        first = bombers[0]
        assert first.platform is not None
        out.append(
            msgspec.structs.replace(
                first,
                version=2,
                platform=msgspec.structs.replace(first.platform, count=first.platform.count + 1),
                remarks="count corrected after review",
            )
        )
    if fighters:
        out.append(
            msgspec.structs.replace(
                fighters[0], version=2, retracted=True, remarks="retracted: duplicate track"
            )
        )
    return out


def post(client: httpx.Client, demo_node: DemoNode, observations: Sequence[Observation]) -> None:
    if not observations:
        return
    body = b"\n".join(msgspec.json.encode(o) for o in observations)
    response = client.post(
        f"{demo_node.api_url}/api/observations",
        content=body,
        headers={"content-type": "application/x-ndjson", **demo_node.headers},
    )
    response.raise_for_status()


def links_of(client: httpx.Client, demo_node: DemoNode) -> list[dict[str, Any]]:
    try:
        response = client.get(f"{demo_node.api_url}/api/links", headers=demo_node.headers)
        response.raise_for_status()
    except httpx.HTTPError:
        return []
    links: list[dict[str, Any]] = response.json()
    return links


def drained(links: list[dict[str, Any]]) -> bool:
    """True when nothing waits to be sent on these links (beyond a delay) and every batch is
    signed for."""
    for link in links:
        out = link["outgoing"]
        if out["pending"] - out.get("held", 0) or out["unacked_items"]:
            return False
    return True


class FeedSender:
    """The demo's sensors' sockets: datagrams to the UDP feeds, one TCP connection to each
    stream feed (made again if the node drops it)."""

    def __init__(self, nodes: Sequence[DemoNode]) -> None:
        self._targets = {
            (n.party, feed.name): (feed.scheme, n.feed_ports[feed.name])
            for n in nodes
            for feed in FEEDS.get(n.party, ())
        }
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._streams: dict[tuple[str, str], socket.socket] = {}

    def send(self, message: Message) -> None:
        key = (message.party, message.feed)
        scheme, port = self._targets[key]
        if scheme == "udp":
            self._udp.sendto(message.data, ("127.0.0.1", port))
            return
        for attempt in range(2):
            stream = self._streams.get(key)
            try:
                if stream is None:
                    stream = socket.create_connection(("127.0.0.1", port), timeout=5.0)
                    self._streams[key] = stream
                stream.sendall(message.data)
                return
            except OSError:
                self._streams.pop(key, None)
                if stream is not None:
                    stream.close()
                if attempt:
                    raise

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()
        self._udp.close()


def newest(client: httpx.Client, demo_node: DemoNode, platform_class: str) -> list[Observation]:
    """The first stored observation of the node's own of a platform class (none: empty)."""
    response = client.get(
        f"{demo_node.api_url}/api/observations",
        params={"origin": demo_node.party, "class": platform_class, "limit": 1},
        headers=demo_node.headers,
    )
    response.raise_for_status()
    return [msgspec.convert(item, Observation) for item in response.json()["items"]]


def tracks_and_events(
    nodes: Sequence[DemoNode], parties: Sequence[str]
) -> dict[str, tuple[list[int], int]]:
    """Tracks each node holds by origin (in the order of ``parties``), and events derived."""
    found: dict[str, tuple[list[int], int]] = {}
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            tracks = node.store.read(lambda tx: [tx.tracks.count(p) for p in parties])
            events = len(node.store.query_events(EventFilter(), limit=1_000_000))
        found[demo_node.party] = (tracks, events)
    return found


def holdings(nodes: Sequence[DemoNode], parties: Sequence[str]) -> dict[str, list[int]]:
    """Current observations each node holds, by origin (in the order of ``parties``)."""
    counts: dict[str, list[int]] = {}
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            counts[demo_node.party] = [
                node.store.count(ObservationFilter(origins=(p,))) for p in parties
            ]
    return counts


__all__ = [
    "DemoNode",
    "FeedSender",
    "agree",
    "corrections",
    "demo_agreement_text",
    "drained",
    "feed_tables",
    "holdings",
    "links_of",
    "make_nodes",
    "newest",
    "post",
    "reports_of",
    "start_node",
    "stop_nodes",
    "third_party_reports",
    "tracks_and_events",
    "wait_ready",
]
