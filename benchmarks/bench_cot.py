"""Cursor-on-Target fan-out: a node's CoT output with 10 TAK clients connected over TCP.

Paced: 1 000 updates/s stored through ``Node.ingest`` (in batches of 50 every 50 ms); each
client reads every event and the delay from the update's time (its ``start``) to its arrival
is measured (p50, p99; target p99 ≤ 100 ms). Burst: 10 000 updates stored as fast as the store
takes them; items/s written to the 10 clients until all have them. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from kuroshio.export.config import CotOutput
from kuroshio.model import Kinematics, Marking, Observation, Platform, Point, Source
from kuroshio.node import init_node
from kuroshio.tak import CotService

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
CLIENTS = 10
RATE = 1_000
SECONDS = 3 if QUICK else 10
BURST = 2_000 if QUICK else 10_000
_start = re.compile(rb'start="([^"]+)"')


def _update(n: int, at: dt.datetime) -> Observation:
    return Observation(
        id=f"TWN:bench:{n}",
        origin="TWN",
        kind="air",
        observed_at=at,
        geometry=Point(coordinates=(120.0 + (n % 500) * 0.01, 22.0 + (n // 500 % 50) * 0.01)),
        platform=Platform(type="J-16", platform_class="fighter", nationality="CHN"),
        kinematics=Kinematics(course_deg=90.0, speed_mps=250.0),
        source=Source(sensor="radar", uncertainty_m=300.0),
        marking=Marking(tlp="AMBER", releasable_to=("JPN",)),
        track=f"cat062:25/1:{n % 5000}",
    )


async def _client(port: int, delays: list[float], counts: list[int], index: int) -> None:
    reader, _ = await asyncio.open_connection("127.0.0.1", port)
    while True:
        data = await reader.readuntil(b"</event>")
        now = time.time()
        found = _start.search(data)
        if found:
            at = dt.datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
            delays.append(now - at.timestamp())
        counts[index] += 1


async def main() -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(prefix="kuroshio-bench-cot-"))
    node = init_node(directory / "twn", "TWN")
    output = msgspec.convert({"listen": "tcp://127.0.0.1:0", "history_s": 0}, CotOutput)
    service = CotService(node, {"bench": output})
    running = asyncio.create_task(service.run())
    where = await service.ready()
    port = int(where["bench"].rsplit(":", 1)[1])
    delays: list[float] = []
    counts = [0] * CLIENTS
    clients = [asyncio.create_task(_client(port, delays, counts, i)) for i in range(CLIENTS)]
    await asyncio.sleep(0.5)
    n = 0
    began = time.perf_counter()
    for tick in range(SECONDS * 20):
        batch = [_update(n + i, dt.datetime.now(dt.UTC)) for i in range(RATE // 20)]
        n += len(batch)
        await asyncio.to_thread(node.ingest, batch)
        await asyncio.sleep(max(0.0, began + (tick + 1) / 20 - time.perf_counter()))
    while sum(counts) < n * CLIENTS and time.perf_counter() - began < SECONDS + 30:
        await asyncio.sleep(0.05)
    paced = sorted(delays)
    delivered_paced = sum(counts)
    counts[:] = [0] * CLIENTS
    burst_began = time.perf_counter()
    at = dt.datetime.now(dt.UTC)
    for start in range(0, BURST, 1_000):
        await asyncio.to_thread(
            node.ingest, [_update(n + i, at) for i in range(start, start + 1_000)]
        )
    while sum(counts) < BURST * CLIENTS and time.perf_counter() - burst_began < 120:
        await asyncio.sleep(0.02)
    burst_s = time.perf_counter() - burst_began
    for task in [*clients, running]:
        task.cancel()
    node.close()
    return {
        "name": "cot",
        "metrics": {
            "paced_updates_per_s": RATE,
            "delivered_fraction": round(delivered_paced / (n * CLIENTS), 4),
            "p50_store_to_client_ms": round(1000 * statistics.median(paced), 1),
            "p99_store_to_client_ms": round(1000 * paced[int(0.99 * (len(paced) - 1))], 1),
            "burst_items_per_s_to_10_clients": round(sum(counts) / burst_s),
        },
        "targets": {"p99_store_to_client_ms": "<= 100", "delivered_fraction": ">= 1"},
        "setup": {"clients": CLIENTS, "seconds": SECONDS, "burst": BURST, "protocol": "xml"},
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(asyncio.run(main())) + "\n")
