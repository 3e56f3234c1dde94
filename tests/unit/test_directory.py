"""The verifying directory: pinned root, validity windows, revocation, rotation, rollback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.certificates import (
    Certificate,
    RevocationList,
    RevokedEntry,
    issue_certificate,
    issue_revocation_list,
)
from keys.directory import CertificateStatus, Directory
from keys.identity import AgencyIdentity, RootKey
from schemas.problems import (
    BadSignature,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    InvalidEnvelope,
    StaleRevocationList,
    UnknownAgency,
    UntrustedCertificate,
)

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
ROOT = RootKey.from_seed(bytes(32))
OTHER_ROOT = RootKey.from_seed(b"\xff" * 32)


def _issue(
    agency_id: str,
    *,
    seed: int,
    root: RootKey = ROOT,
    not_before: datetime = T0,
    not_after: datetime = T0 + 365 * DAY,
    role: str = "agency",
    mailboxes: tuple[str, ...] = ("dsl",),
) -> Certificate:
    identity = AgencyIdentity.from_seed(bytes([seed]) * 32)
    fields: dict[str, Any] = {
        "agency_id": agency_id,
        "name": agency_id.title(),
        "org_type": "partnership_oversight" if role == "auditor" else "maintained_school",
        "public_authority": True,
        "apd_in_place": True,
        "mailboxes": mailboxes,
        "role": role,
        "public_keys": identity.public_keys,
        "not_before": not_before,
        "not_after": not_after,
    }
    return issue_certificate(root, **fields)


def _revocations(sequence: int, *entries: tuple[Certificate, datetime]) -> RevocationList:
    revoked = [
        RevokedEntry(
            certificate_id=cert.id,
            agency_id=cert.body.agency_id,
            revoked_at=at,
            reason="key_compromise",
        )
        for cert, at in entries
    ]
    return issue_revocation_list(ROOT, sequence=sequence, issued_at=T0, revoked=revoked)


def _flip(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


SCHOOL = _issue("oakfield-primary", seed=1, mailboxes=("dsl", "office"))
MASH = _issue("northshire-mash", seed=2, mailboxes=("front-door",))
AUDITOR = _issue("northshire-scp-audit", seed=3, role="auditor", mailboxes=())
AT = T0 + 10 * DAY


def _directory(*extra: Certificate, revocations: RevocationList | None = None) -> Directory:
    return Directory(ROOT.public_key, [SCHOOL, MASH, AUDITOR, *extra], revocations)


class TestLoading:
    def test_lookups(self) -> None:
        directory = _directory()
        assert directory.agency("oakfield-primary", at=AT) == SCHOOL.body
        assert directory.certificate("oakfield-primary", at=AT) == SCHOOL
        assert directory.by_id(MASH.id, at=AT) == MASH.body
        assert directory.certificate_by_id(MASH.id, at=AT) == MASH
        assert directory.auditor(at=AT) == AUDITOR.body
        assert directory.certificates == (SCHOOL, MASH, AUDITOR)
        assert directory.root_fingerprint == ROOT.fingerprint

    def test_foreign_root_certificate_refused(self) -> None:
        foreign = _issue("intruder", seed=9, root=OTHER_ROOT)
        with pytest.raises(UntrustedCertificate):
            _directory(foreign)
        directory = _directory()
        with pytest.raises(UntrustedCertificate):
            directory.add_certificate(foreign)
        with pytest.raises(UnknownAgency):
            directory.agency("intruder", at=AT)

    @given(st.integers(0, 10_000), st.integers(1, 255), st.booleans())
    def test_tampered_certificate_refused(self, index: int, mask: int, in_body: bool) -> None:
        if in_body:
            tampered = Certificate(_flip(SCHOOL.body_bytes, index, mask), SCHOOL.signature)
        else:
            tampered = Certificate(SCHOOL.body_bytes, _flip(SCHOOL.signature, index, mask))
        with pytest.raises(UntrustedCertificate):
            Directory(ROOT.public_key, [tampered])

    def test_adding_twice_is_idempotent(self) -> None:
        directory = _directory()
        assert directory.add_certificate(SCHOOL) == SCHOOL.body
        assert directory.certificates == (SCHOOL, MASH, AUDITOR)

    def test_root_key_length(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            Directory(bytes(31), [])


class TestValidity:
    def test_unknown_agency(self) -> None:
        directory = _directory()
        with pytest.raises(UnknownAgency):
            directory.agency("nobody", at=AT)
        with pytest.raises(UnknownAgency):
            directory.by_id("0" * 64, at=AT)

    def test_expired_and_not_yet_valid(self) -> None:
        directory = _directory()
        end = SCHOOL.body.not_after
        assert directory.agency("oakfield-primary", at=end - timedelta(seconds=1))
        with pytest.raises(CertificateExpired):
            directory.agency("oakfield-primary", at=end)
        with pytest.raises(CertificateExpired):
            directory.by_id(SCHOOL.id, at=end)
        with pytest.raises(CertificateNotYetValid):
            directory.agency("oakfield-primary", at=T0 - timedelta(seconds=1))
        with pytest.raises(CertificateNotYetValid):
            directory.by_id(SCHOOL.id, at=T0 - timedelta(seconds=1))
        assert directory.status(SCHOOL.id, at=end) is CertificateStatus.EXPIRED

    def test_naive_time_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            _directory().agency("oakfield-primary", at=datetime(2026, 12, 1))


class TestRevocation:
    REVOKED_AT = T0 + 5 * DAY

    def test_revocation_applies_from_revoked_at(self) -> None:
        directory = _directory(revocations=_revocations(1, (SCHOOL, self.REVOKED_AT)))
        before = self.REVOKED_AT - timedelta(seconds=1)
        assert directory.agency("oakfield-primary", at=before) == SCHOOL.body
        assert directory.by_id(SCHOOL.id, at=before) == SCHOOL.body
        assert directory.status(SCHOOL.id, at=before) is CertificateStatus.VALID
        for at in (self.REVOKED_AT, self.REVOKED_AT + DAY):
            with pytest.raises(CertificateRevoked):
                directory.agency("oakfield-primary", at=at)
            with pytest.raises(CertificateRevoked):
                directory.by_id(SCHOOL.id, at=at)
            assert directory.status(SCHOOL.id, at=at) is CertificateStatus.REVOKED
        assert directory.agency("northshire-mash", at=self.REVOKED_AT) == MASH.body

    def test_revoked_takes_priority_over_expired(self) -> None:
        directory = _directory(revocations=_revocations(1, (SCHOOL, self.REVOKED_AT)))
        with pytest.raises(CertificateRevoked):
            directory.agency("oakfield-primary", at=SCHOOL.body.not_after + DAY)

    def test_revocation_applies_to_certificates_added_later(self) -> None:
        directory = Directory(ROOT.public_key, [], _revocations(1, (SCHOOL, self.REVOKED_AT)))
        directory.add_certificate(SCHOOL)
        with pytest.raises(CertificateRevoked):
            directory.agency("oakfield-primary", at=self.REVOKED_AT)

    def test_update_replaces_the_list(self) -> None:
        directory = _directory(revocations=_revocations(1, (SCHOOL, self.REVOKED_AT)))
        newer = _revocations(2, (MASH, self.REVOKED_AT))
        directory.update_revocations(newer)
        assert directory.revocations == newer
        assert directory.agency("oakfield-primary", at=self.REVOKED_AT + DAY) == SCHOOL.body
        with pytest.raises(CertificateRevoked):
            directory.agency("northshire-mash", at=self.REVOKED_AT + DAY)

    def test_stale_list_refused(self) -> None:
        directory = _directory(revocations=_revocations(5, (SCHOOL, self.REVOKED_AT)))
        with pytest.raises(StaleRevocationList):
            directory.update_revocations(_revocations(4))
        with pytest.raises(CertificateRevoked):
            directory.agency("oakfield-primary", at=self.REVOKED_AT)

    def test_same_sequence_different_content_refused(self) -> None:
        current = _revocations(5, (SCHOOL, self.REVOKED_AT))
        directory = _directory(revocations=current)
        with pytest.raises(StaleRevocationList):
            directory.update_revocations(_revocations(5))
        directory.update_revocations(RevocationList(current.body_bytes, current.signature))
        assert directory.revocations == current

    def test_wrongly_signed_list_refused(self) -> None:
        directory = _directory()
        good = _revocations(1, (SCHOOL, self.REVOKED_AT))
        with pytest.raises(BadSignature):
            directory.update_revocations(
                RevocationList(good.body_bytes, _flip(good.signature, 0, 1))
            )
        foreign = issue_revocation_list(OTHER_ROOT, sequence=7, issued_at=T0, revoked=[])
        with pytest.raises(BadSignature):
            directory.update_revocations(foreign)
        assert directory.revocations is None


class TestRotation:
    OLD = _issue("oakfield-primary", seed=1, not_before=T0, not_after=T0 + 365 * DAY)
    NEW = _issue("oakfield-primary", seed=4, not_before=T0 + 100 * DAY, not_after=T0 + 465 * DAY)

    def test_newest_valid_certificate_wins(self) -> None:
        directory = Directory(ROOT.public_key, [self.NEW, self.OLD])
        assert directory.certificate("oakfield-primary", at=T0 + 50 * DAY) == self.OLD
        assert directory.certificate("oakfield-primary", at=T0 + 150 * DAY) == self.NEW
        assert directory.certificate("oakfield-primary", at=T0 + 400 * DAY) == self.NEW

    def test_old_certificate_still_verifies_old_messages(self) -> None:
        directory = Directory(ROOT.public_key, [self.OLD, self.NEW])
        assert directory.by_id(self.OLD.id, at=T0 + 50 * DAY) == self.OLD.body
        with pytest.raises(CertificateExpired):
            directory.by_id(self.OLD.id, at=T0 + 400 * DAY)

    def test_revoking_the_new_certificate_falls_back_to_the_old(self) -> None:
        revoked = _revocations(1, (self.NEW, T0 + 120 * DAY))
        directory = Directory(ROOT.public_key, [self.OLD, self.NEW], revoked)
        assert directory.certificate("oakfield-primary", at=T0 + 130 * DAY) == self.OLD
        with pytest.raises(CertificateRevoked):
            directory.certificate("oakfield-primary", at=T0 + 400 * DAY)


class TestQueries:
    def test_auditor(self) -> None:
        with pytest.raises(UnknownAgency):
            Directory(ROOT.public_key, [SCHOOL]).auditor(at=AT)
        directory = _directory(revocations=_revocations(1, (AUDITOR, AT)))
        assert directory.auditor(at=AT - DAY) == AUDITOR.body
        with pytest.raises(UnknownAgency):
            directory.auditor(at=AT)

    def test_mailbox_exists(self) -> None:
        directory = _directory(revocations=_revocations(1, (MASH, AT)))
        assert directory.mailbox_exists("oakfield-primary", "office", at=AT)
        assert not directory.mailbox_exists("oakfield-primary", "front-door", at=AT)
        assert not directory.mailbox_exists("nobody", "dsl", at=AT)
        assert directory.mailbox_exists("northshire-mash", "front-door", at=AT - DAY)
        assert not directory.mailbox_exists("northshire-mash", "front-door", at=AT)

    def test_agencies(self) -> None:
        late = _issue("late-school", seed=5, not_before=AT + DAY)
        directory = _directory(late, revocations=_revocations(1, (MASH, AT)))
        ids = [body.agency_id for body in directory.agencies(at=AT)]
        assert ids == ["northshire-scp-audit", "oakfield-primary"]
        ids = [body.agency_id for body in directory.agencies(at=AT + 2 * DAY)]
        assert ids == ["late-school", "northshire-scp-audit", "oakfield-primary"]


class TestWireForm:
    def test_round_trip(self) -> None:
        revocations = _revocations(3, (MASH, AT))
        directory = _directory(revocations=revocations)
        wire = json.loads(json.dumps(directory.to_json()))
        assert set(wire) == {"root", "certificates", "revocation_list"}
        assert wire["root"] == ROOT.fingerprint
        again = Directory.from_json(wire, root_public_key=ROOT.public_key)
        assert again.certificates == directory.certificates
        assert again.revocations == revocations
        empty = Directory.from_json(
            Directory(ROOT.public_key).to_json(), root_public_key=ROOT.public_key
        )
        assert empty.certificates == ()
        assert empty.revocations is None

    def test_other_root_refused(self) -> None:
        wire = _directory().to_json()
        with pytest.raises(UntrustedCertificate):
            Directory.from_json(wire, root_public_key=OTHER_ROOT.public_key)

    def test_substituted_certificate_refused(self) -> None:
        wire = _directory().to_json()
        wire["certificates"].append(_issue("intruder", seed=9, root=OTHER_ROOT).to_json())
        with pytest.raises(UntrustedCertificate):
            Directory.from_json(wire, root_public_key=ROOT.public_key)

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda w: [],
            lambda w: {**w, "extra": 1},
            lambda w: {k: v for k, v in w.items() if k != "revocation_list"},
            lambda w: {**w, "certificates": {}},
            lambda w: {**w, "certificates": [{"body": "x"}]},
            lambda w: {**w, "revocation_list": {"body": ""}},
        ],
    )
    def test_malformed_refused(self, mutate: Any) -> None:
        with pytest.raises(InvalidEnvelope):
            Directory.from_json(mutate(_directory().to_json()), root_public_key=ROOT.public_key)
