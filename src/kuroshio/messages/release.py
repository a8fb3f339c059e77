"""What of a message may leave for a partner: the agreement in force with that partner decides,
as it does for observations. Default deny.

A message leaves only when an agreement with its recipient is in force and has at least one
releasing rule from this party to it; its TLP may be no more open-handed than those rules allow
(a message marked above every rule's ``tlp_at_most`` stays home). Every attached observation is
passed through :func:`~kuroshio.policy.decide`, and the message carries the item exactly as the
partner may have it (coarsened, delayed fields dropped…): a message never reveals more of an
item than the partner was given. An attachment the agreement withholds stops the message, with
the reason. Pure: no store, no clock.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from kuroshio.errors import MessageError
from kuroshio.messages.thread import Attachments, Message
from kuroshio.model import tlp_rank
from kuroshio.policy.agreement import EnforcedAgreement
from kuroshio.policy.decide import Released, decide
from kuroshio.policy.ledger import ReciprocityStatus


def _tlp_ceiling(agreement: EnforcedAgreement, sender: str, recipient: str) -> int | None:
    """The most open TLP any releasing rule lets through (None: no releasing rule at all)."""
    ranks = [
        tlp_rank(rule.match.tlp_at_most or "RED")
        for rule in agreement.agreement.rules(sender, recipient)
        if rule.action == "release"
    ]
    return max(ranks) if ranks else None


def release_message(
    message: Message,
    agreement: EnforcedAgreement | None,
    now: dt.datetime,
    *,
    own_party: str,
    ledger: ReciprocityStatus | None = None,
) -> Message:
    """``message`` as it may leave for its recipient under ``agreement`` (the one in force with
    it; None: none is); raises :class:`MessageError` saying why it may not."""
    partner = message.recipient
    where = f"message {message.id}"
    if message.sender != own_party:
        raise MessageError(where, f"only {own_party}'s own messages leave this node")
    if agreement is None:
        raise MessageError(where, f"no agreement with {partner} is in force")
    ceiling = _tlp_ceiling(agreement, own_party, partner)
    if ceiling is None:
        raise MessageError(
            where, f"agreement {agreement.id} releases nothing from {own_party} to {partner}"
        )
    if tlp_rank(message.tlp) > ceiling:
        raise MessageError(
            where, f"TLP:{message.tlp} is above what agreement {agreement.id} lets {partner} have"
        )
    attached = message.attachments.observations
    if not attached:
        return message
    released = []
    for observation in attached:
        decision = decide(observation, agreement, partner, ledger, now, own_party=own_party)
        if not isinstance(decision, Released):
            raise MessageError(
                where,
                f"attached {observation.id} v{observation.version} is withheld from {partner}: "
                f"{decision.reason}",
            )
        if decision.not_before is not None and decision.not_before > now:
            raise MessageError(
                where,
                f"attached {observation.id} v{observation.version} is held from {partner} "
                f"until {decision.not_before:%Y-%m-%dT%H:%M:%SZ}",
            )
        released.append(decision.observation)
    attachments = msgspec.structs.replace(message.attachments, observations=tuple(released))
    return msgspec.structs.replace(message, attachments=attachments)


__all__ = ["Attachments", "release_message"]
