"""Pure checks of the relay's transparency log, shared by the agency client and the auditor.

No I/O: callers fetch heads and proofs, these functions say whether they hold or
raise :class:`~schemas.problems.LogConsistencyError` with a sentence naming what
failed. The log's formats are in ``docs/transparency-log.md``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from agency_client.protocol import ReceiptLog
from keys.directory import Directory
from keys.transparency import TreeHead, parse_leaf, verify_tree_head
from schemas.encoding import b64decode
from schemas.merkle import leaf_hash, verify_consistency, verify_inclusion
from schemas.problems import InvalidEnvelope, LogConsistencyError

__all__ = [
    "check_extends",
    "envelope_leaf_matches",
    "verify_envelope_inclusion",
    "verify_leaf_inclusion",
]


def envelope_leaf_matches(leaf: bytes, header_bytes: bytes, signature: bytes) -> bool:
    """Whether ``leaf`` is an ``envelope`` leaf holding exactly this header and signature."""
    try:
        value: dict[str, Any] = parse_leaf(leaf)
        logged_header = b64decode(str(value.get("header", "")), field="header")
        logged_signature = b64decode(str(value.get("signature", "")), field="signature")
    except InvalidEnvelope:
        return False
    return (
        value.get("type") == "envelope"
        and hmac.compare_digest(logged_header, header_bytes)
        and hmac.compare_digest(logged_signature, signature)
    )


def verify_leaf_inclusion(
    leaf: bytes, index: int, proof: Sequence[bytes], head: TreeHead, *, what: str = "the leaf"
) -> None:
    """Check ``leaf`` is at ``index`` in the tree ``head`` signed; raise naming ``what``."""
    try:
        verify_inclusion(leaf_hash(leaf), index, head.size, proof, head.root)
    except LogConsistencyError as exc:
        raise LogConsistencyError(
            f"{what}: the inclusion proof does not match the relay's signed tree head "
            f"(leaf {index}, tree size {head.size}): {exc}"
        ) from None


def verify_envelope_inclusion(
    log: ReceiptLog, header_bytes: bytes, signature: bytes, directory: Directory
) -> TreeHead | None:
    """Check a submit receipt's log part: the leaf is this header, proved in a signed head.

    Returns the verified head (None when the receipt carries no signed head yet).

    :raises LogConsistencyError: when the leaf is another message's or the proof fails.
    :raises BadSignature, UnknownAgency: when the head is not signed by a certified log key.
    """
    if not envelope_leaf_matches(log.leaf, header_bytes, signature):
        raise LogConsistencyError(
            f"the relay's receipt logs another header than the one signed (leaf {log.leaf_index})"
        )
    if log.tree_head is None:
        return None
    head = verify_tree_head(log.tree_head, directory)
    verify_leaf_inclusion(
        log.leaf, log.leaf_index, log.inclusion_proof, head, what="the relay's submit receipt"
    )
    return head


def check_extends(old: TreeHead, new: TreeHead, proof: Sequence[bytes]) -> None:
    """Check ``new`` extends ``old`` (or is the same head); ``proof`` is PROOF(old, new).

    :raises LogConsistencyError: when the two heads cannot both be honest: the relay
        forked its log or rewrote history.
    """
    if old.log != new.log:
        raise LogConsistencyError(f"tree heads of two different logs ({old.log}, {new.log})")
    first, second = (old, new) if old.size <= new.size else (new, old)
    try:
        verify_consistency(first.size, second.size, first.root, second.root, proof)
    except LogConsistencyError as exc:
        raise LogConsistencyError(
            f"the relay's log forked or was rewritten: the tree head of size {second.size} "
            f"does not extend the one of size {first.size} ({exc})"
        ) from None
