"""Canonical bytes for everything the exchange signs, hashes or encrypts.

Theory of operation
-------------------
Every signature and every digest in the exchange is computed over bytes produced
here, never over a re-serialised dictionary. Three rules keep those bytes
unambiguous:

1. **One canonical JSON form.** Structured values (headers, certificates,
   revocation lists, tree leaves) are encoded with RFC 8785, the JSON
   Canonicalization Scheme: sorted keys, no insignificant white space, a single
   number and string form. Two implementations that agree on the value agree on
   the bytes.
2. **Pre-authentication encoding (PAE).** What is signed is never the bare
   bytes but ``pae(type, *parts)``: a version tag, the count of parts, and each
   part length-prefixed with an unsigned 64-bit little-endian integer. No two
   different sequences of parts share an encoding, so a header cannot be
   confused with a certificate or a part boundary shifted.
3. **Domain separation.** Every hash, signature and key derivation names its
   purpose (``DOMAIN_*`` below). A signature made for one purpose is useless for
   another.

The receiver keeps the bytes it was given and verifies those; parsing into
typed models happens only after verification succeeds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import rfc8785

from schemas.problems import InvalidEnvelope

__all__ = [
    "DOMAIN_AUDIT_LEAF",
    "DOMAIN_BODY_AAD",
    "DOMAIN_CERTIFICATE",
    "DOMAIN_CERTIFICATE_ID",
    "DOMAIN_ENVELOPE",
    "DOMAIN_FINGERPRINT",
    "DOMAIN_JUSTIFICATION_AAD",
    "DOMAIN_JUSTIFICATION_COMMITMENT",
    "DOMAIN_KEY_DERIVATION",
    "DOMAIN_RECEIPT",
    "DOMAIN_REVOCATION_LIST",
    "DOMAIN_SEALS",
    "DOMAIN_TREE_HEAD",
    "b64decode",
    "b64encode",
    "canonical_json",
    "digest",
    "pae",
]

#: Signed header of an envelope (what the sender's Ed25519 key signs).
DOMAIN_ENVELOPE = "application/vnd.safeguard.envelope.v1"
#: Associated data binding the encrypted body to the header's routing part.
DOMAIN_BODY_AAD = "safeguard:body-aad:v1"
#: Associated data binding the encrypted justification to the header.
DOMAIN_JUSTIFICATION_AAD = "safeguard:justification-aad:v1"
#: Salted commitment to the free-text justification, carried in the header.
DOMAIN_JUSTIFICATION_COMMITMENT = "safeguard:justification-commitment:v1"
#: Digest of the block of wrapped keys and the sealed justification.
DOMAIN_SEALS = "safeguard:seals:v1"
#: Certificate issued by the partnership root.
DOMAIN_CERTIFICATE = "application/vnd.safeguard.certificate.v1"
#: Identifier of a certificate: digest of its exact body bytes.
DOMAIN_CERTIFICATE_ID = "safeguard:certificate-id:v1"
#: Human-readable key fingerprint (BLAKE2b-160 of the public key and its kind).
DOMAIN_FINGERPRINT = "safeguard:fingerprint:v1"
#: Deterministic derivation of private keys from a 32-byte seed (test vectors).
DOMAIN_KEY_DERIVATION = "safeguard:key-derivation:v1"
#: Revocation list issued by the partnership root.
DOMAIN_REVOCATION_LIST = "application/vnd.safeguard.revocation-list.v1"
#: Delivery receipt signed by a recipient.
DOMAIN_RECEIPT = "application/vnd.safeguard.delivery-receipt.v1"
#: Signed tree head of the relay's transparency log.
DOMAIN_TREE_HEAD = "application/vnd.safeguard.tree-head.v1"
#: Leaf of an audit chain or log.
DOMAIN_AUDIT_LEAF = "safeguard:audit-leaf:v1"

_PAE_TAG = b"SGX-PAE-v1"


def pae(type_: str, *parts: bytes) -> bytes:
    """Return the pre-authentication encoding of ``parts`` under ``type_``.

    Layout: ``"SGX-PAE-v1" || u64le(n+1) || u64le(len(type)) || type ||
    (u64le(len(part)) || part)*``. Injective over (type, parts).
    """
    type_bytes = type_.encode("utf-8")
    chunks = [_PAE_TAG, struct.pack("<Q", len(parts) + 1)]
    for part in (type_bytes, *parts):
        chunks.append(struct.pack("<Q", len(part)))
        chunks.append(part)
    return b"".join(chunks)


def canonical_json(value: Mapping[str, Any] | list[Any]) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON bytes.

    Raises :class:`InvalidEnvelope` for values that have no canonical form
    (floats such as NaN, non-string keys, integers beyond IEEE 754 range).
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidEnvelope(f"value has no canonical JSON form: {exc}") from None


def digest(domain: str, *parts: bytes) -> bytes:
    """SHA-256 over ``pae(domain, *parts)``: a 32-byte domain-separated digest."""
    return hashlib.sha256(pae(domain, *parts)).digest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, field: str = "value") -> bytes:
    """Strictly decode standard padded base64; reject anything non-canonical.

    Re-encoding must reproduce the input exactly, so no two strings decode to
    the same bytes (a malleability some fuzzers would otherwise find).
    """
    if not isinstance(text, str):
        raise InvalidEnvelope(f"{field} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidEnvelope(f"{field} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise InvalidEnvelope(f"{field} is not canonical base64")
    return raw
