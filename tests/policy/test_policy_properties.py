"""Property tests: over random observations and agreements, nothing released breaks its agreement,
and nothing travels further than its originator allowed, across three nodes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from policy_cases import NOW, PARTIES, enforce, sometimes, three_party_agreements

from kuroshio.geo.grid import on_grid
from kuroshio.model import (
    Kinematics,
    LineString,
    Marking,
    MultiLineString,
    Observation,
    OriginatorControl,
    Platform,
    Point,
    Polygon,
    Provenance,
    Source,
    latest_time,
    tlp_rank,
)
from kuroshio.policy.agreement import Agreement, EnforcedAgreement, Rule
from kuroshio.policy.decide import Released, Withheld, decide, rule_matches
from kuroshio.policy.ledger import FlowSummary, ReciprocityStatus

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Around Taiwan and the Ryukyus, so the zones in the rules are hit and missed.
lons = st.floats(min_value=116.0, max_value=126.0, allow_nan=False)
lats = st.floats(min_value=19.0, max_value=30.0, allow_nan=False)
positions = st.tuples(lons, lats)
all_parties = st.sampled_from([*PARTIES, "AUS"])


@st.composite
def geometries(draw: st.DrawFn) -> Point | LineString | MultiLineString | Polygon:
    shape = draw(st.sampled_from(["point", "line", "lines", "polygon"]))
    if shape == "point":
        return Point(coordinates=draw(positions))
    if shape == "line":
        return LineString(coordinates=tuple(draw(st.lists(positions, min_size=2, max_size=12))))
    if shape == "lines":
        parts = draw(st.lists(st.lists(positions, min_size=2, max_size=5), min_size=1, max_size=3))
        return MultiLineString(coordinates=tuple(tuple(part) for part in parts))
    ring = draw(st.lists(positions, min_size=3, max_size=8))
    return Polygon(coordinates=(tuple([*ring, ring[0]]),))


@st.composite
def markings(draw: st.DrawFn) -> Marking:
    if draw(st.booleans()):
        # Half the items may travel: the interesting cases are in what the rules then do.
        return Marking(
            tlp=draw(st.sampled_from(["CLEAR", "GREEN", "AMBER"])),
            control=OriginatorControl(rerelease=True, max_hops=draw(st.integers(1, 3))),
        )
    return Marking(
        tlp=draw(
            st.sampled_from(["CLEAR", "GREEN", "GREEN", "AMBER", "AMBER", "AMBER+STRICT", "RED"])
        ),
        releasable_to=tuple(draw(sometimes(st.lists(all_parties, max_size=2), []))),
        control=OriginatorControl(
            rerelease=draw(st.sampled_from([False, True, True])),
            to=tuple(draw(sometimes(st.lists(all_parties, max_size=2), []))),
            max_hops=draw(st.integers(min_value=0, max_value=3)),
        ),
    )


@st.composite
def observations(draw: st.DrawFn, origin: str | None = None) -> Observation:
    origin = origin or draw(all_parties)
    observed_at = NOW - draw(
        st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=40))
    )
    until = draw(
        st.one_of(
            st.none(), st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=6))
        )
    )
    return Observation(
        id=f"{origin}:obs:{draw(st.integers(min_value=0, max_value=10**6))}",
        version=draw(st.integers(min_value=1, max_value=5)),
        origin=origin,
        kind=draw(st.sampled_from(["air", "sea", "area"])),
        observed_at=observed_at,
        until=None if until is None else observed_at + until,
        geometry=draw(geometries()),
        platform=draw(
            st.one_of(
                st.none(),
                st.builds(
                    Platform,
                    type=st.sampled_from(["H-6K", "J-16", "Type 052D", None]),
                    platform_class=st.sampled_from(["bomber", "fighter", "destroyer", None]),
                    count=st.integers(min_value=1, max_value=30),
                    label=st.sampled_from([None, "轟六K"]),
                    hull_numbers=st.sampled_from([(), ("117",)]),
                ),
            )
        ),
        kinematics=draw(
            st.one_of(
                st.none(), st.just(Kinematics(course_deg=45.0, speed_mps=220.0, altitude_m=6000.0))
            )
        ),
        source=Source(sensor=draw(st.sampled_from(["radar", "esm", "other"])), uncertainty_m=500.0),
        marking=draw(markings()),
        remarks=draw(st.sampled_from([None, "at 22.1234N 120.5678E"])),
        provenance=Provenance(
            importer=draw(st.sampled_from([None, "radar-feed"])),
            record=draw(st.sampled_from([None, "feed#1"])),
        ),
        retracted=draw(st.booleans()),
    )


@st.composite
def held_items(draw: st.DrawFn, holder: str, partner: str) -> Observation:
    """An item as ``holder`` holds it: its own, or received from a partner after some hops
    (mostly from someone other than ``partner``, so that echoes do not dominate)."""
    others = [p for p in [*PARTIES, "AUS"] if p not in (holder, partner)]
    item = draw(observations(origin=draw(st.sampled_from([holder] * 4 + others * 2 + [partner]))))
    if item.origin == holder and draw(st.booleans()):
        return item
    sender = draw(st.sampled_from([*others, *others, partner] if others else [partner]))
    provenance = msgspec.structs.replace(
        item.provenance, partner=sender, hops=draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4]))
    )
    return msgspec.structs.replace(item, provenance=provenance)


@st.composite
def statuses(draw: st.DrawFn, partner: str) -> ReciprocityStatus | None:
    if draw(st.booleans()):
        return None
    shortfall = draw(st.booleans())
    return ReciprocityStatus(
        partner=partner,
        window_start=NOW - dt.timedelta(days=7),
        window_end=NOW,
        measure="items",
        given=FlowSummary(items=10),
        received=FlowSummary(items=1 if shortfall else 10),
        ratio=0.1 if shortfall else 1.0,
        min_ratio=0.5,
        judged=True,
        shortfall=shortfall,
        action="warn" if shortfall else None,
        message="",
    )


def times(agreement: Agreement) -> st.SearchStrategy[dt.datetime]:
    return st.sampled_from([NOW] * 6 + [NOW + dt.timedelta(days=3), agreement.valid_until])


# --- the checks ---------------------------------------------------------------------------------


def dropped_field_is_absent(item: Observation, name: str) -> bool:
    value: Any = {
        "remarks": item.remarks,
        "kinematics": item.kinematics,
        "kinematics.altitude_m": item.kinematics and item.kinematics.altitude_m,
        "kinematics.speed_mps": item.kinematics and item.kinematics.speed_mps,
        "kinematics.course_deg": item.kinematics and item.kinematics.course_deg,
        "platform.hull_numbers": item.platform and item.platform.hull_numbers,
        "platform.label": item.platform and item.platform.label,
        "platform.service": item.platform and item.platform.service,
        "platform.nationality": item.platform and item.platform.nationality,
        "source.sensor": None if item.source.sensor == "other" else item.source.sensor,
        "provenance.record": item.provenance.record,
        "provenance.importer": item.provenance.importer,
    }[name]
    return not value


def originator_allows(item: Observation, partner: str, own_party: str) -> bool:
    """The originator's permission, read straight from the item's marking."""
    marking = item.marking
    if marking.releasable_to and partner not in marking.releasable_to:
        return False
    if item.origin == own_party and item.provenance.partner is None:
        return True
    control = marking.control
    hops = max(item.provenance.hops, 1)
    return (
        marking.tlp != "AMBER+STRICT"
        and control.rerelease
        and (not control.to or partner in control.to)
        and hops - 1 < control.max_hops
    )


def check_released(
    decision: Released,
    item: Observation,
    enforced: EnforcedAgreement,
    partner: str,
    own_party: str,
    status: ReciprocityStatus | None,
    now: dt.datetime,
) -> None:
    agreement = enforced.agreement
    out = decision.observation
    # only inside the window, to a party with a releasing rule that matches, first match wins
    assert agreement.valid_from <= now < agreement.valid_until
    assert partner in agreement.parties and partner != own_party
    rules = agreement.rules(own_party, partner)
    position = [r.id for r in rules].index(decision.rule)
    rule: Rule = rules[position]
    assert rule.action == "release"
    areas = enforced.parsed.areas
    assert rule_matches(rule, areas.get(rule.id), item, now)
    assert not any(rule_matches(r, areas.get(r.id), item, now) for r in rules[:position])
    match = rule.match
    assert not match.kind or item.kind in match.kind
    assert match.tlp_at_most is None or tlp_rank(item.marking.tlp) <= tlp_rank(match.tlp_at_most)
    # markings and originator control
    assert item.marking.tlp != "RED"
    assert partner not in (item.origin, item.provenance.partner)
    assert originator_allows(item, partner, own_party)
    received = item.origin != own_party or item.provenance.partner is not None
    if received:
        assert out.marking == item.marking
    # transforms
    for name in rule.transform.drop:
        assert dropped_field_is_absent(out, name), name
    if rule.transform.generalise_type and out.platform is not None:
        assert (out.platform.type, out.platform.label, out.platform.hull_numbers) == (
            None,
            None,
            (),
        )
    clause = agreement.reciprocity
    shortfall = clause is not None and status is not None and status.shortfall
    grids = [rule.transform.coarsen_km]
    if shortfall and clause is not None and clause.on_shortfall == "coarsen":
        grids.append(clause.coarsen_km)
    grid = max((g for g in grids if g is not None), default=None)
    assert decision.grid_km == grid
    if grid is not None:
        assert all(on_grid(lon, lat, grid) for lon, lat in out.geometry.positions())
        assert out.source.uncertainty_m >= grid * 500
    delay = rule.transform.delay_s
    if shortfall and clause is not None and clause.on_shortfall == "delay":
        delay += clause.delay_s or 0
    if delay:
        assert decision.not_before is not None
        assert decision.not_before >= latest_time(item) + dt.timedelta(seconds=delay)
    else:
        assert decision.not_before is None
    if shortfall and clause is not None and clause.on_shortfall == "suspend":
        assert clause.suspend_kind and item.kind not in clause.suspend_kind
    # the record of what happened travels with the item
    assert out.provenance.transforms == (*item.provenance.transforms, *decision.transforms)
    assert out.provenance.partner == own_party
    assert out.provenance.hops == (max(item.provenance.hops, 1) + 1 if received else 1)
    assert (out.id, out.version, out.origin, out.retracted) == (
        item.id,
        item.version,
        item.origin,
        item.retracted,
    )


@PROPERTY_SETTINGS
@given(st.data())
def test_nothing_released_violates_its_agreement(data: st.DataObject) -> None:
    agreement = data.draw(three_party_agreements())
    enforced = enforce(agreement)
    own_party = data.draw(st.sampled_from(PARTIES))
    if data.draw(st.booleans()):
        # Half the time, an own item that may go anywhere to a party of the agreement: what
        # then happens is up to the rules and their transforms.
        partner = data.draw(st.sampled_from([p for p in PARTIES if p != own_party]))
        item = msgspec.structs.replace(
            data.draw(observations(origin=own_party)),
            marking=Marking(tlp=data.draw(st.sampled_from(["CLEAR", "GREEN", "AMBER"]))),
        )
    else:
        partner = data.draw(
            st.sampled_from([p for p in PARTIES if p != own_party] * 6 + ["AUS", own_party])
        )
        item = data.draw(held_items(own_party, partner))
    status = data.draw(statuses(partner))
    now = data.draw(times(agreement))
    decision = decide(item, enforced, partner, status, now, own_party=own_party)
    event("released" if isinstance(decision, Released) else f"withheld: {decision.code}")
    if isinstance(decision, Released):
        check_released(decision, item, enforced, partner, own_party, status, now)
    else:
        assert isinstance(decision, Withheld)
        assert (decision.item, decision.version, decision.partner) == (
            item.id,
            item.version,
            partner,
        )
        assert decision.reason


@PROPERTY_SETTINGS
@given(st.data())
def test_nothing_travels_beyond_the_originators_permission_across_three_nodes(
    data: st.DataObject,
) -> None:
    mostly = st.sampled_from([True, True, True, False])
    agreement = data.draw(three_party_agreements(open_ended=data.draw(mostly)))
    if data.draw(mostly):
        # Without a direct TWN -> USA rule, USA can only get the item through JPN.
        direct = [d for d in agreement.direction if not (d.sender == "TWN" and "USA" in d.to)]
        agreement = msgspec.structs.replace(agreement, direction=tuple(direct))
    enforced = enforce(agreement)
    original = data.draw(observations(origin="TWN"))
    permissive = data.draw(mostly)
    marking = (
        Marking(
            tlp="GREEN",
            control=OriginatorControl(rerelease=True, max_hops=data.draw(st.integers(0, 3))),
        )
        if permissive
        else original.marking
    )
    original = msgspec.structs.replace(original, provenance=Provenance(), marking=marking)
    now = NOW
    # Every node passes the item on to every party that does not have it yet, as its own
    # agreement rules decide, until nothing moves: TWN -> JPN -> USA and every other path.
    held: dict[str, Observation] = {"TWN": original}
    moved = True
    while moved:
        moved = False
        for holder, item in list(held.items()):
            for partner in [*PARTIES, "AUS"]:
                if partner in held or partner == holder:
                    continue
                decision = decide(item, enforced, partner, None, now, own_party=holder)
                if isinstance(decision, Released):
                    check_released(decision, item, enforced, partner, holder, None, now)
                    held[partner] = decision.observation
                    moved = True
    assert "AUS" not in held  # not a party to the agreement
    event(f"max hops reached: {max(c.provenance.hops for c in held.values())}")
    for party, copy in held.items():
        if party == "TWN":
            continue
        assert copy.provenance.hops >= 1
        if copy.provenance.hops == 1:
            assert copy.provenance.partner == "TWN"
            continue
        # A re-released copy: the marking TWN released it with must have allowed this party.
        first_copy = next(c for p, c in held.items() if p != "TWN" and c.provenance.hops == 1)
        permission = first_copy.marking
        assert copy.marking == permission
        assert original.marking.tlp != "RED"
        assert permission.tlp != "AMBER+STRICT"
        assert permission.control.rerelease
        assert not permission.control.to or party in permission.control.to
        assert not permission.releasable_to or party in permission.releasable_to
        assert copy.provenance.hops - 1 <= permission.control.max_hops


def test_a_chain_twn_jpn_usa_stops_at_the_hop_limit() -> None:
    from policy_cases import agreement as build

    everything = Rule(id="x", action="release")
    enforced = enforce(
        build(
            {
                ("TWN", ("JPN",)): [
                    Rule(
                        id="to-jpn",
                        action="release",
                        transform=msgspec.convert(
                            {"marking": {"rerelease_to": ["USA", "AUS"], "max_hops": 1}},
                            type=__import__(
                                "kuroshio.policy.agreement", fromlist=["Transforms"]
                            ).Transforms,
                        ),
                    )
                ],
                ("JPN", ("USA",)): [msgspec.structs.replace(everything, id="jpn-usa")],
                ("USA", ("AUS",)): [msgspec.structs.replace(everything, id="usa-aus")],
            },
            parties=("TWN", "JPN", "USA", "AUS"),
        )
    )
    item = msgspec.structs.replace(
        data_free_observation(), marking=Marking(tlp="AMBER"), provenance=Provenance()
    )
    at_jpn = decide(item, enforced, "JPN", None, NOW, own_party="TWN")
    assert isinstance(at_jpn, Released) and at_jpn.observation.provenance.hops == 1
    at_usa = decide(at_jpn.observation, enforced, "USA", None, NOW, own_party="JPN")
    assert isinstance(at_usa, Released) and at_usa.observation.provenance.hops == 2
    at_aus = decide(at_usa.observation, enforced, "AUS", None, NOW, own_party="USA")
    assert isinstance(at_aus, Withheld) and at_aus.code == "hop_limit"


def data_free_observation() -> Observation:
    return Observation(
        id="TWN:chain:1",
        origin="TWN",
        kind="air",
        observed_at=NOW - dt.timedelta(minutes=5),
        geometry=Point(coordinates=(121.5, 23.0)),
    )
