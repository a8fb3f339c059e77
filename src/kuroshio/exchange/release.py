"""Release at egress: every newly stored observation, for every pinned partner, through
:func:`kuroshio.policy.decide` under the agreement in force with that partner.

Released items (transformed) go to the partner's outbox with the time before which they may not
leave; withheld items are counted with their reasons. The result is one bounded summary per call,
for the audit entry of the transaction. Default deny: no agreement in force, nothing leaves.
An item passed on unchanged from another origin takes that origin's proof with it. This module
decides nothing itself and talks to no one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

import msgspec

from kuroshio.exchange.outbox import wire_bytes
from kuroshio.exchange.proofs import ProofFinder, content_bytes, encode_proof
from kuroshio.model import Observation
from kuroshio.policy.agreement import EnforcedAgreement
from kuroshio.policy.decide import (
    Released,
    Withheld,
    decide,
    retraction_notice,
    retraction_passed_whole,
    withholds_every_item,
)
from kuroshio.policy.ledger import ReciprocityStatus
from kuroshio.policy.reciprocity import given_fields
from kuroshio.store.outbox import QueuedItem
from kuroshio.store.sql import micros
from kuroshio.store.transaction import Transaction

MAX_LISTED_ITEMS: Final = 20
"""Item ids an audit summary lists per rule or reason (the counts are always complete)."""


class RuleCount(msgspec.Struct, kw_only=True):
    """Items one rule released to one partner in one transaction."""

    rule: str
    index: int
    """Position of the rule among the agreement's rules for this direction (1 = first)."""
    count: int = 0
    transforms: list[str] = msgspec.field(default_factory=list)
    held_until: str | None = None
    """The latest ``not_before`` among these items (ISO 8601), when a delay holds any back."""
    items: list[str] = msgspec.field(default_factory=list)


class WithheldCount(msgspec.Struct, kw_only=True):
    """Items withheld from one partner for one reason code."""

    code: str
    count: int = 0
    reason: str = ""
    """The reason given for the first of them."""
    rule: str | None = None
    items: list[str] = msgspec.field(default_factory=list)


class PartnerRelease(msgspec.Struct, kw_only=True):
    """What one transaction released to and withheld from one partner, and under what."""

    agreement: str | None = None
    agreement_version: int | None = None
    digest: str | None = None
    released: dict[str, RuleCount] = msgspec.field(default_factory=dict)
    withheld: dict[str, WithheldCount] = msgspec.field(default_factory=dict)
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def released_count(self) -> int:
        return sum(rule.count for rule in self.released.values())


class ReleaseSummary(msgspec.Struct, kw_only=True):
    """What one store call released, per partner."""

    partners: dict[str, PartnerRelease] = msgspec.field(default_factory=dict)
    decided: int = 0
    """Observations decided (each for every partner)."""

    @property
    def released(self) -> dict[str, int]:
        """Items released per partner."""
        return {party: p.released_count for party, p in self.partners.items()}

    @property
    def withheld(self) -> dict[str, dict[str, int]]:
        """Items withheld per partner and reason code (partners with none left out)."""
        return {
            party: {code: w.count for code, w in p.withheld.items()}
            for party, p in self.partners.items()
            if p.withheld
        }

    def audit_details(self) -> dict[str, object]:
        """The ``decision`` audit entry: per partner, agreement, rules and reasons, bounded."""
        return {
            "decided": self.decided,
            "partners": {
                party: msgspec.to_builtins(
                    {
                        "agreement": p.agreement,
                        "agreement_version": p.agreement_version,
                        "digest": p.digest,
                        "released": list(p.released.values()),
                        "withheld": list(p.withheld.values()),
                        "warnings": p.warnings,
                    }
                )
                for party, p in sorted(self.partners.items())
            },
        }


def _rule_index(agreement: EnforcedAgreement, own_party: str, partner: str) -> dict[str, int]:
    rules = agreement.agreement.rules(own_party, partner)
    return {rule.id: position for position, rule in enumerate(rules, start=1)}


def _note_released(entry: PartnerRelease, decision: Released, index: int, now: dt.datetime) -> None:
    counted = entry.released.get(decision.rule)
    if counted is None:
        counted = entry.released[decision.rule] = RuleCount(
            rule=decision.rule, index=index, transforms=list(decision.transforms)
        )
    counted.count += 1
    if decision.not_before is not None and decision.not_before > now:
        until = decision.not_before.isoformat()
        if counted.held_until is None or until > counted.held_until:
            counted.held_until = until
    if len(counted.items) < MAX_LISTED_ITEMS:
        counted.items.append(f"{decision.observation.id} v{decision.observation.version}")
    for warning in decision.warnings:
        if warning not in entry.warnings and len(entry.warnings) < MAX_LISTED_ITEMS:
            entry.warnings.append(warning)


def _note_withheld(entry: PartnerRelease, decision: Withheld) -> None:
    _count_withheld(
        entry, decision.code, decision.reason, decision.rule, decision.item, decision.version
    )


def _count_withheld(
    entry: PartnerRelease, code: str, reason: str, rule: str | None, item: str, version: int
) -> None:
    counted = entry.withheld.get(code)
    if counted is None:
        counted = entry.withheld[code] = WithheldCount(code=code, reason=reason[:500], rule=rule)
    counted.count += 1
    if len(counted.items) < MAX_LISTED_ITEMS:
        counted.items.append(f"{item} v{version}")


def release_in(
    tx: Transaction,
    observations: Sequence[Observation],
    partners: Iterable[str],
    *,
    agreement_for: Callable[[str], EnforcedAgreement | None],
    reciprocity: Mapping[str, ReciprocityStatus],
    own_party: str,
    now: dt.datetime,
) -> ReleaseSummary:
    """Decide each observation for each partner; queue what is released (inside the caller's
    transaction) and return the summary. ``agreement_for(partner)`` is the agreement in force
    (None: none, so nothing is released); ``reciprocity`` the partners' judged standing."""
    summary = ReleaseSummary(decided=len(observations))
    if not observations:
        return summary
    queued: list[QueuedItem] = []
    relayed = _RelayedProofs(tx, own_party)
    for party in partners:
        agreement = agreement_for(party)
        entry = summary.partners[party] = PartnerRelease()
        indexes: dict[str, int] = {}
        if agreement is not None:
            entry.agreement = agreement.id
            entry.agreement_version = agreement.version
            entry.digest = agreement.digest
            indexes = _rule_index(agreement, own_party, party)
        status = reciprocity.get(party)
        # Nothing can be released to this partner: each item's refusal, without deciding it.
        # A retraction is still decided, to withdraw what was given of it.
        refusal = withholds_every_item(agreement, party, now, own_party=own_party)
        for observation in observations:
            if refusal is not None and (agreement is None or not observation.retracted):
                code, reason = refusal(observation)
                _count_withheld(entry, code, reason, None, observation.id, observation.version)
                continue
            decision: Released | Withheld = decide(
                observation, agreement, party, status, now, own_party=own_party
            )
            if (
                isinstance(decision, Withheld)
                and observation.retracted
                and agreement is not None
                and _given_before(tx, party, observation.id)
            ):
                # What was given must be withdrawable whatever the agreement now releases: by
                # the origin's own retraction where the partner holds the item under the
                # origin's id and the retraction tells nothing more; otherwise by a notice.
                follow = (
                    retraction_passed_whole
                    if _repeats_a_version_given_whole(tx, party, observation, own_party)
                    else retraction_notice
                )
                decision = follow(
                    observation,
                    party,
                    own_party,
                    agreement=agreement.id,
                    agreement_version=agreement.version,
                )
            if isinstance(decision, Withheld):
                _note_withheld(entry, decision)
                continue
            _note_released(entry, decision, indexes.get(decision.rule, 0), now)
            released = decision.observation
            not_before = decision.not_before
            item = wire_bytes(released)
            queued.append(
                (
                    party,
                    released.id,
                    released.version,
                    item,
                    None if not_before is None or not_before <= now else micros(not_before),
                    relayed.proof_for(observation, item),
                    None if agreement is None else agreement.digest,
                    given_fields(released),
                )
            )
    tx.outbox.queue(queued)
    return summary


def _given_before(tx: Transaction, partner: str, item: str) -> bool:
    """Whether ``partner`` was given (or has waiting in the outbox) any version of ``item``."""
    return tx.ledger.given(partner, item) or tx.outbox.holds(partner, item)


def _repeats_a_version_given_whole(
    tx: Transaction, partner: str, retraction: Observation, own_party: str
) -> bool:
    """Whether ``retraction``, of another origin's item, repeats the content of a version of it
    that ``partner`` was given (or has waiting) passed on unchanged with the origin's proof, all
    but its version and the retraction itself."""
    if retraction.origin == own_party:
        return False
    versions = {
        *tx.ledger.versions_given_whole(partner, retraction.id),
        *tx.outbox.versions_with_proof(partner, retraction.id),
    }
    for version in sorted(versions):
        earlier = tx.observations.get(retraction.id, version)
        if earlier is None:
            continue
        repeated = msgspec.structs.replace(retraction, version=version, retracted=earlier.retracted)
        if content_bytes(repeated) == content_bytes(earlier):
            return True
    return False


class _RelayedProofs:
    """The origin's proof to send with each item this node passes on unchanged, looked up once
    per item. An item the relay transformed goes without it: the proof would show the original."""

    def __init__(self, tx: Transaction, own_party: str) -> None:
        self._own_party = own_party
        self._finder: ProofFinder | None = None
        self._tx = tx
        self._found: dict[tuple[str, int], tuple[bytes, bytes] | None] = {}

    def proof_for(self, observation: Observation, item: bytes) -> bytes | None:
        """The encoded origin proof for ``item`` (``observation`` as released), if it has one."""
        if observation.origin == self._own_party:
            return None
        key = (observation.id, observation.version)
        if key not in self._found:
            if self._finder is None:
                self._finder = ProofFinder(self._tx)
            proof = self._finder.origin_proof(observation)
            self._found[key] = (
                None
                if proof is None
                else (content_bytes(_item_decoder.decode(proof.item)), encode_proof(proof))
            )
        found = self._found[key]
        if found is None or found[0] != content_bytes(_item_decoder.decode(item)):
            return None
        return found[1]


_item_decoder = msgspec.json.Decoder(Observation)


__all__ = ["MAX_LISTED_ITEMS", "PartnerRelease", "ReleaseSummary", "release_in"]
