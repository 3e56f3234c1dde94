"""Envelope v1: the wire form and the signed header model.

Theory of operation
-------------------
An envelope travels as a small JSON object of four base64 fields (see
``docs/envelope-v1.md``): the **header** bytes (canonical JSON, signed by the
sender), the **signature**, the **seals** (wrapped keys and the justification
sealed for recipients and the auditor) and the encrypted **body**.

This module only moves bytes in and out of that wire form and parses a header
*after* its signature has been checked by :mod:`keys.sealing`. It never
decrypts and never verifies: those need keys and live in ``keys/``. Parsing is
strict, so two different byte strings never yield the same envelope: exact
keys, canonical base64, and a header whose bytes are already canonical JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.encoding import b64decode, b64encode, canonical_json, loads_canonical
from schemas.problems import InvalidEnvelope
from schemas.timefmt import format_time, parse_time

__all__ = [
    "ENVELOPE_MEDIA_TYPE",
    "ENVELOPE_VERSION",
    "MESSAGE_ID_PATTERN",
    "Digests",
    "EnvelopeHeader",
    "Party",
    "SealedEnvelope",
    "parse_header",
]

ENVELOPE_VERSION = 1
ENVELOPE_MEDIA_TYPE = "application/vnd.safeguard.envelope.v1+json"
MESSAGE_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_SLUG = r"^[a-z0-9][a-z0-9.-]{0,63}$"
_WIRE_KEYS = frozenset({"v", "header", "signature", "seals", "body"})


class Party(BaseModel):
    """An agency and one of its mailboxes (``sender`` carries its certificate id too)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency: str = Field(pattern=_SLUG)
    mailbox: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    cert: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Digests(BaseModel):
    """Commitments from the signed header to the body, seals and justification."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: str
    seals: str
    justification: str


class EnvelopeHeader(BaseModel):
    """The signed cleartext header: routing, kind, time and the declared basis codes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int
    id: str = Field(pattern=MESSAGE_ID_PATTERN.pattern)
    thread: str = Field(pattern=MESSAGE_ID_PATTERN.pattern)
    in_reply_to: str | None = Field(default=None, pattern=MESSAGE_ID_PATTERN.pattern)
    kind: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    created_at: datetime
    sender: Party
    recipients: tuple[Party, ...] = Field(min_length=1, max_length=32)
    basis: dict[str, Any]
    policy_version: str = Field(min_length=1, max_length=64)
    auditor_cert: str = Field(pattern=r"^[0-9a-f]{64}$")
    digests: Digests

    @field_validator("v")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != ENVELOPE_VERSION:
            raise ValueError(f"unsupported envelope version {value}")
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _wire_time(cls, value: object) -> datetime:
        return parse_time(value, field="created_at")

    @field_validator("sender")
    @classmethod
    def _sender_has_cert(cls, value: Party) -> Party:
        if value.cert is None:
            raise ValueError("sender.cert is required")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients_unique(cls, value: tuple[Party, ...]) -> tuple[Party, ...]:
        agencies = [p.agency for p in value]
        if len(set(agencies)) != len(agencies):
            raise ValueError("recipients must be unique by agency")
        if any(p.cert is not None for p in value):
            raise ValueError("recipients carry no certificate id")
        return value

    @property
    def recipient_agencies(self) -> tuple[str, ...]:
        """The recipient agency ids, in header order."""
        return tuple(p.agency for p in self.recipients)

    def to_wire_dict(self) -> dict[str, Any]:
        """The JSON value whose canonical bytes are the header (inverse of :func:`parse_header`)."""
        data = self.model_dump(mode="python", exclude_none=False)
        data["created_at"] = format_time(self.created_at)
        data["sender"] = {k: v for k, v in data["sender"].items() if v is not None}
        data["recipients"] = [
            {k: v for k, v in r.items() if v is not None} for r in data["recipients"]
        ]
        data["recipients"] = list(data["recipients"])
        return data


def parse_header(header_bytes: bytes) -> EnvelopeHeader:
    """Parse verified header bytes; they must already be canonical JSON.

    Call only after the signature over ``header_bytes`` has been verified.
    """
    value = loads_canonical(header_bytes, what="header")
    if not isinstance(value, dict):
        raise InvalidEnvelope("header must be a JSON object")
    try:
        return EnvelopeHeader.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "header"
        raise InvalidEnvelope(f"header field {where}: {first.get('msg', 'invalid')}") from None


@dataclass(frozen=True, slots=True)
class SealedEnvelope:
    """An envelope as exact bytes: header, signature, seals and encrypted body."""

    header_bytes: bytes
    signature: bytes
    seals_bytes: bytes
    body: bytes

    def to_wire_dict(self) -> dict[str, Any]:
        """The JSON object sent over the wire."""
        return {
            "v": ENVELOPE_VERSION,
            "header": b64encode(self.header_bytes),
            "signature": b64encode(self.signature),
            "seals": b64encode(self.seals_bytes),
            "body": b64encode(self.body),
        }

    def to_wire(self) -> bytes:
        """Canonical JSON bytes of :meth:`to_wire_dict`."""
        return canonical_json(self.to_wire_dict())

    @classmethod
    def from_wire_dict(cls, value: object) -> SealedEnvelope:
        """Strictly parse the wire JSON object; raise :class:`InvalidEnvelope` otherwise."""
        if not isinstance(value, dict):
            raise InvalidEnvelope("envelope must be a JSON object")
        if set(value) != _WIRE_KEYS:
            raise InvalidEnvelope("envelope must have exactly v, header, signature, seals, body")
        if value["v"] != ENVELOPE_VERSION or isinstance(value["v"], bool):
            raise InvalidEnvelope("unsupported envelope version")
        signature = b64decode(value["signature"], field="signature")
        if len(signature) != 64:
            raise InvalidEnvelope("signature must be 64 bytes")
        return cls(
            header_bytes=b64decode(value["header"], field="header"),
            signature=signature,
            seals_bytes=b64decode(value["seals"], field="seals"),
            body=b64decode(value["body"], field="body"),
        )

    @classmethod
    def from_wire(cls, data: bytes) -> SealedEnvelope:
        """Parse wire bytes (JSON) strictly."""
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidEnvelope("envelope is not JSON") from None
        return cls.from_wire_dict(value)
