"""A live feed into an exchange: 5 000 tracks at 1 Hz as ASTERIX CAT062 over UDP into a served
TWN node (thinning at its default one update per 5 s per track), released to a served JPN node
under a coarsening agreement (the demo's 10 km grid, without its 20 s delay, which would be all
the latency measured).

Measures what TWN's feed dropped, the latency from the moment an update is sent to the moment it
is committed in JPN's store and to the moment it reaches a TAK client (XML over TCP) on JPN's
Cursor-on-Target output (p50, p99), and the peak RSS of each node. Prints one JSON object (see
``benchmarks/__main__.py``). ``KUROSHIO_BENCH_QUICK=1`` runs 20 s instead of 60 s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_exchange import (
    KUROSHIO,
    RssSampler,
    _ports,
    install_agreement,
    make_nodes,
    serve,
    stop,
    wait_http,
)
from kuroshio.export.config import CotOutput
from kuroshio.feeds.writers import SystemTrack, cat062_block
from kuroshio.node import open_node, save_config

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
TRACKS = 5_000
SECONDS = 20 if QUICK else 60
PER_BLOCK = 25
_START = re.compile(rb'start="([^"]+)"')


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send(port: int) -> int:
    """5 000 tracks at 1 Hz for SECONDS, each second's blocks spread over the second; each
    block's time of track is the moment it is sent (what the latency is measured from)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    began = time.monotonic()
    blocks_a_second = TRACKS // PER_BLOCK
    sent = 0
    for second in range(SECONDS):
        tick = began + second
        for index, first in enumerate(range(0, TRACKS, PER_BLOCK)):
            wait = tick + index / blocks_a_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            at = dt.datetime.now(dt.UTC)
            tracks = [
                SystemTrack(n, at, 118.0 + (n % 100) * 0.05,
                            20.0 + (n // 100) * 0.15 + second * 0.002, 0.0, 250.0, 7_000.0)
                for n in range(first, first + PER_BLOCK)
            ]  # fmt: skip
            sock.sendto(cat062_block(25, 100, tracks), ("127.0.0.1", port))
            sent += PER_BLOCK
    sock.close()
    return sent


class TakClient(threading.Thread):
    """A TAK client on JPN's Cursor-on-Target output: for each event, the seconds from its
    ``start`` (the time of track, i.e. when TWN's radar sent it) to its arrival here."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.delays: list[float] = []
        self.connected = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=None) as sock:
            self.connected.set()
            pending = b""
            while data := sock.recv(1 << 16):
                now = time.time()
                pending += data
                *events, pending = pending.split(b"</event>")
                for event in events:
                    if found := _START.search(event):
                        at = dt.datetime.fromisoformat(found.group(1).decode())
                        self.delays.append(now - at.timestamp())


def _quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return round(statistics.median(ordered), 3), round(ordered[int(0.99 * (len(ordered) - 1))], 3)


def _latencies(store: Path) -> list[float]:
    """Seconds from each TWN update's time (when it was sent) to its commit in JPN's store."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT id, stored_at FROM observation_versions WHERE id LIKE 'TWN:radar:%'"
        ).fetchall()
    out = []
    for identifier, stored_at in rows:
        stamp = dt.datetime.strptime(identifier.rsplit("@", 1)[1], "%Y%m%dT%H%M%S.%fZ")
        sent = stamp.replace(tzinfo=dt.UTC).timestamp()
        out.append(stored_at / 1e6 - sent)
    return out


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="kuroshio-bench-feeds-"))
    nodes = make_nodes(root)
    agreement = install_agreement(nodes, root)
    port = _free_udp_port()
    with open_node(nodes["TWN"].directory) as node:
        node.config.feeds = {
            "radar": {"kind": "asterix", "listen": f"udp://127.0.0.1:{port}", "categories": [62],
                      "queue": 100_000, "marking": {"tlp": "AMBER", "releasable_to": ["JPN"]}}
        }  # fmt: skip
        save_config(node.directory, node.config)
    (cot_port,) = _ports(1)
    with open_node(nodes["JPN"].directory) as node:
        node.config.cot = {
            "bench": CotOutput(listen=f"tcp://127.0.0.1:{cot_port}", history_s=0, fused=False)
        }
        save_config(node.directory, node.config)
    jpn = serve(nodes["JPN"], root / "jpn.log")
    twn = serve(nodes["TWN"], root / "twn.log")
    sampler = RssSampler({"TWN": twn, "JPN": jpn})
    try:
        for party in ("TWN", "JPN"):
            wait_http(f"{nodes[party].api}/api/health")
        time.sleep(3.0)  # the feed and the CoT output listen once serve is up
        tak = TakClient(cot_port)
        tak.start()
        if not tak.connected.wait(30):
            raise SystemExit("no TAK client could connect to JPN's Cursor-on-Target output")
        with sampler:
            sent = _send(port)
        time.sleep(8.0)  # the last batches through the store, the link and JPN's store
        status = json.loads(
            subprocess.run(
                [*KUROSHIO, "feed", "status", "--node", str(nodes["TWN"].directory), "--json"],
                check=True, capture_output=True, text=True,
            ).stdout
        )[0]["status"]  # fmt: skip
    finally:
        stop(twn)
        stop(jpn)
    latencies = _latencies(nodes["JPN"].store)
    store_p50, store_p99 = _quantiles(latencies)
    tak_p50, tak_p99 = _quantiles(tak.delays)
    metrics = {
        "updates sent": sent,
        "updates decoded by TWN's feed": status["updates"],
        "kept by thinning (stored at TWN)": status["delivered"],
        "dropped by TWN's feed": status["dropped"],
        "malformed": status["malformed"],
        "updates received by JPN": len(latencies),
        "feed-to-JPN-store latency p50 (s)": store_p50,
        "feed-to-JPN-store latency p99 (s)": store_p99,
        "updates on JPN's TAK client": len(tak.delays),
        "feed-to-JPN-TAK-client latency p50 (s)": tak_p50,
        "feed-to-JPN-TAK-client latency p99 (s)": tak_p99,
        "TWN peak RSS (MB)": round(sampler.peak_mb["TWN"], 1),
        "JPN peak RSS (MB)": round(sampler.peak_mb["JPN"], 1),
    }  # fmt: skip
    print(
        json.dumps(
            {
                "name": "feed exchange",
                "metrics": metrics,
                "targets": {
                    "dropped by TWN's feed": "== 0",
                    "feed-to-JPN-store latency p99 (s)": "<= 1",
                    "feed-to-JPN-TAK-client latency p99 (s)": "<= 1",
                    "TWN peak RSS (MB)": "<= 300",
                    "JPN peak RSS (MB)": "<= 300",
                },
                "setup": {
                    "tracks": TRACKS,
                    "rate_hz": 1,
                    "seconds": SECONDS,
                    "thinning": "default: one update per 5 s per track, plus manoeuvres",
                    "agreement": agreement,
                    "stores": "embedded SQLite, both nodes",
                },
            }
        )
    )


if __name__ == "__main__":
    main()
