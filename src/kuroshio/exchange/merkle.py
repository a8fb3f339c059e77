"""Merkle trees over the items of a batch, so one item stays provable after re-release.

The hashing is RFC 6962 (Certificate Transparency) exactly: leaf = SHA-256(0x00 || item), node =
SHA-256(0x01 || left || right), and a tree of n > 1 items splits at the largest power of two below
n, so an odd node is carried up unchanged rather than paired with itself (which would let two
different lists share a root). The root of the empty list is SHA-256 of nothing. This module only
hashes and proves; signing the root belongs to batch signing, items' bytes to the caller.

As in RFC 6962 the root alone does not fix the number of items (item 0's proof is the same in
trees of 3 and 4 items), so whoever signs a root signs the tree size with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Annotated, Final

import msgspec

from kuroshio.errors import InclusionError, MerkleError

HASH_SIZE: Final = 32
MAX_PATH: Final = 64
"""A proof never has more steps than a tree of 2**64 items needs."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"

Digest = Annotated[bytes, msgspec.Meta(min_length=HASH_SIZE, max_length=HASH_SIZE)]


class InclusionProof(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The audit path from item ``index`` to the root of a tree of ``tree_size`` items.

    ``path`` lists sibling hashes from the leaf level upwards (RFC 6962 order).
    """

    index: Annotated[int, msgspec.Meta(ge=0)]
    tree_size: Annotated[int, msgspec.Meta(ge=1)]
    path: Annotated[list[Digest], msgspec.Meta(max_length=MAX_PATH)]

    def __post_init__(self) -> None:
        if self.index >= self.tree_size:
            raise ValueError(f"index {self.index} is outside a tree of {self.tree_size} items")


def leaf_hash(item: bytes) -> bytes:
    """The RFC 6962 hash of one item as a leaf."""
    return hashlib.sha256(_LEAF_PREFIX + item).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node from its two children."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _joined_leaf_hashes(items: Iterable[bytes]) -> bytes:
    sha256 = hashlib.sha256
    return b"".join([sha256(_LEAF_PREFIX + item).digest() for item in items])


def _parent_level(level: bytes) -> bytes:
    # A level is its hashes back to back: one buffer per level keeps a million-leaf tree at
    # ~64 MB instead of two million separate bytes objects, and a pair is one 64-byte slice.
    sha256 = hashlib.sha256
    paired = (len(level) // (2 * HASH_SIZE)) * 2 * HASH_SIZE
    parents = b"".join(
        [
            sha256(_NODE_PREFIX + level[at : at + 2 * HASH_SIZE]).digest()
            for at in range(0, paired, 2 * HASH_SIZE)
        ]
    )
    # The unpaired last node rises unchanged: this level-by-level rule gives the same tree as
    # RFC 6962's split at the largest power of two.
    return parents + level[paired:]


class MerkleTree:
    """A tree built once over a list of items, handing out any item's proof in O(log n).

    >>> tree = MerkleTree([b"a", b"b", b"c"])
    >>> verify_inclusion(b"b", tree.inclusion_proof(1), tree.root)
    True
    """

    __slots__ = ("_levels",)

    def __init__(self, items: Iterable[bytes]) -> None:
        self._levels = self._build(_joined_leaf_hashes(items))

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> MerkleTree:
        """A tree from leaf hashes already computed with :func:`leaf_hash`."""
        for position, value in enumerate(hashes):
            if len(value) != HASH_SIZE:
                raise MerkleError(f"leaf hash {position} has {len(value)} bytes, not {HASH_SIZE}")
        tree = cls.__new__(cls)
        tree._levels = cls._build(b"".join(hashes))
        return tree

    @staticmethod
    def _build(leaves: bytes) -> list[bytes]:
        levels = [leaves]
        while len(levels[-1]) > HASH_SIZE:
            levels.append(_parent_level(levels[-1]))
        return levels

    @property
    def size(self) -> int:
        """The number of items."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    @property
    def root(self) -> bytes:
        """The tree head: the root hash, or :data:`EMPTY_ROOT` for no items."""
        return self._levels[-1] if self._levels[-1] else EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of item ``index``."""
        self._check_index(index)
        return self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE]

    def inclusion_proof(self, index: int) -> InclusionProof:
        """The proof that item ``index`` is in this tree."""
        self._check_index(index)
        path: list[bytes] = []
        position = index
        for level in self._levels[:-1]:
            sibling = position ^ 1
            if sibling * HASH_SIZE < len(level):
                path.append(level[sibling * HASH_SIZE : (sibling + 1) * HASH_SIZE])
            position >>= 1
        return InclusionProof(index=index, tree_size=self.size, path=path)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise MerkleError(f"no item {index} in a tree of {self.size} items")

    def __repr__(self) -> str:
        return f"MerkleTree(size={self.size}, root={self.root.hex()})"


def merkle_root(items: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of ``items`` (keeps one level at a time, not the whole tree)."""
    level = _joined_leaf_hashes(items)
    if not level:
        return EMPTY_ROOT
    while len(level) > HASH_SIZE:
        level = _parent_level(level)
    return level


def inclusion_proof(items: Sequence[bytes], index: int) -> InclusionProof:
    """The proof for one item; build a :class:`MerkleTree` once when proving many."""
    return MerkleTree(items).inclusion_proof(index)


def root_from_proof(item_hash: bytes, proof: InclusionProof) -> bytes:
    """The root that ``proof`` leads to from the leaf hash ``item_hash``.

    Raises :class:`InclusionError` when the proof's shape does not fit its tree size.
    """
    if len(item_hash) != HASH_SIZE:
        raise InclusionError(f"leaf hash has {len(item_hash)} bytes", index=proof.index)
    if not 0 <= proof.index < proof.tree_size:
        raise InclusionError(f"index outside a tree of {proof.tree_size}", index=proof.index)
    position, last = proof.index, proof.tree_size - 1
    steps = iter(proof.path)
    node = item_hash
    used = 0
    while last > 0:
        if position & 1 or position < last:
            sibling = next(steps, None)
            if sibling is None:
                raise InclusionError(f"path too short ({len(proof.path)} steps)", index=proof.index)
            if len(sibling) != HASH_SIZE:
                raise InclusionError(
                    f"path step {used} has {len(sibling)} bytes", index=proof.index
                )
            used += 1
            node = node_hash(sibling, node) if position & 1 else node_hash(node, sibling)
        position >>= 1
        last >>= 1
    if used != len(proof.path):
        raise InclusionError(
            f"path too long ({len(proof.path)} steps, {used} expected)", index=proof.index
        )
    return node


def check_inclusion(item: bytes, proof: InclusionProof, root: bytes) -> None:
    """Raise :class:`InclusionError` unless ``proof`` binds ``item`` to ``root``."""
    computed = root_from_proof(leaf_hash(item), proof)
    if not hmac.compare_digest(computed, root):
        raise InclusionError("proof leads to a different root", index=proof.index)


def verify_inclusion(item: bytes, proof: InclusionProof, root: bytes) -> bool:
    """True when ``proof`` binds ``item`` at ``proof.index`` to ``root``."""
    try:
        check_inclusion(item, proof, root)
    except InclusionError:
        return False
    return True
