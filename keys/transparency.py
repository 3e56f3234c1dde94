"""Signed tree heads and log leaves for the relay's transparency log.

Theory of operation
-------------------
The relay appends a **leaf** for every accepted envelope header, every
delivery receipt and every deletion or expiry (:func:`leaf_bytes`). A leaf is
canonical JSON; an envelope leaf carries the exact signed header bytes and the
sender's signature, so an auditor can re-verify every header from the log
alone. The tree over the leaves is RFC 9162's (:mod:`schemas.merkle`).

Periodically, and on demand, the relay signs a **tree head** (size, root,
time) with its log key, an Ed25519 key certified by the partnership root with
role ``relay``. Clients and auditors keep the newest head they have verified
and demand a consistency proof to every newer one, so a relay that rewrites
or forks history is caught the next time anyone looks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from keys.certificates import Certificate
from keys.directory import Directory
from keys.identity import AgencyIdentity
from schemas.encoding import DOMAIN_TREE_HEAD, b64decode, b64encode, canonical_json, pae
from schemas.problems import BadSignature, InvalidEnvelope
from schemas.timefmt import format_time, parse_time

__all__ = [
    "LeafType",
    "SignedTreeHead",
    "TreeHead",
    "leaf_bytes",
    "parse_leaf",
    "sign_tree_head",
    "verify_tree_head",
]

LeafType = Literal["envelope", "receipt", "deletion", "expiry", "rejection"]
_HEAD_KEYS = frozenset({"v", "log", "size", "root", "timestamp", "cert"})


def leaf_bytes(leaf_type: LeafType, fields: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of a log leaf: ``{"type": ..., **fields}``."""
    if "type" in fields:
        raise ValueError("fields must not carry their own type")
    return canonical_json({"type": leaf_type, **fields})


def parse_leaf(data: bytes) -> dict[str, Any]:
    """Parse leaf bytes strictly (canonical JSON object with a known type)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidEnvelope("log leaf is not JSON") from None
    if not isinstance(value, dict) or canonical_json(value) != data:
        raise InvalidEnvelope("log leaf is not a canonical JSON object")
    if value.get("type") not in {"envelope", "receipt", "deletion", "expiry", "rejection"}:
        raise InvalidEnvelope("log leaf has an unknown type")
    return value


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree head: the log had ``size`` leaves with ``root`` at ``timestamp``."""

    log: str
    size: int
    root: bytes
    timestamp: datetime
    cert: str

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes, as signed."""
        return canonical_json(
            {
                "v": 1,
                "log": self.log,
                "size": self.size,
                "root": b64encode(self.root),
                "timestamp": format_time(self.timestamp),
                "cert": self.cert,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TreeHead:
        """Strictly parse tree head bytes."""
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidEnvelope("tree head is not JSON") from None
        if not isinstance(value, dict) or set(value) != _HEAD_KEYS or value["v"] != 1:
            raise InvalidEnvelope("tree head has the wrong fields")
        if canonical_json(value) != data:
            raise InvalidEnvelope("tree head is not canonical JSON")
        size = value["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidEnvelope("tree head size must be a non-negative integer")
        root = b64decode(value["root"], field="root")
        if len(root) != 32:
            raise InvalidEnvelope("tree head root must be 32 bytes")
        if not isinstance(value["log"], str) or not isinstance(value["cert"], str):
            raise InvalidEnvelope("tree head log and cert must be strings")
        return cls(
            log=value["log"],
            size=size,
            root=root,
            timestamp=parse_time(value["timestamp"], field="timestamp"),
            cert=value["cert"],
        )


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A tree head as exact bytes plus the relay log key's signature."""

    head_bytes: bytes
    signature: bytes

    @property
    def head(self) -> TreeHead:
        """The parsed head, **unverified**: use :func:`verify_tree_head` before trusting it."""
        return TreeHead.from_bytes(self.head_bytes)

    def to_json(self) -> dict[str, str]:
        """Wire form ``{"head": b64, "signature": b64}``."""
        return {"head": b64encode(self.head_bytes), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, value: object) -> SignedTreeHead:
        """Strictly parse the wire form."""
        if not isinstance(value, dict) or set(value) != {"head", "signature"}:
            raise InvalidEnvelope("a signed tree head is an object with head and signature")
        signature = b64decode(value["signature"], field="signature")
        if len(signature) != 64:
            raise InvalidEnvelope("tree head signature must be 64 bytes")
        return cls(head_bytes=b64decode(value["head"], field="head"), signature=signature)


def sign_tree_head(
    identity: AgencyIdentity,
    certificate: Certificate,
    *,
    size: int,
    root: bytes,
    timestamp: datetime,
) -> SignedTreeHead:
    """Sign a tree head with the relay's log key (its certificate must have role ``relay``)."""
    if certificate.body.role != "relay":
        raise ValueError("tree heads are signed with a relay log certificate")
    head = TreeHead(
        log=certificate.body.agency_id,
        size=size,
        root=root,
        timestamp=timestamp,
        cert=certificate.id,
    )
    head_bytes = head.to_bytes()
    return SignedTreeHead(head_bytes, identity.sign(pae(DOMAIN_TREE_HEAD, head_bytes)))


def verify_tree_head(signed: SignedTreeHead, directory: Directory) -> TreeHead:
    """Verify a signed tree head against the relay log certificate the root issued.

    The certificate must be valid at the head's own timestamp and have role ``relay``.
    """
    head = TreeHead.from_bytes(signed.head_bytes)
    cert = directory.by_id(head.cert, at=head.timestamp)
    if cert.role != "relay" or cert.agency_id != head.log:
        raise BadSignature("the tree head is not signed by a relay log key")
    cert.public_keys.verify(pae(DOMAIN_TREE_HEAD, signed.head_bytes), signed.signature)
    return head
