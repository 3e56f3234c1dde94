"""RFC 9162 Merkle tree: roots, inclusion and consistency proofs, and their failures."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by,
    root_from_leaves,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from schemas.problems import LogConsistencyError


class Store:
    """An in-memory node store filled the way the relay fills its table."""

    def __init__(self, count: int) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(count)]
        for i, leaf in enumerate(self.leaves):
            for level, index, value in nodes_completed_by(i, leaf, self.node):
                self.nodes[(level, index)] = value

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


def test_known_small_roots() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert root_from_leaves([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_from_leaves([a]) == a
    assert root_from_leaves([a, b, c]) == node_hash(node_hash(a, b), c)
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()


@given(st.integers(min_value=1, max_value=70))
def test_stored_nodes_give_the_definition_root(size: int) -> None:
    store = Store(size)
    for n in range(1, size + 1):
        assert tree_root(n, store.node) == root_from_leaves(store.leaves[:n])


@given(st.data())
def test_every_inclusion_proof_verifies(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=64))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    store = Store(size)
    root = tree_root(size, store.node)
    proof = inclusion_proof(index, size, store.node)
    verify_inclusion(store.leaves[index], index, size, proof, root)
    with pytest.raises(LogConsistencyError):
        verify_inclusion(leaf_hash(b"other"), index, size, proof, root)
    if proof:
        bad = [*proof]
        bad[0] = bytes(32)
        with pytest.raises(LogConsistencyError):
            verify_inclusion(store.leaves[index], index, size, bad, root)
    if size > 1:
        with pytest.raises(LogConsistencyError):
            verify_inclusion(store.leaves[index], (index + 1) % size, size, proof, root)


@given(st.data())
def test_every_consistency_proof_verifies(data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=1, max_value=64))
    old = data.draw(st.integers(min_value=1, max_value=new))
    store = Store(new)
    old_root, new_root = tree_root(old, store.node), tree_root(new, store.node)
    proof = consistency_proof(old, new, store.node)
    verify_consistency(old, new, old_root, new_root, proof)
    with pytest.raises(LogConsistencyError):
        verify_consistency(old, new, old_root, node_hash(new_root, new_root), proof)


def test_rewritten_history_is_detected() -> None:
    """A log that changes leaf 3 and re-signs cannot prove consistency with the old head."""
    honest = Store(10)
    old_root = tree_root(6, honest.node)
    forged = Store(10)
    forged.leaves[3] = leaf_hash(b"rewritten")
    forged.nodes.clear()
    for i, leaf in enumerate(forged.leaves):
        for level, index, value in nodes_completed_by(i, leaf, forged.node):
            forged.nodes[(level, index)] = value
    proof = consistency_proof(6, 10, forged.node)
    with pytest.raises(LogConsistencyError):
        verify_consistency(6, 10, old_root, tree_root(10, forged.node), proof)


def test_same_size_different_root_is_a_fork() -> None:
    with pytest.raises(LogConsistencyError):
        verify_consistency(5, 5, leaf_hash(b"a"), leaf_hash(b"b"), [])
