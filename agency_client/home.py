"""The files of one agency's home directory.

::

    <home>/
      agency.json                 agency id, relay URL, default mailbox (not secret)
      root.json                   the pinned partnership root public key and its fingerprint
      identity.key                the agency's private keys, passphrase-encrypted (0600)
      certificate-request.json    public keys + fingerprint, for the partnership admin
      certificate.json            this agency's certificate, issued by the root
      directory.json              the last directory fetched (re-verified on every load)
      store.sqlite                threads, messages and outbox (content encrypted)

Only ``identity.key`` is secret and it is encrypted; the store encrypts every
content column with a key derived from the agency's secret key.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agency_client.errors import NotInitialised
from keys.certificates import Certificate
from keys.fingerprint import fingerprint
from schemas.encoding import b64decode, b64encode
from schemas.problems import ConfigurationError, InvalidEnvelope

__all__ = ["AgencyConfig", "AgencyHome", "read_json_file", "write_json_file"]


def write_json_file(path: Path, value: object, *, mode: int = 0o600) -> None:
    """Write ``value`` as JSON atomically (temporary file + rename), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_file(path: Path, what: str) -> Any:
    """Read a JSON file; raise :class:`ConfigurationError` in one line when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.__class__.__name__}") from None


@dataclass(frozen=True, slots=True)
class AgencyConfig:
    """What ``agency init`` records about this agency."""

    agency_id: str
    name: str
    org_type: str
    public_authority: bool
    apd_in_place: bool
    mailboxes: tuple[str, ...]
    role: str
    relay_url: str | None
    contact: dict[str, str] = field(default_factory=dict)
    """The default sender contact (name, role, phone, email) for messages."""

    def to_json(self) -> dict[str, Any]:
        """The ``agency.json`` form."""
        return {
            "agency_id": self.agency_id,
            "name": self.name,
            "org_type": self.org_type,
            "public_authority": self.public_authority,
            "apd_in_place": self.apd_in_place,
            "mailboxes": list(self.mailboxes),
            "role": self.role,
            "relay_url": self.relay_url,
            "contact": dict(self.contact),
        }

    @classmethod
    def from_json(cls, data: object) -> AgencyConfig:
        """Read ``agency.json``."""
        if not isinstance(data, dict):
            raise ConfigurationError("agency.json must be a JSON object")
        try:
            return cls(
                agency_id=str(data["agency_id"]),
                name=str(data["name"]),
                org_type=str(data["org_type"]),
                public_authority=bool(data["public_authority"]),
                apd_in_place=bool(data["apd_in_place"]),
                mailboxes=tuple(str(m) for m in data["mailboxes"]),
                role=str(data.get("role", "agency")),
                relay_url=data.get("relay_url") if isinstance(data.get("relay_url"), str) else None,
                contact={str(k): str(v) for k, v in (data.get("contact") or {}).items() if v},
            )
        except KeyError as exc:
            raise ConfigurationError(f"agency.json lacks {exc.args[0]}") from None


class AgencyHome:
    """Paths and small files of one agency's home directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        """``agency.json``."""
        return self.path / "agency.json"

    @property
    def root_path(self) -> Path:
        """``root.json``: the pinned root."""
        return self.path / "root.json"

    @property
    def identity_path(self) -> Path:
        """``identity.key``: the encrypted private keys."""
        return self.path / "identity.key"

    @property
    def request_path(self) -> Path:
        """``certificate-request.json``."""
        return self.path / "certificate-request.json"

    @property
    def certificate_path(self) -> Path:
        """``certificate.json``."""
        return self.path / "certificate.json"

    @property
    def directory_path(self) -> Path:
        """``directory.json``: the cached (unverified until loaded) directory."""
        return self.path / "directory.json"

    @property
    def store_path(self) -> Path:
        """``store.sqlite``: the local store."""
        return self.path / "store.sqlite"

    def is_initialised(self) -> bool:
        """True when ``agency init`` has run here."""
        return self.config_path.exists() and self.identity_path.exists()

    def require_initialised(self) -> None:
        """Raise :class:`NotInitialised` unless ``agency init`` has run here."""
        if not self.is_initialised():
            raise NotInitialised(f"no agency is set up in {self.path} (run: agency init)")

    def config(self) -> AgencyConfig:
        """Read ``agency.json``."""
        self.require_initialised()
        return AgencyConfig.from_json(read_json_file(self.config_path, "agency configuration"))

    def write_config(self, config: AgencyConfig) -> None:
        """Write ``agency.json``."""
        write_json_file(self.config_path, config.to_json())

    def root_public_key(self) -> bytes:
        """The pinned root public key (32 bytes)."""
        data = read_json_file(self.root_path, "pinned root")
        try:
            key = b64decode(data["public_key"], field="root public key")
        except (KeyError, TypeError, InvalidEnvelope):
            raise ConfigurationError(f"{self.root_path} holds no valid root public key") from None
        if len(key) != 32:
            raise ConfigurationError("the pinned root public key must be 32 bytes")
        return key

    def pin_root(self, public_key: bytes) -> str:
        """Record the root public key to trust; return its fingerprint."""
        if len(public_key) != 32:
            raise ConfigurationError("the root public key must be 32 bytes")
        root_fp = fingerprint(public_key, kind="root")
        write_json_file(
            self.root_path, {"public_key": b64encode(public_key), "fingerprint": root_fp}
        )
        return root_fp

    def certificate(self) -> Certificate:
        """This agency's installed certificate (parsed; verify against the root before trust)."""
        if not self.certificate_path.exists():
            raise NotInitialised(
                "no certificate is installed yet (run: agency install-certificate FILE)"
            )
        data = read_json_file(self.certificate_path, "certificate")
        return Certificate.from_json(data)
