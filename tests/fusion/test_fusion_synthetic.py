"""Association against known truth: synthetic sorties seen by Taiwan's radar and by Japan's,
released coarsened, late, out of order, some corrected and some sent twice."""

from __future__ import annotations

import random

import msgspec
import pytest

from kuroshio.fusion import FusionEngine, daily_totals, fuse
from kuroshio.fusion.synthetic import Scores, scenario, score

SEEDS = (1, 3, 5)


def test_association_precision_and_recall_are_at_least_95_percent() -> None:
    pooled: Scores | None = None
    for seed in SEEDS:
        world = scenario(seed, sorties=16, hours=6.0)
        items = fuse(arrival.observation for arrival in world.arrivals)
        scores = score([[source.id for source in item.sources] for item in items], world.truth)
        pooled = scores if pooled is None else pooled + scores
    assert pooled is not None
    print(f"pooled over seeds {SEEDS}: {pooled.summary()}")
    # Every pair of reports, and the pairs across origins (the fusion proper), both ways.
    assert pooled.precision >= 0.95
    assert pooled.recall >= 0.95
    assert pooled.cross_precision >= 0.95
    assert pooled.cross_recall >= 0.95


def test_adding_reports_one_by_one_in_any_order_gives_the_batch_picture() -> None:
    world = scenario(11, sorties=5, hours=1.5)
    observations = [arrival.observation for arrival in world.arrivals]
    batch = msgspec.json.encode(fuse(observations))
    # As they arrive (late and out of order), looking at the picture along the way.
    engine = FusionEngine()
    for number, observation in enumerate(observations):
        engine.add(observation)
        if number % 30 == 0:
            engine.picture()
    assert msgspec.json.encode(engine.picture()) == batch
    # In a shuffled order, corrections before the versions they supersede included.
    shuffled = observations[:]
    random.Random(3).shuffle(shuffled)
    engine = FusionEngine()
    for number, observation in enumerate(shuffled):
        engine.add(observation)
        if number % 40 == 0:
            engine.picture()
    assert msgspec.json.encode(engine.picture()) == batch


def test_every_fused_item_lists_all_its_sources_once() -> None:
    world = scenario(5, sorties=10, hours=3.0)
    items = fuse(arrival.observation for arrival in world.arrivals)
    listed = [source.id for item in items for source in item.sources]
    assert sorted(listed) == sorted(world.truth)
    current = {}
    for arrival in world.arrivals:
        known = current.get(arrival.observation.id, 0)
        current[arrival.observation.id] = max(known, arrival.observation.version)
    versions = {source.id: source.version for item in items for source in item.sources}
    assert versions == current
    for item in items:
        assert item.origins == tuple(sorted({s.origin for s in item.sources}))
        assert item.jointly_seen == (len(item.origins) > 1)


def test_a_daily_total_counts_a_jointly_seen_sortie_once() -> None:
    world = scenario(5, sorties=10, hours=3.0)
    items = fuse(arrival.observation for arrival in world.arrivals)
    (total,) = daily_totals(items)
    joint = [item for item in items if item.jointly_seen]
    assert joint, "the scenario has sorties both parties saw"
    assert total.fused == sum(item.platform.count for item in items)
    assert total.fused < sum(total.by_origin.values())
    assert total.double_counted == sum(
        sum(item.counts.values()) - item.platform.count for item in joint
    )
    truth_aircraft = sum(
        s.count for s in world.sorties if any(v == s.number for v in world.truth.values())
    )
    assert total.fused == pytest.approx(truth_aircraft, rel=0.15)
