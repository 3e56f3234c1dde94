"""The relay's copy of the partnership directory, rebuilt from published documents.

Certificates and revocation lists are stored as the exact JSON documents the
root signed; on load every one is verified again against the pinned root (the
database is not trusted either). Publishing verifies first, stores, and only then
updates the in-memory directory, so a revocation takes effect on the very next
request to this process; other processes pick it up within ``directory_refresh``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from exchange.store import RelayStore
from keys.certificates import Certificate, RevocationList
from keys.directory import Directory
from schemas.problems import (
    ConfigurationError,
    ExchangeError,
    InvalidRequest,
    StaleRevocationList,
    UntrustedCertificate,
)

__all__ = ["DirectoryCache"]

logger = logging.getLogger("exchange.directory")


def _document(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class DirectoryCache:
    """Holds the current :class:`~keys.directory.Directory` and keeps it in step."""

    def __init__(self, root_public_key: bytes, store: RelayStore) -> None:
        if len(root_public_key) != 32:
            raise ConfigurationError(
                "the partnership root public key is not configured (EXCHANGE_ROOT_PUBLIC_KEY)"
            )
        self._root = root_public_key
        self._store = store
        self._directory = Directory(root_public_key)
        self._version: tuple[int, int] = (0, 0)

    @property
    def directory(self) -> Directory:
        """The current directory (replaced, never mutated, on reload)."""
        return self._directory

    async def load(self) -> None:
        """Rebuild the directory from the database, verifying every document."""
        version = await self._store.directory_version()
        documents, revocations = await self._store.directory_documents()
        try:
            certificates = [Certificate.from_json(json.loads(doc)) for doc in documents]
            rl = None if revocations is None else RevocationList.from_json(json.loads(revocations))
            directory = Directory(self._root, certificates, rl)
        except (ExchangeError, ValueError) as exc:
            reason = type(exc).__name__
            raise ConfigurationError(
                f"the stored directory does not verify against the pinned root ({reason})"
            ) from None
        self._directory = directory
        self._version = version

    async def refresh(self) -> bool:
        """Reload when another process published something; True if reloaded."""
        if await self._store.directory_version() == self._version:
            return False
        await self.load()
        return True

    async def publish_certificate(self, data: object, *, at: datetime) -> tuple[Certificate, bool]:
        """Verify and store a root-signed certificate; return it and whether it is new."""
        if not isinstance(data, dict):
            raise InvalidRequest("a certificate is a JSON object")
        certificate = Certificate.from_json(data)
        try:
            body = certificate.verify(self._root)
        except ExchangeError as exc:
            raise UntrustedCertificate("the certificate was not issued by the pinned root") from exc
        created = await self._store.publish_certificate(
            certificate_id=certificate.id,
            agency_id=body.agency_id,
            role=body.role,
            document=_document(certificate.to_json()),
            at=at,
        )
        self._directory.add_certificate(certificate)
        self._version = (self._version[0] + (1 if created else 0), self._version[1])
        logger.info(
            "certificate published",
            extra={
                "fields": {"agency": body.agency_id, "certificate": certificate.id, "new": created}
            },
        )
        return certificate, created

    async def publish_revocations(
        self, data: object, *, at: datetime
    ) -> tuple[RevocationList, bool]:
        """Verify and store a root-signed revocation list (its sequence must not go back)."""
        if not isinstance(data, dict):
            raise InvalidRequest("a revocation list is a JSON object")
        rl = RevocationList.from_json(data)
        body = rl.verify(self._root)
        current = self._directory.revocations
        if current is not None:
            if body.sequence < current.sequence:
                raise StaleRevocationList(
                    f"revocation list {body.sequence} is older than {current.sequence}"
                )
            if body.sequence == current.sequence:
                if rl.body_bytes != current.body_bytes:
                    raise StaleRevocationList(
                        f"a different revocation list {body.sequence} was already published"
                    )
                return rl, False
        created = await self._store.publish_revocations(
            sequence=body.sequence, document=_document(rl.to_json()), at=at
        )
        self._directory.update_revocations(rl)
        self._version = (self._version[0], max(self._version[1], body.sequence))
        logger.info(
            "revocation list published",
            extra={"fields": {"sequence": body.sequence, "revoked": len(body.revoked)}},
        )
        return rl, created
