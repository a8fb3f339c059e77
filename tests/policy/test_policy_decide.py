"""The release decision, case by case: what leaves, how it is changed, and why things stay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from policy_cases import NOW, PARTIES, VALID_FROM, agreement, enforce

from kuroshio.geo.grid import on_grid
from kuroshio.model import (
    ClosestApproach,
    Kinematics,
    LineString,
    Marking,
    Observation,
    OriginatorControl,
    Platform,
    Polygon,
    Provenance,
)
from kuroshio.policy.agreement import EnforcedAgreement, Match, Reciprocity, Rule, Transforms
from kuroshio.policy.decide import Released, Withheld, decide, preview, withholds_every_item
from kuroshio.policy.ledger import FlowSummary, ReciprocityStatus
from observations import observation

AN_HOUR_AGO = NOW - dt.timedelta(hours=1)


def release(rule_id: str = "all", **transform: object) -> Rule:
    return Rule(id=rule_id, action="release", transform=msgspec.convert(transform, Transforms))


def twn_to(
    partners: tuple[str, ...],
    *rules: Rule,
    reciprocity: Reciprocity | None = None,
    valid_from: dt.datetime = VALID_FROM,
) -> EnforcedAgreement:
    return enforce(
        agreement({("TWN", partners): list(rules)}, reciprocity=reciprocity, valid_from=valid_from)
    )


def own(**fields: object) -> Observation:
    fields.setdefault("at", AN_HOUR_AGO)
    fields.setdefault("marking", Marking(tlp="AMBER"))
    return observation(**fields)


def received_from_twn(**control: object) -> Observation:
    """A TWN item as JPN holds it after TWN released it (one hop)."""
    return own(
        marking=Marking(tlp="AMBER", control=msgspec.convert(control, OriginatorControl)),
        provenance=Provenance(partner="TWN", hops=1),
    )


def released(decision: Released | Withheld) -> Released:
    assert isinstance(decision, Released), decision
    return decision


def withheld(decision: Released | Withheld) -> Withheld:
    assert isinstance(decision, Withheld), decision
    return decision


# --- the gate ---------------------------------------------------------------------------------


def test_without_an_agreement_nothing_leaves() -> None:
    decision = withheld(decide(own(), None, "JPN", None, NOW, own_party="TWN"))
    assert decision.code == "no_agreement"


def test_outside_its_validity_window_an_agreement_releases_nothing() -> None:
    enforced = twn_to(("JPN",), release())
    late = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert withheld(decide(own(), enforced, "JPN", None, late, own_party="TWN")).code == (
        "not_in_force"
    )


def test_a_party_outside_the_agreement_gets_nothing() -> None:
    enforced = twn_to(("JPN",), release())
    assert withheld(decide(own(), enforced, "AUS", None, NOW, own_party="TWN")).code == (
        "not_a_party"
    )


def test_a_party_without_rules_gets_nothing() -> None:
    enforced = twn_to(("JPN",), release())
    decision = withheld(decide(own(), enforced, "USA", None, NOW, own_party="TWN"))
    assert decision.code == "no_rules"
    assert "from TWN to USA" in decision.reason


def test_when_nothing_can_leave_every_item_is_refused_as_decide_refuses_it() -> None:
    enforced = twn_to(("JPN",), release())
    civil = enforce(
        msgspec.structs.replace(agreement({("TWN", ("JPN",)): [release()]}), scope="civil")
    )
    late = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    items = [
        own(),
        own(marking=Marking(tlp="RED")),
        received_from_twn(rerelease=True, max_hops=2),
        own(origin="USA", provenance=Provenance(partner="USA", hops=1)),
        own(origin="JPN", provenance=Provenance(partner="JPN", hops=1)),
    ]
    cases = [
        (None, "JPN", NOW),
        (enforced, "JPN", late),
        (enforced, "AUS", NOW),
        (enforced, "TWN", NOW),
        (civil, "JPN", NOW),
        (enforced, "USA", NOW),  # no rules from TWN to USA
    ]
    for enforced_now, partner, at in cases:
        refusal = withholds_every_item(enforced_now, partner, at, own_party="TWN")
        assert refusal is not None, (partner, at)
        for item in items:
            decision = withheld(decide(item, enforced_now, partner, None, at, own_party="TWN"))
            assert refusal(item) == (decision.code, decision.reason)
            assert decision.rule is None
    # A rule for the partner: each item must be decided.
    assert withholds_every_item(enforced, "JPN", NOW, own_party="TWN") is None


def test_when_no_rule_matches_the_default_is_to_withhold() -> None:
    enforced = twn_to(("JPN",), Rule(id="sea", action="release", match=Match(kind=("sea",))))
    decision = withheld(decide(own(), enforced, "JPN", None, NOW, own_party="TWN"))
    assert decision.code == "default_deny"
    assert decision.agreement == "test" and decision.agreement_version == 1


def test_the_first_matching_rule_decides() -> None:
    enforced = twn_to(
        ("JPN",),
        Rule(
            id="no-bombers",
            action="withhold",
            reason="bombers stay",
            match=Match(platform_class=("bomber",)),
        ),
        release("rest"),
    )
    bomber = withheld(decide(own(), enforced, "JPN", None, NOW, own_party="TWN"))
    assert (bomber.code, bomber.rule, bomber.reason) == ("rule", "no-bombers", "bombers stay")
    fighter = own(platform=Platform(type="J-16", platform_class="fighter"))
    assert released(decide(fighter, enforced, "JPN", None, NOW, own_party="TWN")).rule == "rest"


def test_tlp_red_never_leaves() -> None:
    enforced = twn_to(("JPN",), release())
    red = own(marking=Marking(tlp="RED"))
    assert withheld(decide(red, enforced, "JPN", None, NOW, own_party="TWN")).code == "tlp_red"


def test_tlp_at_most_and_age_limit_what_a_rule_matches() -> None:
    enforced = twn_to(
        ("JPN",),
        Rule(id="fresh-green", action="release", match=Match(tlp_at_most="GREEN", max_age_s=7200)),
    )
    assert (
        withheld(decide(own(), enforced, "JPN", None, NOW, own_party="TWN")).code == "default_deny"
    )
    green = own(marking=Marking(tlp="GREEN"))
    assert released(decide(green, enforced, "JPN", None, NOW, own_party="TWN"))
    stale = own(marking=Marking(tlp="GREEN"), at=NOW - dt.timedelta(hours=3))
    assert (
        withheld(decide(stale, enforced, "JPN", None, NOW, own_party="TWN")).code == "default_deny"
    )


def test_releasable_to_limits_who_receives() -> None:
    enforced = twn_to(("JPN", "USA"), release())
    only_usa = own(marking=Marking(tlp="AMBER", releasable_to=("USA",)))
    assert withheld(decide(only_usa, enforced, "JPN", None, NOW, own_party="TWN")).code == (
        "releasable_to"
    )
    assert released(decide(only_usa, enforced, "USA", None, NOW, own_party="TWN"))


# --- originator control -------------------------------------------------------------------------


def jpn_to(partners: tuple[str, ...], *rules: Rule) -> EnforcedAgreement:
    return enforce(agreement({("JPN", partners): list(rules)}))


def test_a_received_item_never_goes_back_to_its_origin() -> None:
    enforced = jpn_to(("TWN", "USA"), release())
    item = received_from_twn(rerelease=True, max_hops=3)
    assert withheld(decide(item, enforced, "TWN", None, NOW, own_party="JPN")).code == "to_origin"


def test_an_item_never_goes_back_to_the_partner_it_came_from() -> None:
    enforced = enforce(agreement({("USA", ("JPN", "TWN")): [release()]}))
    item = own(
        origin="TWN",
        marking=Marking(control=OriginatorControl(rerelease=True, max_hops=3)),
        provenance=Provenance(partner="JPN", hops=2),
    )
    assert withheld(decide(item, enforced, "JPN", None, NOW, own_party="USA")).code == "echo"


def test_a_received_item_is_re_released_only_as_its_originator_allows() -> None:
    enforced = enforce(
        agreement({("JPN", ("USA", "AUS")): [release()]}, parties=("JPN", "TWN", "USA", "AUS"))
    )
    not_allowed = received_from_twn(rerelease=False)
    assert withheld(decide(not_allowed, enforced, "USA", None, NOW, own_party="JPN")).code == (
        "originator_control"
    )
    to_usa = received_from_twn(rerelease=True, to=("USA",), max_hops=1)
    assert released(decide(to_usa, enforced, "USA", None, NOW, own_party="JPN"))
    refusal = withheld(decide(to_usa, enforced, "AUS", None, NOW, own_party="JPN"))
    assert refusal.code == "originator_control" and "USA only" in refusal.reason
    no_hops = received_from_twn(rerelease=True, max_hops=0)
    assert withheld(decide(no_hops, enforced, "USA", None, NOW, own_party="JPN")).code == (
        "hop_limit"
    )


def test_amber_strict_items_stay_with_their_recipient() -> None:
    enforced = jpn_to(("USA",), release())
    item = msgspec.structs.replace(
        received_from_twn(rerelease=True, max_hops=3),
        marking=Marking(tlp="AMBER+STRICT", control=OriginatorControl(rerelease=True, max_hops=3)),
    )
    assert withheld(decide(item, enforced, "USA", None, NOW, own_party="JPN")).code == (
        "originator_control"
    )


def test_a_received_item_keeps_its_originators_marking() -> None:
    enforced = jpn_to(
        ("USA",), release(marking={"tlp": "CLEAR", "rerelease_to": ["AUS"], "max_hops": 5})
    )
    item = received_from_twn(rerelease=True, to=("USA",), max_hops=1)
    decision = released(decide(item, enforced, "USA", None, NOW, own_party="JPN"))
    assert decision.observation.marking == item.marking
    assert decision.observation.provenance.hops == 2
    assert decision.observation.provenance.partner == "JPN"
    assert any("keeps its originator's" in w for w in decision.warnings)


# --- transforms -------------------------------------------------------------------------------


TRACK = LineString(
    coordinates=((121.1234567, 22.7654321), (121.1334567, 22.7754321), (121.9, 23.5))
)
AREA = Polygon(
    coordinates=(
        ((120.01, 21.01), (120.5, 21.02), (120.49, 21.6), (120.02, 21.55), (120.01, 21.01)),
    )
)


@pytest.mark.parametrize("geometry", [TRACK, AREA])
def test_coarsening_puts_every_vertex_on_the_grid(geometry: LineString | Polygon) -> None:
    enforced = twn_to(("JPN",), release(coarsen_km=10))
    item = own(geometry=geometry, source=msgspec.structs.replace(own().source, uncertainty_m=100.0))
    decision = released(decide(item, enforced, "JPN", None, NOW, own_party="TWN"))
    positions = decision.observation.geometry.positions()
    assert all(on_grid(lon, lat, 10.0) for lon, lat in positions)
    assert decision.grid_km == 10.0
    assert decision.observation.source.uncertainty_m == 5000.0
    assert decision.transforms == ("TWN: coarsened to 10 km grid",)
    assert decision.observation.provenance.transforms == decision.transforms


def test_coarsening_puts_closest_approach_lines_on_the_grid_too() -> None:
    enforced = twn_to(("JPN",), release(coarsen_km=10))
    line = LineString(coordinates=((121.7273, 25.1083), (121.8238, 26.3282)))
    item = msgspec.structs.replace(
        own(geometry=AREA), approaches=(ClosestApproach(place="基隆", distance_nmi=43, line=line),)
    )
    decision = released(decide(item, enforced, "JPN", None, NOW, own_party="TWN"))
    approaches = decision.observation.approaches
    assert isinstance(approaches, tuple) and approaches[0].line is not None
    assert all(on_grid(lon, lat, 10.0) for lon, lat in approaches[0].line.coordinates)
    assert (approaches[0].place, approaches[0].distance_nmi) == ("基隆", 43.0)


def test_two_vertices_in_one_cell_become_one() -> None:
    enforced = twn_to(("JPN",), release(coarsen_km=10))
    decision = released(decide(own(geometry=TRACK), enforced, "JPN", None, NOW, own_party="TWN"))
    assert isinstance(decision.observation.geometry, LineString)
    assert len(decision.observation.geometry.coordinates) == 2


def test_dropped_fields_are_absent() -> None:
    enforced = twn_to(
        ("JPN",),
        release(
            drop=[
                "remarks",
                "kinematics.altitude_m",
                "platform.hull_numbers",
                "source.sensor",
                "provenance.record",
            ]
        ),
    )
    item = own(
        remarks="sighted off Lanyu at 22.05N 121.55E",
        kinematics=Kinematics(course_deg=90.0, speed_mps=200.0, altitude_m=7000.0),
        platform=Platform(type="Type 052D", platform_class="destroyer", hull_numbers=("117",)),
        provenance=Provenance(importer="radar", record="feed#42"),
    )
    out = released(decide(item, enforced, "JPN", None, NOW, own_party="TWN")).observation
    assert out.remarks is None
    assert out.kinematics == Kinematics(course_deg=90.0, speed_mps=200.0, altitude_m=None)
    assert out.platform is not None and out.platform.hull_numbers == ()
    assert out.source.sensor == "other"
    assert out.provenance.record is None
    assert out.provenance.importer == "radar"


def test_generalising_keeps_the_class_only() -> None:
    enforced = twn_to(("JPN",), release(generalise_type=True))
    item = own(platform=Platform(type="H-6K", platform_class="bomber", label="轟六K", count=2))
    out = released(decide(item, enforced, "JPN", None, NOW, own_party="TWN")).observation
    assert out.platform == Platform(platform_class="bomber", count=2)


def test_a_delay_holds_the_item_until_its_last_moment_plus_the_delay() -> None:
    enforced = twn_to(("JPN",), release(delay_s=1800))
    item = own(at=NOW - dt.timedelta(hours=2), until=NOW - dt.timedelta(minutes=10))
    decision = released(decide(item, enforced, "JPN", None, NOW, own_party="TWN"))
    assert decision.not_before == NOW + dt.timedelta(minutes=20)
    assert "TWN: delayed 1800 s" in decision.transforms


def test_own_items_take_the_marking_the_rule_sets() -> None:
    enforced = twn_to(
        ("JPN",), release(marking={"tlp": "GREEN", "rerelease_to": ["USA"], "max_hops": 1})
    )
    decision = released(decide(own(), enforced, "JPN", None, NOW, own_party="TWN"))
    assert decision.observation.marking == Marking(
        tlp="GREEN", control=OriginatorControl(rerelease=True, to=("USA",), max_hops=1)
    )
    assert decision.transforms[-1] == (
        "TWN: marking set to TLP:GREEN, re-release to USA, 1 further hop"
    )
    assert decision.observation.provenance.hops == 1


def test_a_retraction_follows_even_after_the_age_limit_but_keeps_the_delay() -> None:
    enforced = twn_to(
        ("JPN",),
        Rule(
            id="fresh",
            action="release",
            match=Match(max_age_s=3600),
            transform=Transforms(delay_s=600),
        ),
    )
    old = own(at=NOW - dt.timedelta(days=2))
    assert withheld(decide(old, enforced, "JPN", None, NOW, own_party="TWN")).code == "default_deny"
    retraction = msgspec.structs.replace(old, version=2, retracted=True)
    decision = released(decide(retraction, enforced, "JPN", None, NOW, own_party="TWN"))
    assert decision.observation.retracted
    assert decision.not_before == old.observed_at + dt.timedelta(seconds=600)


# --- reciprocity --------------------------------------------------------------------------------


def shortfall(partner: str = "JPN") -> ReciprocityStatus:
    return ReciprocityStatus(
        partner=partner,
        window_start=NOW - dt.timedelta(days=7),
        window_end=NOW,
        measure="items",
        given=FlowSummary(items=100),
        received=FlowSummary(items=10),
        ratio=0.1,
        min_ratio=0.5,
        judged=True,
        shortfall=True,
        action="delay",
        message="shortfall",
    )


@pytest.mark.parametrize(
    ("action", "extra", "check"),
    [
        ("warn", {}, lambda d: d.not_before == AN_HOUR_AGO + dt.timedelta(seconds=600)),
        (
            "delay",
            {"delay_s": 3600},
            lambda d: d.not_before == AN_HOUR_AGO + dt.timedelta(seconds=4200),
        ),
        ("coarsen", {"coarsen_km": 50.0}, lambda d: d.grid_km == 50.0),
    ],
)
def test_a_reciprocity_shortfall_acts_as_the_clause_says(
    action: str, extra: dict[str, object], check: Callable[[Released], bool]
) -> None:
    clause = msgspec.convert({"min_ratio": 0.5, "on_shortfall": action, **extra}, Reciprocity)
    enforced = twn_to(("JPN",), release(coarsen_km=10, delay_s=600), reciprocity=clause)
    decision = released(decide(own(), enforced, "JPN", shortfall(), NOW, own_party="TWN"))
    assert check(decision)
    assert any("reciprocity shortfall with JPN" in w for w in decision.warnings)
    in_balance = msgspec.structs.replace(shortfall(), shortfall=False, action=None)
    normal = released(decide(own(), enforced, "JPN", in_balance, NOW, own_party="TWN"))
    assert (normal.grid_km, normal.warnings) == (10.0, ())


def test_a_shortfall_can_suspend_a_category() -> None:
    clause = Reciprocity(min_ratio=0.5, on_shortfall="suspend", suspend_class=("bomber",))
    enforced = twn_to(("JPN",), release(), reciprocity=clause)
    bomber = withheld(decide(own(), enforced, "JPN", shortfall(), NOW, own_party="TWN"))
    assert bomber.code == "reciprocity_suspended"
    fighter = own(platform=Platform(type="J-16", platform_class="fighter"))
    assert released(decide(fighter, enforced, "JPN", shortfall(), NOW, own_party="TWN"))


def test_a_status_for_another_partner_is_a_caller_error() -> None:
    enforced = twn_to(("JPN",), release())
    with pytest.raises(ValueError, match="for USA"):
        decide(own(), enforced, "JPN", shortfall("USA"), NOW, own_party="TWN")


# --- multilateral and drafts ------------------------------------------------------------------


def test_a_group_agreement_has_rules_per_member() -> None:
    enforced = enforce(
        agreement(
            {
                ("TWN", ("JPN", "USA")): [
                    Rule(
                        id="sea-out",
                        action="release",
                        match=Match(kind=("sea",)),
                        transform=Transforms(coarsen_km=5),
                    )
                ],
                ("TWN", ("USA",)): [
                    Rule(id="air-to-usa", action="release", match=Match(kind=("air",)))
                ],
                ("JPN", ("TWN", "USA")): [release("jpn-all")],
            }
        )
    )
    air = own()
    sea = own(kind="sea", platform=Platform(type="Type 052D", platform_class="destroyer"))
    assert withheld(decide(air, enforced, "JPN", None, NOW, own_party="TWN")).code == "default_deny"
    assert released(decide(air, enforced, "USA", None, NOW, own_party="TWN")).rule == "air-to-usa"
    assert released(decide(sea, enforced, "JPN", None, NOW, own_party="TWN")).rule == "sea-out"
    assert released(decide(sea, enforced, "USA", None, NOW, own_party="TWN")).rule == "sea-out"
    jpn_item = own(origin="JPN")
    assert released(decide(jpn_item, enforced, "USA", None, NOW, own_party="JPN")).rule == "jpn-all"
    assert set(enforced.parties) == set(PARTIES)


def test_preview_shows_a_drafts_effect_but_decide_needs_signatures() -> None:
    from kuroshio.policy.agreement import check_agreement

    draft = check_agreement(agreement({("TWN", ("JPN",)): [release(coarsen_km=5)]}))
    assert released(preview(own(), draft, "JPN", None, NOW, own_party="TWN")).grid_km == 5.0


def test_audit_details_name_the_rule_and_transforms_but_not_the_content() -> None:
    enforced = twn_to(("JPN",), release("air", coarsen_km=10))
    details = released(
        decide(own(remarks="secret words"), enforced, "JPN", None, NOW, own_party="TWN")
    ).audit_details()
    assert details["rule"] == "air" and details["transforms"] == ["TWN: coarsened to 10 km grid"]
    assert "secret words" not in repr(details)


# --- real tracks ------------------------------------------------------------------------------


def test_mnd_tracks_of_2022_08_05_median_line_crossings_go_and_the_south_west_stays(
    shared_data: Path,
) -> None:
    from kuroshio.ingest.mnd_tracks import read_mnd_tracks

    records = read_mnd_tracks(shared_data / "twreporter/Taiwan/20220801-20230915_fixed.geojson")
    day = [
        item
        for _, item in records
        if isinstance(item, Observation) and item.id.startswith("TWN:mnd:2022-08-05:")
    ]
    enforced = twn_to(
        ("JPN",),
        Rule(id="south-west", action="withhold", match=Match(area=("twn-adiz-sw",))),
        Rule(
            id="median-line",
            action="release",
            match=Match(kind=("air",), area=("median-line",)),
            transform=Transforms(coarsen_km=25, drop=("remarks", "provenance.record")),
        ),
        valid_from=dt.datetime(2022, 1, 1, tzinfo=dt.UTC),
    )
    now = dt.datetime(2022, 8, 6, tzinfo=dt.UTC)
    decisions = [decide(item, enforced, "JPN", None, now, own_party="TWN") for item in day]
    out = [d for d in decisions if isinstance(d, Released)]
    # Of the six tracks (49 aircraft) that day, the Su-30MKK (24) and J-11 (6) lines crossed
    # the median line; the other four were in the south-west.
    assert sorted(
        (d.observation.platform.type, d.observation.platform.count)
        for d in out
        if d.observation.platform
    ) == [
        ("J-11", 6),
        ("Su-30MKK", 24),
    ]
    assert [d.rule for d in decisions if isinstance(d, Withheld)] == ["south-west"] * 4
    for decision in out:
        assert all(
            on_grid(lon, lat, 25.0) for lon, lat in decision.observation.geometry.positions()
        )
        assert decision.observation.remarks is None
        assert decision.observation.marking.tlp == "CLEAR"
