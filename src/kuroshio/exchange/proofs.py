"""Origin proofs: a received item as its origin signed it, kept and passed on when it is relayed.

An origin proof is the item's bytes as the origin sent them, the origin's signed batch header and
the item's Merkle inclusion path. It authenticates itself with the origin's key, so a relay can
carry it beside its own batch and the next receiver can check the item back to its origin. This
module checks proofs and finds them through the caller's transaction (the rows are
:mod:`kuroshio.store.inbox`'s); it signs nothing.
"""

from __future__ import annotations

from typing import Final

import msgspec

from kuroshio.errors import InclusionError, VerificationError
from kuroshio.exchange.batch import SIGNATURE_CONTEXT, BatchHeader, read_header
from kuroshio.exchange.wire import ItemProof, LinkRefused
from kuroshio.merkle import HASH_SIZE, MerkleTree, check_inclusion
from kuroshio.model import Observation, Provenance, canonical_bytes
from kuroshio.pki import Keys, verify
from kuroshio.store.inbox import KeptProof
from kuroshio.store.transaction import Transaction

_proof_encoder = msgspec.msgpack.Encoder()
_proof_decoder = msgspec.msgpack.Decoder(ItemProof)
_observation_decoder = msgspec.json.Decoder(Observation)
_provenance_decoder = msgspec.json.Decoder(Provenance)
_NO_PROVENANCE: Final = Provenance()


def encode_proof(proof: ItemProof) -> bytes:
    return _proof_encoder.encode(proof)


def decode_proof(data: bytes) -> ItemProof:
    return _proof_decoder.decode(data)


def content_bytes(observation: Observation) -> bytes:
    """The canonical bytes of what was observed: everything but the provenance, which each hop
    rewrites."""
    return canonical_bytes(msgspec.structs.replace(observation, provenance=_NO_PROVENANCE))


Checked = set[tuple[Keys, bytes, bytes]]
"""Batch signatures found good (key, signature, header): a batch's many items need its
signature checked once."""


def verify_batch_proof(
    proof: ItemProof, signer_key: Keys, checked: Checked | None = None
) -> tuple[BatchHeader, Observation]:
    """Check an item against the signature of the batch it came in (the origin's or a relay's);
    the header and the item as signed. A signature in ``checked`` is not checked again; one
    found good is added to it.

    Raises :class:`~kuroshio.pki.VerificationError` saying why it does not check out.
    """
    signed = (signer_key, proof.signature, proof.header)
    if checked is None or signed not in checked:
        try:
            verify(signer_key, proof.signature, SIGNATURE_CONTEXT + proof.header)
        except VerificationError as error:
            raise VerificationError(error.reason, "batch signature") from None
        if checked is not None:
            checked.add(signed)
    header, observation = _proven_item(proof)
    return header, observation


def verify_item_proof(
    proof: ItemProof, origin_key: Keys, checked: Checked | None = None
) -> Observation:
    """Check an item against its origin's signature; the item as the origin sent it.

    Raises :class:`~kuroshio.pki.VerificationError` saying why it does not check out, including
    a proof signed by a relay rather than by the item's origin.
    """
    header, observation = verify_batch_proof(proof, origin_key, checked)
    if observation.origin != header.sender:
        raise VerificationError(f"item from {observation.origin}, batch from {header.sender}")
    return observation


def _proven_item(proof: ItemProof) -> tuple[BatchHeader, Observation]:
    """The header and item of a proof whose item is bound to the header's root (no signature)."""
    try:
        header = read_header(proof.header)
    except LinkRefused as error:
        raise VerificationError(error.reason, "batch header") from None
    # The root alone does not fix the tree size; the signed count does.
    if proof.proof.tree_size != header.count:
        raise VerificationError(
            f"path is for a tree of {proof.proof.tree_size} items, the header counts "
            f"{header.count}",
            "inclusion proof",
        )
    try:
        check_inclusion(proof.item, proof.proof, header.root)
    except InclusionError as error:
        raise VerificationError(error.reason, "inclusion proof") from None
    try:
        observation = _observation_decoder.decode(proof.item)
    except msgspec.DecodeError as error:
        raise VerificationError(str(error), "proven item") from None
    return header, observation


def check_relayed(proof: ItemProof, relayed: Observation, origin_key: Keys | None) -> bool:
    """Check a proof carried with ``relayed``: bound to the origin's signed root, the same item
    (origin, id, version and content; the provenance aside) and, when ``origin_key`` is known,
    signed by the origin. True when the signature was checked, False when no key was at hand.

    Raises :class:`~kuroshio.pki.VerificationError` saying why it does not check out.
    """
    header, proven = _proven_item(proof)
    if header.sender != relayed.origin:
        raise VerificationError(
            f"proof is signed by {header.sender}, the item's origin is {relayed.origin}"
        )
    if (proven.origin, proven.id, proven.version) != (relayed.origin, relayed.id, relayed.version):
        raise VerificationError(
            f"proof is for {proven.origin} {proven.id} v{proven.version}", "proven item"
        )
    if content_bytes(proven) != content_bytes(relayed):
        raise VerificationError("differs from the item the origin signed", "relayed item")
    if origin_key is None:
        return False
    try:
        verify(origin_key, proof.signature, SIGNATURE_CONTEXT + proof.header)
    except VerificationError as error:
        raise VerificationError(error.reason, "origin signature") from None
    return True


class ProofFinder:
    """Finds the origin's proof for items this node holds from elsewhere, inside one
    transaction; a batch's Merkle tree is built once however many of its items are asked for,
    and the batch signatures checked with it (``checked``) are checked once."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._trees: dict[tuple[str, int], MerkleTree] = {}
        self.checked: Checked = set()

    def origin_proof(self, observation: Observation) -> ItemProof | None:
        """The proof signed by ``observation.origin``: from the batch it came in when the origin
        sent it here, else the one a relay carried with it; None when this node holds neither,
        or the item is kept on a relay's word (its batch shows the item under another id)."""
        if observation.provenance.relayed_id is not msgspec.UNSET:
            return None
        return self.batch_proof(observation, observation.origin) or self.kept_proof(observation)

    def kept_proof(self, observation: Observation) -> ItemProof | None:
        """The origin proof a relay carried with this item version, if one came with it."""
        kept = self._tx.inbox.kept_proof(observation.id, observation.version)
        return None if kept is None else decode_proof(kept)

    def batch_proof(self, observation: Observation, sender: str) -> ItemProof | None:
        """The item as ``sender`` signed it, in the last batch it came in from ``sender``."""
        row = self._tx.inbox.batch_proof(observation.id, observation.version, sender)
        if row is None:
            return None
        seq, position, sent_provenance, header, signature, leaves = row
        key = (sender, seq)
        tree = self._trees.get(key)
        if tree is None:
            tree = self._trees[key] = leaf_tree(leaves)
        as_sent = sent_form(observation, provenance_as_sent(observation, sent_provenance))
        return ItemProof(
            item=canonical_bytes(as_sent),
            header=header,
            signature=signature,
            proof=tree.inclusion_proof(position),
        )


SENT_AS_KEPT: Final = b""
"""What a received item's place keeps for its provenance as sent when the kept provenance gives
it back (:func:`plain_sent`), as it does for every item an origin sends of its own: each such
item taken in keeps about 150 bytes less."""


def plain_sent(kept: Provenance) -> Provenance:
    """The provenance as sent that a kept one gives back: its sender, hops, transforms and grid
    alone (no batch), the provenance an origin releases its own items with."""
    return Provenance(
        partner=kept.partner, hops=kept.hops, transforms=kept.transforms, grid_km=kept.grid_km
    )


def provenance_as_sent(kept: Observation, stored: bytes) -> Provenance:
    """The provenance a received item was sent with, from what its place keeps: its canonical
    bytes, or :data:`SENT_AS_KEPT` for the one the kept provenance gives back."""
    if stored == SENT_AS_KEPT:
        return plain_sent(kept.provenance)
    return _provenance_decoder.decode(stored)


def sent_form(kept: Observation, sent_provenance: Provenance) -> Observation:
    """A received item as its sender signed it: with the provenance it was sent with, and, for
    an item kept on a relay's word (``provenance.relayed_id``), the id and origin it was sent
    under."""
    relayed_id = kept.provenance.relayed_id
    if relayed_id is msgspec.UNSET:
        return msgspec.structs.replace(kept, provenance=sent_provenance)
    return msgspec.structs.replace(
        kept, id=relayed_id, origin=relayed_id[:3], provenance=sent_provenance
    )


def leaf_tree(leaves: bytes) -> MerkleTree:
    """The Merkle tree of a batch from its leaf hashes kept back to back."""
    return MerkleTree.from_leaf_hashes(
        [leaves[at : at + HASH_SIZE] for at in range(0, len(leaves), HASH_SIZE)]
    )


__all__ = [
    "SENT_AS_KEPT",
    "KeptProof",
    "ProofFinder",
    "check_relayed",
    "content_bytes",
    "decode_proof",
    "encode_proof",
    "leaf_tree",
    "plain_sent",
    "provenance_as_sent",
    "sent_form",
    "verify_batch_proof",
    "verify_item_proof",
]
