"""The exchange's typed errors, and their RFC 9457 problem-details form.

Every failure that can cross a boundary (relay to client, library to CLI) is an
:class:`ExchangeError` subclass with a stable ``code``, an HTTP ``status`` and a
stable ``type_uri``. The relay renders them as ``application/problem+json``; the
client maps a problem document back to **the same class** with
:func:`from_problem`, so ``except LawfulBasisRejected`` works on both sides.

``detail`` is shown to the caller and must never carry message content, a
justification or a child identifier. Server-only diagnostics go in
``debug_context``, which is never serialised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_CONTENT_TYPE",
    "AuditVerificationFailed",
    "BadSignature",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "ClockSkew",
    "ConfigurationError",
    "DecryptionFailed",
    "DuplicateMessageId",
    "ExchangeError",
    "Expired",
    "Forbidden",
    "InternalError",
    "InvalidEnvelope",
    "InvalidReceipt",
    "InvalidRequest",
    "InvalidTransition",
    "KeyFileExists",
    "KeystoreError",
    "LawfulBasisRejected",
    "LocalError",
    "LogConsistencyError",
    "MethodNotAllowed",
    "NotFound",
    "NotRecipient",
    "PayloadTooLarge",
    "RateLimited",
    "RemoteError",
    "ReplayedRequest",
    "RequestTimeout",
    "ServiceUnavailable",
    "StaleRevocationList",
    "Unauthenticated",
    "UnknownAgency",
    "UnknownRecipient",
    "UntrustedCertificate",
    "WrongPassphrase",
    "from_problem",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://safeguarding-exchange.example/problems/"

_REGISTRY: dict[str, type[ExchangeError]] = {}


class ExchangeError(Exception):
    """Something the exchange refused or could not do."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "exchange-error"
    title: ClassVar[str] = "Exchange error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        debug_context: Mapping[str, Any] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.debug_context = dict(debug_context or {})
        self.extensions: dict[str, Any] = dict(extensions or {})
        super().__init__(self.detail)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _REGISTRY[cls.code] = cls

    @classmethod
    def type_uri(cls) -> str:
        """The stable problem type URI for this error class."""
        return PROBLEM_BASE + cls.code

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Render as an RFC 9457 problem details object (without debug context)."""
        problem: dict[str, Any] = {
            "type": self.type_uri(),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance is not None:
            problem["instance"] = instance
        for key, value in self.extensions.items():
            problem.setdefault(key, value)
        return problem

    def diagnostics(self) -> str:
        """One line for a person: the title and what went wrong."""
        if self.detail and self.detail != self.title:
            return f"{self.title}: {self.detail}"
        return self.title


class LocalError(ExchangeError):
    """We did something the protocol does not allow (caught before sending)."""


class RemoteError(ExchangeError):
    """The peer sent something the protocol does not allow."""


# -- envelopes, signatures, crypto -----------------------------------------------------------


class InvalidEnvelope(RemoteError):
    """The envelope is malformed: wrong structure, bad encoding or inconsistent fields."""

    status = 400
    code = "invalid-envelope"
    title = "Invalid envelope"


class BadSignature(RemoteError):
    """A signature did not verify against the key it claims."""

    status = 400
    code = "bad-signature"
    title = "Bad signature"


class DecryptionFailed(RemoteError):
    """The message could not be decrypted: not for this key, or altered in transit."""

    status = 400
    code = "decryption-failed"
    title = "Decryption failed"


class NotRecipient(RemoteError):
    """This agency is not among the message's recipients."""

    status = 403
    code = "not-recipient"
    title = "Not a recipient"


class InvalidReceipt(RemoteError):
    """A delivery receipt is malformed, unsigned or does not match the message."""

    status = 400
    code = "invalid-receipt"
    title = "Invalid delivery receipt"


# -- identities and certificates -------------------------------------------------------------


class UnknownAgency(RemoteError):
    """No valid certificate is known for this agency."""

    status = 403
    code = "unknown-agency"
    title = "Unknown agency"


class UnknownRecipient(RemoteError):
    """A recipient agency or mailbox is not in the partnership directory."""

    status = 422
    code = "unknown-recipient"
    title = "Unknown recipient"


class UntrustedCertificate(RemoteError):
    """The certificate was not issued by the pinned partnership root."""

    status = 403
    code = "untrusted-certificate"
    title = "Untrusted certificate"


class CertificateExpired(RemoteError):
    """The certificate's validity window has ended."""

    status = 403
    code = "certificate-expired"
    title = "Certificate expired"


class CertificateNotYetValid(RemoteError):
    """The certificate's validity window has not started."""

    status = 403
    code = "certificate-not-yet-valid"
    title = "Certificate not yet valid"


class CertificateRevoked(RemoteError):
    """The partnership has revoked this certificate."""

    status = 403
    code = "certificate-revoked"
    title = "Certificate revoked"


class StaleRevocationList(RemoteError):
    """A revocation list older than one already seen was offered (a rollback)."""

    status = 409
    code = "stale-revocation-list"
    title = "Stale revocation list"


# -- lawful basis ----------------------------------------------------------------------------


class LawfulBasisRejected(ExchangeError):
    """The declared lawful basis fails the partnership's policy rules.

    ``extensions["findings"]`` lists each finding (rule id, level, message,
    citations) and ``extensions["policy_version"]`` the rule set used.
    """

    status = 422
    code = "lawful-basis-rejected"
    title = "Lawful basis rejected"

    @property
    def findings(self) -> list[dict[str, Any]]:
        """The policy findings that caused the rejection."""
        value = self.extensions.get("findings", [])
        return list(value) if isinstance(value, list) else []


# -- requests and authorisation --------------------------------------------------------------


class InvalidRequest(RemoteError):
    """The request is malformed or a parameter is out of range."""

    status = 400
    code = "invalid-request"
    title = "Invalid request"


class Unauthenticated(RemoteError):
    """The request carries no valid agency signature."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class ReplayedRequest(RemoteError):
    """This signed request has been seen before."""

    status = 401
    code = "replayed-request"
    title = "Replayed request"


class ClockSkew(RemoteError):
    """The request's signature creation time is outside the allowed clock skew."""

    status = 401
    code = "clock-skew"
    title = "Clock skew too large"


class Forbidden(RemoteError):
    """The authenticated agency may not do this or read this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(RemoteError):
    """No such object, or none this agency may see."""

    status = 404
    code = "not-found"
    title = "Not found"


class DuplicateMessageId(RemoteError):
    """A different envelope with this message id was already accepted."""

    status = 409
    code = "duplicate-message-id"
    title = "Duplicate message id"


class InvalidTransition(RemoteError):
    """The message kind is not allowed in the thread's current state."""

    status = 409
    code = "invalid-transition"
    title = "Invalid thread transition"


class Expired(RemoteError):
    """The message is past its retention or delivery window and is gone."""

    status = 410
    code = "expired"
    title = "Expired"


class PayloadTooLarge(RemoteError):
    """The request body is larger than the relay accepts."""

    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class RequestTimeout(RemoteError):
    """The request body did not arrive within the relay's time limit (a slow client)."""

    status = 408
    code = "request-timeout"
    title = "Request timeout"


class RateLimited(RemoteError):
    """Too many requests from this agency; retry after the given number of seconds."""

    status = 429
    code = "rate-limited"
    title = "Rate limited"


class ServiceUnavailable(RemoteError):
    """The relay cannot serve requests right now (for example, its database is down)."""

    status = 503
    code = "service-unavailable"
    title = "Service unavailable"


class MethodNotAllowed(RemoteError):
    """The resource does not support this HTTP method."""

    status = 405
    code = "method-not-allowed"
    title = "Method not allowed"


class InternalError(RemoteError):
    """The relay failed unexpectedly; nothing about the request is disclosed."""

    status = 500
    code = "internal-error"
    title = "Internal server error"


# -- local: key storage, configuration, audit ------------------------------------------------


class KeystoreError(LocalError):
    """A key file could not be read or written."""

    status = 400
    code = "keystore-error"
    title = "Key store error"


class WrongPassphrase(KeystoreError):
    """The passphrase does not unlock this key file."""

    code = "wrong-passphrase"
    title = "Wrong passphrase"


class KeyFileExists(KeystoreError):
    """Refusing to overwrite an existing key file."""

    code = "key-file-exists"
    title = "Key file already exists"


class ConfigurationError(LocalError):
    """A setting or file needed to run is missing or invalid."""

    status = 400
    code = "configuration-error"
    title = "Configuration error"


class LogConsistencyError(RemoteError):
    """The relay's log is not consistent with a tree head seen before (fork or rewrite)."""

    status = 409
    code = "log-inconsistent"
    title = "Log inconsistency detected"


class AuditVerificationFailed(ExchangeError):
    """An audit check failed; the findings say which."""

    status = 422
    code = "audit-verification-failed"
    title = "Audit verification failed"


def from_problem(problem: Mapping[str, Any], *, status: int | None = None) -> ExchangeError:
    """Map a problem details object back to the matching :class:`ExchangeError` subclass.

    Unknown types become a plain :class:`ExchangeError` carrying the detail.
    """
    code = problem.get("code")
    type_uri = problem.get("type")
    cls: type[ExchangeError] | None = None
    if isinstance(code, str):
        cls = _REGISTRY.get(code)
    if cls is None and isinstance(type_uri, str) and type_uri.startswith(PROBLEM_BASE):
        cls = _REGISTRY.get(type_uri[len(PROBLEM_BASE) :])
    detail = problem.get("detail")
    reserved = {"type", "title", "status", "detail", "code", "instance"}
    extensions = {k: v for k, v in problem.items() if k not in reserved}
    if cls is None:
        error = ExchangeError(str(detail) if detail else None, extensions=extensions)
        return error
    return cls(str(detail) if detail else None, extensions=extensions)
