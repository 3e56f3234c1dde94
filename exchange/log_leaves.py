"""The transparency log's leaf formats (pure: bytes in, bytes out; no I/O).

Every leaf is canonical JSON built by :func:`keys.transparency.leaf_bytes` and
carries the relay's event ``sequence`` (its position in ``GET /v1/audit/events``)
and the relay time ``at``. Leaves hold ids, codes, digests and signatures only:

* ``envelope``: the exact signed header bytes and the sender's signature, so the
  header can be re-verified from the log alone;
* ``receipt``: the recipient's signed delivery receipt (ids, a time, a digest);
* ``deletion``: retention deleted a message's ciphertext (the header stays);
* ``expiry``: a delivery expired before the recipient collected it;
* ``rejection``: a signed header the relay refused on its lawful basis, with the
  rule ids, so the auditor can count and re-check refusals.

``docs/transparency-log.md`` describes each field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from keys.transparency import leaf_bytes
from schemas.encoding import b64encode
from schemas.timefmt import format_time

__all__ = [
    "deletion_leaf",
    "envelope_leaf",
    "expiry_leaf",
    "receipt_leaf",
    "rejection_leaf",
]


def envelope_leaf(*, sequence: int, at: datetime, header: bytes, signature: bytes) -> bytes:
    """An accepted envelope: its exact signed header and the sender's signature."""
    return leaf_bytes(
        "envelope",
        {
            "sequence": sequence,
            "at": format_time(at),
            "header": b64encode(header),
            "signature": b64encode(signature),
        },
    )


def receipt_leaf(
    *,
    sequence: int,
    at: datetime,
    message_id: str,
    recipient: str,
    receipt: Mapping[str, Any],
) -> bytes:
    """A recipient's signed delivery receipt (wire form ``{"body", "signature"}``)."""
    return leaf_bytes(
        "receipt",
        {
            "sequence": sequence,
            "at": format_time(at),
            "message_id": message_id,
            "recipient": recipient,
            "receipt": {"body": str(receipt["body"]), "signature": str(receipt["signature"])},
        },
    )


def deletion_leaf(*, sequence: int, at: datetime, message_id: str, reason: str) -> bytes:
    """Retention deleted the message's ciphertext (``retention`` or ``expired``)."""
    return leaf_bytes(
        "deletion",
        {"sequence": sequence, "at": format_time(at), "message_id": message_id, "reason": reason},
    )


def expiry_leaf(*, sequence: int, at: datetime, message_id: str, recipient: str) -> bytes:
    """A delivery to ``recipient`` expired before it was collected."""
    return leaf_bytes(
        "expiry",
        {
            "sequence": sequence,
            "at": format_time(at),
            "message_id": message_id,
            "recipient": recipient,
        },
    )


def rejection_leaf(
    *,
    sequence: int,
    at: datetime,
    header: bytes,
    signature: bytes,
    code: str,
    rules: Sequence[str],
    policy_version: str,
) -> bytes:
    """A signed header the relay refused (``code``), with the failing rule ids."""
    return leaf_bytes(
        "rejection",
        {
            "sequence": sequence,
            "at": format_time(at),
            "header": b64encode(header),
            "signature": b64encode(signature),
            "code": code,
            "rules": sorted(set(rules)),
            "policy_version": policy_version,
        },
    )
