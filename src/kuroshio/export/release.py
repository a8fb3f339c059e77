"""Whether an item may go out to a screen outside kuroshio (a TAK client, a TAK Server), and
whether the operator chose it: default deny, decided by one pure function.

An output has an **audience**: the parties whose people watch it (by default the node's own
party alone) and the most restrictive TLP it may carry. An item goes out only when its TLP is
within that ceiling (TLP:RED never is) and every party of the audience may see it: the own
party sees what the node holds; a foreign party only what the marking releases to it by name,
and for an item received from elsewhere only when its originator allows re-release to that
party (its origin may always see its own item). The operator's **filter** (origins, kinds, an
area) then picks what of the allowed is wanted. Agreements govern partners' links, not these
screens: nothing here opens a path to a partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import msgspec

from kuroshio.model import Kind, Observation, PartyCode, bounding_box, tlp_rank

OutputTlp = Literal["CLEAR", "GREEN", "AMBER", "AMBER+STRICT"]
"""The ceilings an output may have: TLP:RED is for named recipients, never a shared screen."""
DEFAULT_TLP: Final = "AMBER"


class Audience(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who watches an output: parties (empty: the node's own party) and the TLP ceiling."""

    parties: tuple[PartyCode, ...] = ()
    tlp_max: OutputTlp = DEFAULT_TLP


BBox = tuple[float, float, float, float]


class OutputFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the operator sends: origins (empty: all), kinds, an area, fused sorties or not."""

    origins: tuple[PartyCode, ...] = ()
    kinds: tuple[Kind, ...] = ("air", "sea")
    area: BBox | None = None
    """min_lon, min_lat, max_lon, max_lat: only items that touch it."""
    fused: bool = True
    """Also send sorties fused from the reports of two or more parties."""

    def __post_init__(self) -> None:
        if self.area is not None:
            west, south, east, north = self.area
            if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
                raise ValueError(
                    "area is min_lon, min_lat, max_lon, max_lat within -180..180, -90..90"
                )

    def wants(self, observation: Observation) -> bool:
        if self.origins and observation.origin not in self.origins:
            return False
        if observation.kind not in self.kinds:
            return False
        if self.area is not None:
            west, south, east, north = self.area
            lon0, lat0, lon1, lat1 = bounding_box(observation.geometry)
            if lon1 < west or lon0 > east or lat1 < south or lat0 > north:
                return False
        return True


def audience_parties(audience: Audience, own_party: str) -> tuple[str, ...]:
    return audience.parties or (own_party,)


def output_refusal(observation: Observation, audience: Audience, own_party: str) -> str | None:
    """Why ``observation`` must not go to ``audience`` (None: its marking allows it)."""
    marking = observation.marking
    if marking.tlp == "RED":
        return "TLP:RED never leaves for a shared screen"
    if tlp_rank(marking.tlp) > tlp_rank(audience.tlp_max):
        return f"TLP:{marking.tlp} is above this output's TLP:{audience.tlp_max}"
    received = observation.origin != own_party or observation.provenance.partner is not None
    for party in audience_parties(audience, own_party):
        if party in (own_party, observation.origin):
            continue
        if marking.tlp == "AMBER+STRICT":
            return f"TLP:AMBER+STRICT stays with {own_party}, and {party} watches this output"
        if party not in marking.releasable_to:
            return f"not marked releasable to {party}, which watches this output"
        if received:
            control = marking.control
            if not control.rerelease:
                return f"the originator ({observation.origin}) does not allow re-release"
            if control.to and party not in control.to:
                return (
                    f"the originator ({observation.origin}) allows re-release to "
                    f"{', '.join(control.to)} only"
                )
    return None


def all_allowed(
    observations: Sequence[Observation], audience: Audience, own_party: str
) -> str | None:
    """The first refusal among several items shown as one (a fused sortie), or None."""
    for observation in observations:
        refusal = output_refusal(observation, audience, own_party)
        if refusal is not None:
            return f"{observation.id}: {refusal}"
    return None
