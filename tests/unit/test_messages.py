"""Message body schemas: round trips for every kind, and refusal of malformed bodies."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.codes import MessageKind
from schemas.lawful_basis import BasisTag
from schemas.messages import (
    BODY_TYPES,
    MAX_ATTACHMENT_BYTES,
    Attachment,
    MessageBody,
    Referral,
    body_to_bytes,
    body_to_dict,
    check_addressing,
    parse_body,
)
from schemas.policy import PartyContext, PolicyRequest, evaluate
from schemas.problems import InvalidEnvelope
from tests.fixtures import scenarios

ALL_BODIES = scenarios.all_bodies()


def _ids(body: MessageBody) -> str:
    return f"{body.kind}-{body.message_id[-4:]}"


def _referral_dict() -> dict[str, Any]:
    return body_to_dict(scenarios.maya_referral())


def _parse_referral(data: dict[str, Any]) -> MessageBody:
    return parse_body("REFERRAL", data)


# -- round trips -------------------------------------------------------------------------------


def test_every_kind_with_a_body_has_a_scenario_fixture() -> None:
    assert {body.kind for body in ALL_BODIES} == set(BODY_TYPES)
    assert set(BODY_TYPES) == {
        MessageKind.REFERRAL,
        MessageKind.ACKNOWLEDGEMENT,
        MessageKind.DECISION_FEEDBACK,
        MessageKind.REQUEST_FOR_INFORMATION,
        MessageKind.RESPONSE_TO_RFI,
        MessageKind.INFORMATION_ONLY,
        MessageKind.ESCALATION,
        MessageKind.POLICE_NOTIFICATION,
    }


@pytest.mark.parametrize("body", ALL_BODIES, ids=_ids)
def test_round_trip_through_dict(body: MessageBody) -> None:
    data = body_to_dict(body)
    assert data["kind"] == body.kind
    assert json.loads(json.dumps(data)) == data  # JSON-ready
    assert parse_body(body.kind, data) == body


@pytest.mark.parametrize("body", ALL_BODIES, ids=_ids)
def test_round_trip_through_canonical_bytes(body: MessageBody) -> None:
    raw = body_to_bytes(body)
    again = parse_body(body.kind, raw)
    assert again == body
    assert body_to_bytes(again) == raw
    assert isinstance(again, BODY_TYPES[MessageKind(body.kind)])


def test_instants_are_utc_whole_seconds_on_the_wire() -> None:
    data = body_to_dict(scenarios.maya_decision())
    assert data["decided_at"] == "2026-11-24T13:10:00Z"
    with_micros = scenarios.maya_decision().model_copy(
        update={"decided_at": datetime(2026, 11, 24, 13, 10, 0, 999, tzinfo=UTC)}
    )
    assert body_to_dict(with_micros)["decided_at"] == "2026-11-24T13:10:00Z"


def test_aware_non_utc_datetimes_are_normalised_to_utc() -> None:
    data = body_to_dict(scenarios.noah_referral())
    # Friday 22 May 2026 14:20 BST is 13:20 UTC.
    assert data["observations"][0]["observed_at"] == "2026-05-22T13:20:00Z"


def test_dates_serialise_as_iso_dates() -> None:
    assert _referral_dict()["child"]["date_of_birth"] == "2019-03-14"


def test_bodies_are_frozen() -> None:
    body = scenarios.maya_referral()
    with pytest.raises(ValidationError):
        body.immediate_risk = False  # type: ignore[misc]


def test_postcode_is_normalised() -> None:
    data = _referral_dict()
    data["child"]["address"]["postcode"] = "nb47qt"
    body = _parse_referral(data)
    assert isinstance(body, Referral)
    assert body.child.address is not None
    assert body.child.address.postcode == "NB4 7QT"


def test_json_schema_can_be_generated() -> None:
    schema = TypeAdapter(MessageBody).json_schema()
    assert "discriminator" in schema


# -- addressing -------------------------------------------------------------------------------


def test_check_addressing_accepts_matching_header() -> None:
    body = scenarios.maya_referral()
    check_addressing(
        body,
        kind="REFERRAL",
        message_id=body.message_id,
        thread_id=body.thread_id,
        sender_agency=scenarios.OAKFIELD_PRIMARY,
        recipient_agencies=[scenarios.FRONT_DOOR],
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "INFORMATION_ONLY"),
        ("message_id", "01970000-0000-7000-8001-999999999999"),
        ("thread_id", "01960000-0000-7000-8001-999999999999"),
        ("sender_agency", "someone-else"),
        ("recipient_agencies", ["northbridge-police"]),
    ],
)
def test_check_addressing_refuses_a_readdressed_body(field: str, value: Any) -> None:
    body = scenarios.maya_referral()
    header: dict[str, Any] = {
        "kind": "REFERRAL",
        "message_id": body.message_id,
        "thread_id": body.thread_id,
        "sender_agency": scenarios.OAKFIELD_PRIMARY,
        "recipient_agencies": [scenarios.FRONT_DOOR],
    }
    header[field] = value
    with pytest.raises(InvalidEnvelope, match=field):
        check_addressing(body, **header)


# -- refusals ---------------------------------------------------------------------------------


def _mutate(path: str, value: Any) -> dict[str, Any]:
    data = _referral_dict()
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return data


_DELETE = object()

INVALID_REFERRALS = [
    pytest.param("concern_summary", _DELETE, "concern_summary", id="missing-field"),
    pytest.param("surprise", "x", "surprise", id="extra-field"),
    pytest.param("child.favourite_colour", "red", "favourite_colour", id="extra-nested"),
    pytest.param("concern_summary", "   ", "blank", id="blank-text"),
    pytest.param("concern_summary", "a\x00b", "control", id="control-character"),
    pytest.param("child.given_name", "Maya\nBennett", "single line", id="multi-line-name"),
    pytest.param("concern_categories", [], "concern_categories", id="no-concern"),
    pytest.param("concern_categories", ["physical_abuse"] * 2, "repeat", id="repeated-concern"),
    pytest.param("concern_categories", ["wizardry"], "concern_categories", id="unknown-concern"),
    pytest.param("immediate_risk", "true", "immediate_risk", id="bool-as-string"),
    pytest.param("immediate_risk", 1, "immediate_risk", id="bool-as-int"),
    pytest.param("safe_to_go_home", "maybe", "safe_to_go_home", id="bad-tristate"),
    pytest.param("parents_aware.reason", None, "reason", id="not-told-without-reason"),
    pytest.param("child.date_of_birth", "14/03/2019", "date", id="bad-date"),
    pytest.param("child.date_of_birth", "2019-03-14T00:00:00Z", "date", id="datetime-as-date"),
    pytest.param("child.date_of_birth", 1552521600, "date", id="timestamp-as-date"),
    pytest.param("child_words.0.said_at", "2026-11-24T08:50:00", "RFC 3339", id="naive-time"),
    pytest.param("child_words.0.said_at", "2026-11-24T08:50:00+00:00", "RFC 3339", id="no-z"),
    pytest.param("child.identifiers.nhs_number", "9990037001", "check digit", id="bad-nhs"),
    pytest.param("child.identifiers.nhs_number", "999 003 7000", "10 digits", id="spaced-nhs"),
    pytest.param("child.address.postcode", "NOT A CODE", "postcode", id="bad-postcode"),
    pytest.param("sent_by.phone", None, "phone", id="contact-unreachable"),
    pytest.param("sent_by.email", "not-an-email", "email", id="bad-email"),
    pytest.param("recipient_agencies", [], "recipient_agencies", id="no-recipient"),
    pytest.param("recipient_agencies", ["a-1", "a-1"], "repeat", id="repeated-recipient"),
    pytest.param("recipient_agencies", ["oakfield-primary"], "sender", id="sender-is-recipient"),
    pytest.param("message_id", "../etc/passwd", "message_id", id="bad-id"),
    pytest.param("observations.0.fact_or_opinion", "rumour", "fact_or_opinion", id="not-marked"),
    pytest.param("family_and_household.1.alleged_perpetrator", "yes", "alleged", id="bad-flag"),
]


@pytest.mark.parametrize(("path", "value", "mentions"), INVALID_REFERRALS)
def test_invalid_referrals_raise_invalid_envelope(path: str, value: Any, mentions: str) -> None:
    if path == "sent_by.phone":
        data = _mutate("sent_by.email", None)
        data["sent_by"]["phone"] = None
    else:
        data = _mutate(path, value)
    with pytest.raises(InvalidEnvelope) as caught:
        _parse_referral(data)
    detail = caught.value.detail
    assert detail.startswith("invalid REFERRAL body: ")
    assert "\n" not in detail
    assert mentions.lower() in detail.lower()


def test_error_message_never_echoes_the_value() -> None:
    data = _mutate("child.identifiers.nhs_number", "9990037001")
    with pytest.raises(InvalidEnvelope) as caught:
        _parse_referral(data)
    assert "9990037001" not in caught.value.detail
    assert "child.identifiers.nhs_number" in caught.value.detail


def test_error_counts_further_problems() -> None:
    data = _mutate("concern_summary", _DELETE)
    del data["child_location_now"]
    with pytest.raises(InvalidEnvelope, match=r"\(and 1 more\)"):
        _parse_referral(data)


def test_outcome_code_must_be_an_outcome_code() -> None:
    data = body_to_dict(scenarios.maya_decision())
    data["outcome_code"] = "SEND_A_LETTER"
    with pytest.raises(InvalidEnvelope, match="outcome_code"):
        parse_body("DECISION_FEEDBACK", data)


@pytest.mark.parametrize(
    ("answer", "information", "reason", "ok"),
    [
        ("provided", "Records attached.", None, True),
        ("provided", None, None, False),
        ("withheld", None, "Would prejudice a live investigation.", True),
        ("withheld", "Some of it.", "Would prejudice a live investigation.", False),
        ("withheld", None, None, False),
        ("partial", "Dates of contact only.", "Content withheld: live investigation.", True),
        ("partial", "Dates of contact only.", None, False),
    ],
)
def test_response_to_rfi_states_what_was_provided_or_withheld(
    answer: str, information: str | None, reason: str | None, ok: bool
) -> None:
    data = body_to_dict(scenarios.maya_police_response())
    data.update(
        information_provided_or_withheld=answer,
        information=information,
        withholding_reason=reason,
    )
    if ok:
        assert parse_body("RESPONSE_TO_RFI", data).kind == "RESPONSE_TO_RFI"
    else:
        with pytest.raises(InvalidEnvelope):
            parse_body("RESPONSE_TO_RFI", data)


def test_escalation_stage_is_bounded() -> None:
    data = body_to_dict(scenarios.noah_escalation())
    data["escalation_stage"] = 0
    with pytest.raises(InvalidEnvelope, match="escalation_stage"):
        parse_body("ESCALATION", data)


def test_kind_must_match_the_header() -> None:
    with pytest.raises(InvalidEnvelope, match="does not match"):
        parse_body("INFORMATION_ONLY", _referral_dict())
    data = _referral_dict()
    del data["kind"]
    with pytest.raises(InvalidEnvelope, match="does not match"):
        parse_body("REFERRAL", data)


@pytest.mark.parametrize("kind", ["CP_CONFERENCE", "LADO_REFERRAL", "NONSENSE", "", "x" * 500])
def test_kinds_without_a_body_schema_are_refused(kind: str) -> None:
    with pytest.raises(InvalidEnvelope, match="no body schema") as caught:
        parse_body(kind, {"kind": kind})
    assert len(caught.value.detail) < 100


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"kind": "REFERRAL", "kind": "REFERRAL"}', "duplicate key"),
        (b'{"kind": "REFERRAL", "x": NaN}', "non-finite"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_bytes_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidEnvelope, match=message):
        parse_body("REFERRAL", raw)


def test_body_must_be_bytes_or_mapping() -> None:
    with pytest.raises(InvalidEnvelope, match="bytes or a mapping"):
        parse_body("REFERRAL", "{}")  # type: ignore[arg-type]


# -- attachments ------------------------------------------------------------------------------


def _attachment(content: str, name: str = "body-map.pdf") -> dict[str, Any]:
    return {"name": name, "media_type": "application/pdf", "content_base64": content}


def test_attachment_round_trip() -> None:
    data = _referral_dict()
    data["attachments"] = [_attachment(base64.b64encode(b"%PDF-1.7 body map").decode())]
    body = _parse_referral(data)
    assert isinstance(body, Referral)
    assert body.attachments[0].content == b"%PDF-1.7 body map"
    assert body.attachments[0].size == 17
    assert parse_body("REFERRAL", body_to_bytes(body)) == body


@pytest.mark.parametrize(
    ("attachment", "mentions"),
    [
        (_attachment("not base64!"), "base64"),
        (_attachment("QQ"), "base64"),  # unpadded: not canonical
        (_attachment("QQ==", name="../../etc/passwd"), "name"),
        (_attachment("QQ==", name="a\x00b.pdf"), "name"),
        ({**_attachment("QQ=="), "media_type": "PDF"}, "media_type"),
    ],
)
def test_bad_attachments_are_refused(attachment: dict[str, Any], mentions: str) -> None:
    data = _referral_dict()
    data["attachments"] = [attachment]
    with pytest.raises(InvalidEnvelope, match=mentions):
        _parse_referral(data)


def test_attachment_size_is_limited() -> None:
    too_big = base64.b64encode(b"\0" * (MAX_ATTACHMENT_BYTES + 1)).decode()
    with pytest.raises(ValidationError, match="at most"):
        Attachment(name="scan.png", media_type="image/png", content_base64=too_big)
    just_fits = base64.b64encode(b"\0" * MAX_ATTACHMENT_BYTES).decode()
    assert Attachment(name="scan.png", media_type="image/png", content_base64=just_fits).size == (
        MAX_ATTACHMENT_BYTES
    )


def test_total_attachment_size_is_limited() -> None:
    chunk = base64.b64encode(b"\0" * (4 * 1024 * 1024)).decode()
    data = _referral_dict()
    data["attachments"] = [_attachment(chunk, name=f"scan-{i}.pdf") for i in range(3)]
    with pytest.raises(InvalidEnvelope, match="total"):
        _parse_referral(data)


# -- properties -------------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_ever_raise_invalid_envelope(raw: bytes) -> None:
    with contextlib.suppress(InvalidEnvelope):
        parse_body("REFERRAL", raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.sampled_from(sorted(BODY_TYPES)), st.dictionaries(st.text(max_size=12), json_values))
def test_arbitrary_objects_only_ever_raise_invalid_envelope(
    kind: str, data: dict[str, Any]
) -> None:
    data["kind"] = kind
    with contextlib.suppress(InvalidEnvelope):
        parse_body(kind, data)


@given(st.sampled_from(sorted(_referral_dict())))
def test_dropping_any_required_referral_field_is_refused(field: str) -> None:
    data = _referral_dict()
    del data[field]
    required = {name for name, info in Referral.model_fields.items() if info.is_required()}
    if field in required or field == "kind":
        with pytest.raises(InvalidEnvelope):
            _parse_referral(data)
    else:
        assert _parse_referral(data).kind == "REFERRAL"


# -- the shared scenario fixtures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "sender", "recipient", "basis", "decision"),
    [
        (
            "REFERRAL",
            "maintained_school",
            "local_authority_childrens_services",
            scenarios.school_referral_basis,
            {"accept", "warn"},
        ),
        (
            "INFORMATION_ONLY",
            "private_or_voluntary_nursery",
            "local_authority_childrens_services",
            scenarios.nursery_information_basis,
            {"accept", "warn"},
        ),
        (
            "REFERRAL",
            "nhs_trust",
            "local_authority_childrens_services",
            scenarios.clinic_referral_basis,
            {"accept", "warn"},
        ),
        (
            "POLICE_NOTIFICATION",
            "police",
            "maintained_school",
            scenarios.police_notification_basis,
            {"accept", "warn"},
        ),
        (
            "REFERRAL",
            "charity_vcs",
            "local_authority_childrens_services",
            scenarios.charity_referral_basis,
            {"accept", "warn"},
        ),
        (
            "REFERRAL",
            "academy_or_free_school",
            "local_authority_childrens_services",
            scenarios.academy_legitimate_interests_basis,
            {"reject"},
        ),
        (
            "REFERRAL",
            "gp_practice_nhs_contract",
            "local_authority_childrens_services",
            scenarios.gp_referral_basis,
            {"accept", "warn"},
        ),
        (
            "DECISION_FEEDBACK",
            "local_authority_childrens_services",
            "maintained_school",
            scenarios.front_door_feedback_basis,
            {"accept", "warn"},
        ),
        (
            "REQUEST_FOR_INFORMATION",
            "local_authority_childrens_services",
            "police",
            scenarios.front_door_rfi_basis,
            {"accept", "warn"},
        ),
    ],
)
def test_scenario_bases_get_the_verdict_the_scenario_describes(
    kind: str, sender: str, recipient: str, basis: Callable[[], BasisTag], decision: set[str]
) -> None:
    verdict = evaluate(
        PolicyRequest(
            kind=kind,
            sent_at=scenarios.S1_REFERRAL_AT,
            sender=PartyContext(org_type=sender, apd_in_place=True),
            recipient=PartyContext(org_type=recipient),
            basis=basis().to_dict(),
        )
    )
    assert verdict.decision in decision, [f.rule for f in verdict.findings]


def test_fixture_bodies_can_be_readdressed() -> None:
    body = scenarios.maya_referral(
        message_id="a" * 32,
        thread_id="b" * 32,
        sender_agency="school-under-test",
        recipient_agencies=["mash-under-test"],
    )
    assert (body.message_id, body.thread_id) == ("a" * 32, "b" * 32)
    assert (body.sender_agency, body.recipient_agencies) == (
        "school-under-test",
        ("mash-under-test",),
    )
    assert body.child == scenarios.maya_referral().child
    notice = scenarios.readdress(scenarios.leo_information_notices()[0], sender_agency="nursery-x")
    assert notice.sender_agency == "nursery-x"
    with pytest.raises(ValidationError):
        scenarios.maya_referral(in_reply_to="x")  # a referral replies to nothing
