"""Certificate requests: an agency asks the partnership to certify its public keys.

The request is signed with the very key it asks to have certified (proof of
possession), so an administrator cannot be tricked into certifying a signing
key that the requesting agency does not hold. The administrator still checks
the fingerprint with the agency out of band before issuing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keys.identity import AgencyIdentity, AgencyPublicKeys
from schemas.encoding import (
    DOMAIN_CERTIFICATE_REQUEST,
    b64decode,
    b64encode,
    canonical_json,
    pae,
)
from schemas.problems import BadSignature, InvalidRequest
from schemas.timefmt import format_time, parse_time

__all__ = [
    "CERTIFICATE_REQUEST_TYPE",
    "CertificateRequest",
    "make_certificate_request",
    "verify_certificate_request",
]

CERTIFICATE_REQUEST_TYPE = "safeguarding-exchange/certificate-request/v1"
_FIELDS = frozenset(
    {
        "type",
        "agency_id",
        "name",
        "org_type",
        "public_authority",
        "apd_in_place",
        "mailboxes",
        "role",
        "signing_key",
        "encryption_key",
        "fingerprint",
        "created_at",
    }
)


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A verified request: what the agency asked for and the keys it proved it holds."""

    agency_id: str
    name: str
    org_type: str
    public_authority: bool
    apd_in_place: bool
    mailboxes: tuple[str, ...]
    role: str
    public_keys: AgencyPublicKeys
    created_at: datetime


def make_certificate_request(
    identity: AgencyIdentity,
    *,
    agency_id: str,
    name: str,
    org_type: str,
    public_authority: bool,
    apd_in_place: bool,
    mailboxes: Sequence[str],
    role: str,
    created_at: datetime,
) -> dict[str, Any]:
    """The request document, signed with the identity's own signing key."""
    keys = identity.public_keys
    body: dict[str, Any] = {
        "type": CERTIFICATE_REQUEST_TYPE,
        "agency_id": agency_id,
        "name": name,
        "org_type": org_type,
        "public_authority": public_authority,
        "apd_in_place": apd_in_place,
        "mailboxes": list(mailboxes),
        "role": role,
        "signing_key": b64encode(keys.signing),
        "encryption_key": b64encode(keys.encryption),
        "fingerprint": keys.fingerprint,
        "created_at": format_time(created_at),
    }
    proof = identity.sign(pae(DOMAIN_CERTIFICATE_REQUEST, canonical_json(body)))
    return {**body, "proof": b64encode(proof)}


def verify_certificate_request(document: Mapping[str, Any]) -> CertificateRequest:
    """Check the proof of possession and the fields; raise a one-line error otherwise."""
    if not isinstance(document, Mapping) or set(document) != {*_FIELDS, "proof"}:
        raise InvalidRequest("not a certificate request (wrong or missing fields)")
    if document["type"] != CERTIFICATE_REQUEST_TYPE:
        raise InvalidRequest("not a version 1 certificate request")
    body = {k: v for k, v in document.items() if k != "proof"}
    try:
        keys = AgencyPublicKeys(
            signing=b64decode(document["signing_key"], field="signing_key"),
            encryption=b64decode(document["encryption_key"], field="encryption_key"),
        )
        proof = b64decode(document["proof"], field="proof")
        created_at = parse_time(document["created_at"], field="created_at")
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"certificate request: {exc}") from None
    try:
        keys.verify(pae(DOMAIN_CERTIFICATE_REQUEST, canonical_json(body)), proof)
    except BadSignature:
        raise BadSignature("the certificate request is not signed by the key it names") from None
    if document["fingerprint"] != keys.fingerprint:
        raise InvalidRequest("the request's fingerprint does not match its keys")
    mailboxes = document["mailboxes"]
    flags = (document["public_authority"], document["apd_in_place"])
    if not isinstance(mailboxes, list) or not all(isinstance(m, str) for m in mailboxes):
        raise InvalidRequest("mailboxes must be a list of names")
    if not all(isinstance(f, bool) for f in flags):
        raise InvalidRequest("public_authority and apd_in_place must be true or false")
    text_fields = ("agency_id", "name", "org_type", "role")
    if not all(isinstance(document[k], str) for k in text_fields):
        raise InvalidRequest("agency_id, name, org_type and role must be text")
    return CertificateRequest(
        agency_id=document["agency_id"],
        name=document["name"],
        org_type=document["org_type"],
        public_authority=document["public_authority"],
        apd_in_place=document["apd_in_place"],
        mailboxes=tuple(mailboxes),
        role=document["role"],
        public_keys=keys,
        created_at=created_at,
    )
