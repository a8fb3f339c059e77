"""The messages of one link, as MessagePack frames, and the refusals a receiver can answer with.

A link is one direction between two parties. The sender opens it with ``Hello``; the receiver
answers ``Welcome`` (where its inbox stands, and the receipts the sender may have missed); then
the sender streams ``BatchFrame``s and the receiver answers each with a ``SignedReceipt`` or, once,
a ``Refusal`` before closing. This module encodes and decodes; it verifies nothing.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from kuroshio.errors import KuroshioError
from kuroshio.merkle import InclusionProof
from kuroshio.model import PartyCode

PROTOCOL: Final = "kuroshio-link/1"
MAX_BATCH_ITEMS: Final = 1_000
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
MAX_WELCOME_RECEIPTS: Final = 1_000

RefusalCode = Literal[
    "malformed",  # not MessagePack, or not the message expected here
    "unexpected",  # a valid message at the wrong moment
    "not_pinned",  # certificate or party not pinned on this node
    "wrong_link",  # the batch names another sender or receiver
    "bad_signature",  # the origin signature does not verify with the pinned key
    "bad_merkle_root",  # the items do not hash to the signed root
    "too_many_items",
    "frame_too_big",
    "invalid_item",  # an item does not decode or validate as an Observation
    "non_canonical_item",  # an item is not in canonical encoding
    "foreign_origin",  # an item from another origin whose marking does not allow this hop
    "replayed",  # a batch older than the last one received
    "out_of_order",  # a gap in the sequence
    "chain_broken",  # prev_hash does not name the last batch received
    "diverged",  # the two sides disagree about the link's history
    "bad_origin_proof",  # a relayed item's origin proof does not check out
    "own_origin",  # an item that claims the receiver as its origin
    "revoked",  # the sender's key was revoked on this node
]

Digest = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class Hello(msgspec.Struct, frozen=True, kw_only=True, tag="hello", tag_field="type"):
    """Sender → receiver, first: who speaks, to whom, and the last receipt it holds."""

    protocol: str
    sender: PartyCode
    receiver: PartyCode
    acked_seq: Annotated[int, msgspec.Meta(ge=0)]


class SignedReceipt(msgspec.Struct, frozen=True, kw_only=True, tag="receipt", tag_field="type"):
    """Receiver → sender: receipt bytes (see :mod:`kuroshio.exchange.receipt`) and signature."""

    receipt: Annotated[bytes, msgspec.Meta(max_length=4_096)]
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


class Welcome(msgspec.Struct, frozen=True, kw_only=True, tag="welcome", tag_field="type"):
    """Receiver → sender, after Hello: where the inbox of this link stands."""

    last_seq: Annotated[int, msgspec.Meta(ge=0)]
    last_hash: Digest
    receipts: Annotated[list[SignedReceipt], msgspec.Meta(max_length=MAX_WELCOME_RECEIPTS)]
    """Receipts for batches after the sender's ``acked_seq``, oldest first."""


class ItemProof(msgspec.Struct, frozen=True, kw_only=True):
    """One item as its origin signed it: the item's bytes, the origin's signed batch header and
    the item's Merkle inclusion path. Checks out with the origin's key alone, wherever it is."""

    item: Annotated[bytes, msgspec.Meta(max_length=MAX_FRAME_BYTES)]
    header: Annotated[bytes, msgspec.Meta(max_length=4_096)]
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
    proof: InclusionProof


class OriginProof(msgspec.Struct, frozen=True, kw_only=True):
    """The origin's proof for the relayed item at ``position`` in the batch."""

    position: Annotated[int, msgspec.Meta(ge=0, lt=MAX_BATCH_ITEMS)]
    proof: ItemProof


class BatchFrame(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag="batch", tag_field="type"
):
    """Sender → receiver: a signed batch header and its items (canonical observation bytes).

    ``origin_proofs`` ride beside the items, outside the sender's signature: each is signed by
    the origin of an item the sender relays unchanged. A frame without any encodes as before.
    """

    header: Annotated[bytes, msgspec.Meta(max_length=4_096)]
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
    items: list[bytes]
    origin_proofs: Annotated[list[OriginProof], msgspec.Meta(max_length=MAX_BATCH_ITEMS)] = []


class Refusal(msgspec.Struct, frozen=True, kw_only=True, tag="refusal", tag_field="type"):
    """Receiver → sender, before closing: why the last message was not accepted."""

    code: RefusalCode
    reason: Annotated[str, msgspec.Meta(max_length=2_000)]
    seq: int | None = None


Message = Hello | Welcome | BatchFrame | SignedReceipt | Refusal


class LinkRefused(KuroshioError):
    """A message refused by the receiver (or by the sender, for a bad receipt): code and reason."""

    def __init__(self, code: RefusalCode, reason: str, *, seq: int | None = None) -> None:
        where = f"batch {seq}: " if seq is not None else ""
        super().__init__(f"{code}: {where}{reason}")
        self.code: RefusalCode = code
        self.reason = reason
        self.seq = seq

    def refusal(self) -> Refusal:
        return Refusal(code=self.code, reason=self.reason[:2_000], seq=self.seq)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    """Decode one frame; raises :class:`LinkRefused` (``malformed``) saying what is wrong."""
    try:
        message: Message = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise LinkRefused("malformed", f"not a {PROTOCOL} message: {error}") from None
    return message
