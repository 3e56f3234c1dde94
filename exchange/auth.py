"""Agency request authentication: RFC 9421 signature, certificate, replay.

Framework-free: the middleware hands over the method, raw path and query,
headers and body; this module answers who signed it or raises the problem to
send back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from exchange.directory_cache import DirectoryCache
from exchange.store import RelayStore
from keys.certificates import CertificateBody
from keys.http_signatures import (
    SignedRequestInfo,
    check_content_digest,
    verify_request_signature,
)
from schemas.problems import Forbidden, ReplayedRequest

__all__ = ["Authenticator", "Caller", "Clock"]

#: A clock returns the current time as an aware UTC datetime.
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated agency behind a request."""

    agency_id: str
    certificate_id: str
    role: str
    mailboxes: tuple[str, ...]

    @property
    def is_auditor(self) -> bool:
        """Whether the caller holds the partnership auditor role."""
        return self.role == "auditor"


class Authenticator:
    """Verifies request signatures against the directory and remembers nonces."""

    def __init__(
        self, *, directory: DirectoryCache, store: RelayStore, clock: Clock, clock_skew: timedelta
    ) -> None:
        self._directory = directory
        self._store = store
        self._clock = clock
        self._skew = clock_skew

    def verify(
        self, *, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Caller, SignedRequestInfo]:
        """Check the signature, the signer's certificate (valid, not revoked) and the digest."""
        caller, info, digest_field = self.verify_headers(
            method=method, path=path, query=query, headers=headers
        )
        check_content_digest(digest_field, body)
        return caller, info

    def verify_headers(
        self, *, method: str, path: str, query: str, headers: Mapping[str, str]
    ) -> tuple[Caller, SignedRequestInfo, str]:
        """Check the signature and the signer's certificate before any body is read.

        Returns the caller, the signature details and the signed ``Content-Digest``
        field, which the body must then match (:func:`check_content_digest`).
        """
        now = self._clock()
        directory = self._directory.directory
        found: list[CertificateBody] = []

        def resolve(key_id: str) -> bytes:
            certificate = directory.by_id(key_id, at=now)
            found.append(certificate)
            return certificate.signing_key

        info, digest_field = verify_request_signature(
            method=method,
            path=path,
            query=query,
            headers=headers,
            resolve_key=resolve,
            now=now,
            max_skew=self._skew,
        )
        certificate = found[-1]
        if certificate.role not in {"agency", "auditor"}:
            raise Forbidden("this certificate may not call the relay API")
        caller = Caller(
            agency_id=certificate.agency_id,
            certificate_id=info.key_id,
            role=certificate.role,
            mailboxes=tuple(certificate.mailboxes),
        )
        return caller, info, digest_field

    async def check_replay(self, info: SignedRequestInfo) -> None:
        """Refuse a nonce already seen for this key (kept until it is outside the skew)."""
        expires_at = info.created + self._skew + timedelta(seconds=1)
        if not await self._store.remember_nonce(info.key_id, info.nonce, expires_at=expires_at):
            raise ReplayedRequest("this signed request was already received")
