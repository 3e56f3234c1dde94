"""Seal, verify and open envelope v1 (``docs/envelope-v1.md``).

Theory of operation
-------------------
``seal`` turns a message body, a declared lawful basis and the parties'
certificates into a :class:`~schemas.envelope.SealedEnvelope`:

* the body is encrypted under a fresh key with XChaCha20-Poly1305, bound to the
  header's routing part as associated data, with the routing ids repeated
  inside the plaintext so the message cannot be re-addressed;
* the free-text justification is encrypted under a second fresh key that is
  wrapped for every recipient *and* for the partnership auditor, and the header
  carries only a salted commitment to it;
* both keys are wrapped per recipient with an X25519 sealed box;
* the header commits to the body, the seals and the justification, and the
  sender signs the header's exact bytes under a domain-separated PAE.

The policy engine runs over the full basis tag before anything is encrypted,
so an unlawful basis never leaves the sender.

``verify_header`` needs public keys only (the relay and the auditor use it);
``open_envelope`` and ``open_justification`` return verified content or raise.
Nothing is parsed into a model until the bytes it came from are verified.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nacl.exceptions
import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_box,
    crypto_scalarmult_base,
)
from pydantic import BaseModel, ValidationError

from keys.certificates import Certificate, CertificateBody
from keys.directory import Directory
from keys.identity import AgencyIdentity
from schemas.encoding import (
    DOMAIN_BODY_AAD,
    DOMAIN_ENVELOPE,
    DOMAIN_JUSTIFICATION_AAD,
    DOMAIN_JUSTIFICATION_COMMITMENT,
    DOMAIN_SEALS,
    b64decode,
    b64encode,
    canonical_json,
    digest,
    loads_canonical,
    pae,
)
from schemas.envelope import (
    ENVELOPE_VERSION,
    MESSAGE_ID_PATTERN,
    EnvelopeHeader,
    SealedEnvelope,
    parse_header,
)
from schemas.lawful_basis import BasisTag, Justification
from schemas.messages import MessageBody, body_to_dict, parse_body
from schemas.policy import (
    POLICY_VERSION,
    DeploymentPolicy,
    Finding,
    MessageFacts,
    PartyContext,
    PolicyRequest,
    Verdict,
    evaluate,
    raise_for_verdict,
)
from schemas.policy.facts import facts_from_body
from schemas.problems import (
    BadSignature,
    DecryptionFailed,
    InvalidEnvelope,
    LocalError,
    NotRecipient,
)
from schemas.timefmt import format_time

__all__ = [
    "DOMAIN_BODY",
    "DOMAIN_HEADER",
    "OpenedMessage",
    "Seals",
    "VerifiedHeader",
    "basis_verdict",
    "header_digest",
    "new_message_id",
    "open_envelope",
    "open_justification",
    "parse_envelope",
    "seal",
    "verify_header",
    "verify_seals",
    "verify_signed_header",
]

#: Digest of the encrypted body, committed to by the header.
DOMAIN_BODY = "safeguard:body:v1"
#: Digest of a header's exact bytes (receipts and the log refer to messages by it).
DOMAIN_HEADER = "safeguard:header:v1"

_KEY_BYTES = 32
_NONCE_BYTES = 24
_SALT_BYTES = 32
_WRAPPED_KEY_BYTES = 32 + 48  # sealed box overhead: ephemeral public key + MAC

RandomBytes = Callable[[int], bytes]


def new_message_id(random_bytes: RandomBytes = nacl.utils.random) -> str:
    """A fresh 128-bit random message id as 32 lowercase hex characters."""
    return random_bytes(16).hex()


def header_digest(header_bytes: bytes) -> bytes:
    """The 32-byte digest that names a message in receipts and the log."""
    return digest(DOMAIN_HEADER, header_bytes)


def parse_envelope(data: bytes) -> SealedEnvelope:
    """Strictly parse wire bytes into a :class:`SealedEnvelope` (no verification)."""
    return SealedEnvelope.from_wire(data)


# -- seals block --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientSeal:
    """The body and justification keys wrapped for one recipient agency."""

    agency: str
    body_key: bytes
    justification_key: bytes


@dataclass(frozen=True, slots=True)
class Seals:
    """Wrapped keys for recipients and the auditor, and the sealed justification."""

    recipients: tuple[RecipientSeal, ...]
    auditor_cert: str
    auditor_justification_key: bytes
    justification: bytes

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes, as committed to by the header."""
        return canonical_json(
            {
                "recipients": [
                    {
                        "agency": r.agency,
                        "body_key": b64encode(r.body_key),
                        "justification_key": b64encode(r.justification_key),
                    }
                    for r in self.recipients
                ],
                "auditor": {
                    "cert": self.auditor_cert,
                    "justification_key": b64encode(self.auditor_justification_key),
                },
                "justification": b64encode(self.justification),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Seals:
        """Strictly parse seals bytes (they must be canonical JSON)."""
        value = _strict_json(data, "seals")
        try:
            if set(value) != {"recipients", "auditor", "justification"}:
                raise InvalidEnvelope("seals must have recipients, auditor, justification")
            recipients = []
            for entry in value["recipients"]:
                if not isinstance(entry, dict) or set(entry) != {
                    "agency",
                    "body_key",
                    "justification_key",
                }:
                    raise InvalidEnvelope("malformed recipient seal")
                if not isinstance(entry["agency"], str):
                    raise InvalidEnvelope("malformed recipient seal")
                recipients.append(
                    RecipientSeal(
                        agency=entry["agency"],
                        body_key=_wrapped(entry["body_key"], "body_key"),
                        justification_key=_wrapped(entry["justification_key"], "justification_key"),
                    )
                )
            auditor = value["auditor"]
            if not isinstance(auditor, dict) or set(auditor) != {"cert", "justification_key"}:
                raise InvalidEnvelope("malformed auditor seal")
            if not isinstance(auditor["cert"], str):
                raise InvalidEnvelope("malformed auditor seal")
            return cls(
                recipients=tuple(recipients),
                auditor_cert=auditor["cert"],
                auditor_justification_key=_wrapped(auditor["justification_key"], "auditor key"),
                justification=b64decode(value["justification"], field="justification"),
            )
        except (TypeError, KeyError):
            raise InvalidEnvelope("malformed seals") from None


def _wrap(public_key: bytes, key: bytes, random_bytes: RandomBytes) -> bytes:
    """Wrap ``key`` for an X25519 public key: a libsodium sealed box, byte for byte.

    ``epk || crypto_box(key, blake2b(epk || pk, 24), pk, esk)``, exactly what
    ``crypto_box_seal`` produces (``SealedBox`` opens it), but with the ephemeral
    secret drawn from ``random_bytes`` so that test vectors are reproducible.
    """
    ephemeral_secret = random_bytes(32)
    ephemeral_public = crypto_scalarmult_base(ephemeral_secret)
    nonce = hashlib.blake2b(ephemeral_public + public_key, digest_size=24).digest()
    return ephemeral_public + crypto_box(key, nonce, public_key, ephemeral_secret)


def _wrapped(text: object, field: str) -> bytes:
    raw = b64decode(text if isinstance(text, str) else "", field=field)
    if len(raw) != _WRAPPED_KEY_BYTES:
        raise InvalidEnvelope(f"{field} has the wrong length")
    return raw


def _strict_json(data: bytes, what: str) -> dict[str, Any]:
    value = loads_canonical(data, what=what)
    if not isinstance(value, dict):
        raise InvalidEnvelope(f"{what} must be a JSON object")
    return value


# -- policy --------------------------------------------------------------------------------


def _party(cert: CertificateBody) -> PartyContext:
    return PartyContext(
        org_type=cert.org_type,
        public_authority=cert.public_authority,
        apd_in_place=cert.apd_in_place,
    )


def basis_verdict(
    *,
    kind: str,
    sent_at: datetime,
    sender: CertificateBody,
    recipients: Sequence[CertificateBody],
    basis: Mapping[str, Any],
    justification_available: bool,
    deployment: DeploymentPolicy | None = None,
    facts: MessageFacts | None = None,
) -> Verdict:
    """Run the policy engine once per recipient and merge the findings into one verdict.

    The relay calls this with header codes only (``justification_available=False``);
    the sender before sealing and the recipient after opening call it with the full tag.
    """
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    decisions: list[str] = []
    for recipient in recipients:
        request = PolicyRequest(
            kind=kind,
            sent_at=sent_at,
            sender=_party(sender),
            recipient=_party(recipient),
            forwarding=None,
            basis=dict(basis),
            justification_available=justification_available,
            deployment=deployment or DeploymentPolicy(),
            facts=facts,
        )
        verdict = evaluate(request)
        decisions.append(verdict.decision)
        for finding in verdict.findings:
            key = (finding.rule, finding.message)
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    if "reject" in decisions:
        decision = "reject"
    elif findings:
        decision = "warn"
    else:
        decision = "accept"
    return Verdict(decision=decision, policy_version=POLICY_VERSION, findings=findings)


# -- seal ------------------------------------------------------------------------------------


def _core(
    *,
    message_id: str,
    thread_id: str,
    in_reply_to: str | None,
    kind: str,
    created_at: datetime,
    sender: CertificateBody,
    sender_cert_id: str,
    sender_mailbox: str,
    recipients: Sequence[tuple[CertificateBody, str]],
    basis_codes: Mapping[str, Any],
    auditor_cert_id: str,
) -> dict[str, Any]:
    return {
        "v": ENVELOPE_VERSION,
        "id": message_id,
        "thread": thread_id,
        "in_reply_to": in_reply_to,
        "kind": kind,
        "created_at": format_time(created_at),
        "sender": {"agency": sender.agency_id, "mailbox": sender_mailbox, "cert": sender_cert_id},
        "recipients": [{"agency": r.agency_id, "mailbox": mailbox} for r, mailbox in recipients],
        "basis": dict(basis_codes),
        "policy_version": POLICY_VERSION,
        "auditor_cert": auditor_cert_id,
    }


def _inner(core: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The plaintext wrapper that repeats the routing ids inside the ciphertext."""
    return {
        "id": core["id"],
        "thread": core["thread"],
        "kind": core["kind"],
        "sender": core["sender"]["agency"],
        "recipients": [r["agency"] for r in core["recipients"]],
        "body": dict(body),
    }


def _check_body_ids(body: Mapping[str, Any], core: Mapping[str, Any]) -> None:
    """A body that names its own ids must name the header's."""
    expected = {
        "message_id": core["id"],
        "thread_id": core["thread"],
        "kind": core["kind"],
        "sender_agency": core["sender"]["agency"],
    }
    for field, value in expected.items():
        if field in body and body[field] != value:
            raise InvalidEnvelope(f"body {field} does not match the header")
    if "recipient_agencies" in body and sorted(body["recipient_agencies"]) != sorted(
        r["agency"] for r in core["recipients"]
    ):
        raise InvalidEnvelope("body recipient_agencies do not match the header")


def seal(
    *,
    identity: AgencyIdentity,
    sender: Certificate,
    sender_mailbox: str,
    recipients: Sequence[tuple[Certificate, str]],
    auditor: Certificate,
    kind: str,
    body: MessageBody | Mapping[str, Any],
    basis: BasisTag,
    created_at: datetime,
    message_id: str | None = None,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    deployment: DeploymentPolicy | None = None,
    random_bytes: RandomBytes = nacl.utils.random,
) -> SealedEnvelope:
    """Check the basis, encrypt the body and justification, and sign the header.

    Raises :class:`~schemas.problems.LawfulBasisRejected` (with findings) before any
    encryption when the full basis tag fails the policy engine for any recipient.
    ``random_bytes`` is injectable only so that known-answer vectors are reproducible.
    """
    sender_body = sender.body
    if identity.public_keys != sender_body.public_keys:
        raise LocalError("the identity's keys do not match the sender certificate")
    if sender_mailbox not in sender_body.mailboxes:
        raise LocalError(f"mailbox {sender_mailbox!r} is not in the sender certificate")
    if not recipients:
        raise LocalError("a message needs at least one recipient")
    for cert, mailbox in recipients:
        if mailbox not in cert.body.mailboxes:
            raise LocalError(f"{cert.body.agency_id} has no mailbox {mailbox!r}")
    if auditor.body.role != "auditor":
        raise LocalError("the justification must be sealed to an auditor certificate")

    body_dict = body_to_dict(body) if isinstance(body, BaseModel) else dict(body)
    parsed_body = parse_body(kind, body_dict)
    full_tag = basis.model_dump(mode="json", exclude_none=True)
    verdict = basis_verdict(
        kind=kind,
        sent_at=created_at,
        sender=sender_body,
        recipients=[cert.body for cert, _ in recipients],
        basis=full_tag,
        justification_available=True,
        deployment=deployment,
        facts=facts_from_body(parsed_body),
    )
    raise_for_verdict(verdict)

    message_id = message_id or new_message_id(random_bytes)
    if not MESSAGE_ID_PATTERN.fullmatch(message_id):
        raise LocalError("message id must be 32 lowercase hex characters")
    thread_id = thread_id or message_id

    core = _core(
        message_id=message_id,
        thread_id=thread_id,
        in_reply_to=in_reply_to,
        kind=kind,
        created_at=created_at,
        sender=sender_body,
        sender_cert_id=sender.id,
        sender_mailbox=sender_mailbox,
        recipients=[(cert.body, mailbox) for cert, mailbox in recipients],
        basis_codes=basis.header_codes(),
        auditor_cert_id=auditor.id,
    )
    _check_body_ids(body_dict, core)
    core_bytes = canonical_json(core)

    body_key = random_bytes(_KEY_BYTES)
    justification_key = random_bytes(_KEY_BYTES)
    salt = random_bytes(_SALT_BYTES)
    body_nonce = random_bytes(_NONCE_BYTES)
    justification_nonce = random_bytes(_NONCE_BYTES)

    plaintext = canonical_json(_inner(core, body_dict))
    body_ct = body_nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, pae(DOMAIN_BODY_AAD, core_bytes), body_nonce, body_key
    )

    justification = basis.justification.model_dump(mode="json", exclude_none=True)
    justification_bytes = canonical_json(justification)
    commitment = digest(DOMAIN_JUSTIFICATION_COMMITMENT, salt, justification_bytes)
    justification_plain = canonical_json(
        {"id": message_id, "salt": b64encode(salt), "justification": justification}
    )
    justification_ct = justification_nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
        justification_plain,
        pae(DOMAIN_JUSTIFICATION_AAD, core_bytes),
        justification_nonce,
        justification_key,
    )

    recipient_seals = []
    for cert, _ in recipients:
        encryption_key = cert.body.encryption_key
        recipient_seals.append(
            RecipientSeal(
                agency=cert.body.agency_id,
                body_key=_wrap(encryption_key, body_key, random_bytes),
                justification_key=_wrap(encryption_key, justification_key, random_bytes),
            )
        )
    seals = Seals(
        recipients=tuple(recipient_seals),
        auditor_cert=auditor.id,
        auditor_justification_key=_wrap(
            auditor.body.encryption_key, justification_key, random_bytes
        ),
        justification=justification_ct,
    )
    seals_bytes = seals.to_bytes()

    header = dict(core)
    header["digests"] = {
        "body": b64encode(digest(DOMAIN_BODY, body_ct)),
        "seals": b64encode(digest(DOMAIN_SEALS, seals_bytes)),
        "justification": b64encode(commitment),
    }
    header_bytes = canonical_json(header)
    signature = identity.sign(pae(DOMAIN_ENVELOPE, header_bytes))
    return SealedEnvelope(
        header_bytes=header_bytes, signature=signature, seals_bytes=seals_bytes, body=body_ct
    )


# -- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedHeader:
    """A header whose signature, certificate and digests have all been checked."""

    header: EnvelopeHeader
    header_bytes: bytes
    signature: bytes
    sender_certificate: CertificateBody
    seals: Seals

    @property
    def digest(self) -> bytes:
        """The header digest that names this message in receipts and the log."""
        return header_digest(self.header_bytes)


def _unverified_sender_cert_id(header_bytes: bytes) -> str:
    """Read the claimed certificate id, to find the key the signature must verify under.

    Nothing else is read before the signature is checked; the strict parse comes after.
    """
    try:
        value = json.loads(header_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidEnvelope("header is not JSON") from None
    sender = value.get("sender") if isinstance(value, dict) else None
    cert = sender.get("cert") if isinstance(sender, dict) else None
    if not isinstance(cert, str):
        raise InvalidEnvelope("header names no sender certificate")
    return cert


def _core_bytes(header: EnvelopeHeader) -> bytes:
    core = header.to_wire_dict()
    del core["digests"]
    return canonical_json(core)


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_signed_header(
    header_bytes: bytes, signature: bytes, directory: Directory, *, at: datetime
) -> tuple[EnvelopeHeader, CertificateBody]:
    """Verify a header's signature and structure with public keys only.

    This is what an auditor can check from the log without the body: the sender
    certificate (issued by the pinned root, valid and not revoked at ``at``), the
    signature over the exact header bytes, and the header's structure.
    """
    cert_id = _unverified_sender_cert_id(header_bytes)
    sender = directory.by_id(cert_id, at=at)
    sender.public_keys.verify(pae(DOMAIN_ENVELOPE, header_bytes), signature)
    header = parse_header(header_bytes)
    if header.sender.agency != sender.agency_id:
        raise BadSignature("the header's sender is not the certificate's agency")
    if header.sender.mailbox not in sender.mailboxes:
        raise InvalidEnvelope("the sender mailbox is not in the sender's certificate")
    return header, sender


def verify_seals(header: EnvelopeHeader, seals_bytes: bytes) -> Seals:
    """Check the seals against the header's commitment, recipients and auditor."""
    expected = b64decode(header.digests.seals, field="digests.seals")
    if not _same(expected, digest(DOMAIN_SEALS, seals_bytes)):
        raise BadSignature("the seals do not match the signed header")
    seals = Seals.from_bytes(seals_bytes)
    if tuple(r.agency for r in seals.recipients) != header.recipient_agencies:
        raise InvalidEnvelope("the seals do not match the header's recipients")
    if seals.auditor_cert != header.auditor_cert:
        raise InvalidEnvelope("the seals do not match the header's auditor")
    return seals


def verify_header(
    envelope: SealedEnvelope, directory: Directory, *, at: datetime
) -> VerifiedHeader:
    """Verify a whole envelope with public keys only and return its header.

    :func:`verify_signed_header`, then the body and seals against the header's
    digests. Raises a typed :class:`~schemas.problems.ExchangeError`; the relay
    calls this before storing anything.
    """
    header, sender = verify_signed_header(
        envelope.header_bytes, envelope.signature, directory, at=at
    )
    expected_body = b64decode(header.digests.body, field="digests.body")
    if not _same(expected_body, digest(DOMAIN_BODY, envelope.body)):
        raise BadSignature("the body does not match the signed header")
    seals = verify_seals(header, envelope.seals_bytes)
    return VerifiedHeader(
        header=header,
        header_bytes=envelope.header_bytes,
        signature=envelope.signature,
        sender_certificate=sender,
        seals=seals,
    )


# -- open ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A verified, decrypted message with its full basis tag and the recipient's re-check."""

    verified: VerifiedHeader
    body: MessageBody
    body_dict: dict[str, Any]
    justification: Justification
    basis: BasisTag
    verdict: Verdict

    @property
    def header(self) -> EnvelopeHeader:
        """The verified header."""
        return self.verified.header


def _decrypt(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    if len(blob) < _NONCE_BYTES + 16:
        raise DecryptionFailed(f"{what} is too short")
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[_NONCE_BYTES:], aad, blob[:_NONCE_BYTES], key
        )
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed(f"{what} could not be decrypted") from None


def _unwrap(identity: AgencyIdentity, wrapped: bytes, what: str) -> bytes:
    try:
        key = identity.decrypt_sealed(wrapped)
    except (nacl.exceptions.CryptoError, DecryptionFailed):
        raise DecryptionFailed(f"the {what} is not wrapped for this key") from None
    if len(key) != _KEY_BYTES:
        raise DecryptionFailed(f"the {what} has the wrong length")
    return key


def _open_justification_blob(verified: VerifiedHeader, key: bytes) -> Justification:
    header = verified.header
    plain = _decrypt(
        key,
        verified.seals.justification,
        pae(DOMAIN_JUSTIFICATION_AAD, _core_bytes(header)),
        "justification",
    )
    value = _strict_json(plain, "justification")
    if set(value) != {"id", "salt", "justification"} or value["id"] != header.id:
        raise InvalidEnvelope("the justification does not belong to this message")
    salt = b64decode(value["salt"], field="salt")
    text = value["justification"]
    if not isinstance(text, dict):
        raise InvalidEnvelope("the justification must be an object")
    commitment = digest(DOMAIN_JUSTIFICATION_COMMITMENT, salt, canonical_json(text))
    if not _same(
        commitment, b64decode(header.digests.justification, field="digests.justification")
    ):
        raise BadSignature("the justification does not match the header's commitment")
    try:
        return Justification.model_validate(text)
    except ValidationError:
        raise InvalidEnvelope("the justification is malformed") from None


def open_envelope(
    envelope: SealedEnvelope,
    identity: AgencyIdentity,
    directory: Directory,
    *,
    agency_id: str,
    at: datetime,
    deployment: DeploymentPolicy | None = None,
) -> OpenedMessage:
    """Verify and decrypt a message for ``agency_id``; return it or raise.

    The full basis tag (codes and justification) is re-checked with the same policy
    engine the sender used; the verdict is returned with the message so the recipient
    sees any finding. Raises :class:`NotRecipient`, :class:`DecryptionFailed`,
    :class:`BadSignature` or :class:`InvalidEnvelope` on any failure.
    """
    verified = verify_header(envelope, directory, at=at)
    header = verified.header
    mine = [r for r in verified.seals.recipients if r.agency == agency_id]
    if not mine:
        raise NotRecipient(f"{agency_id} is not a recipient of this message")
    core_bytes = _core_bytes(header)
    body_key = _unwrap(identity, mine[0].body_key, "body key")
    plain = _decrypt(body_key, envelope.body, pae(DOMAIN_BODY_AAD, core_bytes), "body")
    inner = _strict_json(plain, "body")
    expected = {
        "id": header.id,
        "thread": header.thread,
        "kind": header.kind,
        "sender": header.sender.agency,
        "recipients": list(header.recipient_agencies),
    }
    if set(inner) != {*expected, "body"} or any(inner[k] != v for k, v in expected.items()):
        raise InvalidEnvelope("the encrypted routing does not match the header (re-addressed?)")
    if not isinstance(inner["body"], dict):
        raise InvalidEnvelope("the body must be an object")
    core = header.to_wire_dict()
    _check_body_ids(inner["body"], core)
    body = parse_body(header.kind, inner["body"])

    justification_key = _unwrap(identity, mine[0].justification_key, "justification key")
    justification = _open_justification_blob(verified, justification_key)
    basis = BasisTag.from_parts(header.basis, justification)
    recipient_certs = [directory.agency(agency, at=at) for agency in header.recipient_agencies]
    verdict = basis_verdict(
        kind=header.kind,
        sent_at=header.created_at,
        sender=verified.sender_certificate,
        recipients=recipient_certs,
        basis=basis.model_dump(mode="json", exclude_none=True),
        justification_available=True,
        deployment=deployment,
        facts=facts_from_body(body),
    )
    return OpenedMessage(
        verified=verified,
        body=body,
        body_dict=inner["body"],
        justification=justification,
        basis=basis,
        verdict=verdict,
    )


def open_justification(
    header_bytes: bytes,
    signature: bytes,
    seals_bytes: bytes,
    auditor_identity: AgencyIdentity,
    directory: Directory,
    *,
    at: datetime,
) -> tuple[EnvelopeHeader, Justification]:
    """The auditor's path: verify header and seals, read the justification, never the body.

    Needs only what the relay shows an auditor (header, signature, seals).
    """
    header, sender = verify_signed_header(header_bytes, signature, directory, at=at)
    seals = verify_seals(header, seals_bytes)
    auditor = directory.by_id(header.auditor_cert, at=at)
    if auditor.role != "auditor" or auditor_identity.public_keys != auditor.public_keys:
        raise NotRecipient("the justification is sealed to a different auditor key")
    key = _unwrap(auditor_identity, seals.auditor_justification_key, "justification key")
    verified = VerifiedHeader(
        header=header,
        header_bytes=header_bytes,
        signature=signature,
        sender_certificate=sender,
        seals=seals,
    )
    return header, _open_justification_blob(verified, key)
