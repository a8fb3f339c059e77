"""The release decision: may this observation go to this partner? Default deny.

Until signed release agreements exist, a partner's config lists the kinds it receives and the
observation's own marking must allow the partner. This is one pure function, easy to replace by
the agreement-based ``decide()``; it does no I/O and applies no transforms.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from kuroshio.model import Observation
from kuroshio.partners import Partner

DecisionCode = Literal["released", "not_own", "kind_not_listed", "tlp_red", "not_releasable"]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """Release or withhold, with a code (for counting) and a reason (for people)."""

    release: bool
    code: DecisionCode
    reason: str


RELEASED: Final = Decision(release=True, code="released", reason="released")


def decide(observation: Observation, partner: Partner, *, own_party: str) -> Decision:
    """Whether ``observation`` is released to ``partner`` by the node of ``own_party``."""
    if observation.origin != own_party:
        return Decision(
            release=False,
            code="not_own",
            reason=f"originated by {observation.origin}: re-release waits for release agreements",
        )
    if observation.kind not in partner.release.kinds:
        return Decision(
            release=False,
            code="kind_not_listed",
            reason=f"kind {observation.kind!r} is not released to {partner.party}",
        )
    if observation.marking.tlp == "RED":
        return Decision(release=False, code="tlp_red", reason="TLP:RED is never released")
    if partner.party not in observation.marking.releasable_to:
        return Decision(
            release=False,
            code="not_releasable",
            reason=f"marking does not make it releasable to {partner.party}",
        )
    return RELEASED
