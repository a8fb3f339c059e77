"""Receipts: the receiver's signed statement that it holds a batch (link, seq, hash, count, time)
and the head of its audit log then (size, Merkle root, and the consistency proof from the head it
gave the same sender before).

A receipt lets either side prove later what the other received, and the heads let the sender
hold the receiver to its log: a log cut or rewritten later is not consistent with them. Pure
functions over bytes; the sender keeps receipts in its outbox tables and the heads beside them,
the receiver keeps the receipts it issued in its inbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

import msgspec

from kuroshio.errors import VerificationError
from kuroshio.exchange.wire import Digest, LinkRefused, SignedReceipt
from kuroshio.model import PartyCode
from kuroshio.pki import Keys, Signer, verify

RECEIPT_FORMAT: Final = "kuroshio-receipt/1"
MAX_PROOF: Final = 2 * 64
"""A consistency proof between two trees of fewer than 2**64 leaves has fewer steps."""
SIGNATURE_CONTEXT: Final = b"kuroshio receipt v1\x00"


class Receipt(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the receiver of batch ``seq`` on link ``sender>receiver`` signs for."""

    format: Literal["kuroshio-receipt/1"] = RECEIPT_FORMAT
    sender: PartyCode
    receiver: PartyCode
    seq: Annotated[int, msgspec.Meta(ge=1)]
    batch_hash: Digest
    count: Annotated[int, msgspec.Meta(ge=0)]
    stored: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Items newly stored (new ids, corrections, older versions kept in history)."""
    unchanged: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Items the receiver already held, byte for byte."""
    conflicts: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Items refused by the store: the same id and version with other content."""
    received_at: dt.datetime
    audit_size: Annotated[int, msgspec.Meta(ge=1)] | msgspec.UnsetType = msgspec.UNSET
    """Entries in the receiver's audit log when it signed (its ``receive`` entry included)."""
    audit_root: Digest | msgspec.UnsetType = msgspec.UNSET
    """The RFC 6962 Merkle root over those entries' hashes."""
    audit_since: Annotated[int, msgspec.Meta(ge=1)] | msgspec.UnsetType = msgspec.UNSET
    """The size of the head the receiver gave this sender before (unset: the first)."""
    audit_proof: Annotated[list[Digest], msgspec.Meta(max_length=MAX_PROOF)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    """The consistency proof from the head of ``audit_since`` entries to this one."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Receipt)


def sign_receipt(signer: Signer, receipt: Receipt) -> SignedReceipt:
    data = _encoder.encode(receipt)
    return SignedReceipt(receipt=data, signature=signer.sign(SIGNATURE_CONTEXT + data))


def read_receipt(signed: SignedReceipt) -> Receipt:
    """Decode without verifying (for display of receipts already verified when stored)."""
    return _decoder.decode(signed.receipt)


def open_receipt(signed: SignedReceipt, receiver_key: Keys) -> Receipt:
    """Verify a receipt with the receiver's pinned key; raises :class:`LinkRefused` why not."""
    try:
        verify(receiver_key, signed.signature, SIGNATURE_CONTEXT + signed.receipt)
    except VerificationError as error:
        raise LinkRefused("bad_signature", f"receipt: {error.reason}") from None
    try:
        return _decoder.decode(signed.receipt)
    except msgspec.DecodeError as error:
        raise LinkRefused("malformed", f"receipt: {error}") from None
