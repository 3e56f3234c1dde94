"""Certificates and revocation lists issued by the partnership root.

Theory of operation
-------------------
The partnership root is the only authority. It vouches for an agency by signing
a **certificate**: an RFC 8785 canonical JSON body naming the agency, its
organisation type and legal status, its mailboxes, its two public keys and a
validity window. It withdraws that vouching by signing a **revocation list**
with a strictly increasing ``sequence``.

Both objects travel as ``{"body": b64(body_bytes), "signature": b64(sig)}``
where ``sig = Ed25519(root, pae(DOMAIN, body_bytes))`` and ``DOMAIN`` is
``DOMAIN_CERTIFICATE`` or ``DOMAIN_REVOCATION_LIST``, so a certificate can never
be replayed as a revocation list or as anything else the root might sign.

We keep the exact ``body_bytes`` we received and verify those. ``verify``
checks the signature first, only then parses the body (strictly: exact keys,
exact types, canonical encoding, whole-second UTC times) and finally checks
that the body's ``issuer`` is the fingerprint of the pinned root. It returns the
parsed body; nothing else should be trusted. The ``body`` attribute parses
without verifying and exists for display and for code that has already
verified, such as :class:`keys.directory.Directory`.

A certificate is valid for ``not_before <= at < not_after``. Revocation is
applied by the directory, from each entry's ``revoked_at`` onwards.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, NoReturn, cast, get_args

from keys.fingerprint import certificate_id, fingerprint, is_certificate_id, is_fingerprint
from keys.identity import KEY_SIZE, SIGNATURE_SIZE, AgencyPublicKeys, RootKey, verify_detached
from schemas.codes import OrgType
from schemas.encoding import (
    DOMAIN_CERTIFICATE,
    DOMAIN_REVOCATION_LIST,
    b64decode,
    b64encode,
    canonical_json,
    pae,
)
from schemas.problems import (
    BadSignature,
    CertificateExpired,
    CertificateNotYetValid,
    InvalidEnvelope,
    UntrustedCertificate,
)
from schemas.timefmt import format_time, parse_time, utc

__all__ = [
    "CERTIFICATE_VERSION",
    "MAX_SIGNED_BYTES",
    "Certificate",
    "CertificateBody",
    "RevocationList",
    "RevocationListBody",
    "RevokedEntry",
    "Role",
    "issue_certificate",
    "issue_revocation_list",
]

#: The only certificate body version this module reads and writes.
CERTIFICATE_VERSION = 1
#: Largest body (certificate or revocation list) accepted, in bytes.
MAX_SIGNED_BYTES = 1 << 20

#: What a certificate holder does in the exchange.
Role = Literal["agency", "auditor", "relay"]
_ROLES: frozenset[str] = frozenset(get_args(Role))
_ORG_TYPES: frozenset[str] = frozenset(member.value for member in OrgType)

_AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9.-]{1,63}")
_MAILBOX = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SERIAL = re.compile(r"[0-9a-f]{2,64}")
_MAX_TEXT = 200
_MAX_SAFE_INT = (1 << 53) - 1


# -- helpers -------------------------------------------------------------------------------


def _instant(value: object, name: str) -> datetime:
    """Validate an aware datetime and drop microseconds (the wire carries whole seconds)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    return utc(value).replace(microsecond=0)


def _text(value: object, name: str) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= _MAX_TEXT
        or not value.isprintable()
        or value != value.strip()
    ):
        raise ValueError(f"{name} must be 1-{_MAX_TEXT} printable characters without outer spaces")
    return value


def _agency_id(value: object) -> str:
    if not isinstance(value, str) or not _AGENCY_ID.fullmatch(value):
        raise ValueError("agency_id must match [a-z0-9][a-z0-9.-]{1,63}")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidEnvelope(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise InvalidEnvelope(f"{name} is not JSON")


def _load_canonical_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object that must already be in RFC 8785 canonical form."""
    if len(data) > MAX_SIGNED_BYTES:
        raise InvalidEnvelope(f"{what} is larger than {MAX_SIGNED_BYTES} bytes")
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidEnvelope(f"{what} is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise InvalidEnvelope(f"{what} must be a JSON object")
    if canonical_json(value) != data:
        raise InvalidEnvelope(f"{what} is not in canonical (RFC 8785) form")
    return value


def _exact_keys(obj: Mapping[str, Any], keys: frozenset[str], what: str) -> None:
    if set(obj) != keys:
        missing = sorted(keys - set(obj))
        extra = sorted(set(obj) - keys)
        raise InvalidEnvelope(f"{what}: missing {missing}, unexpected {extra}")


def _field(obj: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj[key]
    # bool is an int subclass: never accept one for the other.
    if type(value) is not kind:
        raise InvalidEnvelope(f"{what}.{key} must be a JSON {kind.__name__}")
    return value


def _wire_time(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    text = obj[key]
    moment = parse_time(text, field=f"{what}.{key}")
    if format_time(moment) != text:
        raise InvalidEnvelope(f"{what}.{key} must be whole seconds, like 2026-11-24T09:30:00Z")
    return moment


def _key_field(obj: Mapping[str, Any], key: str, what: str) -> bytes:
    raw = b64decode(obj[key], field=f"{what}.{key}")
    if len(raw) != KEY_SIZE:
        raise InvalidEnvelope(f"{what}.{key} must be a {KEY_SIZE}-byte key")
    return raw


def _signed_from_json(data: object, what: str) -> tuple[bytes, bytes]:
    """Strictly read the ``{"body", "signature"}`` wire form."""
    if not isinstance(data, Mapping):
        raise InvalidEnvelope(f"{what} must be a JSON object")
    _exact_keys(data, frozenset({"body", "signature"}), what)
    body = b64decode(data["body"], field=f"{what}.body")
    signature = b64decode(data["signature"], field=f"{what}.signature")
    if not body or len(body) > MAX_SIGNED_BYTES:
        raise InvalidEnvelope(f"{what}.body must be 1-{MAX_SIGNED_BYTES} bytes")
    if len(signature) != SIGNATURE_SIZE:
        raise InvalidEnvelope(f"{what}.signature must be {SIGNATURE_SIZE} bytes")
    return body, signature


def _check_signed(body_bytes: object, signature: object) -> None:
    if not isinstance(body_bytes, bytes) or not isinstance(signature, bytes):
        raise TypeError("body_bytes and signature must be bytes")
    if len(signature) != SIGNATURE_SIZE:
        raise ValueError(f"signature must be {SIGNATURE_SIZE} bytes")


def _verify_root(
    root_public_key: bytes, domain: str, body_bytes: bytes, signature: bytes, what: str
) -> None:
    try:
        verify_detached(root_public_key, pae(domain, body_bytes), signature)
    except BadSignature:
        raise BadSignature(f"{what} is not signed by the pinned partnership root") from None


def _check_issuer(issuer: str, root_public_key: bytes, what: str) -> None:
    if issuer != fingerprint(root_public_key, kind="root"):
        raise UntrustedCertificate(f"{what} names issuer {issuer}, not the pinned root")


# -- certificates --------------------------------------------------------------------------


_BODY_KEYS = frozenset(
    {
        "version",
        "serial",
        "agency_id",
        "name",
        "org_type",
        "public_authority",
        "apd_in_place",
        "mailboxes",
        "role",
        "signing_key",
        "encryption_key",
        "not_before",
        "not_after",
        "issuer",
    }
)


@dataclass(frozen=True, kw_only=True)
class CertificateBody:
    """What the root vouches for: one agency's identity, status, mailboxes and keys.

    Construction validates every field (raising :class:`ValueError` or :class:`TypeError`)
    and normalises times to UTC whole seconds and ``mailboxes`` to a tuple.
    ``mailboxes`` may be empty only for the ``auditor`` and ``relay`` roles.
    """

    version: int = CERTIFICATE_VERSION
    serial: str
    agency_id: str
    name: str
    org_type: OrgType
    public_authority: bool
    apd_in_place: bool
    mailboxes: tuple[str, ...]
    role: Role
    signing_key: bytes
    encryption_key: bytes
    not_before: datetime
    not_after: datetime
    issuer: str

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version != CERTIFICATE_VERSION:
            raise ValueError(f"unsupported certificate version {self.version!r}")
        if not isinstance(self.serial, str) or not _SERIAL.fullmatch(self.serial):
            raise ValueError("serial must be 2-64 lowercase hex characters")
        _agency_id(self.agency_id)
        _text(self.name, "name")
        object.__setattr__(self, "org_type", OrgType(self.org_type))
        for flag in ("public_authority", "apd_in_place"):
            if type(getattr(self, flag)) is not bool:
                raise TypeError(f"{flag} must be a bool")
        if isinstance(self.mailboxes, str):
            raise TypeError("mailboxes must be a sequence of names, not a string")
        mailboxes = tuple(self.mailboxes)
        for mailbox in mailboxes:
            if not isinstance(mailbox, str) or not _MAILBOX.fullmatch(mailbox):
                raise ValueError(f"mailbox {mailbox!r} must match [a-z0-9][a-z0-9-]{{0,62}}")
        if len(set(mailboxes)) != len(mailboxes):
            raise ValueError("mailboxes must be unique")
        object.__setattr__(self, "mailboxes", mailboxes)
        if self.role not in _ROLES:
            raise ValueError(f"role must be one of {sorted(_ROLES)}")
        if self.role == "agency" and not mailboxes:
            raise ValueError("an agency certificate needs at least one mailbox")
        AgencyPublicKeys(signing=self.signing_key, encryption=self.encryption_key)
        not_before = _instant(self.not_before, "not_before")
        not_after = _instant(self.not_after, "not_after")
        if not not_before < not_after:
            raise ValueError("not_before must be earlier than not_after")
        object.__setattr__(self, "not_before", not_before)
        object.__setattr__(self, "not_after", not_after)
        if not is_fingerprint(self.issuer):
            raise ValueError("issuer must be a root fingerprint")

    @property
    def public_keys(self) -> AgencyPublicKeys:
        """The certified signing and encryption keys."""
        return AgencyPublicKeys(signing=self.signing_key, encryption=self.encryption_key)

    def is_valid_at(self, at: datetime) -> bool:
        """True when ``not_before <= at < not_after`` (revocation is not considered)."""
        moment = utc(at)
        return self.not_before <= moment < self.not_after

    def check_validity(self, at: datetime) -> None:
        """Raise unless ``at`` is inside the validity window (revocation is not considered).

        :raises CertificateNotYetValid: when ``at < not_before``.
        :raises CertificateExpired: when ``at >= not_after``.
        """
        moment = utc(at)
        if moment < self.not_before:
            raise CertificateNotYetValid(
                f"certificate for {self.agency_id} is valid from {format_time(self.not_before)}"
            )
        if moment >= self.not_after:
            raise CertificateExpired(
                f"certificate for {self.agency_id} expired at {format_time(self.not_after)}"
            )

    def to_json_dict(self) -> dict[str, Any]:
        """The body as a JSON object (keys base64, times RFC 3339)."""
        return {
            "version": self.version,
            "serial": self.serial,
            "agency_id": self.agency_id,
            "name": self.name,
            "org_type": str(self.org_type),
            "public_authority": self.public_authority,
            "apd_in_place": self.apd_in_place,
            "mailboxes": list(self.mailboxes),
            "role": self.role,
            "signing_key": b64encode(self.signing_key),
            "encryption_key": b64encode(self.encryption_key),
            "not_before": format_time(self.not_before),
            "not_after": format_time(self.not_after),
            "issuer": self.issuer,
        }

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes the root signs."""
        return canonical_json(self.to_json_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> CertificateBody:
        """Strictly parse canonical body bytes. Does **not** verify anything.

        :raises InvalidEnvelope: on any deviation from the format.
        """
        what = "certificate body"
        obj = _load_canonical_object(data, what)
        _exact_keys(obj, _BODY_KEYS, what)
        mailboxes = _field(obj, "mailboxes", list, what)
        if not all(isinstance(item, str) for item in mailboxes):
            raise InvalidEnvelope(f"{what}.mailboxes must be a list of strings")
        org_type = _field(obj, "org_type", str, what)
        if org_type not in _ORG_TYPES:
            raise InvalidEnvelope(f"{what}.org_type {org_type!r} is not a known organisation type")
        try:
            return cls(
                version=_field(obj, "version", int, what),
                serial=_field(obj, "serial", str, what),
                agency_id=_field(obj, "agency_id", str, what),
                name=_field(obj, "name", str, what),
                org_type=OrgType(org_type),
                public_authority=_field(obj, "public_authority", bool, what),
                apd_in_place=_field(obj, "apd_in_place", bool, what),
                mailboxes=tuple(mailboxes),
                role=cast(Role, _field(obj, "role", str, what)),
                signing_key=_key_field(obj, "signing_key", what),
                encryption_key=_key_field(obj, "encryption_key", what),
                not_before=_wire_time(obj, "not_before", what),
                not_after=_wire_time(obj, "not_after", what),
                issuer=_field(obj, "issuer", str, what),
            )
        except (ValueError, TypeError) as exc:
            raise InvalidEnvelope(f"{what}: {exc}") from None


@dataclass(frozen=True)
class Certificate:
    """A certificate as transmitted: the exact ``body_bytes`` and the root's ``signature``."""

    body_bytes: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_signed(self.body_bytes, self.signature)

    @cached_property
    def id(self) -> str:
        """The certificate id: ``certificate_id(body_bytes)``."""
        return certificate_id(self.body_bytes)

    @cached_property
    def body(self) -> CertificateBody:
        """The parsed body, **unverified**: call :meth:`verify` before trusting it.

        :raises InvalidEnvelope: when the body is malformed.
        """
        return CertificateBody.from_bytes(self.body_bytes)

    def verify(self, root_public_key: bytes) -> CertificateBody:
        """Verify against the pinned root and return the parsed body.

        :raises BadSignature: when the root's signature does not verify (altered bytes,
            or a certificate from another root).
        :raises InvalidEnvelope: when a correctly signed body is malformed.
        :raises UntrustedCertificate: when the body names an issuer other than the pinned root.
        """
        _verify_root(
            root_public_key, DOMAIN_CERTIFICATE, self.body_bytes, self.signature, "certificate"
        )
        body = self.body
        _check_issuer(body.issuer, root_public_key, f"certificate {self.id}")
        return body

    def to_json(self) -> dict[str, str]:
        """The wire form ``{"body": b64, "signature": b64}``."""
        return {"body": b64encode(self.body_bytes), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, data: object) -> Certificate:
        """Strictly read the wire form (exact keys, canonical base64). Does not verify.

        :raises InvalidEnvelope: on malformed input.
        """
        body, signature = _signed_from_json(data, "certificate")
        return cls(body, signature)


def issue_certificate(
    root: RootKey,
    *,
    agency_id: str,
    name: str,
    org_type: OrgType | str,
    public_authority: bool,
    apd_in_place: bool,
    mailboxes: Iterable[str],
    role: Role,
    public_keys: AgencyPublicKeys,
    not_before: datetime,
    not_after: datetime,
    serial: str | None = None,
) -> Certificate:
    """Sign a certificate for ``public_keys`` with the partnership ``root``.

    ``serial`` defaults to 128 random bits in hex. Times are truncated to whole seconds.

    :raises ValueError: (or :class:`TypeError`) when a field is invalid.
    """
    if not isinstance(public_keys, AgencyPublicKeys):
        raise TypeError("public_keys must be AgencyPublicKeys")
    if isinstance(mailboxes, str):
        raise TypeError("mailboxes must be a sequence of names, not a string")
    body = CertificateBody(
        serial=secrets.token_hex(16) if serial is None else serial,
        agency_id=agency_id,
        name=name,
        org_type=OrgType(org_type),
        public_authority=public_authority,
        apd_in_place=apd_in_place,
        mailboxes=tuple(mailboxes),
        role=role,
        signing_key=public_keys.signing,
        encryption_key=public_keys.encryption,
        not_before=not_before,
        not_after=not_after,
        issuer=root.fingerprint,
    )
    body_bytes = body.to_bytes()
    return Certificate(body_bytes, root.sign(pae(DOMAIN_CERTIFICATE, body_bytes)))


# -- revocation lists ----------------------------------------------------------------------


_ENTRY_KEYS = frozenset({"certificate_id", "agency_id", "revoked_at", "reason"})
_LIST_KEYS = frozenset({"sequence", "issued_at", "issuer", "revoked"})


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate; it stops being valid at ``revoked_at`` (inclusive).

    ``reason`` is short free text, for example ``key_compromise`` or ``superseded``.
    """

    certificate_id: str
    agency_id: str
    revoked_at: datetime
    reason: str

    def __post_init__(self) -> None:
        if not is_certificate_id(self.certificate_id):
            raise ValueError("certificate_id must be 64 lowercase hex characters")
        _agency_id(self.agency_id)
        object.__setattr__(self, "revoked_at", _instant(self.revoked_at, "revoked_at"))
        _text(self.reason, "reason")

    def to_json_dict(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "certificate_id": self.certificate_id,
            "agency_id": self.agency_id,
            "revoked_at": format_time(self.revoked_at),
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class RevocationListBody:
    """The parsed content of a revocation list. Certificate ids are unique within it."""

    sequence: int
    issued_at: datetime
    issuer: str
    revoked: tuple[RevokedEntry, ...]

    def __post_init__(self) -> None:
        if type(self.sequence) is not int or not 0 <= self.sequence <= _MAX_SAFE_INT:
            raise ValueError("sequence must be an integer from 0 to 2**53 - 1")
        object.__setattr__(self, "issued_at", _instant(self.issued_at, "issued_at"))
        if not is_fingerprint(self.issuer):
            raise ValueError("issuer must be a root fingerprint")
        revoked = tuple(self.revoked)
        if not all(isinstance(entry, RevokedEntry) for entry in revoked):
            raise TypeError("revoked must hold RevokedEntry values")
        ids = [entry.certificate_id for entry in revoked]
        if len(set(ids)) != len(ids):
            raise ValueError("a certificate id appears twice in the revocation list")
        object.__setattr__(self, "revoked", revoked)

    def entry_for(self, certificate_id: str) -> RevokedEntry | None:
        """The entry revoking ``certificate_id``, if any."""
        for entry in self.revoked:
            if entry.certificate_id == certificate_id:
                return entry
        return None

    def to_json_dict(self) -> dict[str, Any]:
        """The body as a JSON object."""
        return {
            "sequence": self.sequence,
            "issued_at": format_time(self.issued_at),
            "issuer": self.issuer,
            "revoked": [entry.to_json_dict() for entry in self.revoked],
        }

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes the root signs."""
        return canonical_json(self.to_json_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> RevocationListBody:
        """Strictly parse canonical body bytes. Does **not** verify anything.

        :raises InvalidEnvelope: on any deviation from the format.
        """
        what = "revocation list"
        obj = _load_canonical_object(data, what)
        _exact_keys(obj, _LIST_KEYS, what)
        try:
            entries = []
            for item in _field(obj, "revoked", list, what):
                if not isinstance(item, dict):
                    raise InvalidEnvelope(f"{what}.revoked entries must be objects")
                _exact_keys(item, _ENTRY_KEYS, f"{what}.revoked[]")
                entries.append(
                    RevokedEntry(
                        certificate_id=_field(item, "certificate_id", str, what),
                        agency_id=_field(item, "agency_id", str, what),
                        revoked_at=_wire_time(item, "revoked_at", what),
                        reason=_field(item, "reason", str, what),
                    )
                )
            return cls(
                sequence=_field(obj, "sequence", int, what),
                issued_at=_wire_time(obj, "issued_at", what),
                issuer=_field(obj, "issuer", str, what),
                revoked=tuple(entries),
            )
        except (ValueError, TypeError) as exc:
            raise InvalidEnvelope(f"{what}: {exc}") from None


@dataclass(frozen=True)
class RevocationList:
    """A revocation list as transmitted: the exact ``body_bytes`` and the root's ``signature``.

    ``sequence``, ``issued_at``, ``issuer`` and ``revoked`` read the **unverified** body;
    trust them only after :meth:`verify`.
    """

    body_bytes: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_signed(self.body_bytes, self.signature)

    @cached_property
    def body(self) -> RevocationListBody:
        """The parsed body, **unverified**.

        :raises InvalidEnvelope: when the body is malformed.
        """
        return RevocationListBody.from_bytes(self.body_bytes)

    @property
    def sequence(self) -> int:
        """Monotonic number of this list; a higher one supersedes a lower one."""
        return self.body.sequence

    @property
    def issued_at(self) -> datetime:
        """When the root signed this list."""
        return self.body.issued_at

    @property
    def issuer(self) -> str:
        """Fingerprint of the root that claims to have signed this list."""
        return self.body.issuer

    @property
    def revoked(self) -> tuple[RevokedEntry, ...]:
        """The revoked certificates."""
        return self.body.revoked

    def verify(self, root_public_key: bytes) -> RevocationListBody:
        """Verify against the pinned root and return the parsed body.

        :raises BadSignature: when the root's signature does not verify.
        :raises InvalidEnvelope: when a correctly signed body is malformed.
        :raises UntrustedCertificate: when the body names an issuer other than the pinned root.
        """
        _verify_root(
            root_public_key,
            DOMAIN_REVOCATION_LIST,
            self.body_bytes,
            self.signature,
            "revocation list",
        )
        body = self.body
        _check_issuer(body.issuer, root_public_key, "revocation list")
        return body

    def to_json(self) -> dict[str, str]:
        """The wire form ``{"body": b64, "signature": b64}``."""
        return {"body": b64encode(self.body_bytes), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, data: object) -> RevocationList:
        """Strictly read the wire form (exact keys, canonical base64). Does not verify.

        :raises InvalidEnvelope: on malformed input.
        """
        body, signature = _signed_from_json(data, "revocation list")
        return cls(body, signature)


def issue_revocation_list(
    root: RootKey,
    *,
    sequence: int,
    issued_at: datetime,
    revoked: Iterable[RevokedEntry],
) -> RevocationList:
    """Sign a revocation list with the partnership ``root``.

    :raises ValueError: (or :class:`TypeError`) when a field is invalid.
    """
    body = RevocationListBody(
        sequence=sequence, issued_at=issued_at, issuer=root.fingerprint, revoked=tuple(revoked)
    )
    body_bytes = body.to_bytes()
    return RevocationList(body_bytes, root.sign(pae(DOMAIN_REVOCATION_LIST, body_bytes)))
