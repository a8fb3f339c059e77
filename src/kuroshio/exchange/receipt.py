"""Receipts: the receiver's signed statement that it holds a batch (link, seq, hash, count, time).

A receipt lets either side prove later what the other received. Pure functions over bytes; the
sender keeps receipts in its outbox tables, the receiver keeps the ones it issued in its inbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

import msgspec

from kuroshio.errors import VerificationError
from kuroshio.exchange.wire import Digest, LinkRefused, SignedReceipt
from kuroshio.model import PartyCode
from kuroshio.pki import Signer, verify

RECEIPT_FORMAT: Final = "kuroshio-receipt/1"
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


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Receipt)


def sign_receipt(signer: Signer, receipt: Receipt) -> SignedReceipt:
    data = _encoder.encode(receipt)
    return SignedReceipt(receipt=data, signature=signer.sign(SIGNATURE_CONTEXT + data))


def read_receipt(signed: SignedReceipt) -> Receipt:
    """Decode without verifying (for display of receipts already verified when stored)."""
    return _decoder.decode(signed.receipt)


def open_receipt(signed: SignedReceipt, receiver_key: bytes) -> Receipt:
    """Verify a receipt with the receiver's pinned key; raises :class:`LinkRefused` why not."""
    try:
        verify(receiver_key, signed.signature, SIGNATURE_CONTEXT + signed.receipt)
    except VerificationError as error:
        raise LinkRefused("bad_signature", f"receipt: {error.reason}") from None
    try:
        return _decoder.decode(signed.receipt)
    except msgspec.DecodeError as error:
        raise LinkRefused("malformed", f"receipt: {error}") from None
