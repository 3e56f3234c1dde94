"""Partnership administration: the root key, certificates, revocations, the relay's directory.

The library behind ``exchange root|cert|revocations|directory``. The root key
stays offline in an encrypted key file (``keys.keystore``); what it signs is
written to JSON files that are then published to the relay, either over HTTP
(``POST /v1/directory/...``, the relay verifies against its pinned root) or
straight into the relay's database with :func:`publish_to_database`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from exchange.database import open_database
from exchange.directory_cache import DirectoryCache
from exchange.settings import Settings
from exchange.store import RelayStore, Writer
from keys.certificates import (
    Certificate,
    RevocationList,
    RevokedEntry,
    issue_certificate,
    issue_revocation_list,
)
from keys.identity import AgencyPublicKeys, RootKey
from keys.keystore import Limits, load_root_key, save_root_key
from schemas.encoding import b64decode
from schemas.problems import ConfigurationError, InvalidEnvelope, InvalidRequest

__all__ = [
    "PublishResult",
    "create_root",
    "issue_agency_certificate",
    "load_certificate",
    "load_revocations",
    "publish_to_database",
    "read_json_file",
    "read_public_keys",
    "revoke_certificate",
    "write_json",
]


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` as JSON, refusing to overwrite an existing file."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2, sort_keys=True)
            handle.write("\n")
    except FileExistsError:
        raise ConfigurationError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from None


def read_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigurationError(f"{what} {path} is not JSON") from None


def create_root(path: Path, passphrase: bytes, *, limits: Limits = "moderate") -> RootKey:
    """Generate a partnership root key and save it encrypted at ``path`` (mode 0600)."""
    root = RootKey.generate()
    save_root_key(path, root, passphrase, metadata={"purpose": "partnership root"}, limits=limits)
    return root


def read_public_keys(
    *, signing: str | None, encryption: str | None, keys_file: Path | None
) -> AgencyPublicKeys:
    """An agency's public keys from base64 options or a JSON file.

    The file holds ``{"signing_key": b64, "encryption_key": b64}`` (``signing`` and
    ``encryption`` are accepted too).
    """
    if keys_file is not None:
        data = read_json_file(keys_file, "public keys file")
        if not isinstance(data, dict):
            raise ConfigurationError("the public keys file must hold a JSON object")
        signing = data.get("signing_key", data.get("signing"))
        encryption = data.get("encryption_key", data.get("encryption"))
    if not isinstance(signing, str) or not isinstance(encryption, str):
        raise ConfigurationError(
            "give --signing-key and --encryption-key (base64), or --public-keys FILE"
        )
    try:
        return AgencyPublicKeys(
            signing=b64decode(signing, field="signing key"),
            encryption=b64decode(encryption, field="encryption key"),
        )
    except (InvalidEnvelope, ValueError) as exc:
        raise ConfigurationError(f"invalid public key: {exc}") from None


def issue_agency_certificate(
    root: RootKey,
    *,
    agency_id: str,
    name: str,
    org_type: str,
    mailboxes: Sequence[str],
    public_keys: AgencyPublicKeys,
    public_authority: bool,
    apd_in_place: bool,
    role: str,
    not_before: datetime,
    days: int,
) -> Certificate:
    """Issue a certificate valid for ``days`` from ``not_before``."""
    if days <= 0:
        raise ConfigurationError("--days must be positive")
    if role not in {"agency", "auditor", "relay"}:
        raise ConfigurationError("role must be agency, auditor or relay")
    try:
        return issue_certificate(
            root,
            agency_id=agency_id,
            name=name,
            org_type=org_type,
            public_authority=public_authority,
            apd_in_place=apd_in_place,
            mailboxes=tuple(mailboxes),
            role=role,  # type: ignore[arg-type]
            public_keys=public_keys,
            not_before=not_before,
            not_after=not_before + timedelta(days=days),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot issue the certificate: {exc}") from None


def load_certificate(path: Path) -> Certificate:
    """Read a certificate file (``{"body", "signature"}``)."""
    return Certificate.from_json(read_json_file(path, "certificate"))


def load_revocations(path: Path) -> RevocationList:
    """Read a revocation list file."""
    return RevocationList.from_json(read_json_file(path, "revocation list"))


def revoke_certificate(
    root: RootKey,
    certificate: Certificate,
    *,
    previous: RevocationList | None,
    revoked_at: datetime,
    issued_at: datetime,
    reason: str,
) -> RevocationList:
    """A new revocation list: ``previous`` plus ``certificate``, with the next sequence."""
    entries: list[RevokedEntry] = []
    sequence = 1
    if previous is not None:
        body = previous.verify(root.public_key)
        entries = list(body.revoked)
        sequence = body.sequence + 1
        if any(e.certificate_id == certificate.id for e in entries):
            raise InvalidRequest("this certificate is already revoked in the given list")
    entries.append(
        RevokedEntry(
            certificate_id=certificate.id,
            agency_id=certificate.body.agency_id,
            revoked_at=revoked_at.replace(microsecond=0),
            reason=reason,
        )
    )
    return issue_revocation_list(
        root, sequence=sequence, issued_at=issued_at.replace(microsecond=0), revoked=entries
    )


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish_to_database` stored."""

    certificates_added: int
    revocations_sequence: int | None


async def publish_to_database(
    settings: Settings,
    *,
    certificates: Sequence[Certificate] = (),
    revocations: RevocationList | None = None,
    at: datetime,
) -> PublishResult:
    """Verify against the pinned root and store in the relay's database (migrating first)."""
    if len(settings.root_public_key) != 32:
        raise ConfigurationError(
            "pin the partnership root: EXCHANGE_ROOT_PUBLIC_KEY or --root-public-key"
        )
    database = open_database(settings.database_url)
    writer = Writer(database)
    try:
        await database.migrate()
        writer.start()
        store = RelayStore(database, writer)
        directory = DirectoryCache(settings.root_public_key, store)
        await directory.load()
        added = 0
        for certificate in certificates:
            _, created = await directory.publish_certificate(certificate.to_json(), at=at)
            added += int(created)
        sequence = None
        if revocations is not None:
            rl, _ = await directory.publish_revocations(revocations.to_json(), at=at)
            sequence = rl.sequence
        return PublishResult(certificates_added=added, revocations_sequence=sequence)
    finally:
        await writer.stop()
        await database.dispose()


def open_root(path: Path, passphrase: bytes) -> RootKey:
    """Unlock the root key file."""
    return load_root_key(path, passphrase)
