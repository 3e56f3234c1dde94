"""Signed delivery receipts: a recipient's proof that it received a message intact.

A receipt names the message by id *and* by the digest of its exact header
bytes, so it cannot be moved to another message. The relay keeps a message
deliverable until it holds a valid receipt from that recipient, and logs the
receipt so that the sender and the auditor can see delivery was confirmed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keys.certificates import Certificate
from keys.directory import Directory
from keys.identity import AgencyIdentity
from schemas.encoding import DOMAIN_RECEIPT, b64decode, b64encode, canonical_json, pae
from schemas.envelope import MESSAGE_ID_PATTERN
from schemas.problems import InvalidEnvelope, InvalidReceipt
from schemas.timefmt import format_time, parse_time

__all__ = ["DeliveryReceipt", "ReceiptBody", "sign_receipt", "verify_receipt"]

_BODY_KEYS = frozenset({"v", "message_id", "recipient", "cert", "received_at", "header_digest"})


@dataclass(frozen=True, slots=True)
class ReceiptBody:
    """What a verified receipt says."""

    message_id: str
    recipient: str
    cert: str
    received_at: datetime
    header_digest: bytes


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A receipt as exact signed bytes."""

    body_bytes: bytes
    signature: bytes

    def to_json(self) -> dict[str, str]:
        """The wire form ``{"body": b64, "signature": b64}``."""
        return {"body": b64encode(self.body_bytes), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, value: object) -> DeliveryReceipt:
        """Strictly parse the wire form; raise :class:`InvalidReceipt` otherwise."""
        if not isinstance(value, dict) or set(value) != {"body", "signature"}:
            raise InvalidReceipt("a receipt is an object with body and signature")
        try:
            body = b64decode(value["body"], field="receipt body")
            signature = b64decode(value["signature"], field="receipt signature")
        except InvalidEnvelope as exc:
            raise InvalidReceipt(str(exc)) from None
        if len(signature) != 64:
            raise InvalidReceipt("receipt signature must be 64 bytes")
        return cls(body_bytes=body, signature=signature)


def sign_receipt(
    identity: AgencyIdentity,
    certificate: Certificate,
    *,
    message_id: str,
    header_digest: bytes,
    received_at: datetime,
) -> DeliveryReceipt:
    """Sign a receipt for the message whose header has ``header_digest``."""
    body = canonical_json(
        {
            "v": 1,
            "message_id": message_id,
            "recipient": certificate.body.agency_id,
            "cert": certificate.id,
            "received_at": format_time(received_at),
            "header_digest": b64encode(header_digest),
        }
    )
    return DeliveryReceipt(body_bytes=body, signature=identity.sign(pae(DOMAIN_RECEIPT, body)))


def _parse_body(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidReceipt("receipt body is not JSON") from None
    if not isinstance(value, dict) or set(value) != _BODY_KEYS:
        raise InvalidReceipt("receipt body has the wrong fields")
    if canonical_json(value) != data:
        raise InvalidReceipt("receipt body is not canonical JSON")
    return value


def verify_receipt(receipt: DeliveryReceipt, directory: Directory, *, at: datetime) -> ReceiptBody:
    """Verify a receipt's signature against the recipient's certificate and return its body."""
    value = _parse_body(receipt.body_bytes)
    cert_id = value["cert"]
    if not isinstance(cert_id, str):
        raise InvalidReceipt("receipt names no certificate")
    cert = directory.by_id(cert_id, at=at)
    cert.public_keys.verify(pae(DOMAIN_RECEIPT, receipt.body_bytes), receipt.signature)
    if value["v"] != 1 or value["recipient"] != cert.agency_id:
        raise InvalidReceipt("receipt recipient does not match its certificate")
    message_id = value["message_id"]
    if not isinstance(message_id, str) or not MESSAGE_ID_PATTERN.fullmatch(message_id):
        raise InvalidReceipt("receipt message id is malformed")
    try:
        digest_bytes = b64decode(value["header_digest"], field="header_digest")
        received_at = parse_time(value["received_at"], field="received_at")
    except InvalidEnvelope as exc:
        raise InvalidReceipt(str(exc)) from None
    if len(digest_bytes) != 32:
        raise InvalidReceipt("receipt header digest must be 32 bytes")
    return ReceiptBody(
        message_id=message_id,
        recipient=cert.agency_id,
        cert=cert_id,
        received_at=received_at,
        header_digest=digest_bytes,
    )
