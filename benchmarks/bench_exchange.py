"""Exchange between two real nodes on loopback: throughput and end-to-end latency.

Two ``kuroshio serve`` processes (TWN → JPN over WebSocket with mutual TLS 1.3, SQLite stores
with synchronous=FULL). Throughput: a backlog of released observations drained into the
receiver's store (committed, receipts returned). Latency: observations offered at 1 000/s to the
sender's operator API, timed until they appear on the receiver's live stream (SSE).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgspec

from kuroshio.model import Marking, Observation, Platform, Point, Source
from kuroshio.node import init_node, open_node, save_config
from kuroshio.partners import PartnerCard, PartnerConfig, ReleaseRule, make_card, store_card

BACKLOG = 100_000
OFFERED_PER_S = 1_000
OFFER_SECONDS = 20
POSTS_PER_S = 100
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _observation(number: int, tag: str) -> Observation:
    return Observation(
        id=f"TWN:{tag}:{number}",
        origin="TWN",
        kind="air",
        observed_at=T0 + dt.timedelta(seconds=number),
        geometry=Point(coordinates=(118 + (number % 500) / 100, 20 + (number % 700) / 100)),
        platform=Platform(type="J-16", platform_class="fighter", count=2, nationality="CHN"),
        source=Source(sensor="radar", confidence=0.9, uncertainty_m=1000),
        marking=Marking(tlp="AMBER", releasable_to=("JPN",)),
    )


class BenchNode(msgspec.Struct, kw_only=True):
    party: str
    directory: Path
    api: str
    card: PartnerCard


def _nodes(root: Path) -> dict[str, BenchNode]:
    ports = _ports(4)
    nodes: dict[str, BenchNode] = {}
    for index, party in enumerate(("TWN", "JPN")):
        directory = root / party.lower()
        with init_node(
            directory, party, port=ports[2 * index], api_port=ports[2 * index + 1]
        ) as node:
            nodes[party] = BenchNode(
                party=party,
                directory=directory,
                api=f"http://127.0.0.1:{ports[2 * index + 1]}",
                card=make_card(
                    party,
                    node.config.node.name,
                    node.config.federation.url(),
                    node.identity.ca_certificate_pem,
                    node.identity.public_key_b64,
                ),
            )
    for party, other in (("TWN", "JPN"), ("JPN", "TWN")):
        with open_node(nodes[party].directory) as node:
            card = nodes[other].card
            store_card(node.directory, card)
            node.config.partners[other] = PartnerConfig(
                url=card.url, release=ReleaseRule(kinds=("air",))
            )
            save_config(node.directory, node.config)
    return nodes


def _serve(directory: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kuroshio", "serve", "--node", str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def _count(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM current").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _preload(nodes: dict[str, BenchNode]) -> None:
    with open_node(nodes["TWN"].directory) as node:
        for start in range(0, BACKLOG, 1_000):
            node.ingest([_observation(n, "bulk") for n in range(start, start + 1_000)])


def _throughput(nodes: dict[str, BenchNode]) -> float:
    """Receiver-side commit rate while the backlog drains (first arrival to last)."""
    jpn_store = nodes["JPN"].directory / "store.sqlite"
    first: tuple[float, int] | None = None
    began = time.monotonic()
    while True:
        count = _count(jpn_store)
        now = time.perf_counter()
        if count and first is None:
            first = (now, count)
        if count >= BACKLOG and first is not None:
            return (count - first[1]) / (now - first[0])
        if time.monotonic() - began > (60 if first is None else 600):
            raise RuntimeError(f"the backlog did not arrive ({count} of {BACKLOG})")
        time.sleep(0.01)


class _Stream(threading.Thread):
    def __init__(self, url: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.url, self.expected = url, expected
        self.arrived: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=120)) as client,
            client.stream("GET", self.url) as response,
        ):
            self.ready.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    self.arrived[json.loads(line[6:])["id"]] = time.perf_counter()
                    if len(self.arrived) >= self.expected:
                        return


def _latency(nodes: dict[str, BenchNode]) -> tuple[list[float], float]:
    total = OFFERED_PER_S * OFFER_SECONDS
    per_post = OFFERED_PER_S // POSTS_PER_S
    stream = _Stream(f"{nodes['JPN'].api}/api/stream?origin=TWN", total)
    stream.start()
    stream.ready.wait(30)
    time.sleep(0.5)
    sent: dict[str, float] = {}
    encoder = msgspec.json.Encoder()
    began = time.perf_counter()
    with httpx.Client(base_url=nodes["TWN"].api, timeout=30) as client:
        for post in range(total // per_post):
            due = began + post / POSTS_PER_S
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            batch = [_observation(post * per_post + k, "live") for k in range(per_post)]
            at = time.perf_counter()
            response = client.post(
                "/api/observations", content=b"\n".join(encoder.encode(o) for o in batch)
            )
            response.raise_for_status()
            for observation in batch:
                sent[observation.id] = at
    offered = total / (time.perf_counter() - began)
    stream.join(120)
    latencies = [(stream.arrived[i] - t) * 1000 for i, t in sent.items() if i in stream.arrived]
    if len(latencies) != total:
        raise RuntimeError(f"only {len(latencies)} of {total} arrived on the stream")
    return latencies, offered


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nodes = _nodes(root)
        _preload(nodes)
        processes = [_serve(nodes[p].directory, root / f"{p}.log") for p in ("JPN", "TWN")]
        try:
            throughput = _throughput(nodes)
            for party in ("TWN", "JPN"):
                _wait_http(f"{nodes[party].api}/api/health")
            latencies, offered = _latency(nodes)
        except BaseException:
            for party in ("TWN", "JPN"):
                sys.stderr.write((root / f"{party}.log").read_text()[-3000:])
            raise
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(60)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        json.dumps(
            {
                "name": "exchange",
                "metrics": {
                    "throughput obs/s (TWN→JPN, committed at receiver)": throughput,
                    "latency p50 ms at 1000 obs/s (API in → partner stream out)": (
                        statistics.median(latencies)
                    ),
                    "latency p99 ms at 1000 obs/s": p99,
                    "offered obs/s achieved": offered,
                },
                "targets": {},
                "setup": {
                    "backlog": BACKLOG,
                    "cpus": os.cpu_count(),
                    "transport": "WebSocket over mutual TLS 1.3, loopback",
                },
            }
        )
    )


if __name__ == "__main__":
    main()
