"""Default deny on the way to TAK screens: the marking decides who may see an item."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from kuroshio.export.release import Audience, OutputFilter, all_allowed, output_refusal
from kuroshio.model import TLP_ORDER, Marking, OriginatorControl, Provenance, tlp_rank
from observations import observation

OWN = "JPN"


def _received(**marking: object) -> object:
    return observation(
        origin="TWN", marking=Marking(**marking), provenance=Provenance(partner="TWN", hops=1)
    )


def test_own_screens_see_what_the_node_holds_up_to_the_ceiling() -> None:
    item = _received(tlp="AMBER", releasable_to=("JPN",))
    assert output_refusal(item, Audience(), OWN) is None  # type: ignore[arg-type]
    strict = _received(tlp="AMBER+STRICT", releasable_to=("JPN",))
    assert "above" in (output_refusal(strict, Audience(), OWN) or "")  # type: ignore[arg-type]
    assert output_refusal(strict, Audience(tlp_max="AMBER+STRICT"), OWN) is None  # type: ignore[arg-type]
    red = _received(tlp="RED", releasable_to=("JPN",))
    assert "RED" in (output_refusal(red, Audience(tlp_max="AMBER+STRICT"), OWN) or "")  # type: ignore[arg-type]


def test_a_coalition_screen_needs_the_marking_and_the_originators_leave() -> None:
    coalition = Audience(parties=("JPN", "USA"))
    only_japan = _received(releasable_to=("JPN",))
    assert "USA" in (output_refusal(only_japan, coalition, OWN) or "")  # type: ignore[arg-type]
    no_rerelease = _received(releasable_to=("JPN", "USA"))
    assert "re-release" in (output_refusal(no_rerelease, coalition, OWN) or "")  # type: ignore[arg-type]
    allowed = _received(
        releasable_to=("JPN", "USA"), control=OriginatorControl(rerelease=True, to=("USA",))
    )
    assert output_refusal(allowed, coalition, OWN) is None  # type: ignore[arg-type]
    # the origin may always see its own item
    assert output_refusal(only_japan, Audience(parties=("JPN", "TWN")), OWN) is None  # type: ignore[arg-type]
    assert all_allowed([allowed, only_japan], coalition, OWN) is not None  # type: ignore[list-item]


parties = st.sampled_from(["JPN", "TWN", "USA", "PHL", "AUS"])


@given(
    tlp=st.sampled_from(TLP_ORDER),
    releasable=st.lists(parties, max_size=4),
    rerelease=st.booleans(),
    to=st.lists(parties, max_size=3),
    audience=st.lists(parties, min_size=1, max_size=3),
    ceiling=st.sampled_from(TLP_ORDER[:4]),
)
def test_nothing_reaches_a_party_its_marking_does_not_name(
    tlp: str,
    releasable: list[str],
    rerelease: bool,
    to: list[str],
    audience: list[str],
    ceiling: str,
) -> None:
    item = _received(
        tlp=tlp,
        releasable_to=tuple(releasable),
        control=OriginatorControl(rerelease=rerelease, to=tuple(to)),
    )
    rule = msgspec.convert({"parties": audience, "tlp_max": ceiling}, Audience)
    if output_refusal(item, rule, OWN) is None:  # type: ignore[arg-type]
        assert tlp != "RED" and tlp_rank(tlp) <= tlp_rank(ceiling)
        for party in set(audience) - {OWN, "TWN"}:
            assert party in releasable and rerelease and (not to or party in to)


def test_the_operator_filter_picks_origins_kinds_and_area() -> None:
    choice = OutputFilter(origins=("TWN",), kinds=("air",), area=(120.0, 20.0, 122.0, 23.0))
    assert choice.wants(observation(origin="TWN", lon=121.0, lat=22.0))
    assert not choice.wants(observation(origin="TWN", lon=125.0, lat=22.0))
    assert not choice.wants(observation(origin="JPN", lon=121.0, lat=22.0))
    assert not choice.wants(observation(origin="TWN", kind="sea", lon=121.0, lat=22.0))
