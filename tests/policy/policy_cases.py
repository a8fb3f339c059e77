"""Agreements, keys and hypothesis strategies shared by the policy tests."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import strategies as st

from kuroshio.errors import AgreementError
from kuroshio.pki import public_key_bytes_of
from kuroshio.policy.agreement import (
    Agreement,
    Direction,
    EnforcedAgreement,
    MarkingChange,
    Match,
    ParsedAgreement,
    Reciprocity,
    Rule,
    Transforms,
    check_agreement,
    parse_agreement,
    sign_agreement,
    verify_agreement,
    with_signature,
)

PARTIES = ("TWN", "JPN", "USA")
VALID_FROM = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
VALID_UNTIL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@functools.cache
def signing_key(party: str) -> ed25519.Ed25519PrivateKey:
    """One fixed-for-the-run Ed25519 key per party."""
    return ed25519.Ed25519PrivateKey.generate()


def public_key(party: str) -> bytes:
    return public_key_bytes_of(signing_key(party))


def pinned(parties: Iterable[str] = ("TWN", "JPN", "USA", "AUS")) -> dict[str, bytes]:
    return {party: public_key(party) for party in parties}


HEADER = """\
id = "twn-jpn"
version = {version}
title = "TWN-JPN test agreement"
parties = ["TWN", "JPN"]
valid_from = {valid_from}
valid_until = {valid_until}
"""

TWN_JPN = """\
# The test agreement: bombers in the Taiwan ADIZ go to JPN coarsened and delayed.
id = "twn-jpn"
version = {version}
title = "TWN-JPN test agreement"
parties = ["TWN", "JPN"]
valid_from = 2024-01-01T00:00:00Z
valid_until = {valid_until}

[[direction]]
from = "TWN"
to = ["JPN"]

[[direction.rule]]
id = "sea-sw"
action = "withhold"
reason = "south-west sea picture stays national"
match = {{ kind = "sea", area = "twn-adiz-sw" }}

[[direction.rule]]
id = "air-adiz"
action = "release"
[direction.rule.match]
kind = ["air"]
area = ["twn-adiz"]
tlp_at_most = "AMBER"
[direction.rule.transform]
coarsen_km = {coarsen_km}
delay_s = 1800
drop = ["remarks"]
generalise_type = true
[direction.rule.transform.marking]
rerelease_to = ["USA"]
max_hops = 1

[[direction]]
from = "JPN"
to = ["TWN"]

[[direction.rule]]
id = "jpn-everything"
action = "release"
"""


def twn_jpn_text(
    *, version: int = 1, coarsen_km: float = 10, valid_until: str = "2026-01-01T00:00:00Z"
) -> str:
    return TWN_JPN.format(version=version, coarsen_km=coarsen_km, valid_until=valid_until)


def signed_text(text: str, parties: Iterable[str], now: dt.datetime = NOW) -> str:
    """``text`` signed by each of ``parties`` with its test key."""
    for party in parties:
        parsed = parse_agreement(text, source="test.toml")
        signature = sign_agreement(
            parsed, party=party, signer=signing_key(party), public_key=public_key(party), now=now
        )
        text = with_signature(parsed, signature)
    return text


def enforce(agreement: Agreement) -> EnforcedAgreement:
    """Check ``agreement``, have every party sign it and verify it, as a node would."""
    parsed = check_agreement(agreement, source="generated")
    signatures = [
        sign_agreement(
            parsed, party=party, signer=signing_key(party), public_key=public_key(party), now=NOW
        )
        for party in agreement.parties
    ]
    signed = ParsedAgreement(
        agreement=parsed.agreement,
        signatures=tuple(signatures),
        source=parsed.source,
        text=None,
        areas=parsed.areas,
        warnings=parsed.warnings,
    )
    return verify_agreement(signed, pinned(agreement.parties))


def agreement(
    directions: Mapping[tuple[str, tuple[str, ...]], list[Rule]],
    *,
    parties: tuple[str, ...] = ("TWN", "JPN", "USA"),
    reciprocity: Reciprocity | None = None,
    valid_from: dt.datetime = VALID_FROM,
) -> Agreement:
    return Agreement(
        id="test",
        version=1,
        parties=parties,
        valid_from=valid_from,
        valid_until=VALID_UNTIL,
        reciprocity=reciprocity,
        direction=tuple(
            Direction(sender=sender, to=to, rule=tuple(rules))
            for (sender, to), rules in directions.items()
        ),
    )


# --- strategies ----------------------------------------------------------------------------------

ZONES = ("twn-adiz", "twn-adiz-sw", "jpn-adiz-sw", "median-line")
DROPPABLE = (
    "remarks",
    "kinematics",
    "kinematics.altitude_m",
    "platform.hull_numbers",
    "platform.label",
    "source.sensor",
    "provenance.record",
)


def sometimes(strategy: st.SearchStrategy[Any], otherwise: Any) -> st.SearchStrategy[Any]:
    """``strategy`` about one time in four, else ``otherwise``: random rules that match often."""
    plain = st.just(otherwise)
    return st.one_of(plain, plain, plain, strategy)


def _party_lists(max_size: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(PARTIES), max_size=max_size).map(tuple)


_ages = st.tuples(
    sometimes(st.sampled_from([0, 600, 3600]), None),
    sometimes(st.sampled_from([3600, 86_400, 30 * 86_400]), None),
).map(lambda ages: tuple(sorted(ages)) if None not in ages else ages)

matches = st.builds(
    Match,
    kind=sometimes(st.lists(st.sampled_from(["air", "sea", "area"]), max_size=2).map(tuple), ()),
    platform_class=sometimes(
        st.lists(st.sampled_from(["bomber", "fighter", "destroyer"]), max_size=2).map(tuple), ()
    ),
    platform_type=sometimes(st.sampled_from([("H-6K",), ("J-16",)]), ()),
    origin=sometimes(_party_lists(2), ()),
    area=sometimes(st.lists(st.sampled_from(ZONES), max_size=2, unique=True).map(tuple), ()),
    polygon=sometimes(st.just(((119.0, 21.0), (123.0, 21.0), (123.0, 26.0), (119.0, 26.0))), ()),
    tlp_at_most=sometimes(st.sampled_from(["CLEAR", "GREEN", "AMBER", "AMBER+STRICT"]), None),
).flatmap(
    lambda match: _ages.map(
        lambda ages: msgspec.structs.replace(match, min_age_s=ages[0], max_age_s=ages[1])
    )
)

marking_changes = st.builds(
    MarkingChange,
    tlp=st.sampled_from([None, "CLEAR", "GREEN", "AMBER", "AMBER+STRICT"]),
    releasable_to=sometimes(_party_lists(3), None),
    rerelease=st.sampled_from([None, True, True]),
    rerelease_to=sometimes(_party_lists(2), None),
    max_hops=st.sampled_from([None, 0, 1, 2]),
)

transforms = st.builds(
    Transforms,
    coarsen_km=st.sampled_from([None, 0.5, 1.0, 5.0, 10.0, 27.5, 100.0]),
    delay_s=st.sampled_from([0, 60, 1800, 86_400]),
    drop=st.lists(st.sampled_from(DROPPABLE), max_size=4).map(tuple),
    generalise_type=st.booleans(),
    marking=st.one_of(st.none(), marking_changes),
)

_rule_bodies = st.tuples(st.sampled_from(["release", "release", "withhold"]), matches, transforms)


def _rules(prefix: str, bodies: list[tuple[str, Match, Transforms]]) -> list[Rule]:
    return [
        Rule(
            id=f"{prefix}-{number}",
            action=action,  # type: ignore[arg-type]
            match=match,
            transform=transform if action == "release" else Transforms(),
        )
        for number, (action, match, transform) in enumerate(bodies)
    ]


_clauses = st.sampled_from(
    [
        None,
        Reciprocity(window_days=7, min_ratio=0.5, on_shortfall="warn"),
        Reciprocity(window_days=7, min_ratio=0.5, on_shortfall="delay", delay_s=3600),
        Reciprocity(window_days=7, min_ratio=0.5, on_shortfall="coarsen", coarsen_km=50.0),
        Reciprocity(window_days=7, min_ratio=0.5, on_shortfall="suspend", suspend_kind=("air",)),
    ]
)
_pair_plans = st.tuples(
    st.sampled_from([False, True, True, True]),
    st.lists(_rule_bodies, max_size=4),
    st.one_of(st.none(), transforms),
)


@st.composite
def three_party_agreements(draw: st.DrawFn, *, open_ended: bool = False) -> Agreement:
    """A TWN–JPN–USA agreement with random rules for each ordered pair of parties (rules that
    contradict each other are dropped, as validation would refuse them). ``open_ended``: every
    pair has rules and ends with a release of whatever is left."""
    directions: dict[tuple[str, tuple[str, ...]], list[Rule]] = {}
    for sender in PARTIES:
        for recipient in PARTIES:
            if sender == recipient:
                continue
            present, bodies, catch_all = draw(_pair_plans)
            if open_ended:
                present = True
                catch_all = catch_all or Transforms()
            if not present:
                continue
            prefix = f"{sender.lower()}-{recipient.lower()}"
            rules = _rules(prefix, bodies)
            if catch_all is not None:
                rules.append(Rule(id=f"{prefix}-rest", action="release", transform=catch_all))
            directions[(sender, (recipient,))] = rules
    clause = draw(_clauses)
    while True:
        candidate = agreement(directions, reciprocity=clause)
        try:
            check_agreement(candidate, source="generated")
        except AgreementError as error:
            # Drop the rule validation refused (the later of two contradicting rules) and retry.
            found = re.match(r"direction\[(\d+)\]\.rule\[(\d+)\]", error.field or "")
            assert found, error
            key = list(directions)[int(found.group(1))]
            del directions[key][int(found.group(2))]
            continue
        return candidate
