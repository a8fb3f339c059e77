"""Sealing and opening batches: one Ed25519 signature over a header holding the items' Merkle root.

The header names the link (sender, receiver), its sequence number, the previous batch's hash (a
chain per link), the RFC 6962 Merkle root and count of the items, and when it was sealed. The
batch hash is SHA-256 of the header bytes as signed. Pure functions: no store, no sockets; the
sequence and chain are checked against the inbox by :mod:`kuroshio.exchange.inbox`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Annotated, Final, Literal

import msgspec

from kuroshio.errors import VerificationError
from kuroshio.exchange.wire import MAX_BATCH_ITEMS, BatchFrame, Digest, LinkRefused, OriginProof
from kuroshio.merkle import HASH_SIZE, MerkleTree, leaf_hash
from kuroshio.messages.incident import Incident
from kuroshio.messages.thread import Message, StateChange, decode_item, is_dialogue, item_bytes
from kuroshio.model import Observation, PartyCode, canonical_bytes
from kuroshio.pki import Keys, Signer, verify
from kuroshio.policy.decide import relay_refusal

BATCH_FORMAT: Final = "kuroshio-batch/1"
SIGNATURE_CONTEXT: Final = b"kuroshio batch v1\x00"
"""Prefixed to the header before signing, so a batch signature never passes for another one."""
GENESIS_HASH: Final = bytes(HASH_SIZE)
"""The ``prev_hash`` of a link's first batch."""
MAX_HOPS: Final = 32


class BatchHeader(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the origin signs for one batch."""

    format: Literal["kuroshio-batch/1"] = BATCH_FORMAT
    sender: PartyCode
    receiver: PartyCode
    seq: Annotated[int, msgspec.Meta(ge=1)]
    prev_hash: Digest
    root: Digest
    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_ITEMS)]
    sealed_at: dt.datetime


class SealedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A batch as the sender keeps it: header bytes exactly as signed, and the items."""

    header: BatchHeader
    header_bytes: bytes
    signature: bytes
    hash: bytes
    items: list[bytes]
    origin_proofs: list[OriginProof] = msgspec.field(default_factory=list)
    """Origins' proofs for items relayed unchanged (not covered by this batch's signature)."""

    def frame(self) -> BatchFrame:
        return BatchFrame(
            header=self.header_bytes,
            signature=self.signature,
            items=self.items,
            origin_proofs=self.origin_proofs,
        )


class OpenedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A batch that passed every check that needs no inbox state."""

    header: BatchHeader
    hash: bytes
    observations: list[Observation]
    leaves: bytes
    """The items' leaf hashes back to back (32 bytes each), kept to prove any item later."""
    dialogue: list[Message | StateChange | Incident] = msgspec.field(default_factory=list)
    """The items of a dialogue batch (then ``observations`` is empty): a batch carries either
    observations or messages and their state changes, never both."""


_header_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(BatchHeader)
_observation_decoder = msgspec.json.Decoder(Observation)


def batch_hash(header_bytes: bytes) -> bytes:
    return hashlib.sha256(header_bytes).digest()


def batch_label(sender: str, receiver: str, seq: int) -> str:
    """How a batch is named in provenance and audit entries, e.g. ``TWN>JPN#17``."""
    return f"{sender}>{receiver}#{seq}"


def seal(
    signer: Signer,
    *,
    sender: str,
    receiver: str,
    seq: int,
    prev_hash: bytes,
    items: Sequence[bytes],
    sealed_at: dt.datetime,
    origin_proofs: Sequence[OriginProof] = (),
) -> SealedBatch:
    """Sign a batch of items (each the canonical bytes of one observation); ``origin_proofs``
    go with it unsigned, each standing on its origin's signature."""
    header = BatchHeader(
        sender=sender,
        receiver=receiver,
        seq=seq,
        prev_hash=prev_hash,
        root=MerkleTree(items).root,
        count=len(items),
        sealed_at=sealed_at.astimezone(dt.UTC),
    )
    header_bytes = _header_encoder.encode(header)
    return SealedBatch(
        header=header,
        header_bytes=header_bytes,
        signature=signer.sign(SIGNATURE_CONTEXT + header_bytes),
        hash=batch_hash(header_bytes),
        items=list(items),
        origin_proofs=list(origin_proofs),
    )


def read_header(header_bytes: bytes) -> BatchHeader:
    """Decode a header; raises :class:`LinkRefused` (``malformed``)."""
    try:
        return _header_decoder.decode(header_bytes)
    except msgspec.DecodeError as error:
        raise LinkRefused("malformed", f"batch header: {error}") from None


def check_signature(header_bytes: bytes, signature: bytes, sender_key: Keys) -> None:
    """Raise :class:`LinkRefused` (``bad_signature``) unless the origin signed this header."""
    try:
        verify(sender_key, signature, SIGNATURE_CONTEXT + header_bytes)
    except VerificationError as error:
        raise LinkRefused("bad_signature", error.reason) from None


def open_batch(
    frame: BatchFrame,
    *,
    sender: str,
    receiver: str,
    sender_key: Keys,
    max_items: int = MAX_BATCH_ITEMS,
) -> OpenedBatch:
    """Check a received batch against the sender's pinned key; raise :class:`LinkRefused` why not.

    Checks, in order: item count, header, signature, link, count, Merkle root, then every item
    (decodes and validates as an Observation, is canonical, is not the receiver's own, and
    originates from the sender or is passed on as its originator's marking allows).
    """
    if len(frame.items) > max_items:
        raise LinkRefused("too_many_items", f"{len(frame.items)} items, the limit is {max_items}")
    header = read_header(frame.header)
    seq = header.seq
    check_signature(frame.header, frame.signature, sender_key)
    if header.sender != sender or header.receiver != receiver:
        raise LinkRefused(
            "wrong_link",
            f"batch is for link {header.sender}>{header.receiver}, this is {sender}>{receiver}",
            seq=seq,
        )
    if header.count != len(frame.items):
        raise LinkRefused(
            "bad_merkle_root",
            f"header counts {header.count} items, the batch holds {len(frame.items)}",
            seq=seq,
        )
    leaves = [leaf_hash(item) for item in frame.items]
    if MerkleTree.from_leaf_hashes(leaves).root != header.root:
        raise LinkRefused(
            "bad_merkle_root", "the items do not hash to the signed Merkle root", seq=seq
        )
    if frame.items and is_dialogue(frame.items[0]):
        if frame.origin_proofs:
            raise LinkRefused(
                "bad_origin_proof", "a dialogue batch takes no origin proofs", seq=seq
            )
        return OpenedBatch(
            header=header,
            hash=batch_hash(frame.header),
            observations=[],
            leaves=b"".join(leaves),
            dialogue=[
                _open_dialogue(item, index, sender, receiver, seq)
                for index, item in enumerate(frame.items)
            ],
        )
    observations = [
        _open_item(item, index, sender, receiver, seq) for index, item in enumerate(frame.items)
    ]
    return OpenedBatch(
        header=header,
        hash=batch_hash(frame.header),
        observations=observations,
        leaves=b"".join(leaves),
    )


def _open_dialogue(
    item: bytes, index: int, sender: str, receiver: str, seq: int
) -> Message | StateChange | Incident:
    """One item of a dialogue batch: a message, state change or incident version the sender
    itself made."""
    if not is_dialogue(item):
        raise LinkRefused(
            "invalid_item", f"item {index}: an observation in a dialogue batch", seq=seq
        )
    try:
        record = decode_item(item)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise LinkRefused("invalid_item", f"item {index}: {error}", seq=seq) from None
    if item_bytes(record) != item:
        raise LinkRefused("non_canonical_item", f"item {index} is not canonical", seq=seq)
    if isinstance(record, Message):
        author = record.sender
    elif isinstance(record, StateChange):
        author = record.by
    else:
        author = record.updated_by
    if author != sender:
        raise LinkRefused(
            "foreign_origin",
            f"item {index} was written by {author}; {sender} sends only its own messages",
            seq=seq,
        )
    if isinstance(record, Message) and record.recipient != receiver:
        raise LinkRefused(
            "wrong_link", f"item {index} is a message for {record.recipient}", seq=seq
        )
    return record


def _open_item(item: bytes, index: int, sender: str, receiver: str, seq: int) -> Observation:
    try:
        observation = _observation_decoder.decode(item)
    except msgspec.DecodeError as error:
        raise LinkRefused("invalid_item", f"item {index}: {error}", seq=seq) from None
    if canonical_bytes(observation) != item:
        raise LinkRefused(
            "non_canonical_item", f"item {index} ({observation.id}) is not canonical", seq=seq
        )
    # This node's own items never come back from anyone else: one claiming to is a forgery.
    if receiver in (observation.origin, observation.provenance.relayed_origin):
        raise LinkRefused(
            "own_origin",
            f"item {index} ({observation.id}) claims {receiver} as its origin; {receiver}'s "
            f"own items are never taken from {sender}",
            seq=seq,
        )
    # An item from another origin is a re-release: only as that originator's marking allows.
    relayed = relay_refusal(observation, sender, receiver)
    if relayed is not None:
        raise LinkRefused(
            "foreign_origin",
            f"item {index} ({observation.id}) originates from {observation.origin}, not "
            f"{sender}, and may not be passed on here: {relayed}",
            seq=seq,
        )
    if observation.provenance.hops >= MAX_HOPS:
        raise LinkRefused("invalid_item", f"item {index} has travelled too many hops", seq=seq)
    return observation
