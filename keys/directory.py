"""The partnership directory: which keys speak for which agency, at a given time.

Theory of operation
-------------------
A :class:`Directory` is built from the one thing a client trusts, the pinned
root public key, plus certificates and a revocation list that anyone (usually
the untrusted relay) may hand over. Every certificate is verified against the
pinned root when it is added; one that fails is refused with an exception, never
skipped silently, so a relay that substitutes keys is noticed at once. Only the
verified, parsed bodies are kept and answered from.

**Time.** Nothing here reads the clock: every lookup takes ``at``. A sender
checks its recipients at ``now``; a recipient or auditor verifies a message
against the certificate that was valid at the message's creation time. Each
certificate is in exactly one :class:`CertificateStatus` at ``at``:

* ``REVOKED`` when the revocation list names it and ``at >= revoked_at``;
* otherwise ``NOT_YET_VALID`` when ``at < not_before``;
* otherwise ``EXPIRED`` when ``at >= not_after``;
* otherwise ``VALID``.

**Revocation applies from ``revoked_at``, not retroactively.** A certificate
revoked at ``T`` still verifies messages with ``at < T``, so an auditor can check
history signed before the revocation. The root should therefore set
``revoked_at`` to the earliest moment the key may have been misused (for a
compromise, the suspected time of compromise, not the time it was noticed).
Because ``at`` for a message is the sender's claimed creation time, a stolen
key could backdate messages to before ``revoked_at``; the relay's log, which
records when it *received* each message, is what bounds that.

**Rotation.** An agency may hold several certificates at once. Lookups by
``agency_id`` return the newest (latest ``not_before``) that is valid at ``at``.
Revocation is per certificate: to remove an agency entirely, revoke each of its
certificates. :meth:`Directory.by_id` looks up one exact certificate, which is
how messages name their signer.

**Revocation lists** are accepted only when signed by the pinned root and never
roll back: a lower ``sequence`` than the current one, or the same ``sequence``
with different bytes, raises :class:`~schemas.problems.StaleRevocationList`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keys.certificates import Certificate, CertificateBody, RevocationList, RevocationListBody
from keys.fingerprint import fingerprint
from keys.identity import KEY_SIZE
from schemas.problems import (
    BadSignature,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    InvalidEnvelope,
    StaleRevocationList,
    UnknownAgency,
    UntrustedCertificate,
)
from schemas.timefmt import format_time, utc

__all__ = ["CertificateStatus", "Directory"]


class CertificateStatus(StrEnum):
    """The trust state of one certificate at one instant."""

    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class _Entry:
    certificate: Certificate
    body: CertificateBody

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Sort key: newer certificates sort higher."""
        return (self.body.not_before, self.body.not_after, self.certificate.id)


# When no certificate of an agency is valid, report the most telling reason.
_FAILURE_PRIORITY = (
    CertificateStatus.REVOKED,
    CertificateStatus.EXPIRED,
    CertificateStatus.NOT_YET_VALID,
)


class Directory:
    """Verified certificates and revocations, answering "which keys, for whom, when".

    :param root_public_key: the pinned 32-byte Ed25519 public key of the partnership root.
    :param certificates: certificates to add; each must verify against the root.
    :param revocations: the current revocation list, if any.
    :raises UntrustedCertificate: when a certificate was not issued by the pinned root.
    :raises InvalidEnvelope: when a root-signed certificate is malformed.
    :raises BadSignature: when the revocation list is not signed by the pinned root.
    """

    def __init__(
        self,
        root_public_key: bytes,
        certificates: Iterable[Certificate] = (),
        revocations: RevocationList | None = None,
    ) -> None:
        if not isinstance(root_public_key, bytes) or len(root_public_key) != KEY_SIZE:
            raise ValueError(f"root_public_key must be {KEY_SIZE} bytes")
        self._root = root_public_key
        self._root_fingerprint = fingerprint(root_public_key, kind="root")
        self._entries: dict[str, _Entry] = {}
        self._by_agency: dict[str, list[_Entry]] = {}
        self._revocations: RevocationList | None = None
        self._revocation_body: RevocationListBody | None = None
        for certificate in certificates:
            self.add_certificate(certificate)
        if revocations is not None:
            self.update_revocations(revocations)

    # -- contents ----------------------------------------------------------------------------

    @property
    def root_public_key(self) -> bytes:
        """The pinned root public key."""
        return self._root

    @property
    def root_fingerprint(self) -> str:
        """Fingerprint of the pinned root (``kind="root"``)."""
        return self._root_fingerprint

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        """Every verified certificate, in the order added (valid or not)."""
        return tuple(entry.certificate for entry in self._entries.values())

    @property
    def revocations(self) -> RevocationList | None:
        """The current (verified) revocation list, if any."""
        return self._revocations

    def add_certificate(self, cert: Certificate) -> CertificateBody:
        """Verify ``cert`` against the pinned root and add it; return its body.

        Adding a certificate already present is a no-op.

        :raises UntrustedCertificate: when the root's signature does not verify or the
            certificate names another issuer.
        :raises InvalidEnvelope: when a root-signed certificate is malformed.
        """
        if not isinstance(cert, Certificate):
            raise TypeError("expected a Certificate")
        existing = self._entries.get(cert.id)
        if existing is not None and existing.certificate == cert:
            return existing.body
        try:
            body = cert.verify(self._root)
        except BadSignature as exc:
            raise UntrustedCertificate(
                f"certificate {cert.id} was not issued by the pinned partnership root"
            ) from exc
        if existing is not None:  # same body, another valid root signature: keep the first
            return existing.body
        entry = _Entry(cert, body)
        self._entries[cert.id] = entry
        versions = self._by_agency.setdefault(body.agency_id, [])
        versions.append(entry)
        versions.sort(key=lambda item: item.order, reverse=True)
        return body

    def update_revocations(self, rl: RevocationList) -> None:
        """Verify ``rl`` against the pinned root and make it current.

        Offering the current list again is a no-op.

        :raises BadSignature: when the root's signature does not verify.
        :raises UntrustedCertificate: when the list names another issuer.
        :raises StaleRevocationList: when ``rl.sequence`` is lower than the current one,
            or equal to it with different content.
        """
        if not isinstance(rl, RevocationList):
            raise TypeError("expected a RevocationList")
        body = rl.verify(self._root)
        current = self._revocation_body
        if current is not None and self._revocations is not None:
            if body.sequence < current.sequence:
                raise StaleRevocationList(
                    f"revocation list {body.sequence} is older than {current.sequence}"
                )
            if body.sequence == current.sequence:
                if rl.body_bytes == self._revocations.body_bytes:
                    return
                raise StaleRevocationList(
                    f"a different revocation list with sequence {body.sequence} was already seen"
                )
        self._revocations = rl
        self._revocation_body = body

    # -- lookups -----------------------------------------------------------------------------

    def _status(self, entry: _Entry, moment: datetime) -> CertificateStatus:
        if self._revocation_body is not None:
            revoked = self._revocation_body.entry_for(entry.certificate.id)
            if revoked is not None and moment >= revoked.revoked_at:
                return CertificateStatus.REVOKED
        if moment < entry.body.not_before:
            return CertificateStatus.NOT_YET_VALID
        if moment >= entry.body.not_after:
            return CertificateStatus.EXPIRED
        return CertificateStatus.VALID

    def _raise_for(self, entry: _Entry, status: CertificateStatus) -> None:
        body = entry.body
        name = f"certificate {entry.certificate.id} of {body.agency_id}"
        if status is CertificateStatus.REVOKED:
            assert self._revocation_body is not None
            revoked = self._revocation_body.entry_for(entry.certificate.id)
            assert revoked is not None
            raise CertificateRevoked(
                f"{name} was revoked at {format_time(revoked.revoked_at)} ({revoked.reason})"
            )
        if status is CertificateStatus.NOT_YET_VALID:
            raise CertificateNotYetValid(f"{name} is valid from {format_time(body.not_before)}")
        if status is CertificateStatus.EXPIRED:
            raise CertificateExpired(f"{name} expired at {format_time(body.not_after)}")

    def _select(self, agency_id: str, at: datetime) -> _Entry:
        moment = utc(at)
        versions = self._by_agency.get(agency_id)
        if not versions:
            raise UnknownAgency(f"no certificate is known for agency {agency_id!r}")
        statuses = [(entry, self._status(entry, moment)) for entry in versions]
        for entry, status in statuses:  # newest first
            if status is CertificateStatus.VALID:
                return entry
        for wanted in _FAILURE_PRIORITY:
            for entry, status in statuses:
                if status is wanted:
                    self._raise_for(entry, status)
        raise AssertionError("unreachable: every status is handled")  # pragma: no cover

    def status(self, certificate_id: str, *, at: datetime) -> CertificateStatus:
        """The trust state of one certificate at ``at``.

        :raises UnknownAgency: when no certificate has this id.
        """
        entry = self._entries.get(certificate_id)
        if entry is None:
            raise UnknownAgency(f"no certificate with id {certificate_id!r}")
        return self._status(entry, utc(at))

    def certificate(self, agency_id: str, *, at: datetime) -> Certificate:
        """The newest certificate of ``agency_id`` valid and not revoked at ``at``.

        :raises UnknownAgency: when the directory has no certificate for the agency.
        :raises CertificateRevoked: when none is valid and one in its window is revoked.
        :raises CertificateExpired: when none is valid and one has expired.
        :raises CertificateNotYetValid: when none is valid yet.
        """
        return self._select(agency_id, at).certificate

    def agency(self, agency_id: str, *, at: datetime) -> CertificateBody:
        """The body of :meth:`certificate` (same rules, same errors)."""
        return self._select(agency_id, at).body

    def by_id(self, certificate_id: str, *, at: datetime) -> CertificateBody:
        """The certificate with this id, if valid and not revoked at ``at``.

        :raises UnknownAgency: when no certificate has this id.
        :raises CertificateRevoked: when revoked at or before ``at``.
        :raises CertificateExpired: when ``at >= not_after``.
        :raises CertificateNotYetValid: when ``at < not_before``.
        """
        entry = self._entries.get(certificate_id)
        if entry is None:
            raise UnknownAgency(f"no certificate with id {certificate_id!r}")
        self._raise_for(entry, self._status(entry, utc(at)))
        return entry.body

    def certificate_by_id(self, certificate_id: str, *, at: datetime) -> Certificate:
        """Like :meth:`by_id` but return the certificate (exact bytes and signature)."""
        self.by_id(certificate_id, at=at)
        return self._entries[certificate_id].certificate

    def auditor(self, *, at: datetime) -> CertificateBody:
        """The newest certificate with role ``auditor`` valid and not revoked at ``at``.

        :raises UnknownAgency: when there is none.
        """
        moment = utc(at)
        valid = [
            entry
            for entry in self._entries.values()
            if entry.body.role == "auditor"
            and self._status(entry, moment) is CertificateStatus.VALID
        ]
        if not valid:
            raise UnknownAgency("no auditor certificate is valid at " + format_time(moment))
        return max(valid, key=lambda entry: entry.order).body

    def mailbox_exists(self, agency_id: str, mailbox: str, *, at: datetime) -> bool:
        """True when ``agency_id`` has a valid certificate at ``at`` listing ``mailbox``.

        False, rather than an exception, when the agency has no valid certificate;
        call :meth:`agency` to learn why.
        """
        try:
            body = self.agency(agency_id, at=at)
        except (UnknownAgency, CertificateExpired, CertificateNotYetValid, CertificateRevoked):
            return False
        return mailbox in body.mailboxes

    def agencies(self, *, at: datetime) -> list[CertificateBody]:
        """The current certificate of every agency with one valid at ``at``, by agency id."""
        result: list[CertificateBody] = []
        for agency_id in sorted(self._by_agency):
            try:
                result.append(self.agency(agency_id, at=at))
            except (CertificateExpired, CertificateNotYetValid, CertificateRevoked):
                continue
        return result

    # -- wire form ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """``{"root": fingerprint, "certificates": [...], "revocation_list": {...} | null}``."""
        return {
            "root": self._root_fingerprint,
            "certificates": [entry.certificate.to_json() for entry in self._entries.values()],
            "revocation_list": None if self._revocations is None else self._revocations.to_json(),
        }

    @classmethod
    def from_json(cls, data: object, *, root_public_key: bytes) -> Directory:
        """Read :meth:`to_json` output, verifying everything against ``root_public_key``.

        The root is always the caller's pinned key, never one taken from ``data``.

        :raises InvalidEnvelope: on malformed input.
        :raises UntrustedCertificate: when ``data`` names another root or holds a
            certificate the pinned root did not issue.
        :raises BadSignature: when the revocation list is not signed by the pinned root.
        """
        if not isinstance(data, Mapping) or set(data) != {
            "root",
            "certificates",
            "revocation_list",
        }:
            raise InvalidEnvelope(
                "directory must be an object with root, certificates and revocation_list"
            )
        if data["root"] != fingerprint(root_public_key, kind="root"):
            raise UntrustedCertificate("directory was issued under a different partnership root")
        if not isinstance(data["certificates"], list):
            raise InvalidEnvelope("directory.certificates must be a list")
        certificates = [Certificate.from_json(item) for item in data["certificates"]]
        raw_list = data["revocation_list"]
        revocations = None if raw_list is None else RevocationList.from_json(raw_list)
        return cls(root_public_key, certificates, revocations)
