"""The transparency log's Merkle tree, as in RFC 9162 (Certificate Transparency 2.0).

Theory of operation
-------------------
The relay appends one **leaf** for every accepted header, delivery receipt,
deletion and expiry. Leaves are hashed ``SHA-256(0x00 || leaf)`` and interior
nodes ``SHA-256(0x01 || left || right)``: the one-byte prefixes are RFC 9162's
domain separation, so a leaf can never be passed off as a node.

The tree over ``n`` leaves is ``MTH(D[n])`` of RFC 9162 section 2.1.1: split at
the largest power of two smaller than ``n``, hash the left (always a perfect,
aligned subtree) and the right recursively. Because every left part is a
*perfect aligned* subtree, a store only needs to remember perfect subtrees:
``node(level, index)`` is the hash of leaves ``[index * 2**level, (index+1) *
2**level)``. Appending leaf ``i`` completes at most ``log2(n)`` of them
(:func:`nodes_completed_by`). Every root, inclusion proof and consistency
proof is then computed from ``O(log n)`` perfect nodes via a lookup callable,
which is how the relay serves proofs over millions of leaves without reading
them all.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows the
algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 and needs only hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from schemas.problems import LogConsistencyError

__all__ = [
    "EMPTY_ROOT",
    "NodeLookup",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "nodes_completed_by",
    "root_from_leaves",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

#: ``node(level, index)`` -> the hash of a perfect, aligned subtree already stored.
NodeLookup = Callable[[int, int], bytes]

#: MTH of the empty tree: SHA-256 of the empty string (RFC 9162 section 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes, straight from the definition (for tests and audits)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


def nodes_completed_by(index: int, leaf: bytes, node: NodeLookup) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees completed by appending leaf hash ``leaf`` at ``index``.

    Returns ``(level, index, hash)`` triples, level 0 (the leaf itself) first.
    ``node`` must already answer for every perfect subtree left of ``index``.
    """
    completed = [(0, index, leaf)]
    level, position, current = 0, index, leaf
    while position % 2 == 1:
        current = node_hash(node(level, position - 1), current)
        level, position = level + 1, position // 2
        completed.append((level, position, current))
    return completed


def _range_hash(start: int, end: int, node: NodeLookup) -> bytes:
    """MTH of leaves ``[start, end)`` where ``start`` is aligned as in the MTH recursion."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        return node(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(_range_hash(start, start + k, node), _range_hash(start + k, end, node))


def tree_root(size: int, node: NodeLookup) -> bytes:
    """MTH of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeLookup) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, start, start + k), _range_hash(start + k, end, node)]
        return [*path(m - k, start + k, end), _range_hash(start, start + k, node)]

    return path(index, 0, size)


def consistency_proof(old_size: int, new_size: int, node: NodeLookup) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1."""
    if not 0 < old_size <= new_size:
        raise ValueError("consistency needs 0 < old_size <= new_size")

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [_range_hash(start, end, node)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, start, start + k, complete), _range_hash(start + k, end, node)]
        return [*subproof(m - k, start + k, end, False), _range_hash(start, start + k, node)]

    return subproof(old_size, 0, new_size, True)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 section 2.1.3.2); raise on failure."""
    if not 0 <= index < size:
        raise LogConsistencyError("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise LogConsistencyError("inclusion proof is too long")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise LogConsistencyError("inclusion proof does not lead to the tree head's root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 section 2.1.4.2); raise on a fork or rewrite."""
    if old_size == new_size:
        if proof or old_root != new_root:
            raise LogConsistencyError("same tree size but different roots: the log forked")
        return
    if not 0 < old_size < new_size:
        raise LogConsistencyError("tree sizes are not increasing")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise LogConsistencyError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise LogConsistencyError("consistency proof is too long")
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise LogConsistencyError("the new tree head does not extend the old one: fork or rewrite")
