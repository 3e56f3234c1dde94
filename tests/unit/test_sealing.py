"""Envelope v1: round trips, tampering, re-addressing and certificate failures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from keys.certificates import issue_certificate
from keys.directory import Directory
from keys.identity import AgencyIdentity, RootKey
from keys.receipts import DeliveryReceipt, sign_receipt, verify_receipt
from keys.sealing import (
    header_digest,
    new_message_id,
    open_envelope,
    open_justification,
    seal,
    verify_header,
    verify_signed_header,
)
from keys.testing import Partnership
from schemas.encoding import b64encode, canonical_json, pae
from schemas.envelope import SealedEnvelope
from schemas.lawful_basis import BasisTag
from schemas.problems import (
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    DecryptionFailed,
    ExchangeError,
    InvalidEnvelope,
    InvalidReceipt,
    LawfulBasisRejected,
    NotRecipient,
    UnknownAgency,
)
from tests.fixtures import scenarios as s

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

# kind -> (fixture body, sender member, sender mailbox, recipient member, recipient mailbox, basis)
CASES = {
    "REFERRAL": (s.maya_referral, "school", "dsl", "mash", "front-door", s.school_referral_basis),
    "ACKNOWLEDGEMENT": (
        s.maya_acknowledgement,
        "mash",
        "front-door",
        "school",
        "dsl",
        s.front_door_feedback_basis,
    ),
    "REQUEST_FOR_INFORMATION": (
        s.maya_rfi_to_police,
        "mash",
        "front-door",
        "police",
        "public-protection",
        s.front_door_rfi_basis,
    ),
    "RESPONSE_TO_RFI": (
        s.maya_police_response,
        "police",
        "public-protection",
        "mash",
        "front-door",
        s.police_notification_basis,
    ),
    "DECISION_FEEDBACK": (
        s.maya_decision,
        "mash",
        "front-door",
        "school",
        "dsl",
        s.front_door_feedback_basis,
    ),
    "INFORMATION_ONLY": (
        lambda **r: s.leo_information_notices()[0].model_copy(update=r),
        "nursery",
        "dsl",
        "mash",
        "front-door",
        s.nursery_information_basis,
    ),
    "POLICE_NOTIFICATION": (
        s.sam_police_notification,
        "police",
        "public-protection",
        "second_school",
        "dsl",
        s.police_notification_basis,
    ),
    "ESCALATION": (
        s.noah_escalation,
        "gp",
        "safeguarding",
        "mash",
        "front-door",
        s.gp_referral_basis,
    ),
}


@pytest.fixture(name="partnership")
def _partnership() -> Partnership:
    return Partnership.create(at=AT)


def _seal_case(
    partnership: Partnership, kind: str, **overrides: object
) -> tuple[SealedEnvelope, str]:
    make_body, sender, sender_box, recipient, recipient_box, make_basis = CASES[kind]
    message_id = new_message_id()
    routing = {
        "message_id": message_id,
        "thread_id": message_id,
        "sender_agency": partnership[sender].agency_id,
        "recipient_agencies": (partnership[recipient].agency_id,),
    }
    body = make_body()
    if isinstance(body, BaseModel):
        body = s.readdress(body, **routing)  # type: ignore[arg-type]
    args: dict[str, object] = {
        "identity": partnership[sender].identity,
        "sender": partnership[sender].certificate,
        "sender_mailbox": sender_box,
        "recipients": [(partnership[recipient].certificate, recipient_box)],
        "auditor": partnership["auditor"].certificate,
        "kind": kind,
        "body": body,
        "basis": make_basis(),
        "created_at": AT,
        "message_id": message_id,
    }
    args.update(overrides)
    return seal(**args), recipient  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_round_trip_every_kind(partnership: Partnership, kind: str) -> None:
    envelope, recipient = _seal_case(partnership, kind)
    wire = SealedEnvelope.from_wire(envelope.to_wire())
    opened = open_envelope(
        wire,
        partnership[recipient].identity,
        partnership.directory(),
        agency_id=partnership[recipient].agency_id,
        at=AT,
    )
    assert opened.header.kind == kind
    assert opened.body.kind == kind
    assert opened.verdict.decision in {"accept", "warn"}
    assert opened.basis.justification == CASES[kind][5]().justification


def test_relay_sees_codes_but_no_content(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    visible = envelope.header_bytes + envelope.seals_bytes + envelope.body
    referral = s.maya_referral()
    assert referral.child.family_name is not None
    secrets = (referral.child.family_name, referral.child.given_name, referral.child_words[0].words)
    for secret in secrets:
        assert secret.encode() not in visible
    justification = s.school_referral_basis().justification
    assert justification.necessity is not None
    assert justification.necessity.encode() not in visible
    header = json.loads(envelope.header_bytes)
    assert header["basis"]["art6"] == ["A6_1_e"]
    assert header["basis"]["sch1_condition"] == "SCH1_P2_18"


def test_unlawful_basis_never_leaves_the_sender(partnership: Partnership) -> None:
    with pytest.raises(LawfulBasisRejected) as caught:
        _seal_case(partnership, "REFERRAL", basis=s.academy_legitimate_interests_basis())
    assert "L002" in {f["rule"] for f in caught.value.findings}


def test_wrong_recipient_cannot_open(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    with pytest.raises(NotRecipient):
        open_envelope(
            envelope,
            partnership["police"].identity,
            partnership.directory(),
            agency_id=partnership["police"].agency_id,
            at=AT,
        )
    # Claiming to be the recipient with the wrong keys fails to unwrap.
    with pytest.raises(DecryptionFailed):
        open_envelope(
            envelope,
            partnership["police"].identity,
            partnership.directory(),
            agency_id=partnership["mash"].agency_id,
            at=AT,
        )


def test_re_addressed_message_is_refused(partnership: Partnership) -> None:
    """A recipient re-signs the header to forward it elsewhere: the inner routing betrays it."""
    envelope, _ = _seal_case(partnership, "REFERRAL")
    mash = partnership["mash"]
    header = json.loads(envelope.header_bytes)
    header["sender"] = {
        "agency": mash.agency_id,
        "mailbox": "front-door",
        "cert": mash.certificate.id,
    }
    forged = canonical_json(header)
    resigned = SealedEnvelope(
        header_bytes=forged,
        signature=mash.identity.sign(pae("application/vnd.safeguard.envelope.v1", forged)),
        seals_bytes=envelope.seals_bytes,
        body=envelope.body,
    )
    with pytest.raises((InvalidEnvelope, DecryptionFailed)):
        open_envelope(
            resigned, mash.identity, partnership.directory(), agency_id=mash.agency_id, at=AT
        )


PARTS = ("header_bytes", "signature", "seals_bytes", "body")


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(part=st.sampled_from(PARTS), data=st.data())
def test_any_changed_byte_is_rejected(
    partnership: Partnership, part: str, data: st.DataObject
) -> None:
    envelope, recipient = _SEALED
    original: bytes = getattr(envelope, part)
    index = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    mutated = bytearray(original)
    mutated[index] ^= flip
    tampered = replace(envelope, **{part: bytes(mutated)})
    with pytest.raises(ExchangeError):
        verify_header(tampered, _DIRECTORY, at=AT)
    with pytest.raises(ExchangeError):
        open_envelope(
            tampered,
            _PARTNERSHIP[recipient].identity,
            _DIRECTORY,
            agency_id=_PARTNERSHIP[recipient].agency_id,
            at=AT,
        )


_PARTNERSHIP = Partnership.create(at=AT)
_DIRECTORY = _PARTNERSHIP.directory()
_SEALED = _seal_case(_PARTNERSHIP, "REFERRAL")


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=1, max_value=400))
def test_truncated_wire_is_rejected(cut: int) -> None:
    wire = _SEALED[0].to_wire()
    with pytest.raises(ExchangeError):
        verify_header(SealedEnvelope.from_wire(wire[:-cut]), _DIRECTORY, at=AT)


def test_swapped_parts_are_rejected(partnership: Partnership) -> None:
    a, _ = _seal_case(partnership, "REFERRAL")
    b, _ = _seal_case(partnership, "REFERRAL")
    directory = partnership.directory()
    for part in PARTS:
        mixed = replace(a, **{part: getattr(b, part)})
        with pytest.raises(ExchangeError):
            verify_header(mixed, directory, at=AT)


def test_expired_and_revoked_sender_refused(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    directory = partnership.directory()
    with pytest.raises(CertificateExpired):
        verify_header(envelope, directory, at=AT + timedelta(days=400))
    partnership.revoke("school", at=AT + timedelta(hours=1))
    revoked_directory = partnership.directory()
    verify_header(envelope, revoked_directory, at=AT)  # before revocation: still valid
    with pytest.raises(CertificateRevoked):
        verify_header(envelope, revoked_directory, at=AT + timedelta(hours=2))


def test_foreign_root_certificate_refused(partnership: Partnership) -> None:
    """A certificate from another root never enters the directory, so the sender is unknown."""
    impostor_root = RootKey.from_seed(b"\x07" * 32)
    identity = AgencyIdentity.from_seed(b"\x08" * 32)
    forged = issue_certificate(
        impostor_root,
        agency_id="oakfield-primary",
        name="Oakfield Primary School",
        org_type="maintained_school",
        public_authority=True,
        apd_in_place=True,
        mailboxes=("dsl",),
        role="agency",
        public_keys=identity.public_keys,
        not_before=AT - timedelta(days=1),
        not_after=AT + timedelta(days=30),
    )
    with pytest.raises(ExchangeError):
        Directory(partnership.root.public_key, [*partnership.certificates, forged])
    envelope, _ = _seal_case(partnership, "REFERRAL", identity=identity, sender=forged)
    with pytest.raises(UnknownAgency):
        verify_header(envelope, partnership.directory(), at=AT)


def test_auditor_reads_justification_without_body(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    header, justification = open_justification(
        envelope.header_bytes,
        envelope.signature,
        envelope.seals_bytes,
        partnership["auditor"].identity,
        partnership.directory(),
        at=AT,
    )
    assert header.kind == "REFERRAL"
    assert justification == s.school_referral_basis().justification
    with pytest.raises(NotRecipient):
        open_justification(
            envelope.header_bytes,
            envelope.signature,
            envelope.seals_bytes,
            partnership["police"].identity,
            partnership.directory(),
            at=AT,
        )


def test_header_verifies_without_body(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    header, sender = verify_signed_header(
        envelope.header_bytes, envelope.signature, partnership.directory(), at=AT
    )
    assert sender.agency_id == "oakfield-primary"
    assert header.kind == "REFERRAL"
    with pytest.raises(BadSignature):
        verify_signed_header(envelope.header_bytes, bytes(64), partnership.directory(), at=AT)


def test_delivery_receipt_round_trip_and_tamper(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    mash = partnership["mash"]
    receipt = sign_receipt(
        mash.identity,
        mash.certificate,
        message_id=json.loads(envelope.header_bytes)["id"],
        header_digest=header_digest(envelope.header_bytes),
        received_at=AT,
    )
    body = verify_receipt(
        DeliveryReceipt.from_json(receipt.to_json()), partnership.directory(), at=AT
    )
    assert body.recipient == mash.agency_id
    assert body.header_digest == header_digest(envelope.header_bytes)
    forged = DeliveryReceipt(
        body_bytes=receipt.body_bytes.replace(b"northbridge", b"northbridgf"),
        signature=receipt.signature,
    )
    with pytest.raises(ExchangeError):
        verify_receipt(forged, partnership.directory(), at=AT)
    with pytest.raises(InvalidReceipt):
        DeliveryReceipt.from_json({"body": b64encode(b"x"), "signature": "AA=="})


def test_basis_tag_in_header_is_codes_only(partnership: Partnership) -> None:
    envelope, _ = _seal_case(partnership, "REFERRAL")
    header = json.loads(envelope.header_bytes)
    assert "justification" not in header["basis"]
    tag = BasisTag.from_parts(header["basis"], s.school_referral_basis().justification)
    assert tag == s.school_referral_basis()


def test_content_rules_see_the_body_on_both_sides(partnership: Partnership) -> None:
    """Facts only the sender and recipient can read feed the content rules (A005 here)."""
    unmarked = s.maya_referral().model_copy(update={"facts_vs_opinion_marked": False})
    envelope, _ = _seal_case(
        partnership,
        "REFERRAL",
        body=s.readdress(
            unmarked,
            message_id="ab" * 16,
            thread_id="ab" * 16,
            sender_agency=partnership["school"].agency_id,
            recipient_agencies=(partnership["mash"].agency_id,),
        ),
        message_id="ab" * 16,
    )
    opened = open_envelope(
        envelope,
        partnership["mash"].identity,
        partnership.directory(),
        agency_id=partnership["mash"].agency_id,
        at=AT,
    )
    assert "A005" in opened.verdict.rule_ids
    marked, _ = _seal_case(partnership, "REFERRAL")
    opened_marked = open_envelope(
        marked,
        partnership["mash"].identity,
        partnership.directory(),
        agency_id=partnership["mash"].agency_id,
        at=AT,
    )
    assert "A005" not in opened_marked.verdict.rule_ids
