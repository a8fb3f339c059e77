"""The reciprocity ledger: days, windows, novelty, and the clause's verdict that decide applies."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from policy_cases import NOW, agreement, enforce

from kuroshio.fusion import same_sortie
from kuroshio.model import Observation, Platform, Provenance
from kuroshio.policy import reciprocity
from kuroshio.policy.agreement import Reciprocity, Rule, Transforms
from kuroshio.policy.decide import Released, coarsen, decide
from kuroshio.policy.ledger import (
    LedgerEntry,
    given_entry,
    is_novel,
    ledger_days,
    received_entry,
    reciprocity_status,
)
from kuroshio.store.sql import index_row, micros
from observations import observation

DAY = dt.timedelta(days=1)


def entry(flow: str, item: str, at: dt.datetime, **fields: object) -> LedgerEntry:
    values: dict[str, object] = {
        "flow": flow,
        "partner": "JPN",
        "item": item,
        "version": 1,
        "kind": "air",
        "observed_at": at - dt.timedelta(minutes=30),
        "at": at,
        "sorties": 2,
    }
    values.update(fields)
    return msgspec.convert(values, LedgerEntry)


def test_the_updates_of_a_track_are_one_sortie_counted_on_the_update_that_began_it() -> None:
    start = dt.datetime(2024, 6, 1, 23, 50, tzinfo=dt.UTC)
    track = "cat062:25/100:4980"
    updates = [
        entry("given", f"TWN:radar:{track}@{n}", start + n * dt.timedelta(minutes=5), track=track)
        for n in range(4)  # two before midnight, two after
    ]
    other_origin = entry("given", f"USA:radar:{track}@0", start, track=track, sorties=1)
    plain = entry("given", "TWN:report:1", start + DAY, sorties=3)
    first, second = ledger_days(
        [*updates, other_origin, plain], "JPN", start.date(), (start + DAY).date()
    )
    # Every update is an item given; the track's two aircraft count once, on its first day.
    assert (first.given.items, first.given.sorties) == (3, 2 + 1)
    assert (second.given.items, second.given.sorties) == (3, 3)
    # As the entries are made from observations, and kept by the store with their track.
    made = given_entry(observation(1, track=track), "JPN", start)
    assert made.track == track
    assert given_entry(observation(2), "JPN", start).track is None


def test_days_count_items_sorties_timeliness_and_precision() -> None:
    start = dt.datetime(2024, 6, 1, 1, 0, tzinfo=dt.UTC)
    entries = [
        entry("given", "TWN:a", start, grid_km=10.0),
        entry(
            "given", "TWN:a", start + dt.timedelta(hours=2), version=2, grid_km=10.0
        ),  # correction
        entry("given", "TWN:b", start + dt.timedelta(hours=3), sorties=5),
        entry("received", "JPN:x", start, observed_at=start - dt.timedelta(hours=2), novel=True),
        entry("received", "JPN:y", start + DAY, novel=False),
        entry("received", "USA:z", start, partner="USA"),
    ]
    first, second = ledger_days(entries, "JPN", start.date(), (start + DAY).date())
    assert (first.given.items, first.given.sorties) == (2, 7)
    assert first.given.timeliness_s == 1800.0
    assert first.given.precision_km == 5.0  # median of 10 km and exact (0)
    assert (first.received.items, first.received.novel_items) == (1, 1)
    assert first.received.timeliness_s == 7200.0
    assert (second.given.items, second.received.items, second.received.novel_items) == (0, 1, 0)


def test_a_retracted_item_does_not_count() -> None:
    entries = [
        entry("given", "TWN:a", NOW - DAY),
        entry("given", "TWN:a", NOW - DAY + dt.timedelta(hours=1), version=2, retracted=True),
    ]
    (day,) = ledger_days(entries, "JPN", (NOW - DAY).date(), (NOW - DAY).date())
    assert day.given.items == 0


def clause(**fields: object) -> Reciprocity:
    values: dict[str, object] = {"window_days": 7, "min_ratio": 0.5, "on_shortfall": "warn"}
    values.update(fields)
    return msgspec.convert(values, Reciprocity)


def test_a_partner_giving_too_little_is_in_shortfall_inside_the_window_only() -> None:
    given = [entry("given", f"TWN:{n}", NOW - DAY * (1 + n % 5)) for n in range(10)]
    received = [entry("received", f"JPN:{n}", NOW - DAY) for n in range(3)]
    old = [entry("received", f"JPN:old{n}", NOW - DAY * 20) for n in range(10)]
    status = reciprocity_status([*given, *received, *old], "JPN", clause(), NOW)
    assert (status.given.items, status.received.items) == (10, 3)
    assert status.ratio == pytest.approx(0.3)
    assert status.shortfall and status.action == "warn"
    assert "shortfall" in status.message
    balanced = reciprocity_status([*given, *received, *old], "JPN", clause(window_days=30), NOW)
    assert not balanced.shortfall and balanced.action is None


def test_no_shortfall_is_judged_before_enough_was_given() -> None:
    entries = [entry("given", "TWN:a", NOW - DAY)]
    status = reciprocity_status(entries, "JPN", clause(min_given=20), NOW)
    assert not status.judged and not status.shortfall
    assert "not judged" in status.message


def test_sorties_and_novel_items_are_other_measures() -> None:
    given = [entry("given", "TWN:a", NOW - DAY, sorties=10)]
    received = [
        entry("received", "JPN:x", NOW - DAY, sorties=6, novel=False),
        entry("received", "JPN:y", NOW - DAY, sorties=1, novel=True),
    ]
    entries = [*given, *received]
    assert reciprocity_status(entries, "JPN", clause(measure="sorties"), NOW).ratio == 0.7
    assert reciprocity_status(entries, "JPN", clause(measure="novel_items"), NOW).ratio == 1.0
    assert reciprocity_status(entries, "JPN", clause(measure="items"), NOW).ratio == 2.0


# --- entries from decisions and receipts ------------------------------------------------------


def test_both_sides_count_the_same_items_from_their_own_records() -> None:
    enforced = enforce(
        agreement(
            {
                ("TWN", ("JPN",)): [
                    Rule(id="all", action="release", transform=Transforms(coarsen_km=10))
                ]
            }
        )
    )
    sent_at = NOW + dt.timedelta(seconds=5)
    twn_side: list[LedgerEntry] = []
    jpn_side: list[LedgerEntry] = []
    for number in range(4):
        item = observation(number, at=NOW - dt.timedelta(hours=1))
        decision = decide(item, enforced, "JPN", None, NOW, own_party="TWN")
        assert isinstance(decision, Released)
        twn_side.append(given_entry(decision.observation, "JPN", sent_at))
        jpn_side.append(received_entry(decision.observation, "TWN", sent_at))
    twn_view = reciprocity_status(twn_side, "JPN", clause(), NOW + DAY)
    jpn_view = ledger_days(jpn_side, "TWN", NOW.date(), NOW.date())[0]
    assert twn_view.given.items == jpn_view.received.items == 4
    assert twn_view.given.sorties == jpn_view.received.sorties == 8
    assert twn_view.given.precision_km == jpn_view.received.precision_km == 10.0
    assert twn_view.given.timeliness_s == jpn_view.received.timeliness_s == 3605.0


def test_the_released_grid_is_the_coarsest_any_hop_applied() -> None:
    item = observation()
    assert item.provenance.released_grid_km is None
    by_twn = coarsen(item, 10.0)
    by_jpn = coarsen(by_twn, 27.5)
    assert (by_twn.provenance.grid_km, by_jpn.provenance.grid_km) == (10.0, 27.5)
    assert coarsen(by_jpn, 5.0).provenance.released_grid_km == 27.5
    # The grid travels as a number, never as words read back.
    worded = observation(provenance=Provenance(transforms=("TWN: coarsened to 10 km grid",)))
    assert worded.provenance.released_grid_km is None
    assert received_entry(by_jpn, "JPN", NOW).grid_km == 27.5


# --- novelty ----------------------------------------------------------------------------------


def test_a_sortie_already_held_is_not_novel() -> None:
    theirs = observation(1, origin="JPN", at=NOW, lon=122.9, lat=24.4)
    mine_close = observation(
        2, origin="TWN", at=NOW + dt.timedelta(minutes=20), lon=123.0, lat=24.5
    )
    mine_far = observation(3, origin="TWN", at=NOW, lon=125.0, lat=27.0)
    mine_other_class = observation(
        4,
        origin="TWN",
        at=NOW,
        lon=122.9,
        lat=24.4,
        platform=Platform(type="J-16", platform_class="fighter"),
    )
    mine_later = observation(5, origin="TWN", at=NOW + dt.timedelta(hours=2), lon=122.9, lat=24.4)
    assert same_sortie(theirs, mine_close)
    assert not is_novel(theirs, [mine_far, mine_close], same_sortie)
    assert is_novel(theirs, [mine_far, mine_other_class, mine_later], same_sortie)
    entry_ = received_entry(theirs, "JPN", NOW, own=[mine_close], matcher=same_sortie)
    assert entry_.novel is False
    assert received_entry(theirs, "JPN", NOW).novel is None


def test_a_custom_matcher_can_replace_the_built_in_one() -> None:
    theirs: Observation = observation(1, origin="JPN")
    assert is_novel(theirs, [observation(2)], matcher=lambda received, own: False)


def test_the_rows_of_a_batch_taken_in_are_its_received_entries() -> None:
    items = [
        observation(0, provenance=Provenance(partner="TWN", hops=1)),
        observation(1, until=NOW, platform=Platform(platform_class="fighter", count=4)),
        observation(2, kind="area", retracted=True, version=3),
        observation(3, track="icao:8991A1", platform=None),
        coarsen(observation(4, provenance=Provenance(partner="TWN", hops=1)), 10.0),
    ]
    novel = [True, False, True, True, False]
    entries = [
        received_entry(item, "TWN", NOW, novel=is_new)
        for item, is_new in zip(items, novel, strict=True)
    ]
    expected = [
        (
            e.flow,
            e.partner,
            e.item,
            e.version,
            e.kind,
            micros(e.observed_at),
            micros(e.at),
            e.sorties,
            e.grid_km,
            int(e.retracted),
            None if e.novel is None else int(e.novel),
            e.track,
        )
        for e in entries
    ]

    assert reciprocity.received_ledger_rows(items, "TWN", NOW, novel) == expected
    latest = [index_row(item, None)[6] for item in items]  # the t1 of each current row
    assert reciprocity.received_ledger_rows(items, "TWN", NOW, novel, latest) == expected
