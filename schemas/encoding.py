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
import json
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
    "DOMAIN_CERTIFICATE_REQUEST",
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
    "loads_canonical",
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
#: Certificate request, signed by the key it asks to certify (proof of possession).
DOMAIN_CERTIFICATE_REQUEST = "safeguard:certificate-request:v1"
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


_MAX_SAFE_INTEGER = 2**53 - 1


def _fast_path_safe(value: Any, depth: int = 0) -> bool:
    """True when ``json.dumps(sort_keys=True)`` gives exactly the RFC 8785 bytes.

    That holds for strings, safe integers, booleans, null, lists and objects whose keys
    hold no character outside the Basic Multilingual Plane (where UTF-16 and code-point
    key order agree), with no floats anywhere. Anything else takes the reference path.
    """
    if depth > 64:
        return False
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    if isinstance(value, list | tuple):
        return all(_fast_path_safe(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, str)
            and (k.isascii() or max(k) <= "\uffff")
            and _fast_path_safe(v, depth + 1)
            for k, v in value.items()
        )
    return False


def canonical_json(value: Mapping[str, Any] | list[Any]) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON bytes.

    Common values (no floats, no astral-plane keys) are encoded by the C JSON encoder,
    which produces the same bytes as RFC 8785 for them and is many times faster; a
    property test holds the two paths equal. Raises :class:`InvalidEnvelope` for values
    that have no canonical form (NaN, non-string keys, unsafe integers, lone surrogates).
    """
    if _fast_path_safe(value):
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise InvalidEnvelope(f"value has no canonical JSON form: {exc}") from None
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidEnvelope(f"value has no canonical JSON form: {exc}") from None


def _refuse_float(text: str) -> Any:
    raise ValueError("floats have no place in signed structures")


def _safe_int(text: str) -> int:
    number = int(text)
    if not -_MAX_SAFE_INTEGER <= number <= _MAX_SAFE_INTEGER:
        raise ValueError("integer outside the IEEE 754 safe range")
    return number


def loads_canonical(data: bytes, *, what: str = "value") -> Any:
    """Parse JSON bytes and insist they are already RFC 8785 canonical.

    The received bytes are what was signed, so they must be the one canonical
    encoding of the value they carry: re-encoding must reproduce them exactly
    (which also refuses duplicate keys, floats and insignificant white space).
    Raises :class:`InvalidEnvelope` naming ``what``.
    """
    astral_keys = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal astral_keys
        for key, _ in items:
            if not key.isascii() and max(key) > "\uffff":
                astral_keys = True
        return dict(items)

    try:
        value = json.loads(
            data,
            object_pairs_hook=pairs,
            parse_float=_refuse_float,
            parse_int=_safe_int,
            parse_constant=_refuse_float,
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidEnvelope(f"{what} is not valid JSON for a signed structure") from None
    try:
        if astral_keys:
            encoded = rfc8785.dumps(value)
        else:
            encoded = json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
    except (rfc8785.CanonicalizationError, ValueError, UnicodeEncodeError):
        raise InvalidEnvelope(f"{what} has no canonical JSON form") from None
    if encoded != data:
        raise InvalidEnvelope(f"{what} bytes are not canonical JSON")
    return value


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
