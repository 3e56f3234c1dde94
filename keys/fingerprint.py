"""Fingerprints people read aloud, and the identifiers programs use for certificates.

A **fingerprint** names a public key for humans: BLAKE2b-160 over
``pae("safeguard:fingerprint:v1", kind, public_key)``, written as RFC 4648
base32 (no padding) in 8 groups of 4 characters, ``ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567``.
160 bits make a second-preimage search infeasible while staying short enough
to confirm over the phone. ``kind`` keeps a root fingerprint from ever matching
an agency fingerprint of the same bytes.

For an agency, fingerprint ``bytes(AgencyPublicKeys)`` (signing key followed by
encryption key, see :attr:`keys.identity.AgencyPublicKeys.fingerprint`) so the
reading confirms both keys; for the partnership root, its Ed25519 public key
with ``kind="root"``.

A **certificate id** names a certificate for programs: the lowercase hex of
``SHA-256(pae("safeguard:certificate-id:v1", body_bytes))`` over the exact signed
body bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re

from schemas.encoding import DOMAIN_CERTIFICATE_ID, DOMAIN_FINGERPRINT, digest, pae

__all__ = ["certificate_id", "fingerprint", "is_certificate_id", "is_fingerprint"]

_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{4}){7}")
_CERTIFICATE_ID = re.compile(r"[0-9a-f]{64}")


def fingerprint(public_key: bytes, *, kind: str = "agency") -> str:
    """Return the fingerprint of ``public_key`` as ``XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX``.

    :param public_key: the raw public key bytes (non-empty).
    :param kind: what the key belongs to (``"agency"``, ``"root"``, ``"relay"``...): a
        lowercase word, part of the hashed input.
    :raises ValueError: on an empty key or a malformed ``kind``.
    """
    if not isinstance(public_key, bytes | bytearray) or not public_key:
        raise ValueError("public_key must be non-empty bytes")
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ValueError("kind must be a short lowercase word such as 'agency' or 'root'")
    raw = hashlib.blake2b(
        pae(DOMAIN_FINGERPRINT, kind.encode("ascii"), bytes(public_key)), digest_size=20
    ).digest()
    text = base64.b32encode(raw).decode("ascii")  # 160 bits = exactly 32 characters
    return "-".join(text[i : i + 4] for i in range(0, 32, 4))


def is_fingerprint(text: object) -> bool:
    """True when ``text`` is written like a fingerprint (says nothing about which key)."""
    return isinstance(text, str) and _FINGERPRINT.fullmatch(text) is not None


def certificate_id(cert_bytes: bytes) -> str:
    """Return the id (64 lowercase hex characters) of a certificate's exact body bytes."""
    if not isinstance(cert_bytes, bytes | bytearray):
        raise TypeError("cert_bytes must be bytes")
    return digest(DOMAIN_CERTIFICATE_ID, bytes(cert_bytes)).hex()


def is_certificate_id(text: object) -> bool:
    """True when ``text`` is written like a certificate id (64 lowercase hex characters)."""
    return isinstance(text, str) and _CERTIFICATE_ID.fullmatch(text) is not None
