"""The release decision: one pure function from an observation, the agreement in force, the
partner, the reciprocity status and the time to *release (transformed)* or *withhold (why)*.

It reads no files, keeps no state and sends nothing; the exchange calls it at egress and audits
what it returns. The transforms it applies (coarsen, drop, generalise, marking) live here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, Literal, TypeAlias

import msgspec
from shapely.errors import GEOSException

from kuroshio.geo.grid import coarsen_geometry
from kuroshio.geo.shapes import shape_of
from kuroshio.model import (
    Geometry,
    Marking,
    Observation,
    OriginatorControl,
    PartyCode,
    latest_time,
    tlp_rank,
)
from kuroshio.policy.agreement import (
    EnforcedAgreement,
    ParsedAgreement,
    Reciprocity,
    Rule,
    Transforms,
)
from kuroshio.policy.ledger import ReciprocityStatus

WithholdCode: TypeAlias = Literal[
    "no_agreement",
    "not_in_force",
    "not_a_party",
    "tlp_red",
    "to_origin",
    "echo",
    "releasable_to",
    "originator_control",
    "hop_limit",
    "no_rules",
    "default_deny",
    "rule",
    "reciprocity_suspended",
]
Refusal: TypeAlias = tuple[WithholdCode, str]
"""Why an item is withheld: the code and the reason."""
MAX_HOPS_RECORDED: Final = 32
"""``provenance.hops`` cannot go past this (the schema's limit)."""
COARSENED_WORDS: Final = "coarsened to {km:g} km grid"
"""How a coarsening is written in ``provenance.transforms`` (after ``"<PARTY>: "``)."""


class Released(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="release", tag_field="decision"
):
    """Release ``observation`` (already transformed) to ``partner``, not before ``not_before``."""

    observation: Observation
    partner: PartyCode
    agreement: str
    agreement_version: int
    rule: str
    transforms: tuple[str, ...] = ()
    """The transforms in words, as appended to ``observation.provenance.transforms``."""
    not_before: dt.datetime | None = None
    """Hold the item until this time (set when a delay applies)."""
    grid_km: float | None = None
    """Position precision released (None: as observed)."""
    warnings: tuple[str, ...] = ()

    released: ClassVar[bool] = True

    def audit_details(self) -> dict[str, object]:
        """What a ``decision`` audit entry records (identifiers, never the observation)."""
        return {
            "decision": "release",
            "item": self.observation.id,
            "version": self.observation.version,
            "partner": self.partner,
            "agreement": self.agreement,
            "agreement_version": self.agreement_version,
            "rule": self.rule,
            "transforms": list(self.transforms),
            "not_before": None if self.not_before is None else self.not_before.isoformat(),
            "warnings": list(self.warnings),
        }


class Withheld(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="withhold", tag_field="decision"
):
    """Do not release item ``item`` version ``version`` to ``partner``, and why."""

    item: str
    version: int
    partner: PartyCode
    code: WithholdCode
    reason: str
    rule: str | None = None
    agreement: str | None = None
    agreement_version: int | None = None

    released: ClassVar[bool] = False

    def audit_details(self) -> dict[str, object]:
        return {
            "decision": "withhold",
            "item": self.item,
            "version": self.version,
            "partner": self.partner,
            "code": self.code,
            "reason": self.reason,
            "rule": self.rule,
            "agreement": self.agreement,
            "agreement_version": self.agreement_version,
        }


Decision: TypeAlias = Released | Withheld


# --- the decision ------------------------------------------------------------------------------


def decide(
    observation: Observation,
    agreement: EnforcedAgreement | None,
    partner: str,
    ledger: ReciprocityStatus | None,
    now: dt.datetime,
    *,
    own_party: str,
) -> Decision:
    """Whether and how ``own_party`` releases ``observation`` to ``partner`` at ``now``.

    ``agreement`` is the one in force with ``partner`` (None: there is none, so nothing leaves);
    ``ledger`` is the partner's reciprocity status under it (None: not judged).
    """
    if agreement is None:
        return _withhold(
            observation, partner, "no_agreement", f"no agreement with {partner} is in force"
        )
    return _decide(observation, agreement.parsed, partner, ledger, now, own_party)


def preview(
    observation: Observation,
    agreement: ParsedAgreement,
    partner: str,
    ledger: ReciprocityStatus | None,
    now: dt.datetime,
    *,
    own_party: str,
) -> Decision:
    """What :func:`decide` would return if ``agreement`` (perhaps a draft, not yet signed by
    everyone) were in force. For showing liaison staff a draft's effect; never for sending."""
    return _decide(observation, agreement, partner, ledger, now, own_party)


def _decide(
    observation: Observation,
    parsed: ParsedAgreement,
    partner: str,
    ledger: ReciprocityStatus | None,
    now: dt.datetime,
    own_party: str,
) -> Decision:
    agreement = parsed.agreement

    def withhold(code: WithholdCode, reason: str, rule: str | None = None) -> Withheld:
        return _withhold(
            observation,
            partner,
            code,
            reason,
            rule=rule,
            agreement=agreement.id,
            agreement_version=agreement.version,
        )

    refusal = _refusal_of_all(parsed, partner, now, own_party)
    if refusal is not None:
        return withhold(*refusal)
    refusal = _marking_refusal(observation, partner, own_party)
    if refusal is not None:
        return withhold(*refusal)
    rules = agreement.rules(own_party, partner)
    if not rules:
        return withhold(*_no_rules(parsed, partner, own_party))
    rule = matching_rule(observation, rules, parsed.areas, now)
    if rule is None:
        return withhold("default_deny", "no rule matches (default deny)")
    if rule.action == "withhold":
        return withhold("rule", rule.reason or f"withheld by rule {rule.id}", rule.id)
    extra = _reciprocity_effect(observation, agreement.reciprocity, ledger, partner)
    if isinstance(extra, str):
        return withhold("reciprocity_suspended", extra, rule.id)
    return _release(
        observation,
        rule,
        partner,
        own_party,
        extra,
        agreement=agreement.id,
        agreement_version=agreement.version,
    )


def _refusal_of_all(
    parsed: ParsedAgreement, partner: str, now: dt.datetime, own_party: str
) -> Refusal | None:
    """The refusal of every item to ``partner`` at ``now`` under ``parsed``, before any item's
    own marking is looked at (None: it depends on the item)."""
    agreement = parsed.agreement
    if not agreement.in_window(now):
        return (
            "not_in_force",
            f"agreement {agreement.id} v{agreement.version} is valid from "
            f"{agreement.valid_from.isoformat()} until {agreement.valid_until.isoformat()}",
        )
    if own_party not in agreement.parties or partner not in agreement.parties:
        return (
            "not_a_party",
            f"agreement {agreement.id} is between {', '.join(agreement.parties)}; "
            f"it says nothing from {own_party} to {partner}",
        )
    if partner == own_party:
        return "not_a_party", f"{partner} is this node's own party"
    if agreement.is_civil:
        return (
            "no_rules",
            f"agreement {agreement.id} is a civil agreement: it carries incidents, never "
            "observations",
        )
    return None


def _no_rules(parsed: ParsedAgreement, partner: str, own_party: str) -> Refusal:
    agreement = parsed.agreement
    return "no_rules", f"agreement {agreement.id} has no rules from {own_party} to {partner}"


def withholds_every_item(
    agreement: EnforcedAgreement | None, partner: str, now: dt.datetime, *, own_party: str
) -> Callable[[Observation], Refusal] | None:
    """When nothing at all can be released to ``partner`` at ``now`` (no agreement in force, or
    one that is not in its window, not between the two, civil, or without a rule from
    ``own_party`` to ``partner``): a function giving each item's refusal exactly as
    :func:`decide` gives it (the code and reason of its :class:`Withheld`, which then names no
    rule). None when some item could be released, and each must be decided."""
    if agreement is None:
        refusal: Refusal = ("no_agreement", f"no agreement with {partner} is in force")
        return lambda _: refusal
    parsed = agreement.parsed
    first = _refusal_of_all(parsed, partner, now, own_party)
    if first is not None:
        return lambda _: first
    if parsed.agreement.rules(own_party, partner):
        return None
    none = _no_rules(parsed, partner, own_party)
    return lambda observation: _marking_refusal(observation, partner, own_party) or none


def _withhold(
    observation: Observation,
    partner: str,
    code: WithholdCode,
    reason: str,
    *,
    rule: str | None = None,
    agreement: str | None = None,
    agreement_version: int | None = None,
) -> Withheld:
    return Withheld(
        item=observation.id,
        version=observation.version,
        partner=partner,
        code=code,
        reason=reason,
        rule=rule,
        agreement=agreement,
        agreement_version=agreement_version,
    )


def is_received(observation: Observation, own_party: str) -> bool:
    """True for an item this node holds from elsewhere (another origin or a partner's batch)."""
    return observation.origin != own_party or observation.provenance.partner is not None


def hops_so_far(observation: Observation, own_party: str) -> int:
    """Transfers the item has made to reach this node: 0 for own items, at least 1 otherwise."""
    if not is_received(observation, own_party):
        return 0
    return max(observation.provenance.hops, 1)


def _marking_refusal(observation: Observation, partner: str, own_party: str) -> Refusal | None:
    marking = observation.marking
    if marking.tlp == "RED":
        return "tlp_red", "TLP:RED never leaves this node"
    if partner in (observation.origin, observation.provenance.relayed_origin):
        return "to_origin", f"{partner} is the item's origin"
    if observation.provenance.partner == partner:
        return "echo", f"the item came from {partner}"
    if marking.releasable_to and partner not in marking.releasable_to:
        return (
            "releasable_to",
            f"marked releasable to {', '.join(marking.releasable_to)} only",
        )
    if not is_received(observation, own_party):
        return None
    control = marking.control
    origin = observation.origin
    if marking.tlp == "AMBER+STRICT":
        return "originator_control", "TLP:AMBER+STRICT items stay with their recipient"
    if not control.rerelease:
        return "originator_control", f"the originator ({origin}) does not allow re-release"
    if control.to and partner not in control.to:
        return (
            "originator_control",
            f"the originator ({origin}) allows re-release to {', '.join(control.to)} only",
        )
    hops = hops_so_far(observation, own_party)
    if hops > control.max_hops or hops + 1 > MAX_HOPS_RECORDED:
        return (
            "hop_limit",
            f"the item has made {hops} hop(s); the originator ({origin}) allows "
            f"{control.max_hops} beyond the first recipient",
        )
    return None


# --- matching ----------------------------------------------------------------------------------


def age_seconds(observation: Observation, now: dt.datetime) -> float:
    return (now - latest_time(observation)).total_seconds()


class _Shape:
    """The observation's shapely geometry, built the first time a rule needs it."""

    def __init__(self, geometry: Geometry) -> None:
        self._geometry = geometry
        self._shape: Any = None

    def get(self) -> Any:
        if self._shape is None:
            self._shape = shape_of(self._geometry)
        return self._shape


def _in_area(area: Any, test: str, shape: _Shape) -> bool:
    try:
        if test == "within":
            return bool(area.covers(shape.get()))
        return bool(area.intersects(shape.get()))
    except GEOSException:
        # Unusable geometry: it cannot be shown to be in the area, so the rule does not match.
        return False


def rule_matches(
    rule: Rule,
    area: Any,
    observation: Observation,
    now: dt.datetime,
    shape: _Shape | None = None,
) -> bool:
    """Whether every condition of ``rule.match`` holds for ``observation`` at ``now``."""
    match = rule.match
    if match.kind and observation.kind not in match.kind:
        return False
    if match.origin and observation.origin not in match.origin:
        return False
    platform = observation.platform
    if match.platform_class and (
        platform is None or platform.platform_class not in match.platform_class
    ):
        return False
    if match.platform_type and (platform is None or platform.type not in match.platform_type):
        return False
    if match.tlp_at_most is not None and tlp_rank(observation.marking.tlp) > tlp_rank(
        match.tlp_at_most
    ):
        return False
    age = age_seconds(observation, now)
    if match.min_age_s is not None and age < match.min_age_s:
        return False
    # A retraction must follow the item however old it is, so it ignores the maximum age.
    if match.max_age_s is not None and age > match.max_age_s and not observation.retracted:
        return False
    if area is not None:
        return _in_area(area, match.area_test, shape or _Shape(observation.geometry))
    return True


def matching_rule(
    observation: Observation,
    rules: Sequence[Rule],
    areas: Any,
    now: dt.datetime,
) -> Rule | None:
    """The first rule whose match holds (None: no rule matches)."""
    shape = _Shape(observation.geometry)
    for rule in rules:
        if rule_matches(rule, areas.get(rule.id), observation, now, shape):
            return rule
    return None


# --- reciprocity -------------------------------------------------------------------------------


class _Extra(msgspec.Struct, frozen=True):
    delay_s: int = 0
    coarsen_km: float | None = None
    warning: str | None = None


def _reciprocity_effect(
    observation: Observation,
    clause: Reciprocity | None,
    ledger: ReciprocityStatus | None,
    partner: str,
) -> _Extra | str:
    if ledger is not None and ledger.partner != partner:
        raise ValueError(f"reciprocity status is for {ledger.partner}, not {partner}")
    if clause is None or ledger is None or not ledger.shortfall:
        return _Extra()
    why = (
        f"reciprocity shortfall with {partner}: ratio {ledger.ratio_text} "
        f"below {clause.min_ratio:g} over {clause.window_days} days"
    )
    action = clause.on_shortfall
    if action == "warn":
        return _Extra(warning=why)
    if action == "delay":
        return _Extra(delay_s=clause.delay_s or 0, warning=why)
    if action == "coarsen":
        return _Extra(coarsen_km=clause.coarsen_km, warning=why)
    platform_class = observation.platform.platform_class if observation.platform else None
    in_category = (not clause.suspend_kind or observation.kind in clause.suspend_kind) and (
        not clause.suspend_class or platform_class in clause.suspend_class
    )
    if in_category:
        return f"{why}; this category is suspended"
    return _Extra(warning=why)


# --- transforms --------------------------------------------------------------------------------


def _release(
    observation: Observation,
    rule: Rule,
    partner: str,
    own_party: str,
    extra: _Extra,
    *,
    agreement: str,
    agreement_version: int,
) -> Released:
    transform = rule.transform
    words: list[str] = []
    warnings: list[str] = [extra.warning] if extra.warning else []
    released = observation

    if transform.generalise_type:
        released = generalise_platform(released)
        words.append("platform generalised to class")
    if transform.drop:
        released = drop_fields(released, transform.drop)
        words.append("dropped " + ", ".join(transform.drop))
    grid_km = _coarsest(transform.coarsen_km, extra.coarsen_km)
    if grid_km is not None:
        released = coarsen(released, grid_km)
        words.append(COARSENED_WORDS.format(km=grid_km))
    delay_s = transform.delay_s + extra.delay_s
    not_before: dt.datetime | None = None
    if delay_s:
        not_before = latest_time(observation) + dt.timedelta(seconds=delay_s)
        words.append(f"delayed {delay_s} s")
    received = is_received(observation, own_party)
    if transform.marking is not None:
        if received:
            warnings.append(
                f"rule {rule.id} sets a marking, but a received item keeps its originator's"
            )
        else:
            released = msgspec.structs.replace(released, marking=_set_marking(released, transform))
            words.append("marking set to " + describe_marking(released.marking))
    words = [f"{own_party}: {word}" for word in words]
    provenance = msgspec.structs.replace(
        released.provenance,
        partner=own_party,
        batch=None,
        hops=hops_so_far(observation, own_party) + 1,
        transforms=(*released.provenance.transforms, *words),
    )
    released = msgspec.structs.replace(released, provenance=provenance)
    return Released(
        observation=released,
        partner=partner,
        agreement=agreement,
        agreement_version=agreement_version,
        rule=rule.id,
        transforms=tuple(words),
        not_before=not_before,
        grid_km=grid_km,
        warnings=tuple(warnings),
    )


RETRACTION_RULE: Final = "retraction-follows-release"
"""The rule a retraction notice is released under (see :func:`retraction_notice`)."""
RETRACTION_GRID_KM: Final = 100.0


def retraction_notice(
    observation: Observation,
    partner: str,
    own_party: str,
    *,
    agreement: str,
    agreement_version: int,
) -> Released:
    """A retraction for ``partner``, which was given an earlier version of the item, when the
    agreement in force no longer releases the item itself: the retraction must follow what was
    given, yet tell no more than that it is withdrawn. Position on a 100 km grid, platform class
    only, no remarks, kinematics or sensor; the originator's marking is kept."""
    notice = generalise_platform(observation)
    notice = drop_fields(notice, ("remarks", "kinematics", "source.sensor"))
    notice = coarsen(notice, RETRACTION_GRID_KM)
    words = (
        f"{own_party}: retraction notice under agreement {agreement} v{agreement_version}: "
        f"{COARSENED_WORDS.format(km=RETRACTION_GRID_KM)}, platform class only",
    )
    return _retraction_released(
        observation,
        notice,
        partner,
        own_party,
        agreement,
        agreement_version,
        words,
        grid_km=RETRACTION_GRID_KM,
    )


def retraction_passed_whole(
    observation: Observation,
    partner: str,
    own_party: str,
    *,
    agreement: str,
    agreement_version: int,
) -> Released:
    """A retraction of another origin's item for ``partner``, passed on unchanged (so with its
    origin's proof), when the agreement in force no longer releases the item but ``partner``
    holds an earlier version of it passed on unchanged, whose content it repeats: the partner
    keeps that version under the origin's id, which only the origin's own retraction reaches,
    and learns nothing it was not given."""
    return _retraction_released(
        observation, observation, partner, own_party, agreement, agreement_version, (), grid_km=None
    )


def _retraction_released(
    observation: Observation,
    sent: Observation,
    partner: str,
    own_party: str,
    agreement: str,
    agreement_version: int,
    words: tuple[str, ...],
    *,
    grid_km: float | None,
) -> Released:
    """``sent`` (``observation`` as it goes, ``words`` saying how it was changed, ``grid_km``
    its position's grid) released to ``partner`` under :data:`RETRACTION_RULE`, one hop further
    than ``observation``."""
    provenance = msgspec.structs.replace(
        sent.provenance,
        partner=own_party,
        batch=None,
        hops=hops_so_far(observation, own_party) + 1,
        transforms=(*sent.provenance.transforms, *words),
    )
    return Released(
        observation=msgspec.structs.replace(sent, provenance=provenance),
        partner=partner,
        agreement=agreement,
        agreement_version=agreement_version,
        rule=RETRACTION_RULE,
        transforms=words,
        not_before=None,
        grid_km=grid_km,
        warnings=(),
    )


def _coarsest(first: float | None, second: float | None) -> float | None:
    sizes = [size for size in (first, second) if size is not None]
    return max(sizes) if sizes else None


def generalise_platform(observation: Observation) -> Observation:
    """The platform told by class only: type, the source's label and hull numbers removed."""
    if observation.platform is None:
        return observation
    platform = msgspec.structs.replace(observation.platform, type=None, label=None, hull_numbers=())
    return msgspec.structs.replace(observation, platform=platform)


def drop_fields(observation: Observation, fields: Sequence[str]) -> Observation:
    """The observation without the named fields (:data:`~kuroshio.policy.agreement.DropField`)."""
    changes: dict[str, Any] = {}
    kinematics = observation.kinematics
    platform = observation.platform
    source = observation.source
    provenance = observation.provenance
    for name in fields:
        section, _, part = name.partition(".")
        if name == "remarks":
            changes["remarks"] = None
        elif name == "kinematics":
            kinematics = None
        elif section == "kinematics":
            if kinematics is not None:
                kinematics = msgspec.structs.replace(kinematics, **{part: None})
        elif section == "platform":
            if platform is not None:
                empty: Any = () if part == "hull_numbers" else None
                platform = msgspec.structs.replace(platform, **{part: empty})
        elif name == "source.sensor":
            source = msgspec.structs.replace(source, sensor="other")
        elif section == "provenance":
            provenance = msgspec.structs.replace(provenance, **{part: None})
        else:
            raise ValueError(f"{name!r} is not a field a rule may drop")
    return msgspec.structs.replace(
        observation,
        kinematics=kinematics,
        platform=platform,
        source=source,
        provenance=provenance,
        **changes,
    )


def coarsen(observation: Observation, grid_km: float) -> Observation:
    """The observation with its geometry on the grid, its stated uncertainty at least half a
    cell and ``provenance.grid_km`` the coarsest grid applied so far, so a receiver never reads
    more precision into it than was released."""
    source = observation.source
    floor_m = grid_km * 500.0
    if source.uncertainty_m < floor_m:
        source = msgspec.structs.replace(source, uncertainty_m=floor_m)
    provenance = observation.provenance
    earlier = provenance.released_grid_km
    if earlier is None or earlier < grid_km:
        provenance = msgspec.structs.replace(provenance, grid_km=float(grid_km))
    coarse = msgspec.structs.replace(
        observation,
        geometry=coarsen_geometry(observation.geometry, grid_km),
        source=source,
        provenance=provenance,
    )
    if isinstance(observation.approaches, tuple):
        # The line of a closest approach ends at the target: it is as precise as its position.
        approaches = tuple(
            msgspec.structs.replace(a, line=coarsen_geometry(a.line, grid_km))
            if a.line is not None
            else a
            for a in observation.approaches
        )
        coarse = msgspec.structs.replace(coarse, approaches=approaches)
    return coarse


def _set_marking(observation: Observation, transform: Transforms) -> Marking:
    change = transform.marking
    marking = observation.marking
    if change is None:
        return marking
    control = marking.control
    rerelease = change.rerelease
    if rerelease is None:
        # Naming whom it may go to is permission to pass it on.
        rerelease = True if change.rerelease_to else control.rerelease
    return Marking(
        tlp=change.tlp or marking.tlp,
        releasable_to=(
            change.releasable_to if change.releasable_to is not None else marking.releasable_to
        ),
        control=OriginatorControl(
            rerelease=rerelease,
            to=change.rerelease_to if change.rerelease_to is not None else control.to,
            max_hops=change.max_hops if change.max_hops is not None else control.max_hops,
        ),
    )


def describe_marking(marking: Marking) -> str:
    """A marking in a few words, e.g. ``TLP:AMBER, re-release to USA, 1 further hop``."""
    words = [f"TLP:{marking.tlp}"]
    if marking.releasable_to:
        words.append("releasable to " + ", ".join(marking.releasable_to))
    control = marking.control
    if not control.rerelease:
        words.append("no re-release")
    else:
        words.append("re-release to " + (", ".join(control.to) if control.to else "any party"))
        hops = control.max_hops
        words.append(f"{hops} further hop" + ("" if hops == 1 else "s"))
    return ", ".join(words)


def relay_refusal(observation: Observation, sender: str, receiver: str) -> str | None:
    """Why ``receiver`` must refuse an item that ``sender`` passes on from another origin (None:
    the sender is the origin, or the originator's marking allows this hop). The receiving side's
    check of the same originator control :func:`decide` applies at egress."""
    origin = observation.origin
    if origin == sender:
        return None
    marking = observation.marking
    control = marking.control
    if marking.tlp in ("RED", "AMBER+STRICT"):
        return f"TLP:{marking.tlp} items are never passed on"
    if marking.releasable_to and receiver not in marking.releasable_to:
        return f"marked releasable to {', '.join(marking.releasable_to)} only"
    if not control.rerelease:
        return f"the originator ({origin}) does not allow re-release"
    if control.to and receiver not in control.to:
        return f"the originator ({origin}) allows re-release to {', '.join(control.to)} only"
    hops = observation.provenance.hops
    if observation.provenance.partner != sender or hops < 2:
        return f"a relayed item must name {sender} as its releaser and count at least two hops"
    if hops - 1 > control.max_hops:
        return (
            f"{hops} hops; the originator ({origin}) allows {control.max_hops} beyond the first "
            "recipient"
        )
    return None
