"""RFC 9421 request signatures: round trip, tampering, policy checks and interoperability."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import http_message_signatures as hms
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from keys.http_signatures import (
    BadRequestSignature,
    content_digest,
    new_nonce,
    sign_request,
    verify_request,
)
from keys.identity import AgencyIdentity
from schemas.problems import BadSignature, ClockSkew, Unauthenticated, UnknownAgency

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SKEW = timedelta(seconds=300)
KEY_ID = "a" * 64
IDENTITY = AgencyIdentity.from_seed(bytes(32))


def _resolver(key_id: str) -> bytes:
    if key_id != KEY_ID:
        raise UnknownAgency("no such certificate")
    return IDENTITY.public_keys.signing


def _signed(
    *,
    method: str = "POST",
    path: str = "/v1/envelopes",
    query: str = "",
    body: bytes = b'{"x":1}',
    created: datetime = NOW,
    nonce: str | None = None,
) -> dict[str, str]:
    return sign_request(
        identity=IDENTITY,
        key_id=KEY_ID,
        method=method,
        path=path,
        query=query,
        body=body,
        created=created,
        nonce=nonce or new_nonce(),
    )


def _verify(
    headers: dict[str, str],
    *,
    method: str = "POST",
    path: str = "/v1/envelopes",
    query: str = "",
    body: bytes = b'{"x":1}',
    now: datetime = NOW,
) -> object:
    return verify_request(
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        resolve_key=_resolver,
        now=now,
        max_skew=SKEW,
    )


def test_round_trip_returns_signer_and_nonce() -> None:
    nonce = new_nonce()
    info = verify_request(
        method="GET",
        path="/v1/agencies/x/inbox",
        query="since=3&limit=10",
        headers=_signed(
            method="GET",
            path="/v1/agencies/x/inbox",
            query="since=3&limit=10",
            body=b"",
            nonce=nonce,
        ),
        body=b"",
        resolve_key=_resolver,
        now=NOW,
        max_skew=SKEW,
    )
    assert info.key_id == KEY_ID
    assert info.nonce == nonce
    assert info.created == NOW


def test_empty_body_digest_is_sent() -> None:
    headers = _signed(body=b"")
    assert headers["Content-Digest"] == content_digest(b"")
    assert headers["Content-Digest"].startswith(
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "PUT"),
        ("path", "/v1/envelopes/other"),
        ("query", "since=1"),
        ("body", b'{"x":2}'),
    ],
)
def test_tampering_with_a_covered_part_fails(field: str, value: object) -> None:
    headers = _signed()
    kwargs: dict[str, object] = {field: value}
    with pytest.raises(BadSignature) as info:
        _verify(headers, **kwargs)  # type: ignore[arg-type]
    assert info.value.status == 401


def test_body_digest_mismatch_with_header_rewritten_is_bad_signature() -> None:
    headers = _signed()
    headers["Content-Digest"] = content_digest(b"other")
    with pytest.raises(BadRequestSignature):
        _verify(headers, body=b"other")


def test_missing_headers_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        _verify({})
    headers = _signed()
    del headers["Content-Digest"]
    with pytest.raises(Unauthenticated):
        _verify(headers)


def test_wrong_key_is_bad_signature() -> None:
    other = AgencyIdentity.from_seed(b"\x01" * 32)
    headers = sign_request(
        identity=other,
        key_id=KEY_ID,
        method="POST",
        path="/v1/envelopes",
        query="",
        body=b'{"x":1}',
        created=NOW,
        nonce=new_nonce(),
    )
    with pytest.raises(BadRequestSignature):
        _verify(headers)


def test_unknown_key_id_propagates_directory_error() -> None:
    headers = sign_request(
        identity=IDENTITY,
        key_id="b" * 64,
        method="POST",
        path="/v1/envelopes",
        query="",
        body=b"",
        created=NOW,
        nonce=new_nonce(),
    )
    with pytest.raises(UnknownAgency):
        _verify(headers, body=b"")


@pytest.mark.parametrize("offset", [-301, 301, 3600])
def test_clock_skew_refused(offset: int) -> None:
    headers = _signed(created=NOW + timedelta(seconds=offset))
    with pytest.raises(ClockSkew):
        _verify(headers)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_clock_skew_boundary_accepted(offset: int) -> None:
    _verify(_signed(created=NOW + timedelta(seconds=offset)))


_ALL = '("@method" "@path" "@query" "content-digest")'
_NONCE = 'nonce="AAAAAAAAAAAAAAAAAAAAAA"'
_KA = 'keyid="k";alg="ed25519"'


@pytest.mark.parametrize(
    "signature_input",
    [
        f'sig1=("@method" "@path" "content-digest");created=1;{_KA};{_NONCE}',
        f"sig1={_ALL};{_KA};{_NONCE}",
        f'sig1={_ALL};created=1;keyid="k";alg="rsa";{_NONCE}',
        f'sig1={_ALL};created=1;{_KA};nonce="short"',
        f"sig1={_ALL};created=1;{_KA}",
        f"sig1={_ALL};created=1;{_KA};{_NONCE};x=1",
        f'sig1=("@method" "@path" "@query" "content-digest" "@method");created=1;{_KA};{_NONCE}',
        f"other={_ALL};created=1;{_KA};{_NONCE}",
        "sig1=not a list",
        "(((",
    ],
)
def test_malformed_signature_input_is_unauthenticated(signature_input: str) -> None:
    headers = _signed()
    headers["Signature-Input"] = signature_input
    with pytest.raises(Unauthenticated):
        _verify(headers)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in _signed().items()}
    _verify(headers)


def test_component_order_follows_signer() -> None:
    # A signer may list the components in another order; the base follows its list.
    nonce = new_nonce()
    params = (
        '("content-digest" "@query" "@path" "@method")'
        f';created={int(NOW.timestamp())};keyid="{KEY_ID}";alg="ed25519";nonce="{nonce}"'
    )
    body = b"hello"
    base = "\n".join(
        [
            f'"content-digest": {content_digest(body)}',
            '"@query": ?',
            '"@path": /p',
            '"@method": GET',
            f'"@signature-params": {params}',
        ]
    ).encode()
    sig = base64.b64encode(IDENTITY.sign(base)).decode()
    headers = {
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{sig}:",
        "Content-Digest": content_digest(body),
    }
    _verify(headers, method="GET", path="/p", body=body)


@given(body=st.binary(max_size=512), query=st.from_regex(r"[a-z0-9=&]{0,20}", fullmatch=True))
def test_round_trip_property(body: bytes, query: str) -> None:
    headers = _signed(body=body, query=query)
    _verify(headers, body=body, query=query)


# -- interoperability with a general RFC 9421 implementation (pyauth/http-message-signatures) --


@dataclass
class _Message:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _Keys(hms.HTTPSignatureKeyResolver):
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.private

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self.private.public_key()


def _crypto_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(IDENTITY.signing_key))


def test_library_signature_verifies_here() -> None:
    message = _Message("POST", "https://relay.example/v1/envelopes?since=2")
    body = b'{"hello":"world"}'
    signer = hms.HTTPMessageSigner(
        signature_algorithm=hms.algorithms.ED25519, key_resolver=_Keys(_crypto_key())
    )
    nonce = new_nonce()
    signer.sign(
        message,
        key_id=KEY_ID,
        created=NOW,
        nonce=nonce,
        label="sig1",
        covered_component_ids=("@method", "@path", "@query"),
        body=body,
    )
    info = _verify(message.headers, path="/v1/envelopes", query="since=2", body=body)
    assert info.nonce == nonce  # type: ignore[attr-defined]


def test_our_signature_verifies_with_library() -> None:
    body = b'{"hello":"world"}'
    headers = _signed(path="/v1/envelopes", query="since=2", body=body, created=datetime.now(UTC))
    message = _Message("POST", "https://relay.example/v1/envelopes?since=2", headers)
    verifier = hms.HTTPMessageVerifier(
        signature_algorithm=hms.algorithms.ED25519, key_resolver=_Keys(_crypto_key())
    )
    results = verifier.verify(message, body=body)
    assert results[0].parameters["keyid"] == KEY_ID
    assert results[0].body == body
