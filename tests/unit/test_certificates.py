"""Certificates and revocation lists: issue, wire form, verification, strict parsing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.certificates import (
    Certificate,
    CertificateBody,
    RevocationList,
    RevokedEntry,
    issue_certificate,
    issue_revocation_list,
)
from keys.fingerprint import certificate_id
from keys.identity import AgencyIdentity, RootKey
from schemas.codes import OrgType
from schemas.encoding import (
    DOMAIN_CERTIFICATE,
    DOMAIN_REVOCATION_LIST,
    b64encode,
    canonical_json,
    pae,
)
from schemas.problems import (
    BadSignature,
    CertificateExpired,
    CertificateNotYetValid,
    InvalidEnvelope,
    UntrustedCertificate,
)

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
ROOT = RootKey.from_seed(bytes(32))
OTHER_ROOT = RootKey.from_seed(b"\xff" * 32)
SCHOOL = AgencyIdentity.from_seed(bytes(range(32)))


def _issue(root: RootKey = ROOT, **overrides: Any) -> Certificate:
    fields: dict[str, Any] = {
        "agency_id": "oakfield-primary",
        "name": "Oakfield Primary School",
        "org_type": OrgType.MAINTAINED_SCHOOL,
        "public_authority": True,
        "apd_in_place": True,
        "mailboxes": ("dsl", "office"),
        "role": "agency",
        "public_keys": SCHOOL.public_keys,
        "not_before": T0,
        "not_after": T0 + timedelta(days=365),
        "serial": "0a" * 16,
    }
    fields.update(overrides)
    return issue_certificate(root, **fields)


def _root_signed(body: dict[str, Any] | bytes, root: RootKey = ROOT) -> Certificate:
    """A certificate whose body bytes we choose, correctly signed by ``root``."""
    data = body if isinstance(body, bytes) else canonical_json(body)
    return Certificate(data, root.sign(pae(DOMAIN_CERTIFICATE, data)))


def _flip(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


CERT = _issue()
BODY_JSON = json.loads(CERT.body_bytes)


class TestIssueAndVerify:
    def test_round_trip(self) -> None:
        body = CERT.verify(ROOT.public_key)
        assert body.agency_id == "oakfield-primary"
        assert body.org_type is OrgType.MAINTAINED_SCHOOL
        assert body.mailboxes == ("dsl", "office")
        assert body.role == "agency"
        assert body.public_keys == SCHOOL.public_keys
        assert body.not_before == T0
        assert body.issuer == ROOT.fingerprint
        assert body.serial == "0a" * 16
        assert body.version == 1
        assert body == CERT.body

    def test_body_is_canonical_json_with_exact_fields(self) -> None:
        assert canonical_json(BODY_JSON) == CERT.body_bytes
        assert set(BODY_JSON) == {
            "version",
            "serial",
            "agency_id",
            "name",
            "org_type",
            "public_authority",
            "apd_in_place",
            "mailboxes",
            "role",
            "signing_key",
            "encryption_key",
            "not_before",
            "not_after",
            "issuer",
        }
        assert BODY_JSON["signing_key"] == b64encode(SCHOOL.public_keys.signing)
        assert BODY_JSON["not_after"] == "2027-11-24T09:30:00Z"
        assert CERT.body.to_bytes() == CERT.body_bytes

    def test_id(self) -> None:
        assert CERT.id == certificate_id(CERT.body_bytes)
        assert _issue(serial="0b" * 16).id != CERT.id

    def test_wire_round_trip(self) -> None:
        wire = CERT.to_json()
        assert set(wire) == {"body", "signature"}
        again = Certificate.from_json(json.loads(json.dumps(wire)))
        assert again == CERT
        assert again.verify(ROOT.public_key) == CERT.body

    def test_random_serial(self) -> None:
        first = _issue(serial=None).body.serial
        second = _issue(serial=None).body.serial
        assert len(first) == 32
        assert first != second

    def test_microseconds_dropped(self) -> None:
        cert = _issue(not_before=T0 + timedelta(microseconds=999))
        assert cert.body.not_before == T0

    @given(st.integers(0, 10_000), st.integers(1, 255))
    def test_any_flipped_body_byte_is_refused(self, index: int, mask: int) -> None:
        tampered = Certificate(_flip(CERT.body_bytes, index, mask), CERT.signature)
        with pytest.raises(BadSignature):
            tampered.verify(ROOT.public_key)

    @given(st.integers(0, 63), st.integers(1, 255))
    def test_any_flipped_signature_byte_is_refused(self, index: int, mask: int) -> None:
        tampered = Certificate(CERT.body_bytes, _flip(CERT.signature, index, mask))
        with pytest.raises(BadSignature):
            tampered.verify(ROOT.public_key)

    def test_foreign_root_refused(self) -> None:
        foreign = _issue(OTHER_ROOT)
        with pytest.raises(BadSignature):
            foreign.verify(ROOT.public_key)

    def test_foreign_root_signature_on_our_issuer_refused(self) -> None:
        """Claiming our root as issuer does not help a certificate the other root signed."""
        forged = _root_signed(BODY_JSON, OTHER_ROOT)
        with pytest.raises(BadSignature):
            forged.verify(ROOT.public_key)

    def test_issuer_must_be_the_pinned_root(self) -> None:
        misissued = _root_signed({**BODY_JSON, "issuer": OTHER_ROOT.fingerprint})
        with pytest.raises(UntrustedCertificate):
            misissued.verify(ROOT.public_key)

    def test_revocation_list_signature_is_not_a_certificate_signature(self) -> None:
        data = CERT.body_bytes
        cross = Certificate(data, ROOT.sign(pae(DOMAIN_REVOCATION_LIST, data)))
        with pytest.raises(BadSignature):
            cross.verify(ROOT.public_key)

    def test_auditor_may_have_no_mailbox(self) -> None:
        cert = _issue(role="auditor", mailboxes=(), org_type="partnership_oversight")
        assert cert.verify(ROOT.public_key).mailboxes == ()


class TestValidityWindow:
    def test_half_open_window(self) -> None:
        body = CERT.body
        body.check_validity(T0)
        body.check_validity(body.not_after - timedelta(seconds=1))
        assert body.is_valid_at(T0)
        assert not body.is_valid_at(body.not_after)
        with pytest.raises(CertificateExpired):
            body.check_validity(body.not_after)
        with pytest.raises(CertificateNotYetValid):
            body.check_validity(T0 - timedelta(seconds=1))

    def test_naive_time_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            CERT.body.check_validity(datetime(2026, 11, 24, 9, 30))


class TestIssueValidation:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"agency_id": "Oakfield"}, "agency_id"),
            ({"agency_id": "a"}, "agency_id"),
            ({"agency_id": "-oak"}, "agency_id"),
            ({"agency_id": "oak\n"}, "agency_id"),
            ({"mailboxes": ()}, "at least one mailbox"),
            ({"mailboxes": ("DSL",)}, "mailbox"),
            ({"mailboxes": ("dsl", "dsl")}, "unique"),
            ({"mailboxes": ("a" * 64,)}, "mailbox"),
            ({"role": "admin"}, "role"),
            ({"org_type": "bakery"}, "bakery"),
            ({"name": ""}, "name"),
            ({"name": " padded "}, "name"),
            ({"not_after": T0}, "earlier"),
            ({"not_before": datetime(2026, 1, 1)}, "naive"),
            ({"serial": "XYZ"}, "serial"),
        ],
    )
    def test_invalid_fields(self, overrides: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            _issue(**overrides)

    def test_bool_flags_must_be_bools(self) -> None:
        with pytest.raises(TypeError, match="public_authority"):
            _issue(public_authority=1)

    def test_string_mailboxes_refused(self) -> None:
        with pytest.raises(TypeError, match="mailboxes"):
            _issue(mailboxes="dsl")


class TestStrictWireForm:
    @pytest.mark.parametrize(
        "wire",
        [
            None,
            [],
            {"body": b64encode(CERT.body_bytes)},
            {**CERT.to_json(), "extra": ""},
            {
                "body": b64encode(CERT.body_bytes).rstrip("="),
                "signature": b64encode(CERT.signature),
            },
            {"body": b64encode(CERT.body_bytes), "signature": b64encode(CERT.signature[:63])},
            {"body": "", "signature": b64encode(CERT.signature)},
            {"body": b64encode(CERT.body_bytes), "signature": 7},
            {"body": "!!!!", "signature": b64encode(CERT.signature)},
        ],
    )
    def test_malformed_wire_refused(self, wire: Any) -> None:
        with pytest.raises(InvalidEnvelope):
            Certificate.from_json(wire)

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda b: {**b, "extra": 1},
            lambda b: {k: v for k, v in b.items() if k != "role"},
            lambda b: {**b, "version": 2},
            lambda b: {**b, "version": True},
            lambda b: {**b, "public_authority": 1},
            lambda b: {**b, "org_type": "bakery"},
            lambda b: {**b, "mailboxes": "dsl"},
            lambda b: {**b, "mailboxes": [1]},
            lambda b: {**b, "mailboxes": []},
            lambda b: {**b, "role": "root"},
            lambda b: {**b, "signing_key": b64encode(bytes(31))},
            lambda b: {**b, "not_before": "2026-11-24T09:30:00.5Z"},
            lambda b: {**b, "not_before": "2026-11-24T09:30:00+00:00"},
            lambda b: {**b, "not_before": b["not_after"]},
            lambda b: {**b, "issuer": "not a fingerprint"},
            lambda b: {**b, "agency_id": "UPPER"},
        ],
    )
    def test_malformed_root_signed_body_refused(self, mutate: Any) -> None:
        """Even with a valid root signature, a body that breaks the format is refused."""
        cert = _root_signed(mutate(dict(BODY_JSON)))
        with pytest.raises(InvalidEnvelope):
            cert.verify(ROOT.public_key)

    def test_non_canonical_body_refused(self) -> None:
        spaced = json.dumps(BODY_JSON, sort_keys=True).encode()
        assert spaced != CERT.body_bytes
        with pytest.raises(InvalidEnvelope, match="canonical"):
            _root_signed(spaced).verify(ROOT.public_key)

    def test_duplicate_key_refused(self) -> None:
        data = CERT.body_bytes[:-1] + b',"version":1}'
        with pytest.raises(InvalidEnvelope, match="duplicate"):
            _root_signed(data).verify(ROOT.public_key)

    @pytest.mark.parametrize("data", [b"[1]", b"\xff", b"NaN", b'{"a":NaN}'])
    def test_not_an_object_refused(self, data: bytes) -> None:
        with pytest.raises(InvalidEnvelope):
            _root_signed(data).verify(ROOT.public_key)

    def test_signature_checked_before_parsing(self) -> None:
        """A malformed body with a bad signature reports the signature, not the parse."""
        with pytest.raises(BadSignature):
            Certificate(b"not json", CERT.signature).verify(ROOT.public_key)


def _entry(cert: Certificate, at: datetime, reason: str = "key_compromise") -> RevokedEntry:
    return RevokedEntry(
        certificate_id=cert.id, agency_id=cert.body.agency_id, revoked_at=at, reason=reason
    )


class TestRevocationList:
    RL = issue_revocation_list(
        ROOT, sequence=3, issued_at=T0, revoked=[_entry(CERT, T0 + timedelta(days=1))]
    )

    def test_round_trip(self) -> None:
        body = self.RL.verify(ROOT.public_key)
        assert body.sequence == 3
        assert body.issued_at == T0
        assert body.issuer == ROOT.fingerprint
        assert body.revoked == (_entry(CERT, T0 + timedelta(days=1)),)
        assert body.entry_for(CERT.id) == body.revoked[0]
        assert body.entry_for("0" * 64) is None
        assert self.RL.sequence == 3
        again = RevocationList.from_json(json.loads(json.dumps(self.RL.to_json())))
        assert again == self.RL
        assert set(json.loads(self.RL.body_bytes)) == {"sequence", "issued_at", "issuer", "revoked"}

    @given(st.integers(0, 10_000), st.integers(1, 255))
    def test_any_flipped_body_byte_is_refused(self, index: int, mask: int) -> None:
        tampered = RevocationList(_flip(self.RL.body_bytes, index, mask), self.RL.signature)
        with pytest.raises(BadSignature):
            tampered.verify(ROOT.public_key)

    @given(st.integers(0, 63), st.integers(1, 255))
    def test_any_flipped_signature_byte_is_refused(self, index: int, mask: int) -> None:
        tampered = RevocationList(self.RL.body_bytes, _flip(self.RL.signature, index, mask))
        with pytest.raises(BadSignature):
            tampered.verify(ROOT.public_key)

    def test_foreign_root_refused(self) -> None:
        foreign = issue_revocation_list(OTHER_ROOT, sequence=9, issued_at=T0, revoked=[])
        with pytest.raises(BadSignature):
            foreign.verify(ROOT.public_key)

    def test_certificate_signature_is_not_a_revocation_signature(self) -> None:
        data = self.RL.body_bytes
        cross = RevocationList(data, ROOT.sign(pae(DOMAIN_CERTIFICATE, data)))
        with pytest.raises(BadSignature):
            cross.verify(ROOT.public_key)

    def test_duplicate_entries_refused(self) -> None:
        entry = _entry(CERT, T0)
        with pytest.raises(ValueError, match="twice"):
            issue_revocation_list(ROOT, sequence=1, issued_at=T0, revoked=[entry, entry])

    @pytest.mark.parametrize("sequence", [-1, 2**53, True])
    def test_bad_sequence_refused(self, sequence: int) -> None:
        with pytest.raises(ValueError, match="sequence"):
            issue_revocation_list(ROOT, sequence=sequence, issued_at=T0, revoked=[])

    def test_bad_entry_refused(self) -> None:
        with pytest.raises(ValueError, match="certificate_id"):
            RevokedEntry(certificate_id="abc", agency_id="oak", revoked_at=T0, reason="x")
        with pytest.raises(ValueError, match="reason"):
            replace(_entry(CERT, T0), reason="")

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda b: {**b, "extra": 1},
            lambda b: {**b, "sequence": "3"},
            lambda b: {**b, "revoked": [{**b["revoked"][0], "extra": 1}]},
            lambda b: {**b, "revoked": [b["revoked"][0], b["revoked"][0]]},
            lambda b: {**b, "revoked": ["x"]},
            lambda b: {**b, "issued_at": "yesterday"},
        ],
    )
    def test_malformed_root_signed_list_refused(self, mutate: Any) -> None:
        data = canonical_json(mutate(json.loads(self.RL.body_bytes)))
        signed = RevocationList(data, ROOT.sign(pae(DOMAIN_REVOCATION_LIST, data)))
        with pytest.raises(InvalidEnvelope):
            signed.verify(ROOT.public_key)

    def test_issuer_must_be_the_pinned_root(self) -> None:
        body = {**json.loads(self.RL.body_bytes), "issuer": OTHER_ROOT.fingerprint}
        data = canonical_json(body)
        signed = RevocationList(data, ROOT.sign(pae(DOMAIN_REVOCATION_LIST, data)))
        with pytest.raises(UntrustedCertificate):
            signed.verify(ROOT.public_key)


def test_body_constructor_normalises() -> None:
    body = CertificateBody(
        serial="ab",
        agency_id="oak",
        name="Oak",
        org_type="police",  # type: ignore[arg-type]
        public_authority=True,
        apd_in_place=False,
        mailboxes=["ppu"],  # type: ignore[arg-type]
        role="agency",
        signing_key=bytes(32),
        encryption_key=bytes(32),
        not_before=T0 + timedelta(microseconds=5),
        not_after=T0 + timedelta(days=1),
        issuer=ROOT.fingerprint,
    )
    assert body.org_type is OrgType.POLICE
    assert body.mailboxes == ("ppu",)
    assert body.not_before == T0
    assert CertificateBody.from_bytes(body.to_bytes()) == body
