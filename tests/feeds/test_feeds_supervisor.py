"""A failing feed is started again after a back-off with jitter and shown down meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Sequence

import pyais

from feed_support import Collector, eventually, feed_config, in_loop
from kuroshio.feeds import Feed, FeedSupervisor, restart_delay
from kuroshio.feeds.supervisor import RESTART_BASE_S, RESTART_JITTER, RESTART_MAX_S
from kuroshio.model import Observation


def test_the_back_off_doubles_up_to_its_ceiling_and_is_jittered_within_bounds() -> None:
    rng = random.Random(7)
    for failures in range(1, 12):
        base = min(RESTART_MAX_S, RESTART_BASE_S * 2 ** (failures - 1))
        delays = [restart_delay(failures, rng) for _ in range(200)]
        assert all(base * (1 - RESTART_JITTER) <= d <= base * (1 + RESTART_JITTER) for d in delays)
        assert len(set(delays)) > 1  # feeds failing together do not retry together
    assert restart_delay(50, rng) <= RESTART_MAX_S * (1 + RESTART_JITTER)


@in_loop
async def test_a_feed_whose_port_is_taken_is_down_and_comes_up_once_it_is_free() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    feed = Feed("tak", feed_config(kind="cot", listen=f"tcp://127.0.0.1:{port}"),
                origin="TWN", sink=Collector())  # fmt: skip
    waits: list[float] = []
    seen_down: list[str] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)
        status = feed.status()
        seen_down.append(f"{status.state}: {status.last_error}")
        if len(waits) == 3:
            blocker.close()  # the other program lets go of the port
        await asyncio.sleep(0)

    supervisor = FeedSupervisor(feed, sleep=sleep, rng=random.Random(1), monotonic=lambda: 0.0)
    task = asyncio.create_task(supervisor.run())
    await eventually(lambda: feed.stats.state == "up", "the feed to come up")
    assert len(waits) == 3 and feed.stats.restarts == 3
    assert all(s.startswith(f"down: FeedSocketError: tcp://127.0.0.1:{port}") for s in seen_down)
    assert waits[0] < waits[1] < waits[2]  # doubling, whatever the jitter
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert feed.status().state == "stopped"


@in_loop
async def test_a_sink_that_fails_restarts_the_feed_and_its_batch_is_not_lost() -> None:
    stored: list[Observation] = []
    failures = [RuntimeError("store is locked")]

    async def sink(observations: Sequence[Observation]) -> None:
        if failures:
            raise failures.pop()
        stored.extend(observations)

    feed = Feed("coast", feed_config(kind="ais", listen="udp://127.0.0.1:0"),
                origin="TWN", sink=sink)  # fmt: skip

    async def no_wait(delay: float) -> None:
        await asyncio.sleep(0)

    task = asyncio.create_task(FeedSupervisor(feed, sleep=no_wait).run())
    await eventually(lambda: feed.bound is not None, "the feed to bind")
    line = pyais.encode_dict({"type": 1, "mmsi": 412_000_009, "lat": 24.0, "lon": 122.0})[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(line.encode(), feed.bound)  # type: ignore[arg-type]
    await eventually(lambda: len(stored) == 1, "the observation to be stored after the restart")
    status = feed.status()
    assert status.restarts == 1
    assert status.last_error == "RuntimeError: store is locked"
    assert status.delivered == 1
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
