"""The release decision until agreements exist: listed kinds, marking, own origin; default deny."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from kuroshio.exchange.release import decide
from kuroshio.model import Marking, Observation
from kuroshio.partners import Partner, ReleaseRule
from observations import observation, observations


def _partner(party: str = "JPN", kinds: tuple[str, ...] = ("air", "sea")) -> Partner:
    return Partner(
        party=party,
        node=f"{party.lower()}-1",
        url="https://127.0.0.1:8443",
        ca_pem=b"",
        signing_key=bytes(32),
        release=msgspec.convert({"kinds": list(kinds)}, ReleaseRule),
    )


def test_an_air_report_releasable_to_japan_is_released_to_japan_only() -> None:
    report = observation(marking=Marking(tlp="AMBER", releasable_to=("JPN",)))
    assert decide(report, _partner("JPN"), own_party="TWN").release
    usa = decide(report, _partner("USA"), own_party="TWN")
    assert not usa.release and usa.code == "not_releasable"


def test_nothing_is_released_by_default() -> None:
    report = observation(marking=Marking(releasable_to=("JPN",)))
    decision = decide(report, _partner(kinds=()), own_party="TWN")
    assert not decision.release and decision.code == "kind_not_listed"


def test_red_and_partner_reports_are_withheld() -> None:
    red = observation(marking=Marking(tlp="RED", releasable_to=("JPN",)))
    assert decide(red, _partner(), own_party="TWN").code == "tlp_red"
    from_usa = observation(origin="USA", marking=Marking(releasable_to=("JPN",)))
    assert decide(from_usa, _partner(), own_party="TWN").code == "not_own"


@given(
    observations(),
    st.sampled_from(["TWN", "JPN", "USA"]),
    st.lists(st.sampled_from(["air", "sea", "area"]), unique=True),
)
def test_a_release_always_has_every_permission(
    report: Observation, party: str, kinds: list[str]
) -> None:
    decision = decide(report, _partner(party, tuple(kinds)), own_party=report.origin)
    allowed = (
        report.kind in kinds
        and report.marking.tlp != "RED"
        and party in report.marking.releasable_to
    )
    assert decision.release == allowed
