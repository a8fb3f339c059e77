"""Gates and novelty: what makes two reports one sortie, and what does not."""

from __future__ import annotations

import datetime as dt
import random

import msgspec

from kuroshio.fusion import FusionEngine, SortieGate, already_known, fuse, same_sortie
from kuroshio.fusion.gating import gate, gate_km, platform_compatible, report_unit, sigma_km
from kuroshio.fusion.synthetic import as_released
from kuroshio.geo.shapes import GEOD
from kuroshio.model import (
    Geometry,
    LineString,
    MultiLineString,
    Observation,
    Platform,
    Point,
    Polygon,
    Source,
)
from kuroshio.policy.ledger import is_novel
from observations import T0, observation

KM = 1 / 111.2


def day_track(number: int, origin: str, day: dt.datetime, **fields: object) -> Observation:
    return observation(
        number,
        origin=origin,
        at=day,
        until=day + dt.timedelta(hours=23, minutes=59),
        geometry=LineString(coordinates=((122.0, 24.0), (123.0, 24.5))),
        **fields,  # type: ignore[arg-type]
    )


def test_a_coarsened_release_counts_its_grid_as_uncertainty() -> None:
    theirs = observation(1, origin="JPN", lat=22.0 + 12 * KM)
    coarse = as_released(theirs, 20.0, "JPN")
    assert sigma_km(coarse) >= 10.0
    mine = observation(2)
    # 12 km apart: beyond 3 sigma of two 1.5 km radars, within a 20 km grid's reach.
    assert gate(report_unit(mine), report_unit(theirs)) is None
    assert gate(report_unit(mine), report_unit(coarse)) is not None


def test_platform_type_class_and_count_must_agree() -> None:
    mine = report_unit(observation(1))
    fighter = Platform(type="J-16", platform_class="fighter", count=2)
    assert gate(mine, report_unit(observation(2, origin="JPN", platform=fighter))) is None
    variant = Platform(type="H-6", platform_class="bomber", count=2)
    assert gate(mine, report_unit(observation(3, origin="JPN", platform=variant))) is not None
    class_only = Platform(type=None, platform_class="bomber", count=1)
    assert gate(mine, report_unit(observation(4, origin="JPN", platform=class_only))) is not None
    many = Platform(type="H-6K", platform_class="bomber", count=12)
    assert gate(mine, report_unit(observation(5, origin="JPN", platform=many))) is None
    hulls_a = report_unit(
        observation(6, kind="sea", platform=Platform(type="Type 052D", hull_numbers=("120",)))
    )
    hulls_b = report_unit(
        observation(7, kind="sea", platform=Platform(type="Type 052D", hull_numbers=("124",)))
    )
    assert not platform_compatible(hulls_a, hulls_b)


def test_time_gates_follow_each_reports_resolution() -> None:
    mine = report_unit(observation(1))
    late = report_unit(observation(2, origin="JPN", at=T0 + dt.timedelta(hours=3)))
    assert gate(mine, late) is None
    # Daily reports: parties close their days at different hours, so the next day still meets.
    day = dt.datetime(2023, 8, 24, 15, tzinfo=dt.UTC)
    twn = report_unit(day_track(1, "TWN", day + dt.timedelta(hours=1)))
    jpn = report_unit(day_track(2, "JPN", day - dt.timedelta(hours=1)))
    assert gate(twn, jpn) is not None
    far = report_unit(day_track(3, "JPN", day + dt.timedelta(days=3)))
    assert gate(twn, far) is None


def test_one_channel_at_one_time_reports_distinct_sorties() -> None:
    day = dt.datetime(2023, 8, 24, 16, tzinfo=dt.UTC)
    first = day_track(1, "TWN", day)
    second = day_track(2, "TWN", day)
    third = day_track(3, "JPN", day)
    items = fuse([first, second, third])
    assert len(items) == 2
    joint = [item for item in items if item.jointly_seen]
    assert len(joint) == 1 and {s.origin for s in joint[0].sources} == {"TWN", "JPN"}
    # One party's daily maps of two days are two sets of sorties, even through a partner's
    # report that meets both.
    next_day = day_track(4, "TWN", day + dt.timedelta(days=1))
    items = fuse([first, next_day, third])
    assert all(len({s.id for s in i.sources if s.origin == "TWN"}) == 1 for i in items)


def test_a_correction_moves_and_a_retraction_removes_a_report() -> None:
    engine = FusionEngine()
    engine.extend([observation(1), observation(2, origin="JPN", lon=121.01)])
    assert engine.picture()[0].jointly_seen
    moved = observation(2, origin="JPN", version=2, lon=124.0)
    engine.add(moved)
    assert [item.jointly_seen for item in engine.picture()] == [False, False]
    assert engine.add(moved) is False  # the same version again changes nothing
    engine.add(msgspec.structs.replace(moved, version=3, retracted=True))
    picture = engine.picture()
    assert [s.id for item in picture for s in item.sources] == ["TWN:test:1"]


def test_novelty_sees_a_coarsened_partner_report_as_already_known() -> None:
    mine = [observation(1), observation(2, lon=125.0)]
    theirs = as_released(observation(3, origin="JPN", lat=22.0 + 8 * KM), 20.0, "JPN")
    assert already_known(theirs, mine)
    assert not already_known(as_released(observation(4, origin="JPN", lat=25.0), 20.0, "JPN"), mine)
    # The ledger takes the fusion gate as its matcher, with is_novel's signature unchanged.
    assert not is_novel(theirs, mine, same_sortie)
    assert is_novel(theirs, mine[1:], same_sortie)
    # A party's own reports never confirm each other.
    assert not already_known(observation(5, lon=121.0001), mine)


def test_ruling_own_reports_out_at_once_keeps_every_pair_the_gate_takes() -> None:
    """A node's gate rules out, all at once, the own reports it would refuse on kind, time or
    distance, before gating the rest one by one: its verdict is the gate's, pair by pair. Random
    pairs of points, tracks, tracks in legs and areas, instants, intervals and day reports, air
    and sea, near Taiwan, at high latitude and across the antimeridian; and pairs of points
    placed just inside and just outside the gate's reach along the ellipsoid."""
    chooser = random.Random(7)
    fighter = Platform(type="J-16", platform_class="fighter", count=2, nationality="CHN")
    centres = ((121.0, 23.0), (179.8, 10.0), (-179.9, 62.0), (15.0, 78.0))

    def place(lon: float, lat: float) -> tuple[float, float]:
        return (((lon + 180.0) % 360.0) - 180.0, max(-89.9, min(89.9, lat)))

    def geometry(lon: float, lat: float) -> Geometry:
        shape = chooser.choice(("point", "point", "line", "legs", "area"))
        if shape == "point":
            return Point(coordinates=place(lon, lat))
        if shape == "area":
            west, south = place(lon - chooser.uniform(0, 1), lat - chooser.uniform(0, 1))
            east, north = west + chooser.uniform(0.01, 1), south + chooser.uniform(0.01, 1)
            ring = ((west, south), (east, south), (east, north), (west, north), (west, south))
            return Polygon(coordinates=(ring,))
        line = tuple(
            place(lon + chooser.uniform(-1, 1), lat + chooser.uniform(-1, 1)) for _ in range(3)
        )
        return (
            LineString(coordinates=line)
            if shape == "line"
            else MultiLineString(coordinates=(line[:2], line[1:]))
        )

    def report(origin: str, number: int, lon: float, lat: float, **fields: object) -> Observation:
        at = T0 + dt.timedelta(minutes=chooser.uniform(-50, 50))
        values: dict[str, object] = {
            "at": at,
            "kind": chooser.choice(("air", "air", "sea")),
            "geometry": geometry(lon + chooser.uniform(-6, 6), lat + chooser.uniform(-4, 4)),
            "platform": fighter,
            "source": Source(sensor="radar", confidence=0.9, uncertainty_m=chooser.uniform(0, 5e4)),
            "until": chooser.choice(
                (None, None, at + dt.timedelta(minutes=20), at + dt.timedelta(hours=23))
            ),
        }
        values.update(fields)
        return observation(number, origin=origin, **values)  # type: ignore[arg-type]

    pairs: list[tuple[Observation, Observation]] = []
    for number in range(1_500):
        lon, lat = chooser.choice(centres)
        pairs.append((report("TWN", number, lon, lat), report("JPN", number, lon, lat)))
    edge: list[tuple[Observation, Observation]] = []
    for number in range(400):
        lon, lat = chooser.choice(centres)
        at = T0 + dt.timedelta(minutes=chooser.uniform(-50, 50))
        here = Point(coordinates=place(lon, lat))
        theirs = report(
            "TWN", 10_000 + number, lon, lat, at=at, until=None, kind="air", geometry=here
        )
        gap = dt.timedelta(minutes=chooser.choice((0, 0, 7, 40)))
        mine = report(
            "JPN", 10_000 + number, lon, lat, at=at + gap, until=None, kind="air", geometry=here
        )
        reach = gate_km(report_unit(theirs), report_unit(mine), min(gap, dt.timedelta(minutes=30)))
        there_lon, there_lat, _ = GEOD.fwd(
            *here.coordinates,
            chooser.uniform(0, 360),
            reach * 1000 * chooser.choice((0.999, 0.9999, 1.0001, 1.001)),
        )
        edge.append(
            (
                theirs,
                msgspec.structs.replace(
                    mine, geometry=Point(coordinates=place(there_lon, there_lat))
                ),
            )
        )
    gate_ = SortieGate()
    verdicts = []
    for theirs, mine in pairs + edge:
        own = gate_.gather([gate_.prepare(mine, keep=True)])
        [ruled] = gate_.any_matches([gate_.prepare(theirs, keep=False)], own, [(0, 1)])
        assert ruled == same_sortie(theirs, mine), (theirs, mine)
        verdicts.append(ruled)
    assert verdicts.count(True) > 100 and verdicts.count(False) > 100
    assert True in verdicts[len(pairs) :] and False in verdicts[len(pairs) :]
    # All at once, as a batch meets the own picture: each received report against every own
    # report of the others in its window (a sample of them first, then all); through a gate
    # that keeps them all and one that keeps only the last 50 it prepared.
    mine_all = [mine for _, mine in pairs + edge]
    batch = [theirs for theirs, _ in pairs[:300]]
    starts = [chooser.randrange(0, len(mine_all) - 600) for _ in batch]
    windows = [(low, low + chooser.randrange(100, 600)) for low in starts]
    expected = [
        any(same_sortie(theirs, mine) for mine in mine_all[low:high])
        for theirs, (low, high) in zip(batch, windows, strict=True)
    ]
    for gate_ in (SortieGate(), SortieGate(keep=50)):
        own = gate_.gather([gate_.prepare(mine, keep=True) for mine in mine_all])
        ruled_all = gate_.any_matches(
            [gate_.prepare(theirs, keep=False) for theirs in batch], own, windows
        )
        assert ruled_all == expected
    assert True in expected and False in expected
