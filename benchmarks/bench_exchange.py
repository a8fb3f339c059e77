"""Exchange between two real nodes on loopback: throughput, latency, catch-up, RSS, and the floor.

Two ``kuroshio serve`` processes, TWN → JPN, over WebSocket with mutual TLS 1.3, SQLite stores
(WAL, synchronous=FULL), the hash-chained audit log on, and a signed release agreement whose rule
coarsens positions to a 10 km grid. Phases, one run:

1. throughput: a backlog released at TWN while both nodes are down, then both start; the rate at
   which JPN commits it (first arrival to last), with both processes' RSS sampled from /proc;
2. latency: observations offered to TWN's operator API at fixed rates (1 000/s, 10 000/s), each
   timed from the POST that hands it to TWN to the moment its row is committed in JPN's store;
3. catch-up: JPN stopped while a large backlog is ingested beside the running TWN node (as
   ``kuroshio import`` does; the accumulate time is reported too); JPN starts and the clock runs
   until the last item is committed there;
4. floor: the same records through bare msgspec encode, a TLS loopback socket and a SQLite insert
   (see ``floor.py``), measured in this run; the report gives floor ÷ kuroshio.

``KUROSHIO_BENCH_QUICK=1`` scales every phase down (a smoke run of well under a minute).
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
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from kuroshio.model import Marking, Observation, Platform, Point, Source
from kuroshio.node import ADMIN_TOKEN, init_node, open_node, save_config
from kuroshio.partners import PartnerCard, PartnerConfig, make_card, store_card

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
BACKLOG = 20_000 if QUICK else 200_000
CATCH_UP = 50_000 if QUICK else 1_000_000
OFFER_SECONDS = 3 if QUICK else 10
OFFERED_RATES = (1_000, 10_000)
POSTS_PER_S = 100
COARSEN_KM = 10
AGREEMENT_ID = "bench-twn-jpn"
KUROSHIO = [sys.executable, "-m", "kuroshio"]


def _ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def observation(number: int, tag: str, at: dt.datetime, origin: str = "TWN") -> Observation:
    """One air track point as a radar of ``origin`` reports it, releasable to JPN."""
    return Observation(
        id=f"{origin}:{tag}:{number}",
        origin=origin,
        kind="air",
        observed_at=at,
        geometry=Point(coordinates=(118 + (number % 500) / 100, 20 + (number % 700) / 100)),
        platform=Platform(type="J-16", platform_class="fighter", count=2, nationality="CHN"),
        source=Source(sensor="radar", confidence=0.9, uncertainty_m=1000.0),
        marking=Marking(tlp="AMBER", releasable_to=("JPN",)),
        remarks="bench",
    )


class BenchNode(msgspec.Struct, kw_only=True):
    party: str
    directory: Path
    api: str
    card: PartnerCard

    @property
    def store(self) -> Path:
        return self.directory / "store.sqlite"


def make_nodes(
    root: Path,
    store: dict[str, dict[str, str]] | None = None,
    parties: tuple[str, ...] = ("TWN", "JPN"),
) -> dict[str, BenchNode]:
    """Node directories of ``parties`` (TWN and JPN), each pinning every other (``store``: each
    party's ``[store]`` section; default the embedded file)."""
    ports = _ports(2 * len(parties))
    nodes: dict[str, BenchNode] = {}
    for index, party in enumerate(parties):
        directory = root / party.lower()
        with init_node(
            directory,
            party,
            port=ports[2 * index],
            api_port=ports[2 * index + 1],
            store=(store or {}).get(party),
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
    for party in parties:
        with open_node(nodes[party].directory) as node:
            for other in parties:
                if other != party:
                    card = nodes[other].card
                    store_card(node.directory, card)
                    node.config.partners[other] = PartnerConfig(url=card.url)
            save_config(node.directory, node.config)
    return nodes


AGREEMENT = """\
id = "{id}"
version = 1
title = "Benchmark exchange"
parties = ["JPN", "{sender}"]
valid_from = {valid_from}
valid_until = {valid_until}

[[direction]]
from = "{sender}"
to = ["JPN"]

[[direction.rule]]
id = "{sender_id}-jpn-air"
action = "release"
[direction.rule.match]
kind = ["air"]
tlp_at_most = "AMBER"
[direction.rule.transform]
coarsen_km = {coarsen_km}
drop = ["remarks"]
"""


def install_agreement(nodes: dict[str, BenchNode], root: Path, sender: str = "TWN") -> str:
    """Write the release agreement, have both parties sign it and install it on both nodes,
    through the ``kuroshio agreement`` commands. ``sender`` (TWN) releases air tracks to JPN,
    coarsened. Without it nothing leaves the sender (default deny)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    agreement_id = AGREEMENT_ID.replace("twn", sender.lower())
    path = root / f"{agreement_id}.toml"
    path.write_text(
        AGREEMENT.format(
            id=agreement_id,
            sender=sender,
            sender_id=sender.lower(),
            valid_from=(now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            valid_until=(now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            coarsen_km=COARSEN_KM,
        ),
        encoding="utf-8",
    )
    for step in ("sign", "install"):
        for party in (sender, "JPN"):
            subprocess.run(
                [*KUROSHIO, "agreement", step, str(path), "--node", str(nodes[party].directory)],
                check=True,
                capture_output=True,
            )
    return f"{agreement_id} v1: {sender} → JPN air, coarsen_km = {COARSEN_KM}, drop remarks"


def serve(node: BenchNode, log: Path, *options: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*KUROSHIO, "serve", "--node", str(node.directory), *options],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def committed(store: Path) -> int:
    """Versions committed in a store (the history's last seq: one look-up, not a count)."""
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as conn:
            row = conn.execute(
                "SELECT seq FROM observation_versions ORDER BY seq DESC LIMIT 1"
            ).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


class RssSampler(threading.Thread):
    """Peak resident set size (MB) of each process, sampled from /proc every 100 ms, and the
    share of one core each used meanwhile (CPU seconds over wall seconds)."""

    def __init__(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        super().__init__(daemon=True)
        self.processes = processes
        self.peak_mb: dict[str, float] = dict.fromkeys(processes, 0.0)
        self.cpu_share: dict[str, float] = dict.fromkeys(processes, 0.0)
        self.wait_share: dict[str, float] = dict.fromkeys(processes, 0.0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            for name, process in self.processes.items():
                self.peak_mb[name] = max(self.peak_mb[name], rss_mb(process.pid))

    def __enter__(self) -> RssSampler:
        self.mark()
        self.start()
        return self

    def mark(self) -> None:
        """Count CPU from now on (e.g. from the first arrival, leaving out start-up)."""
        self._began = time.perf_counter()
        self._cpu = {name: cpu_s(p.pid) for name, p in self.processes.items()}
        self._waited = {name: runnable_wait_s(p.pid) for name, p in self.processes.items()}

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()
        wall = time.perf_counter() - self._began
        for name, process in self.processes.items():
            self.cpu_share[name] = (cpu_s(process.pid) - self._cpu[name]) / wall
            self.wait_share[name] = (runnable_wait_s(process.pid) - self._waited[name]) / wall


def cpu_s(pid: int, *, children: bool = False) -> float:
    """User and system CPU seconds of a process so far (0 once it is gone); with ``children``,
    those of its running child processes too (a supervisor's workers)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        total += sum(cpu_s(int(kid), children=True) for kid in kids)
    return total


def runnable_wait_s(pid: int) -> float:
    """Seconds the process's threads were ready to run but waited for a core (schedstat)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    except OSError:
        return 0.0
    return total / 1e9


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def drain(
    store: Path,
    until: int,
    *,
    patience_s: float = 120,
    on_first: Callable[[], None] | None = None,
) -> tuple[float, float, float]:
    """Wait until ``store`` holds ``until`` versions: (first arrival, last arrival, rate)."""
    first: tuple[float, int] | None = None
    last_progress = time.perf_counter()
    seen = committed(store)
    while True:
        count = committed(store)
        now = time.perf_counter()
        if count > seen:
            seen, last_progress = count, now
            if first is None:
                first = (now, count)
                if on_first is not None:
                    on_first()
        if count >= until and first is not None:
            elapsed = now - first[0]
            rate = (count - first[1]) / elapsed if elapsed > 0 else float("inf")
            return first[0], now, rate
        if now - last_progress > patience_s:
            raise RuntimeError(f"{store}: stuck at {count} of {until} versions")
        time.sleep(0.005)


def preload(node: BenchNode, count: int, *, tag: str = "bulk") -> float:
    """Ingest ``count`` observations at the node, 1 000 per transaction, from this process (as
    ``kuroshio import`` does; released to the outbox); the seconds it took."""
    at = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    with open_node(node.directory) as opened:
        for start in range(0, count, 1_000):
            opened.ingest(
                [
                    observation(n, tag, at, node.party)
                    for n in range(start, min(count, start + 1_000))
                ]
            )
    return time.perf_counter() - began


class CommitWatcher(threading.Thread):
    """Records when each id is first seen committed in a store (polled every millisecond)."""

    def __init__(self, store: Path) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.seen: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=30)
        try:
            last = committed(self.store)
            while not self.done.is_set():
                rows = conn.execute(
                    "SELECT seq, id FROM observation_versions WHERE seq > ? ORDER BY seq", (last,)
                ).fetchall()
                now = time.perf_counter()
                for seq, obs_id in rows:
                    self.seen.setdefault(obs_id, now)
                    last = seq
                time.sleep(0.001)
        finally:
            conn.close()


def offer(
    api: str, rate: int, seconds: int, tag: str, token: str
) -> tuple[dict[str, float], float]:
    """POST observations to the node's API at ``rate`` per second (as the node's admin, with
    ``token``); when each was handed over."""
    per_post = max(1, rate // POSTS_PER_S)
    posts = rate * seconds // per_post
    sent: dict[str, float] = {}
    encoder = msgspec.json.Encoder()
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api, timeout=30, headers=headers) as client:
        for post in range(posts):
            pause = began + post / POSTS_PER_S - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            at = dt.datetime.now(dt.UTC)
            batch = [observation(post * per_post + k, tag, at) for k in range(per_post)]
            body = b"\n".join(encoder.encode(o) for o in batch)
            handed = time.perf_counter()
            client.post("/api/observations", content=body).raise_for_status()
            for item in batch:
                sent[item.id] = handed
    return sent, per_post * posts / (time.perf_counter() - began)


def latency(nodes: dict[str, BenchNode], rate: int) -> dict[str, float]:
    watcher = CommitWatcher(nodes["JPN"].store)
    watcher.start()
    try:
        token = (nodes["TWN"].directory / ADMIN_TOKEN).read_text().strip()
        sent, achieved = offer(nodes["TWN"].api, rate, OFFER_SECONDS, f"live{rate}", token)
        deadline = time.monotonic() + 120
        while len(watcher.seen.keys() & sent.keys()) < len(sent):
            if time.monotonic() > deadline:
                raise RuntimeError(f"at {rate}/s only {len(watcher.seen)} of {len(sent)} arrived")
            time.sleep(0.05)
    finally:
        watcher.done.set()
        watcher.join()
    delays = sorted((watcher.seen[i] - t) * 1000 for i, t in sent.items())
    return {
        "p50": statistics.median(delays),
        "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
        "max": delays[-1],
        "achieved": achieved,
    }


def coarsened(store: Path, grid_km: float) -> bool:
    """Whether the positions JPN holds from TWN are on a coarse grid, not the exact ones sent."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT min_lon, min_lat FROM current WHERE id LIKE 'TWN:bulk:%' LIMIT 2000"
        ).fetchall()
    distinct = {(round(lon, 7), round(lat, 7)) for lon, lat in rows}
    # 2 000 exact positions are all distinct; on a 10 km grid they fall into far fewer cells.
    return bool(rows) and len(distinct) < len(rows) * 0.9 and grid_km > 0


def main() -> None:
    metrics: dict[str, float | int | str] = {}
    setup: dict[str, object] = {
        "transport": "WebSocket over mutual TLS 1.3, loopback",
        "store": "SQLite WAL, synchronous=FULL",
        "backlog": BACKLOG,
        "catch_up": CATCH_UP,
        "offer_seconds": OFFER_SECONDS,
        "quick": QUICK,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nodes = make_nodes(root)
        setup["agreement"] = install_agreement(nodes, root)
        preload_s = preload(nodes["TWN"], BACKLOG)
        metrics["preload obs/s (ingest + release at TWN, in process)"] = BACKLOG / preload_s
        processes = {p: serve(nodes[p], root / f"{p}.log") for p in ("JPN", "TWN")}
        try:
            with RssSampler(processes) as rss:
                began, ended, _ = drain(nodes["JPN"].store, BACKLOG, on_first=rss.mark)
            throughput = BACKLOG / (ended - began)
            metrics["throughput obs/s (TWN→JPN, committed at JPN)"] = throughput
            metrics["RSS MB receiver (JPN, peak under load)"] = rss.peak_mb["JPN"]
            metrics["RSS MB sender (TWN, peak under load)"] = rss.peak_mb["TWN"]
            metrics["CPU cores used by receiver (JPN) in throughput"] = rss.cpu_share["JPN"]
            metrics["CPU cores used by sender (TWN) in throughput"] = rss.cpu_share["TWN"]
            # CPU per item is what the code costs, whatever else the machine is doing.
            for party, role in (("JPN", "receiver"), ("TWN", "sender")):
                metrics[f"CPU µs per observation, {role} ({party})"] = (
                    rss.cpu_share[party] / throughput * 1e6
                )
            metrics["waiting for a free core, receiver (JPN)"] = rss.wait_share["JPN"]
            metrics["waiting for a free core, sender (TWN)"] = rss.wait_share["TWN"]
            setup["agreement_enforced"] = coarsened(nodes["JPN"].store, COARSEN_KM)
            for party in ("TWN", "JPN"):
                wait_http(f"{nodes[party].api}/api/health")
            for rate in OFFERED_RATES:
                result = latency(nodes, rate)
                metrics[f"latency p50 ms at {rate}/s (TWN ingest → JPN commit)"] = result["p50"]
                metrics[f"latency p99 ms at {rate}/s"] = result["p99"]
                metrics[f"offered obs/s achieved at {rate}/s"] = result["achieved"]
            stop(processes["JPN"])
            before = committed(nodes["JPN"].store)
            # Taken in the way `kuroshio import` does, beside the running TWN node.
            accumulate_s = preload(nodes["TWN"], CATCH_UP, tag="backlog")
            metrics[f"catch-up accumulate s ({CATCH_UP:,} ingested at TWN, JPN down)"] = (
                accumulate_s
            )
            started = time.perf_counter()
            processes["JPN"] = serve(nodes["JPN"], root / "JPN.log")
            with RssSampler(processes) as rss:
                _, ended, rate = drain(nodes["JPN"].store, before + CATCH_UP)
            metrics[f"catch-up s ({CATCH_UP:,}, JPN start → last commit)"] = ended - started
            metrics["catch-up drain obs/s"] = rate
            metrics["RSS MB receiver (JPN, peak in catch-up)"] = rss.peak_mb["JPN"]
            metrics["RSS MB sender (TWN, peak in catch-up)"] = rss.peak_mb["TWN"]
        except BaseException:
            for party in ("TWN", "JPN"):
                log = root / f"{party}.log"
                if log.exists():
                    sys.stderr.write(f"--- {party} ---\n{log.read_text()[-3000:]}\n")
            raise
        finally:
            for process in processes.values():
                stop(process)
        floor_rate = floor.measure(root / "floor", nodes["TWN"].directory, BACKLOG)
        metrics["floor obs/s (msgspec + TLS socket + SQLite insert)"] = floor_rate
        metrics["floor ÷ kuroshio"] = floor_rate / throughput
    catch_up_key = f"catch-up s ({CATCH_UP:,}, JPN start → last commit)"
    print(
        json.dumps(
            {
                "name": "exchange",
                "metrics": metrics,
                "targets": {
                    "throughput obs/s (TWN→JPN, committed at JPN)": ">= 100000",
                    "latency p99 ms at 1000/s": "<= 50",
                    catch_up_key: "<= 30" if not QUICK else "",
                    "floor ÷ kuroshio": "<= 3",
                    "RSS MB receiver (JPN, peak under load)": "<= 250",
                    "RSS MB sender (TWN, peak under load)": "<= 250",
                    "RSS MB receiver (JPN, peak in catch-up)": "<= 250",
                    "RSS MB sender (TWN, peak in catch-up)": "<= 250",
                },
                "setup": setup,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
