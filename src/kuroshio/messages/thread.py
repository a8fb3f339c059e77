"""The records of the dialogue channel: one message, its attachments, its precedence and the
acknowledgement deadline that precedence sets, and the states a message passes through.

Types are the schema, as in :mod:`kuroshio.model`; nothing here stores, signs or sends.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal, TypeAlias, get_args

import msgspec

from kuroshio.messages.incident import Incident
from kuroshio.model import (
    MAX_ID,
    TLP,
    EventKind,
    Latitude,
    Longitude,
    Observation,
    PartyCode,
    Polygon,
    ShortText,
    Text,
    Timestamp,
    TrackId,
    canonical_bytes,
)

MessageKind: TypeAlias = Literal["rfi", "reply", "ack", "alert", "note"]
Precedence: TypeAlias = Literal["routine", "priority", "immediate", "flash"]
MessageState: TypeAlias = Literal["queued", "delivered", "read", "acked", "escalated"]
MESSAGE_KINDS: Final = frozenset(get_args(MessageKind))
PRECEDENCES: Final[tuple[str, ...]] = get_args(Precedence)

ACK_WITHIN: Final[dict[str, dt.timedelta]] = {
    "routine": dt.timedelta(hours=24),
    "priority": dt.timedelta(hours=4),
    "immediate": dt.timedelta(minutes=30),
    "flash": dt.timedelta(minutes=10),
}
"""How long a recipient has to acknowledge a message of each precedence before it is escalated
(the usual order-of-magnitude of military message handling: flash in minutes, routine a day)."""
MAX_ATTACHED: Final = 100
MessageId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_ID, pattern=r"^[A-Za-z0-9:._#-]+$")
]


class Attachments(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a message is about. Observations travel as the recipient may have them (already
    through the release policy, see :mod:`kuroshio.messages.release`), never as kept here."""

    observations: Annotated[tuple[Observation, ...], msgspec.Meta(max_length=MAX_ATTACHED)] = ()
    events: Annotated[tuple[ShortText, ...], msgspec.Meta(max_length=MAX_ATTACHED)] = ()
    tracks: Annotated[tuple[TrackId, ...], msgspec.Meta(max_length=MAX_ATTACHED)] = ()
    area: Polygon | None = None

    def refs(self) -> list[str]:
        """The attached items in words, for lists and the audit (ids, never positions)."""
        return [
            *(f"observation:{o.id}@{o.version}" for o in self.observations),
            *(f"event:{e}" for e in self.events),
            *(f"track:{t}" for t in self.tracks),
            *(["area"] if self.area is not None else []),
        ]


class Near(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Within ``within_km`` of a place (e.g. Yonaguni: 123.0, 24.47)."""

    place: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    lon: Longitude
    lat: Latitude
    within_km: Annotated[float, msgspec.Meta(gt=0.0, le=5_000.0)]


class StandingRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """ "Tell me when…": what a partner asks to be alerted of. Every criterion given must hold;
    the releasing side evaluates it against what the agreement lets that partner have."""

    event: EventKind | None = None
    """A derived event (``strait_transit``, ``median_line_crossing``, ``adiz_entry``…)."""
    zone: ShortText | None = None
    """The zone or gate of that event (e.g. ``gate-miyako``, ``median-line``)."""
    platform_class: Annotated[tuple[ShortText, ...], msgspec.Meta(max_length=20)] = ()
    """Any of these platform classes (e.g. ``carrier``, ``bomber``)."""
    near: Near | None = None
    until: Timestamp | None = None
    """The request lapses at this time (None: until cancelled)."""

    def __post_init__(self) -> None:
        if self.event is None and self.zone is None and not self.platform_class and not self.near:
            raise ValueError("a standing request needs at least one criterion")


class Message(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="message",
    tag_field="type",
):
    """One message of a thread, as its sender signs it and its recipient keeps it."""

    id: MessageId
    thread: MessageId
    """The id of the thread's first message (a new thread: the message's own id)."""
    in_reply_to: MessageId | None = None
    sender: PartyCode
    recipient: PartyCode
    kind: MessageKind
    precedence: Precedence = "routine"
    tlp: TLP = "AMBER"
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    body: Text = ""
    sent_at: Timestamp
    attachments: Attachments = msgspec.field(default_factory=Attachments)
    request: StandingRequest | None = None
    """Set on a standing request ("tell me when…"), which lasts until cancelled or ``until``."""
    cancels: MessageId | None = None
    """The standing request this message cancels."""

    @property
    def ack_deadline(self) -> dt.datetime:
        return ack_deadline(self.precedence, self.sent_at)

    @property
    def wants_ack(self) -> bool:
        """Acknowledgements and replies close a question; they are not themselves acked."""
        return self.kind not in ("ack", "reply")


class StateChange(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="state",
    tag_field="type",
):
    """Recipient → sender: a message was read or acknowledged (travels back on the link)."""

    message: MessageId
    state: Literal["read", "acked"]
    by: PartyCode
    at: Timestamp


class DialogueItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A batch item of the dialogue channel. Its canonical bytes begin with
    :data:`DIALOGUE_PREFIX`, which no observation's do (an observation has no field named
    ``dialogue``), so a receiver tells the two apart before decoding."""

    dialogue: Message | StateChange | Incident


DIALOGUE_PREFIX: Final = b'{"dialogue":'


def is_dialogue(item: bytes) -> bool:
    return item.startswith(DIALOGUE_PREFIX)


def ack_deadline(precedence: str, sent_at: dt.datetime) -> dt.datetime:
    return sent_at + ACK_WITHIN[precedence]


def is_overdue(message: Message, state: str, now: dt.datetime) -> bool:
    """True when ``message`` wants an acknowledgement, has none and its deadline has passed."""
    return (
        message.wants_ack
        and state in ("queued", "delivered", "read")
        and (now >= message.ack_deadline)
    )


def later_state(current: str, new: str) -> str:
    """States only move forward (a late ``read`` never undoes an ``acked``); escalation is
    left behind by the acknowledgement that answers it."""
    order = {"queued": 0, "delivered": 1, "read": 2, "escalated": 2, "acked": 3}
    return new if order[new] >= order[current] else current


_decoder = msgspec.json.Decoder(Message)
_item_decoder = msgspec.json.Decoder(DialogueItem)


def message_bytes(message: Message) -> bytes:
    """The canonical bytes of a message, as signed and stored."""
    return canonical_bytes(message)


def decode_message(data: bytes) -> Message:
    return _decoder.decode(data)


def item_bytes(record: Message | StateChange | Incident) -> bytes:
    """The batch item carrying ``record`` (canonical, as signed)."""
    return canonical_bytes(_item_decoder.decode(canonical_bytes(DialogueItem(dialogue=record))))


def decode_item(data: bytes) -> Message | StateChange | Incident:
    """A dialogue batch item; raises :class:`msgspec.DecodeError` or
    :class:`msgspec.ValidationError` saying what is wrong."""
    return _item_decoder.decode(data).dialogue


__all__ = [
    "ACK_WITHIN",
    "DIALOGUE_PREFIX",
    "MESSAGE_KINDS",
    "PRECEDENCES",
    "Attachments",
    "DialogueItem",
    "Message",
    "MessageKind",
    "MessageState",
    "Near",
    "Precedence",
    "StandingRequest",
    "StateChange",
    "ack_deadline",
    "decode_item",
    "decode_message",
    "is_dialogue",
    "is_overdue",
    "item_bytes",
    "later_state",
    "message_bytes",
]
