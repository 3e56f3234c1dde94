"""Signed tree heads: issued by the relay log key, refused from anyone else or when altered."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from keys.certificates import Certificate, issue_certificate
from keys.identity import AgencyIdentity
from keys.testing import Partnership
from keys.transparency import (
    SignedTreeHead,
    leaf_bytes,
    parse_leaf,
    sign_tree_head,
    verify_tree_head,
)
from schemas.problems import BadSignature, ExchangeError, InvalidEnvelope

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def _relay(partnership: Partnership) -> tuple[AgencyIdentity, Certificate]:
    identity = AgencyIdentity.from_seed(b"\x11" * 32)
    cert = issue_certificate(
        partnership.root,
        agency_id="northbridge-relay",
        name="Northbridge exchange relay",
        org_type="exchange_relay",
        public_authority=True,
        apd_in_place=True,
        mailboxes=(),
        role="relay",
        public_keys=identity.public_keys,
        not_before=AT - timedelta(days=1),
        not_after=AT + timedelta(days=365),
    )
    return identity, cert


def test_tree_head_round_trip_and_tamper() -> None:
    partnership = Partnership.create(at=AT)
    identity, cert = _relay(partnership)
    directory = partnership.directory()
    directory.add_certificate(cert)
    signed = sign_tree_head(identity, cert, size=5, root=bytes(range(32)), timestamp=AT)
    head = verify_tree_head(SignedTreeHead.from_json(signed.to_json()), directory)
    assert (head.size, head.root, head.log) == (5, bytes(range(32)), "northbridge-relay")
    altered = replace(signed, head_bytes=signed.head_bytes.replace(b'"size":5', b'"size":6'))
    with pytest.raises(BadSignature):
        verify_tree_head(altered, directory)


def test_agency_key_cannot_sign_tree_heads() -> None:
    partnership = Partnership.create(at=AT)
    school = partnership["school"]
    with pytest.raises(ValueError, match="relay"):
        sign_tree_head(school.identity, school.certificate, size=1, root=bytes(32), timestamp=AT)


def test_unknown_log_key_refused() -> None:
    partnership = Partnership.create(at=AT)
    identity, cert = _relay(partnership)
    signed = sign_tree_head(identity, cert, size=1, root=bytes(32), timestamp=AT)
    with pytest.raises(ExchangeError):
        verify_tree_head(signed, partnership.directory())


def test_leaves_are_canonical_and_typed() -> None:
    data = leaf_bytes("receipt", {"message_id": "ab" * 16, "recipient": "x"})
    assert parse_leaf(data)["type"] == "receipt"
    with pytest.raises(InvalidEnvelope):
        parse_leaf(b'{"type":"unknown"}')
    with pytest.raises(InvalidEnvelope):
        parse_leaf(b'{ "type":"receipt"}')
