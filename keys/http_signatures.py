"""HTTP message signatures (RFC 9421) for agency requests to the relay.

Theory of operation
-------------------
Every authenticated request to the relay carries one RFC 9421 signature, label
``sig1``, made with the agency's Ed25519 signing key. The covered components
are fixed, so both sides build the same signature base without negotiation::

    "@method": POST
    "@path": /v1/envelopes
    "@query": ?
    "content-digest": sha-256=:<base64 SHA-256 of the body>:
    "@signature-params": ("@method" "@path" "@query" "content-digest")
        ;created=1795000000;keyid="<certificate id>";alg="ed25519";nonce="<base64url>"

(the last line is one line in the real base, wrapped here).

* ``content-digest`` is the RFC 9530 ``sha-256`` digest, sent for an empty body
  too, so the signature binds the exact body bytes.
* ``created`` bounds the request in time (the verifier refuses anything outside
  its allowed clock skew); ``nonce`` (at least 16 random bytes, base64url) lets
  the verifier refuse a replay of the same signed request inside that window.
  Remembering nonces is the caller's job: this module has no state.
* ``keyid`` is the id of the agency's certificate; the verifier resolves it to a
  public key through a callback, so certificate validity and revocation are
  checked by the directory, not here.

The signature base is built here rather than through a general RFC 9421
library because the component set is fixed: a few lines that can be read
against the RFC are easier to audit than a generic resolver. Interoperability
with a general implementation is checked in the tests. Pure: no clock reads
(callers pass ``created``/``now``), no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import nacl.utils
from http_sfv.dictionary import Dictionary
from http_sfv.item import InnerList, Item

from keys.identity import verify_detached
from schemas.problems import BadSignature, ClockSkew, Unauthenticated

__all__ = [
    "ALGORITHM",
    "COVERED_COMPONENTS",
    "MIN_NONCE_BYTES",
    "SIGNATURE_LABEL",
    "BadRequestSignature",
    "RequestSigner",
    "SignedRequestInfo",
    "check_content_digest",
    "content_digest",
    "new_nonce",
    "sign_request",
    "signature_base",
    "verify_request",
    "verify_request_signature",
]

#: The dictionary label of the one signature the relay verifies.
SIGNATURE_LABEL = "sig1"
#: The RFC 9421 algorithm name (section 3.3.6).
ALGORITHM = "ed25519"
#: The components every request signature covers, in signing order.
COVERED_COMPONENTS: tuple[str, ...] = ("@method", "@path", "@query", "content-digest")
#: The shortest nonce (in decoded bytes) the verifier accepts.
MIN_NONCE_BYTES = 16

_ALLOWED_PARAMS = frozenset({"created", "keyid", "alg", "nonce", "expires", "tag"})
_NONCE_TEXT = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_METHOD = re.compile(r"^[A-Z]{1,16}$")
_MAX_FIELD = 8192


class BadRequestSignature(BadSignature):
    """The request signature or its body digest does not verify.

    Same problem type as :class:`~schemas.problems.BadSignature` (so a client's
    ``except BadSignature`` catches it), but answered with 401: it is an
    authentication failure of the request, not a property of a message.
    """

    status = 401


@dataclass(frozen=True, slots=True)
class SignedRequestInfo:
    """What a verified request signature says: who signed it, when, with which nonce."""

    key_id: str
    created: datetime
    nonce: str
    signature: bytes


class RequestSigner(Protocol):
    """Anything that signs bytes with an Ed25519 key (an :class:`~keys.identity.AgencyIdentity`)."""

    def sign(self, data: bytes) -> bytes:
        """Return a 64-byte detached Ed25519 signature over ``data``."""
        ...


def content_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` field value for ``body`` (``sha-256=:<b64>:``)."""
    raw = hashlib.sha256(body).digest()
    return "sha-256=:" + base64.b64encode(raw).decode("ascii") + ":"


def new_nonce(random_bytes: Callable[[int], bytes] = nacl.utils.random) -> str:
    """A fresh nonce: 18 random bytes, base64url without padding (24 characters)."""
    return base64.urlsafe_b64encode(random_bytes(18)).decode("ascii").rstrip("=")


def _params_text(*, created: int, key_id: str, nonce: str, extra: Mapping[str, object]) -> str:
    """Serialise the ``@signature-params`` inner list (RFC 8941 section 4.1.1.1)."""
    inner = InnerList(list(COVERED_COMPONENTS))
    inner.params["created"] = created
    inner.params["keyid"] = key_id
    inner.params["alg"] = ALGORITHM
    inner.params["nonce"] = nonce
    for name, value in extra.items():
        inner.params[name] = value
    return str(inner)


def signature_base(
    *,
    method: str,
    path: str,
    query: str,
    content_digest_value: str,
    params: str,
    components: tuple[str, ...] = COVERED_COMPONENTS,
) -> bytes:
    """The RFC 9421 signature base (section 2.5) for the fixed component set.

    :param method: the request method, upper case.
    :param path: the absolute path exactly as sent (percent-encoding kept).
    :param query: the query string as sent, without the leading ``?`` (may be empty).
    :param content_digest_value: the ``Content-Digest`` field value.
    :param params: the serialised ``@signature-params`` inner list.
    :param components: the covered components in the order the signer listed them.
    """
    values = {
        "@method": method,
        "@path": path,
        "@query": "?" + query,
        "content-digest": content_digest_value,
    }
    lines = []
    for name in components:
        value = values[name]
        if not value.isascii() or "\n" in value or "\r" in value:
            raise Unauthenticated(f"{name} cannot be signed (non-ASCII or line break)")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode("ascii")


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return int(moment.timestamp())


def sign_request(
    *,
    identity: RequestSigner,
    key_id: str,
    method: str,
    path: str,
    query: str,
    body: bytes,
    created: datetime,
    nonce: str,
) -> dict[str, str]:
    """Sign a request; return the ``Signature-Input``, ``Signature`` and ``Content-Digest`` headers.

    :param identity: the agency's identity (anything with an Ed25519 ``sign``).
    :param key_id: the id of the agency's current certificate.
    :param path: the path exactly as it will be sent (percent-encoded).
    :param query: the query string exactly as it will be sent, without ``?``.
    :param created: the signing time (aware); whole seconds are signed.
    :param nonce: a fresh value from :func:`new_nonce`.
    """
    if not _METHOD.match(method):
        raise ValueError("method must be an upper-case HTTP method")
    if not path.startswith("/"):
        raise ValueError("path must be absolute")
    digest_value = content_digest(body)
    params = _params_text(created=_unix(created), key_id=key_id, nonce=nonce, extra={})
    base = signature_base(
        method=method, path=path, query=query, content_digest_value=digest_value, params=params
    )
    signature = identity.sign(base)
    sig_field = Dictionary()
    sig_field[SIGNATURE_LABEL] = signature
    return {
        "Signature-Input": f"{SIGNATURE_LABEL}={params}",
        "Signature": str(sig_field),
        "Content-Digest": digest_value,
    }


def _field(headers: Mapping[str, str], name: str) -> str | None:
    """One field value, case-insensitively; repeated field lines are joined (RFC 9110 5.3)."""
    values = [v.strip(" \t") for k, v in headers.items() if k.lower() == name]
    if not values:
        return None
    joined = ", ".join(values)
    if len(joined) > _MAX_FIELD:
        raise Unauthenticated(f"{name} field is too long")
    return joined


def _parse_dictionary(text: str, name: str) -> Dictionary:
    parsed = Dictionary()
    try:
        parsed.parse(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise Unauthenticated(f"{name} is not a valid structured field") from None
    return parsed


def _check_digest(field_value: str, body: bytes) -> None:
    """Compare every known member of ``Content-Digest`` with the body (RFC 9530)."""
    parsed = _parse_dictionary(field_value, "Content-Digest")
    hashers = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = False
    for algorithm, member in parsed.items():
        if algorithm not in hashers:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise Unauthenticated("Content-Digest members must be byte sequences")
        actual = hashers[algorithm](body).digest()
        if not hmac.compare_digest(actual, member.value):
            raise BadRequestSignature("the body does not match its signed Content-Digest")
        checked = checked or algorithm == "sha-256"
    if not checked:
        raise Unauthenticated("Content-Digest must carry a sha-256 member")


def _nonce_ok(nonce: str) -> bool:
    if not _NONCE_TEXT.match(nonce):
        return False
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= MIN_NONCE_BYTES


def verify_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    resolve_key: Callable[[str], bytes],
    now: datetime,
    max_skew: timedelta,
) -> SignedRequestInfo:
    """Verify a request's ``sig1`` signature and body digest; return who signed it.

    :param resolve_key: maps a ``keyid`` (certificate id) to the 32-byte Ed25519 public
        key; it raises the directory's errors (unknown agency, revoked certificate...).
    :param now: the verifier's current time; ``created`` must be within ``max_skew``.
    :raises Unauthenticated: no signature, or one that is malformed or covers the wrong
        components or parameters.
    :raises ClockSkew: ``created`` is too far from ``now`` (or ``expires`` has passed).
    :raises BadRequestSignature: the signature or the body digest does not verify.
    """
    info, digest_value = verify_request_signature(
        method=method,
        path=path,
        query=query,
        headers=headers,
        resolve_key=resolve_key,
        now=now,
        max_skew=max_skew,
    )
    check_content_digest(digest_value, body)
    return info


def check_content_digest(field_value: str, body: bytes) -> None:
    """Check the body against the signed ``Content-Digest`` field value (RFC 9530).

    :raises Unauthenticated: the field is malformed or has no ``sha-256`` member.
    :raises BadRequestSignature: the body does not match it.
    """
    _check_digest(field_value, body)


def verify_request_signature(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    resolve_key: Callable[[str], bytes],
    now: datetime,
    max_skew: timedelta,
) -> tuple[SignedRequestInfo, str]:
    """Verify the signature alone, before the body is read; return it and the digest field.

    The signature covers the ``Content-Digest`` *field*, so a server can authenticate
    the sender from the headers and read a body only for a known agency; it must then
    call :func:`check_content_digest` with the body. Same errors as :func:`verify_request`.
    """
    input_text = _field(headers, "signature-input")
    signature_text = _field(headers, "signature")
    if input_text is None or signature_text is None:
        raise Unauthenticated("the request carries no Signature-Input and Signature")
    inputs = _parse_dictionary(input_text, "Signature-Input")
    signatures = _parse_dictionary(signature_text, "Signature")
    sig_input = inputs.get(SIGNATURE_LABEL)
    sig_item = signatures.get(SIGNATURE_LABEL)
    if not isinstance(sig_input, InnerList) or not isinstance(sig_item, Item):
        raise Unauthenticated(f"no signature labelled {SIGNATURE_LABEL}")
    if not isinstance(sig_item.value, bytes) or len(sig_item.value) != 64:
        raise Unauthenticated("the signature must be a 64-byte byte sequence")

    components: list[str] = []
    for item in sig_input:
        if not isinstance(item.value, str) or item.params:
            raise Unauthenticated("covered components must be plain strings")
        components.append(item.value)
    if sorted(components) != sorted(COVERED_COMPONENTS) or len(components) != len(
        COVERED_COMPONENTS
    ):
        raise Unauthenticated("the signature must cover " + " ".join(COVERED_COMPONENTS))

    params = dict(sig_input.params)
    unknown = set(params) - _ALLOWED_PARAMS
    if unknown:
        raise Unauthenticated("unexpected signature parameter " + sorted(unknown)[0])
    created = params.get("created")
    key_id = params.get("keyid")
    alg = params.get("alg")
    nonce = params.get("nonce")
    if not isinstance(created, int) or isinstance(created, bool):
        raise Unauthenticated("the signature needs an integer created parameter")
    if not isinstance(key_id, str) or not key_id:
        raise Unauthenticated("the signature needs a keyid parameter")
    if alg != ALGORITHM:
        raise Unauthenticated(f'the signature must declare alg="{ALGORITHM}"')
    if not isinstance(nonce, str) or not _nonce_ok(nonce):
        raise Unauthenticated(f"the signature needs a base64url nonce of {MIN_NONCE_BYTES}+ bytes")

    now_s = now.timestamp()
    if abs(now_s - created) > max_skew.total_seconds():
        raise ClockSkew("the signature's created time is outside the allowed clock skew")
    expires = params.get("expires")
    if expires is not None and (not isinstance(expires, int) or expires < now_s):
        raise ClockSkew("the signature has expired")

    digest_value = _field(headers, "content-digest")
    if digest_value is None:
        raise Unauthenticated("the request carries no Content-Digest")

    public_key = resolve_key(key_id)
    # The base lists components in the order the signer did (RFC 9421 section 2.5).
    base = signature_base(
        method=method,
        path=path,
        query=query,
        content_digest_value=digest_value,
        params=str(sig_input),
        components=tuple(components),
    )
    try:
        verify_detached(public_key, base, sig_item.value)
    except BadSignature:
        raise BadRequestSignature("the request signature does not verify") from None
    info = SignedRequestInfo(
        key_id=key_id,
        created=datetime.fromtimestamp(created, tz=UTC),
        nonce=nonce,
        signature=sig_item.value,
    )
    return info, digest_value
