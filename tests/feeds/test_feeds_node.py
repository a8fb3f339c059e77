"""A feed's sink is the node's one door: observations go through Node.ingest into the store,
keep their track, and a capture replayed twice stores nothing new."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import asterix

from feed_support import SAMPLE_RADARS, feed_config, in_loop
from kuroshio.feeds import Feed, replay
from kuroshio.model import Observation
from kuroshio.node import init_node
from kuroshio.store import AppendResult

CAT048 = Path(asterix.get_sample_file("cat_034_048.pcap"))
RADARS = SAMPLE_RADARS


@in_loop
async def test_a_replayed_capture_is_stored_once_with_its_tracks(tmp_path: Path) -> None:
    node = init_node(tmp_path / "twn", "TWN")
    results: list[AppendResult] = []
    handed: list[Observation] = []

    async def ingest(observations: Sequence[Observation]) -> None:
        handed.extend(observations)
        results.append(await asyncio.to_thread(node.ingest, observations, via="feed:radar"))

    config = feed_config(
        kind="asterix", listen="udp://0.0.0.0:21112", radars=RADARS,
        marking={"tlp": "AMBER", "releasable_to": ["JPN"]},
    )  # fmt: skip
    first = await replay(Feed("radar", config, origin="TWN", sink=ingest), CAT048, port=21112)
    assert sum(r.inserted for r in results) == first.observations > 0
    results.clear()
    again = await replay(Feed("radar", config, origin="TWN", sink=ingest), CAT048, port=21112)
    assert again.observations == first.observations
    assert sum(r.inserted for r in results) == 0
    assert sum(r.unchanged for r in results) == first.observations
    with node:
        stored = node.store.get(handed[0].id)
    assert stored == handed[0]
    assert stored.track is not None and stored.track.startswith("cat048:25/12:")
    assert stored.marking.releasable_to == ("JPN",)
