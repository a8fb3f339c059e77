"""Merkle roots and inclusion proofs: RFC 6962 reference values and properties over random lists."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kuroshio.errors import InclusionError, MerkleError
from kuroshio.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    MerkleTree,
    check_inclusion,
    consistency_proof,
    consistent,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)

# The Certificate Transparency reference inputs and tree heads for sizes 1..8 (RFC 6962 hashing),
# as published with the CT log implementations.
CT_ITEMS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PROOFS = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def rfc6962_root(items: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1: split at the largest power of two below n."""
    if not items:
        return hashlib.sha256(b"").digest()
    if len(items) == 1:
        return hashlib.sha256(b"\x00" + items[0]).digest()
    split = 1
    while split * 2 < len(items):
        split *= 2
    left, right = rfc6962_root(items[:split]), rfc6962_root(items[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


items_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


def test_roots_match_the_certificate_transparency_reference() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert merkle_root(CT_ITEMS[:size]).hex() == expected
        assert MerkleTree(CT_ITEMS[:size]).root.hex() == expected


def test_proofs_match_the_certificate_transparency_reference() -> None:
    tree = MerkleTree(CT_ITEMS)
    for (index, size), expected in CT_PROOFS.items():
        proof = MerkleTree(CT_ITEMS[:size]).inclusion_proof(index)
        assert [step.hex() for step in proof.path] == expected
        assert verify_inclusion(CT_ITEMS[index], proof, tree.root)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    item = b"\x00" * 64
    assert leaf_hash(item) == hashlib.sha256(b"\x00" + item).digest()
    assert node_hash(item[:32], item[32:]) == hashlib.sha256(b"\x01" + item).digest()
    # A two-leaf tree's interior bytes, offered as one item, do not give the same root.
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([a + b]) != merkle_root([b"a", b"b"])


@given(items_lists)
def test_root_is_the_rfc6962_definition(items: list[bytes]) -> None:
    assert merkle_root(items) == rfc6962_root(items) == MerkleTree(items).root


@settings(max_examples=60)
@given(items_lists)
def test_every_index_proof_verifies(items: list[bytes]) -> None:
    tree = MerkleTree(items)
    for index, item in enumerate(items):
        proof = tree.inclusion_proof(index)
        assert proof.tree_size == len(items)
        assert len(proof.path) <= max(1, len(items) - 1).bit_length()
        assert verify_inclusion(item, proof, tree.root)
        check_inclusion(item, proof, tree.root)


@given(items_lists, st.data())
def test_modified_item_wrong_index_or_wrong_root_fail(
    items: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(items)
    index = data.draw(st.integers(0, len(items) - 1), label="index")
    proof = tree.inclusion_proof(index)
    item = items[index]

    modified = data.draw(st.binary(max_size=40).filter(lambda b: b != item), label="modified")
    assert not verify_inclusion(modified, proof, tree.root)

    other_root = data.draw(st.binary(min_size=32, max_size=32).filter(lambda r: r != tree.root))
    assert not verify_inclusion(item, proof, other_root)
    with pytest.raises(InclusionError, match="different root"):
        check_inclusion(item, proof, other_root)

    if len(items) > 1:
        wrong = data.draw(st.integers(0, len(items) - 1).filter(lambda i: i != index))
        moved = InclusionProof(index=wrong, tree_size=proof.tree_size, path=proof.path)
        # A proof for position `wrong` can only hold if that position holds the same item.
        if items[wrong] != item:
            assert not verify_inclusion(item, moved, tree.root)


@given(items_lists, items_lists)
def test_different_lists_have_different_roots(first: list[bytes], second: list[bytes]) -> None:
    if first != second:
        assert merkle_root(first) != merkle_root(second)


def test_path_too_short_or_too_long_is_rejected_with_a_reason() -> None:
    items = [bytes([i]) for i in range(11)]
    tree = MerkleTree(items)
    proof = tree.inclusion_proof(6)

    with pytest.raises(InclusionError, match="too short"):
        check_inclusion(
            items[6], InclusionProof(index=6, tree_size=11, path=proof.path[:-1]), tree.root
        )
    with pytest.raises(InclusionError, match="too long"):
        check_inclusion(
            items[6],
            InclusionProof(index=6, tree_size=11, path=[*proof.path, tree.root]),
            tree.root,
        )


def test_proof_survives_the_wire_and_rejects_malformed_input() -> None:
    items = [f"observation {i}".encode() for i in range(300)]
    tree = MerkleTree(items)
    proof = tree.inclusion_proof(123)

    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(proof), type=InclusionProof)
    assert decoded == proof
    assert verify_inclusion(items[123], decoded, tree.root)

    bad_index = msgspec.msgpack.encode({"index": 300, "tree_size": 300, "path": proof.path})
    with pytest.raises(msgspec.ValidationError, match="outside a tree"):
        msgspec.msgpack.decode(bad_index, type=InclusionProof)
    short_step = msgspec.msgpack.encode({"index": 1, "tree_size": 2, "path": [b"\x00" * 31]})
    with pytest.raises(msgspec.ValidationError, match="path"):
        msgspec.msgpack.decode(short_step, type=InclusionProof)


def test_tree_answers_only_for_its_own_indexes() -> None:
    tree = MerkleTree([b"a", b"b", b"c"])
    assert len(tree) == 3
    assert tree.leaf_hash(2) == leaf_hash(b"c")
    with pytest.raises(MerkleError, match="no item 3"):
        tree.inclusion_proof(3)
    with pytest.raises(MerkleError):
        tree.inclusion_proof(-1)
    assert MerkleTree([]).root == EMPTY_ROOT
    assert inclusion_proof([b"a", b"b", b"c"], 1) == tree.inclusion_proof(1)


def test_from_leaf_hashes_builds_the_same_tree() -> None:
    items = [bytes([i]) * i for i in range(37)]
    tree = MerkleTree.from_leaf_hashes([leaf_hash(item) for item in items])
    assert tree.root == merkle_root(items)
    with pytest.raises(MerkleError, match="31 bytes"):
        MerkleTree.from_leaf_hashes([b"\x00" * 31])


def test_a_million_items_build_once_and_prove_any_index() -> None:
    items = [i.to_bytes(8, "big") for i in range(1_000_000)]
    tree = MerkleTree(items)

    assert tree.root == merkle_root(items)
    for index in (0, 1, 524_287, 524_288, 999_998, 999_999):
        proof = tree.inclusion_proof(index)
        assert len(proof.path) <= 20  # 2**20 > 1_000_000
        assert verify_inclusion(items[index], proof, tree.root)
    assert not verify_inclusion(items[7], tree.inclusion_proof(8), tree.root)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_consistency_proofs_show_a_prefix_and_nothing_else(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new))
    items = [f"entry {n}".encode() for n in range(new)]
    tree = MerkleTree(items)

    def subtree(start: int, size: int) -> bytes:
        return MerkleTree(items[start : start + size]).root

    proof = consistency_proof(old, new, subtree)
    old_root = MerkleTree(items[:old]).root
    assert consistent(old, new, old_root, tree.root, proof)
    # Another history of the first leaves, a wrong size or a damaged step does not pass.
    rewritten = MerkleTree([b"rewritten", *items[1:old]]).root
    assert not consistent(old, new, rewritten, tree.root, proof)
    if old < new:
        assert not consistent(old + 1, new, old_root, tree.root, proof)
        if proof:
            damaged = [bytes(32), *proof[1:]]
            assert not consistent(old, new, old_root, tree.root, damaged)
