"""The dialogue channel's unit of work: send a message (released under the agreement, kept,
queued on the partner's link, audited), take in what a partner sent, mark a message read or
acknowledged (the state travels back to its sender), and escalate what is overdue.

Every function works inside the caller's transaction; the rows are :mod:`kuroshio.store`'s and
the messages travel in the link's own batches (see :mod:`kuroshio.exchange.outbox`). Nothing here
opens a socket.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

import msgspec

from kuroshio.audit import AuditLog
from kuroshio.errors import MessageError
from kuroshio.geo.events import derive_events
from kuroshio.messages.incident import Incident
from kuroshio.messages.release import release_message
from kuroshio.messages.requests import alert_id, matches
from kuroshio.messages.thread import (
    ACK_WITHIN,
    Attachments,
    Message,
    StateChange,
    decode_item,
    decode_message,
    item_bytes,
    later_state,
    message_bytes,
)
from kuroshio.model import Event, Observation, canonical_bytes
from kuroshio.policy.agreement import EnforcedAgreement
from kuroshio.store.messages import MessageRow
from kuroshio.store.sql import micros, utc_time
from kuroshio.store.transaction import Transaction

AgreementFor = Callable[[str], EnforcedAgreement | None]
"""The agreement in force with a partner now (None: none is)."""
MAX_ESCALATIONS_PER_PASS: Final = 1_000


class Kept(msgspec.Struct, frozen=True, kw_only=True):
    """A message as this node keeps it, and where it stands."""

    message: Message
    direction: str
    partner: str
    state: str
    deadline: dt.datetime | None
    escalations: int
    updated_at: dt.datetime

    def as_builtins(self) -> dict[str, object]:
        """As JSON builtins: the shape of ``kuroshio msg … --json`` and the API."""
        return {
            "message": msgspec.to_builtins(self.message),
            "direction": self.direction,
            "partner": self.partner,
            "state": self.state,
            "deadline": None if self.deadline is None else self.deadline.isoformat(),
            "escalations": self.escalations,
            "updated_at": self.updated_at.isoformat(),
        }


_incident_decoder = msgspec.json.Decoder(Incident)


def incident_bytes(incident: Incident) -> bytes:
    return canonical_bytes(incident)


def decode_incident(data: bytes) -> Incident:
    return _incident_decoder.decode(data)


def new_id(party: str) -> str:
    """A fresh message id in ``party``'s id space."""
    return f"{party}:msg:{uuid.uuid4().hex}"


def kept(row: MessageRow) -> Kept:
    return Kept(
        message=decode_message(row.body),
        direction=row.direction,
        partner=row.partner,
        state=row.state,
        deadline=None if row.deadline is None else utc_time(row.deadline),
        escalations=row.escalations,
        updated_at=utc_time(row.updated_at),
    )


class Draft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A message as an operator writes it: attachments named, not yet looked up."""

    recipient: str
    subject: str
    kind: str = "rfi"
    body: str = ""
    precedence: str = "routine"
    tlp: str = "AMBER"
    in_reply_to: str | None = None
    observations: Sequence[str] = ()
    """``ID`` or ``ID@VERSION`` of items kept here (the current version when none is named)."""
    events: Sequence[str] = ()
    tracks: Sequence[str] = ()
    area: Sequence[Sequence[float]] | None = None
    """A ring of ``[lon, lat]`` positions, closed or not."""
    request: dict[str, object] | None = None
    """A standing request's criteria (see :class:`~kuroshio.messages.thread.StandingRequest`)."""
    cancels: str | None = None


def _attached(tx: Transaction, refs: Sequence[str]) -> list[object]:
    found = []
    for ref in refs:
        obs_id, _, version = ref.partition("@")
        if version and not version.isdigit():
            raise MessageError(f"observation {ref!r}", "the version is not a number")
        observation = tx.observations.get(obs_id, int(version) if version else None)
        if observation is None:
            raise MessageError(f"observation {ref!r}", "no such item on this node")
        found.append(msgspec.to_builtins(observation))
    return found


def compose(tx: Transaction, draft: Draft, *, sender: str, now: dt.datetime) -> Message:
    """The message ``draft`` describes, sent by ``sender`` at ``now``: a fresh id, the thread of
    the message it answers, its attachments looked up here. Raises :class:`MessageError` naming
    the field that is wrong."""
    message_id = new_id(sender)
    thread = message_id
    if draft.in_reply_to is not None:
        thread = show(tx, draft.in_reply_to).message.thread
    area = None
    if draft.area is not None:
        ring = [list(position) for position in draft.area]
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        area = {"type": "Polygon", "coordinates": [ring]}
    values = {
        "id": message_id,
        "thread": thread,
        "in_reply_to": draft.in_reply_to,
        "sender": sender,
        "recipient": draft.recipient,
        "kind": draft.kind,
        "precedence": draft.precedence,
        "tlp": draft.tlp,
        "subject": draft.subject,
        "body": draft.body,
        "sent_at": now.isoformat(),
        "attachments": {
            "observations": _attached(tx, draft.observations),
            "events": list(draft.events),
            "tracks": list(draft.tracks),
            "area": area,
        },
        "request": draft.request,
        "cancels": draft.cancels,
    }
    try:
        return msgspec.convert(values, Message)
    except msgspec.ValidationError as error:
        raise MessageError("message", str(error)) from None


def _queue(tx: Transaction, partner: str, key: str, item: bytes, agreement: str) -> None:
    tx.outbox.queue([(partner, key, 1, item, None, None, agreement, None)])


def send(
    tx: Transaction,
    message: Message,
    agreement: EnforcedAgreement | None,
    now: dt.datetime,
    *,
    own_party: str,
    audit: AuditLog,
    ack_within: Mapping[str, dt.timedelta] | None = None,
) -> Message:
    """Release ``message`` under ``agreement`` (the one in force with its recipient), keep it,
    queue it on the recipient's link and audit it; the message as it left. Raises
    :class:`MessageError` (nothing kept) when it may not leave or its id is taken."""
    released = release_message(message, agreement, now, own_party=own_party)
    assert agreement is not None  # release_message refuses without one
    if message.in_reply_to is not None and tx.messages.get(message.in_reply_to) is None:
        raise MessageError(f"message {message.id}", f"no message {message.in_reply_to} here")
    deadline = (
        micros(released.sent_at + _window(released.precedence, ack_within))
        if released.wants_ack
        else None
    )
    row = MessageRow(
        id=released.id,
        direction="out",
        partner=released.recipient,
        thread=released.thread,
        kind=released.kind,
        precedence=released.precedence,
        sent_at=micros(released.sent_at),
        deadline=deadline,
        state="queued",
        escalations=0,
        updated_at=micros(now),
        body=message_bytes(released),
    )
    if not tx.messages.put(row):
        raise MessageError(f"message {message.id}", "a message with this id is kept already")
    _queue(tx, released.recipient, released.id, item_bytes(released), agreement.digest)
    if released.in_reply_to is not None:
        _answered(tx, released, now)
    if released.request is not None:
        tx.requests.put(released.id, own_party, released.recipient, micros(now), row.body)
    if released.cancels is not None:
        _cancel(tx, released.cancels, owner=own_party, now=now)
    audit.append(
        tx,
        "message",
        f"send {released.id}",
        {
            "partner": released.recipient,
            "thread": released.thread,
            "kind": released.kind,
            "precedence": released.precedence,
            "tlp": released.tlp,
            "agreement": agreement.id,
            "agreement_version": agreement.version,
            "attachments": released.attachments.refs(),
        },
    )
    return released


def _window(precedence: str, ack_within: Mapping[str, dt.timedelta] | None) -> dt.timedelta:
    """How long a message of ``precedence`` waits for its acknowledgement (this party's own
    setting where it has one)."""
    return (ack_within or {}).get(precedence, ACK_WITHIN[precedence])


def _answered(tx: Transaction, answer: Message, now: dt.datetime) -> None:
    """A reply or acknowledgement from here acknowledges the message it answers."""
    asked = tx.messages.get(answer.in_reply_to or "")
    if asked is not None and asked.direction == "in" and answer.kind in ("reply", "ack"):
        tx.messages.set_state(asked.id, later_state(asked.state, "acked"), micros(now))


def delivered(tx: Transaction, items: Iterable[bytes], now: dt.datetime) -> None:
    """The partner signed for a batch holding ``items``: its messages are delivered."""
    for item in items:
        record = decode_item(item)
        if isinstance(record, Message):
            row = tx.messages.get(record.id)
            if row is not None and row.direction == "out":
                tx.messages.set_state(row.id, later_state(row.state, "delivered"), micros(now))


def share_incident(
    tx: Transaction,
    incident: Incident,
    civil_for: AgreementFor,
    now: dt.datetime,
    *,
    own_party: str,
    audit: AuditLog,
) -> Incident:
    """Keep a new version of ``incident`` (made here) and send it to every other party working
    it, each under the civil agreement in force with it; audited. Raises
    :class:`MessageError` (nothing kept) when a party has no civil agreement with this node or
    the version is kept already."""
    where = f"incident {incident.id}"
    if incident.updated_by != own_party:
        raise MessageError(where, f"only {own_party}'s own updates leave this node")
    others = [party for party in incident.parties() if party != own_party]
    governing = {party: civil_for(party) for party in others}
    missing = sorted(party for party, agreement in governing.items() if agreement is None)
    if missing:
        raise MessageError(where, f"no civil agreement with {', '.join(missing)} is in force")
    body = incident_bytes(incident)
    if not tx.incidents.put(
        incident.id, incident.version, incident.opened_by, incident.status, micros(now), body
    ):
        raise MessageError(where, f"version {incident.version} is kept already")
    item = item_bytes(incident)
    for party, agreement in governing.items():
        assert agreement is not None
        _queue(tx, party, f"{incident.id}#v{incident.version}", item, agreement.digest)
    audit.append(
        tx,
        "incident",
        f"{'open' if incident.version == 1 else incident.status} {incident.id} v{incident.version}",
        {
            "kind": incident.kind,
            "status": incident.status,
            "shared_with": others,
            "agreements": {p: a.id for p, a in governing.items() if a is not None},
            "sitreps": len(incident.sitreps),
            "assets": len(incident.assets),
        },
    )
    return incident


def incidents(tx: Transaction, limit: int = 1_000) -> list[Incident]:
    """The newest version of every incident kept here, most recently updated first."""
    return [decode_incident(body) for body in tx.incidents.current(limit)]


def incident(tx: Transaction, incident_id: str) -> Incident:
    body = tx.incidents.latest(incident_id)
    if body is None:
        raise MessageError(f"incident {incident_id}", "no such incident here")
    return decode_incident(body)


def _take_incident(tx: Transaction, record: Incident, partner: str, own_party: str) -> bool:
    """Keep a version a partner sent, when both it and this node work the incident."""
    if partner not in record.parties() or own_party not in record.parties():
        return False
    return bool(
        tx.incidents.put(
            record.id,
            record.version,
            record.opened_by,
            record.status,
            micros(record.updated_at),
            incident_bytes(record),
        )
    )


def take_in(
    tx: Transaction,
    records: Sequence[Message | StateChange | Incident],
    partner: str,
    now: dt.datetime,
    *,
    audit: AuditLog,
    batch: str,
) -> tuple[int, int]:
    """Keep what ``partner`` sent in one dialogue batch (checked by the batch layer: each
    record is the partner's own and, for a message, addressed here); (new, already kept)."""
    new = unchanged = 0
    details: list[str] = []
    for record in records:
        if isinstance(record, Incident):
            if _take_incident(tx, record, partner, audit.party):
                new += 1
                audit.append(
                    tx,
                    "incident",
                    f"receive {record.id} v{record.version}",
                    {"partner": partner, "status": record.status, "batch": batch},
                )
            else:
                unchanged += 1
            continue
        if isinstance(record, StateChange):
            changed = _state_from_partner(tx, record, partner)
            new, unchanged = (new + 1, unchanged) if changed else (new, unchanged + 1)
            details.append(f"{record.state} {record.message}")
            continue
        row = MessageRow(
            id=record.id,
            direction="in",
            partner=partner,
            thread=record.thread,
            kind=record.kind,
            precedence=record.precedence,
            sent_at=micros(record.sent_at),
            deadline=micros(record.ack_deadline) if record.wants_ack else None,
            state="delivered",
            escalations=0,
            updated_at=micros(now),
            body=message_bytes(record),
        )
        if tx.messages.put(row):
            new += 1
            details.append(f"{record.kind} {record.id}")
            if record.request is not None:
                tx.requests.put(record.id, partner, partner, micros(now), row.body)
            if record.cancels is not None:
                _cancel(tx, record.cancels, owner=partner, now=now)
            if record.in_reply_to is not None and record.kind in ("reply", "ack"):
                asked = tx.messages.get(record.in_reply_to)
                if asked is not None and asked.direction == "out" and asked.partner == partner:
                    tx.messages.set_state(asked.id, later_state(asked.state, "acked"), micros(now))
        else:
            unchanged += 1
    if details:
        audit.append(
            tx, "message", f"receive {batch}", {"partner": partner, "records": details[:100]}
        )
    return new, unchanged


def _cancel(tx: Transaction, request_id: str, *, owner: str, now: dt.datetime) -> None:
    """Cancel a standing request, when ``owner`` is the party that made it."""
    if any(row[0] == request_id for row in tx.requests.active(owner)):
        tx.requests.cancel(request_id, micros(now))
    else:
        raise MessageError(f"request {request_id}", f"no standing request of {owner} here")


def answer_requests(
    tx: Transaction,
    observations: Sequence[Observation],
    now: dt.datetime,
    agreement_for: AgreementFor,
    *,
    own_party: str,
    audit: AuditLog,
    ack_within: Mapping[str, dt.timedelta] | None = None,
    steps: Sequence[Event] = (),
) -> list[Message]:
    """Alert each partner whose standing request one of ``observations`` answers, with the item
    attached as the agreement lets that partner have it (an item the agreement withholds gives
    no alert). One alert per request and item (or source track); the alerts sent. ``steps``:
    the events a live track's updates derived step by step (a transit made of point updates),
    each counted for the update it ends on."""
    asked = [row for row in tx.requests.active() if row[1] != own_party]
    if not asked or not observations:
        return []
    events: dict[int, list[Event]] = {}
    stepped: dict[tuple[str, int], list[Event]] = {}
    for step in steps:
        for key in step.observations[-1:]:
            stepped.setdefault(key, []).append(step)
    sent = []
    for request_id, partner, _, body in asked:
        question = decode_message(body)
        agreement = agreement_for(partner)
        if question.request is None or agreement is None:
            continue
        for position, observation in enumerate(observations):
            if position not in events:
                events[position] = derive_events(observation) + stepped.get(
                    (observation.id, observation.version), []
                )
            answer = matches(question.request, observation, now, events[position])
            alert = alert_id(own_party, request_id, observation)
            if answer is False or tx.messages.get(alert) is not None:
                continue
            event = answer if isinstance(answer, Event) else None
            what = f"{event.kind} {event.zone}" if event is not None else "a match"
            message = Message(
                id=alert,
                thread=question.thread,
                in_reply_to=request_id,
                sender=own_party,
                recipient=partner,
                kind="alert",
                precedence=question.precedence,
                tlp=question.tlp,
                subject=f"{what}: {observation.id}"[:200],
                sent_at=now,
                attachments=Attachments(
                    observations=(observation,),
                    events=(event.id,) if event is not None else (),
                ),
            )
            try:
                sent.append(
                    send(
                        tx,
                        message,
                        agreement,
                        now,
                        own_party=own_party,
                        audit=audit,
                        ack_within=ack_within,
                    )
                )
            except MessageError:
                continue  # the agreement does not let this partner have the item: no alert
    return sent


def _state_from_partner(tx: Transaction, change: StateChange, partner: str) -> bool:
    row = tx.messages.get(change.message)
    if row is None or row.direction != "out" or row.partner != partner:
        return False
    state = later_state(row.state, change.state)
    if state == row.state:
        return False
    tx.messages.set_state(row.id, state, micros(change.at))
    return True


def mark(
    tx: Transaction,
    message_id: str,
    state: str,
    agreement: EnforcedAgreement | None,
    now: dt.datetime,
    *,
    own_party: str,
    audit: AuditLog,
) -> Kept:
    """Mark a received message ``read`` or ``acked`` here and tell its sender (on the link,
    under the agreement in force with it); the message as kept now."""
    row = tx.messages.get(message_id)
    if row is None or row.direction != "in":
        raise MessageError(f"message {message_id}", "no message received with this id")
    if agreement is None:
        raise MessageError(
            f"message {message_id}", f"no agreement with {row.partner} is in force to answer"
        )
    new_state = later_state(row.state, state)
    if new_state != row.state:
        tx.messages.set_state(row.id, new_state, micros(now))
        change = StateChange(
            message=row.id, state="acked" if state == "acked" else "read", by=own_party, at=now
        )
        _queue(tx, row.partner, f"{row.id}#{change.state}", item_bytes(change), agreement.digest)
        audit.append(
            tx, "message", f"{change.state} {row.id}", {"partner": row.partner, "state": new_state}
        )
    updated = tx.messages.get(message_id)
    assert updated is not None
    return kept(updated)


def escalate_overdue(
    tx: Transaction,
    now: dt.datetime,
    agreement_for: AgreementFor,
    *,
    audit: AuditLog,
    ack_within: Mapping[str, dt.timedelta] | None = None,
) -> list[Kept]:
    """Escalate every message sent from here that is past its acknowledgement deadline: marked
    ``escalated``, given a new deadline, sent again (the partner keeps it once) and audited."""
    escalated = []
    for row in tx.messages.overdue(micros(now), MAX_ESCALATIONS_PER_PASS):
        message = decode_message(row.body)
        deadline = now + _window(message.precedence, ack_within)
        tx.messages.escalate(row.id, micros(deadline), micros(now))
        agreement = agreement_for(row.partner)
        resent = agreement is not None
        if agreement is not None:
            _queue(tx, row.partner, row.id, item_bytes(message), agreement.digest)
        audit.append(
            tx,
            "message",
            f"escalate {row.id}",
            {
                "partner": row.partner,
                "precedence": message.precedence,
                "deadline_was": utc_time(row.deadline or 0).isoformat(),
                "escalations": row.escalations + 1,
                "resent": resent,
            },
        )
        updated = tx.messages.get(row.id)
        assert updated is not None
        escalated.append(kept(updated))
    return escalated


def requests(tx: Transaction) -> list[dict[str, object]]:
    """Every standing request kept here (made here or of this node), oldest first."""
    return [
        {
            "id": request_id,
            "owner": owner,
            "partner": partner,
            "created_at": utc_time(created).isoformat(),
            "cancelled_at": None if cancelled is None else utc_time(cancelled).isoformat(),
            "request": msgspec.to_builtins(decode_message(body).request),
        }
        for request_id, owner, partner, created, cancelled, body in tx.requests.all()
    ]


def listing(
    tx: Transaction,
    *,
    partner: str | None = None,
    thread: str | None = None,
    state: str | None = None,
    limit: int = 1_000,
) -> list[Kept]:
    return [
        kept(row)
        for row in tx.messages.listing(partner=partner, thread=thread, state=state, limit=limit)
    ]


def show(tx: Transaction, message_id: str) -> Kept:
    row = tx.messages.get(message_id)
    if row is None:
        raise MessageError(f"message {message_id}", "no such message here")
    return kept(row)


__all__ = [
    "AgreementFor",
    "Draft",
    "Kept",
    "answer_requests",
    "compose",
    "delivered",
    "escalate_overdue",
    "incident",
    "incidents",
    "kept",
    "listing",
    "mark",
    "new_id",
    "requests",
    "send",
    "share_incident",
    "show",
    "take_in",
]
