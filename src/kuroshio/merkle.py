"""Merkle trees (RFC 6962): over the items of a batch, so one item stays provable after
re-release, and over the audit log, so a log can be shown to have only grown.

The hashing is RFC 6962 (Certificate Transparency) exactly: leaf = SHA-256(0x00 || item), node =
SHA-256(0x01 || left || right), and a tree of n > 1 items splits at the largest power of two below
n, so an odd node is carried up unchanged rather than paired with itself (which would let two
different lists share a root). The root of the empty list is SHA-256 of nothing. Consistency
proofs (RFC 6962 section 2.1.2, checked as RFC 9162 section 2.1.4.2 says) show that a tree of
``new`` leaves extends one of ``old`` leaves. This module only hashes and proves; signing a root
belongs to its caller (batches, the audit log), items' bytes too.

As in RFC 6962 the root alone does not fix the number of items (item 0's proof is the same in
trees of 3 and 4 items), so whoever signs a root signs the tree size with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
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


# --- a tree kept as its complete subtrees (the audit log's) --------------------------------------
#
# A growing tree is kept as the hash of every complete subtree: (level, index) covers the leaves
# [index * 2**level, (index + 1) * 2**level). Appending a leaf adds it and each subtree it
# completes; any root or proof is then a few look-ups.


def frontier(size: int) -> list[tuple[int, int]]:
    """The complete subtrees that together hold the first ``size`` leaves, left to right."""
    return [
        (level, (size >> level) - 1)
        for level in range(size.bit_length() - 1, -1, -1)
        if size >> level & 1
    ]


def appended_nodes(
    size: int, items: Sequence[bytes], known: dict[tuple[int, int], bytes]
) -> list[tuple[int, int, bytes]]:
    """The (level, index, hash) of the complete subtrees that appending ``items`` (as leaves) to
    a tree of ``size`` leaves adds. ``known`` must hold the :func:`frontier` of ``size``; it gets
    the new subtrees too."""
    rows: list[tuple[int, int, bytes]] = []
    for offset, item in enumerate(items):
        index, level = size + offset, 0
        digest = leaf_hash(item)
        known[(0, index)] = digest
        rows.append((0, index, digest))
        while index & 1:
            digest = node_hash(known[(level, index - 1)], digest)
            level, index = level + 1, index >> 1
            known[(level, index)] = digest
            rows.append((level, index, digest))
    return rows


def root_of_frontier(hashes: Sequence[bytes]) -> bytes:
    """The root of a tree from the hashes of its :func:`frontier`, left to right."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def subtree_root(start: int, size: int, node: Callable[[int, int], bytes]) -> bytes:
    """The root of the leaves ``[start, start + size)`` (``start`` a multiple of the largest
    power of two not above ``size``, as every range of a proof is) from ``node(level, index)``,
    the hash of a complete subtree."""
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return node(level, start >> level)
    split = largest_power_below(size)
    return node_hash(
        subtree_root(start, split, node), subtree_root(start + split, size - split, node)
    )


def largest_power_below(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` > 1): where RFC 6962 splits."""
    return 1 << ((size - 1).bit_length() - 1)


def consistency_proof(old: int, new: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The RFC 6962 proof that the tree of the first ``old`` leaves is a prefix of the tree of
    ``new`` leaves; ``subtree(start, size)`` gives the root of the leaves ``[start, start+size)``.
    """
    if not 0 < old <= new:
        raise MerkleError(f"no consistency proof from {old} to {new} leaves")
    if old == new:
        return []
    return _subproof(old, 0, new, True, subtree)


def _subproof(
    old: int, start: int, size: int, whole: bool, subtree: Callable[[int, int], bytes]
) -> list[bytes]:
    if old == size:
        return [] if whole else [subtree(start, size)]
    split = largest_power_below(size)
    if old <= split:
        return [*_subproof(old, start, split, whole, subtree), subtree(start + split, size - split)]
    return [
        *_subproof(old - split, start + split, size - split, False, subtree),
        subtree(start, split),
    ]


def consistent(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when ``proof`` shows the tree of ``old`` leaves (root ``old_root``) to be the first
    ``old`` leaves of the tree of ``new`` leaves (root ``new_root``)."""
    if not 0 < old <= new or any(len(step) != HASH_SIZE for step in proof):
        return False
    if old == new:
        return not proof and hmac.compare_digest(old_root, new_root)
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    first, second = old - 1, new - 1
    while first & 1:
        first >>= 1
        second >>= 1
    first_root = second_root = path[0]
    for step in path[1:]:
        if second == 0:
            return False
        if first & 1 or first == second:
            first_root = node_hash(step, first_root)
            second_root = node_hash(step, second_root)
            if not first & 1:
                while first and not first & 1:
                    first >>= 1
                    second >>= 1
        else:
            second_root = node_hash(second_root, step)
        first >>= 1
        second >>= 1
    return (
        second == 0
        and hmac.compare_digest(first_root, old_root)
        and hmac.compare_digest(second_root, new_root)
    )


def verify_inclusion(item: bytes, proof: InclusionProof, root: bytes) -> bool:
    """True when ``proof`` binds ``item`` at ``proof.index`` to ``root``."""
    try:
        check_inclusion(item, proof, root)
    except InclusionError:
        return False
    return True
