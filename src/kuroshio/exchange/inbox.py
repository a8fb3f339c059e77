"""The receiving side of links as protocol: which batch comes next, what an item becomes when it
is taken in, the origin proofs it carries, and how far a received item checks out later.

A batch is opened and checked without any link state (:func:`~kuroshio.exchange.batch.open_batch`,
:func:`check_origin_proofs`), then checked against the link's position (:func:`check_sequence`)
and taken in by the running link (:mod:`kuroshio.federation.inbox`) in one transaction. Keeping
each batch's header and leaves lets any stored item be proven to its sender later
(:func:`verify_received`). Nothing here opens a transaction, signs, or knows the node.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import msgspec

from kuroshio.errors import VerificationError
from kuroshio.exchange.batch import GENESIS_HASH, OpenedBatch
from kuroshio.exchange.proofs import (
    SENT_AS_KEPT,
    KeptProof,
    ProofFinder,
    check_relayed,
    content_bytes,
    encode_proof,
    plain_sent,
    verify_batch_proof,
    verify_item_proof,
)
from kuroshio.exchange.wire import (
    MAX_WELCOME_RECEIPTS,
    BatchFrame,
    ItemProof,
    LinkRefused,
    SignedReceipt,
)
from kuroshio.model import MAX_ID, Observation, Provenance, canonical_bytes
from kuroshio.pki import Keys, key_fingerprint, key_list
from kuroshio.store.inbox import InboxRow
from kuroshio.store.observations import PreparedRow
from kuroshio.store.sql import index_row, utc_time
from kuroshio.store.transaction import Transaction

MAX_CONFLICTS_LISTED: Final = 20


class InboxState(msgspec.Struct, frozen=True, kw_only=True):
    """Where one link stands on the receiving side."""

    partner: str
    last_seq: int
    last_hash: bytes
    updated_at: dt.datetime | None


class ReceivedCheck(msgspec.Struct, frozen=True, kw_only=True):
    """How far a received item checks out, and against whose signature."""

    status: Literal["verified", "relayed", "unverified", "failed"]
    detail: str


def link_state(tx: Transaction, partner: str) -> InboxState:
    """The position of ``partner``'s link into this node."""
    position = tx.inbox.position(partner)
    if position is None:
        return InboxState(partner=partner, last_seq=0, last_hash=GENESIS_HASH, updated_at=None)
    last_seq, last_hash, updated_at = position
    return InboxState(
        partner=partner, last_seq=last_seq, last_hash=last_hash, updated_at=utc_time(updated_at)
    )


def issued_receipts(
    tx: Transaction, partner: str, *, after_seq: int, limit: int = MAX_WELCOME_RECEIPTS
) -> list[SignedReceipt]:
    """The receipts given for ``partner``'s batches after ``after_seq``, in order."""
    return [
        SignedReceipt(receipt=receipt, signature=signature)
        for receipt, signature in tx.inbox.receipts_after(partner, after_seq, limit)
    ]


def check_sequence(state: InboxState, opened: OpenedBatch) -> bool:
    """True for a duplicate of the last batch; raises :class:`LinkRefused` when out of sequence."""
    header = opened.header
    if header.seq == state.last_seq and opened.hash == state.last_hash:
        return True
    if header.seq <= state.last_seq:
        raise LinkRefused(
            "replayed",
            f"batch {header.seq} is older than the last one received ({state.last_seq})",
            seq=header.seq,
        )
    if header.seq != state.last_seq + 1:
        raise LinkRefused(
            "out_of_order",
            f"expected batch {state.last_seq + 1}, got {header.seq}",
            seq=header.seq,
        )
    if header.prev_hash != state.last_hash:
        raise LinkRefused(
            "chain_broken",
            f"prev_hash does not name batch {state.last_seq} as received",
            seq=header.seq,
        )
    return False


def relay_id(relay: str, obs_id: str) -> str:
    """The id under which an item passed on by ``relay`` without its origin's proof is kept:
    ``<RELAY>:via:<id>``, in the relay's own id space (the id's SHA-256 when that would be too
    long)."""
    kept = f"{relay}:via:{obs_id}"
    if len(kept) <= MAX_ID:
        return kept
    return f"{relay}:via:sha256:{hashlib.sha256(obs_id.encode('utf-8')).hexdigest()}"


def as_received(
    observations: list[Observation], partner: str, label: str, verified: frozenset[int]
) -> list[Observation]:
    """The batch's items as this node keeps them: provenance partner and batch, and the hops as
    the sender counted them (an item relayed from another origin has made at least two).

    An item of another origin is kept under that origin only when its position is in
    ``verified`` (its origin's proof came with it and checked out with the origin's pinned key).
    Any other item of another origin rests on ``partner``'s word alone: it is kept under
    ``partner``'s own id space (:func:`relay_id`, ``provenance.relayed_id`` naming the id it was
    sent under), so it never takes the origin's id nor stands in the way of the origin's own
    item. Items alike in provenance share one record; each item is a copy, not re-validated."""
    shared: dict[tuple[int, tuple[str, ...], object, bool], Provenance] = {}
    received: list[Observation] = []
    for position, observation in enumerate(observations):
        sent = observation.provenance
        relayed = observation.origin != partner
        key = (sent.hops, sent.transforms, sent.grid_km, relayed)
        provenance = shared.get(key)
        if provenance is None:
            provenance = shared[key] = Provenance(
                partner=partner,
                batch=label,
                hops=max(sent.hops, 2 if relayed else 1),
                transforms=sent.transforms,
                grid_km=sent.grid_km,
            )
        if relayed and position not in verified:
            taken = msgspec.structs.replace(
                observation,
                id=relay_id(partner, observation.id),
                origin=partner,
                provenance=msgspec.structs.replace(provenance, relayed_id=observation.id),
            )
        else:
            taken = copy.copy(observation)
            msgspec.structs.force_setattr(taken, "provenance", provenance)
        received.append(taken)
    return received


_PROVENANCE_KEY: Final = b'"provenance":'


def received_rows(
    partner: str,
    seq: int,
    items: Sequence[bytes],
    sent: Sequence[Observation],
    received: Sequence[Observation],
) -> tuple[list[PreparedRow], list[InboxRow]]:
    """The rows an opened batch ``seq`` of ``partner`` adds: the store's rows for its items
    (:func:`as_received` of ``sent``, each decoded from its bytes in ``items``) as
    :func:`~kuroshio.store.observations.prepare` makes them, without encoding each item again,
    and one place per item: where it was in the batch, the id and version it is kept under, and
    its provenance as sent (to rebuild the signed bytes later; nothing when the kept provenance
    gives it back, see :func:`~kuroshio.exchange.proofs.plain_sent`), kept in the history row
    of the version it brings or, for a version stored before, in ``inbox_items``.

    Each of ``items`` is the canonical encoding of its ``sent`` item (checked on opening), and
    an item kept under the id it was sent under differs from it in its provenance alone; its
    canonical bytes are then the bytes as sent with the provenance's encoding, which follows
    the one ``"provenance":`` in them, replaced (a quote inside a text is always escaped, so the
    field's name appears once). An item kept under another id, or bytes not laid out so, are
    encoded whole. Equal provenances are encoded once."""
    sha256 = hashlib.sha256
    key = _PROVENANCE_KEY
    start = len(key)
    as_sent: dict[Provenance, bytes] = {}
    # By object (the received items share their provenances): the kept provenance's bytes, and
    # those of the provenance as sent it gives back (the item's place keeps nothing for it).
    as_kept: dict[int, tuple[bytes, bytes]] = {}
    rows: list[PreparedRow] = []
    places: list[InboxRow] = []
    for position, (item, observation, kept) in enumerate(zip(items, sent, received, strict=True)):
        sent_bytes = as_sent.get(observation.provenance)
        if sent_bytes is None:
            sent_bytes = as_sent[observation.provenance] = canonical_bytes(observation.provenance)
        known = as_kept.get(id(kept.provenance))
        if known is None:
            known = as_kept[id(kept.provenance)] = (
                canonical_bytes(kept.provenance),
                canonical_bytes(plain_sent(kept.provenance)),
            )
        kept_bytes, plain_bytes = known
        place = SENT_AS_KEPT if sent_bytes == plain_bytes else sent_bytes
        places.append((partner, seq, position, kept.id, kept.version, place))
        body = None
        if kept.id == observation.id and kept.origin == observation.origin:
            at = item.find(key) + start
            if at >= start and item.find(key, at) < 0 and item.startswith(sent_bytes, at):
                body = b"".join((item[:at], kept_bytes, item[at + len(sent_bytes) :]))
        if body is None:
            body = canonical_bytes(kept)
        rows.append((body, sha256(body).digest(), index_row(kept, None)))
    return rows, places


def places_apart(places: Sequence[InboxRow], received: Sequence[Observation]) -> list[InboxRow]:
    """``places`` (of :func:`received_rows`, for items of ``received`` whose version was stored
    before) as ``inbox_items`` keeps them, apart from the version's history row: with the
    provenance as sent written out, since the version stored keeps another batch's provenance
    and cannot give this one back."""
    return [
        place
        if place[5] != SENT_AS_KEPT
        else (*place[:5], canonical_bytes(plain_sent(received[place[2]].provenance)))
        for place in places
    ]


class CheckedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A received batch that passed every check needing no inbox state."""

    frame: BatchFrame
    opened: OpenedBatch
    origin_proofs: list[KeptProof]
    received: list[Observation]
    """The items with their provenance as this node keeps them."""
    prepared: list[PreparedRow]
    """The store's rows for ``received``, made outside the transaction."""
    inbox_rows: list[InboxRow]
    """Where each of ``received`` sat in the batch (see :func:`received_rows`)."""


def check_origin_proofs(
    frame: BatchFrame, opened: OpenedBatch, partner: str, keys: Mapping[str, Keys]
) -> dict[int, KeptProof]:
    """Check the origin proofs carried with a batch; the rows to keep by the item's position,
    one for each item whose
    proof checked out with its origin's pinned key (a proof from an origin not pinned here
    cannot vouch for its item, and is not kept). Raises :class:`LinkRefused`
    (``bad_origin_proof``) for the first that does not check out."""
    if not frame.origin_proofs:
        return {}
    seq = opened.header.seq
    seen: set[int] = set()
    rows: dict[int, KeptProof] = {}
    for carried in frame.origin_proofs:
        position = carried.position
        if position >= len(opened.observations) or position in seen:
            raise LinkRefused(
                "bad_origin_proof",
                f"an origin proof for item {position}, of {len(opened.observations)} items"
                + (", twice" if position in seen else ""),
                seq=seq,
            )
        seen.add(position)
        relayed = opened.observations[position]
        where = f"item {position} ({relayed.id} v{relayed.version})"
        if relayed.origin == partner:
            raise LinkRefused(
                "bad_origin_proof",
                f"{where} comes from its origin {partner} and takes no origin proof",
                seq=seq,
            )
        try:
            verified = check_relayed(carried.proof, relayed, keys.get(relayed.origin))
        except VerificationError as error:
            raise LinkRefused(
                "bad_origin_proof",
                f"{where}: the proof from its origin {relayed.origin} does not check out: {error}",
                seq=seq,
            ) from None
        if verified:
            rows[position] = (
                relayed.id,
                relayed.version,
                relayed.origin,
                encode_proof(carried.proof),
                verified,
                partner,
                seq,
            )
    return rows


def item_proof(tx: Transaction, obs_id: str, version: int) -> ItemProof | None:
    """The origin's proof for a received item (check it with
    :func:`~kuroshio.exchange.proofs.verify_item_proof`): from the batch the origin sent it in,
    or the one a relay carried with it. None when this node holds no proof signed by the origin
    (an item a relay transformed, or one sent without)."""
    stored = tx.observations.get(obs_id, version)
    if stored is None or stored.provenance.partner is None:
        return None
    return ProofFinder(tx).origin_proof(stored)


def verify_received(
    tx: Transaction,
    keys: Mapping[str, Keys],
    observation: Observation,
    finder: ProofFinder | None = None,
) -> ReceivedCheck:
    """Check a received item against the signatures this node holds for it: its origin's when
    the origin sent it or a relay passed the origin's proof on, else the relay's batch.

    Checking many items in one transaction, hand in one ``finder`` (``ProofFinder(tx)``) for
    all: each batch's Merkle tree is then built once."""
    sender = observation.provenance.partner
    origin = observation.origin
    finder = ProofFinder(tx) if finder is None else finder
    batch = finder.batch_proof(observation, sender) if sender is not None else None
    if sender is None or batch is None:
        return ReceivedCheck(
            status="unverified", detail=f"received from {sender}, but no batch holds this version"
        )
    sender_key = keys.get(sender)
    if sender_key is None:
        return ReceivedCheck(
            status="unverified", detail=f"received from {sender}, which is not pinned here"
        )
    proof = batch
    relayed_id = observation.provenance.relayed_id
    if relayed_id is not msgspec.UNSET:
        return _on_relay_word(batch, sender, sender_key, observation, relayed_id)
    if sender != origin:
        try:
            verify_batch_proof(batch, sender_key, finder.checked)
        except VerificationError as error:
            return ReceivedCheck(
                status="failed", detail=f"{sender}'s batch does not check out: {error}"
            )
        carried = finder.origin_proof(observation)
        if carried is None:
            changed = any(
                word.startswith(f"{sender}: ") for word in observation.provenance.transforms
            )
            how = "with transforms" if changed else f"without {origin}'s proof"
            return ReceivedCheck(
                status="relayed", detail=f"relayed by {sender} {how}; verified to {sender}"
            )
        origin_key = keys.get(origin)
        if origin_key is None:
            return ReceivedCheck(
                status="relayed",
                detail=f"origin {origin} not pinned here; batch verified to {sender}",
            )
        proof = carried
    else:
        origin_key = sender_key
    try:
        as_signed = verify_item_proof(proof, origin_key, finder.checked)
    except VerificationError as error:
        return ReceivedCheck(status="failed", detail=f"does not check out: {error}")
    if content_bytes(as_signed) != content_bytes(observation):
        return ReceivedCheck(status="failed", detail=f"differs from the item {origin} signed")
    relayed = "" if sender == origin else f"; relayed by {sender}, whose batch checks out too"
    return ReceivedCheck(
        status="verified",
        detail=(
            f"{origin}'s signature over the batch and this item's Merkle inclusion proof checked "
            f"with the pinned key {key_fingerprint(key_list(origin_key)[0])}{relayed}"
        ),
    )


def _on_relay_word(
    batch: ItemProof, sender: str, sender_key: Keys, kept: Observation, relayed_id: str
) -> ReceivedCheck:
    """An item kept on its relay's word alone: checked against the relay's batch only."""
    named = relayed_id[:3]
    try:
        _, as_signed = verify_batch_proof(batch, sender_key)
    except VerificationError as error:
        return ReceivedCheck(
            status="failed", detail=f"{sender}'s batch does not check out: {error}"
        )
    if as_signed.id != relayed_id or content_bytes(as_signed) != content_bytes(
        msgspec.structs.replace(kept, id=as_signed.id, origin=as_signed.origin)
    ):
        return ReceivedCheck(status="failed", detail=f"differs from the item {sender} signed")
    changed = any(word.startswith(f"{sender}: ") for word in kept.provenance.transforms)
    how = "changed by it" if changed else f"without {named}'s proof"
    return ReceivedCheck(
        status="relayed",
        detail=(
            f"{sender}'s word: passed on by {sender} as {named}'s {relayed_id}, {how}; kept as "
            f"{sender}'s, its batch checked with the pinned key "
            f"{key_fingerprint(key_list(sender_key)[0])}"
        ),
    )


__all__ = [
    "CheckedBatch",
    "InboxState",
    "ReceivedCheck",
    "as_received",
    "check_origin_proofs",
    "check_sequence",
    "issued_receipts",
    "item_proof",
    "link_state",
    "places_apart",
    "received_rows",
    "relay_id",
    "verify_received",
]
