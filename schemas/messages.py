"""Plaintext message bodies: what a practitioner writes, one model per message kind.

The body is the part of an envelope that is encrypted end to end; the relay never
sees it. Each body repeats the routing identifiers of the signed header
(``message_id``, ``thread_id``, ``sender_agency``, ``recipient_agencies``) so that a
sealed message cannot be re-addressed: :func:`check_addressing` compares the two
after decryption.

All models are frozen pydantic v2 models with ``extra="forbid"``. Field names are
``snake_case`` and stable: agencies script against them. Instants are RFC 3339 UTC
strings with a ``Z`` and whole seconds on the wire (see :mod:`schemas.timefmt`);
dates are ``YYYY-MM-DD``. Validation is structural only: nothing here knows the
time, so "not in the future" checks belong to the caller.

The free-text lawful-basis justification is *not* part of a body: it travels in its
own sealed part so the auditor can read why without reading what.

Fictional examples of every kind live in ``tests/fixtures/scenarios.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from schemas.codes import ConcernCategory, MessageKind, OutcomeCode
from schemas.encoding import b64decode, canonical_json
from schemas.problems import InvalidEnvelope
from schemas.timefmt import format_time, parse_time

__all__ = [
    "BODY_TYPES",
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENTS_TOTAL_BYTES",
    "MAX_ATTACHMENT_BYTES",
    "MAX_BODY_BYTES",
    "Acknowledgement",
    "Address",
    "Attachment",
    "Child",
    "ChildIdentifiers",
    "ChildWords",
    "Contact",
    "DecisionFeedback",
    "Escalation",
    "HouseholdMember",
    "InformationOnly",
    "KnownAgency",
    "LocalIdentifier",
    "MessageBody",
    "Observation",
    "ParentsAware",
    "PoliceNotification",
    "Referral",
    "RequestForInformation",
    "ResponseToRfi",
    "SensitiveIdentity",
    "body_to_bytes",
    "body_to_dict",
    "check_addressing",
    "parse_body",
]

#: Largest serialised body :func:`parse_body` reads (attachments included).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Largest single attachment, decoded.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
#: Largest total of all attachments on one body, decoded.
MAX_ATTACHMENTS_TOTAL_BYTES = 10 * 1024 * 1024
#: Most attachments on one body.
MAX_ATTACHMENTS = 10

# -- field types ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\t\n\r]")


def _long_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _short_text(value: str) -> str:
    _long_text(value)
    if _LINE_BREAK.search(value):
        raise ValueError("must be a single line")
    return value


def _instant(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must be a timezone-aware date and time")
        return value.astimezone(UTC).replace(microsecond=0)
    if isinstance(value, str):
        try:
            return parse_time(value).replace(microsecond=0)
        except InvalidEnvelope:
            pass
    raise ValueError("must be an RFC 3339 UTC time like 2026-05-22T14:00:00Z")


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _calendar_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be a date like 2019-03-14")


def _date_text(value: date) -> str:
    return value.isoformat()


_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")


def _postcode(value: str) -> str:
    match = _POSTCODE.match(value.strip().upper())
    if match is None:
        raise ValueError("must be a UK postcode like AB1 2CD")
    return f"{match.group(1)} {match.group(2)}"


def _nhs_number(value: str) -> str:
    if not re.fullmatch(r"[0-9]{10}", value):
        raise ValueError("must be 10 digits with no spaces")
    total = sum(
        int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(value[9]):
        raise ValueError("fails the NHS number check digit")
    return value


#: A stable identifier: message, thread or agency id (UUIDs, hex and slugs all fit).
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
#: One line of text (a name, a role, a reference).
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_short_text)]
#: Free text (a summary, a statement, a child's words).
LongText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_long_text)]
#: An instant, normalised to UTC and whole seconds; RFC 3339 with ``Z`` on the wire.
Instant = Annotated[
    datetime,
    PlainValidator(_instant, json_schema_input_type=str),
    PlainSerializer(format_time, return_type=str, when_used="json"),
]
#: A calendar date, ``YYYY-MM-DD`` on the wire.
IsoDate = Annotated[
    date,
    PlainValidator(_calendar_date, json_schema_input_type=str),
    PlainSerializer(_date_text, return_type=str, when_used="json"),
]
Postcode = Annotated[str, StringConstraints(max_length=10), AfterValidator(_postcode)]
NhsNumber = Annotated[str, AfterValidator(_nhs_number)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{5,24}$")]
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
]
YesNoUnknown = Literal["yes", "no", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _unique(values: tuple[Any, ...], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")


# -- building blocks --------------------------------------------------------------------------


class Contact(_Model):
    """A person to contact for follow-up: name, role and at least one of phone or email."""

    name: ShortText
    role: ShortText
    phone: Phone | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if self.phone is None and self.email is None:
            raise ValueError("a contact needs a phone number or an email address")
        return self


class Address(_Model):
    """A postal address in the UK."""

    lines: tuple[ShortText, ...] = Field(min_length=1, max_length=6)
    town: ShortText | None = None
    postcode: Postcode | None = None


class LocalIdentifier(_Model):
    """Another identifier for the child, named by its scheme (e.g. ``"LA case number"``)."""

    scheme: ShortText
    value: ShortText


class ChildIdentifiers(_Model):
    """Identifiers that help the recipient match the child to its own records."""

    nhs_number: NhsNumber | None = None
    """The child's NHS number (10 digits, check digit verified)."""
    consistent_identifier: ShortText | None = None
    """The consistent identifier under Children Act 2004 s.16LC, once regulations apply."""
    upn: Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{11}[0-9A-Z]$")] | None = None
    """The unique pupil number (13 characters)."""
    local: tuple[LocalIdentifier, ...] = Field(default=(), max_length=10)


class Child(_Model):
    """The child a message is about."""

    given_name: ShortText
    family_name: ShortText | None = None
    other_names: tuple[ShortText, ...] = Field(default=(), max_length=10)
    """Previous names, nicknames and alternative spellings."""
    date_of_birth: IsoDate | None = None
    address: Address | None = None
    school: ShortText | None = None
    """School, college or early-years setting."""
    identifiers: ChildIdentifiers = ChildIdentifiers()
    gender: Literal["female", "male", "other", "not_known", "not_stated"] | None = None
    ethnicity: ShortText | None = None
    language: ShortText | None = None
    """First language."""
    interpreter_needed: StrictBool | None = None
    disabilities_or_sen: tuple[ShortText, ...] = Field(default=(), max_length=20)
    """Disabilities and special educational needs, one per entry."""


class HouseholdMember(_Model):
    """A member of the child's family or household."""

    name: ShortText
    relationship: ShortText
    """Relationship to the child, e.g. ``"mother"``, ``"stepfather"``, ``"half-brother"``."""
    date_of_birth: IsoDate | None = None
    address: Address | None = None
    """Only when different from the child's."""
    lives_with_child: StrictBool | None = None
    parental_responsibility: YesNoUnknown = "unknown"
    alleged_perpetrator: StrictBool = False


class ChildWords(_Model):
    """What the child said, in the child's own words, and when and to whom."""

    words: LongText
    """Verbatim, as the child said it: not paraphrased or corrected."""
    said_to: ShortText
    """Who heard it (role, and name if useful)."""
    said_at: Instant | None = None
    context: LongText | None = None
    """How it came up, including any question asked first."""


class Observation(_Model):
    """One statement, marked as fact (seen, heard, recorded) or opinion, with its source."""

    statement: LongText
    fact_or_opinion: Literal["fact", "opinion"]
    source: ShortText
    """Whose observation or view it is, e.g. ``"class teacher"``."""
    observed_at: Instant | None = None


class ParentsAware(_Model):
    """Whether the parents or carers know about this message, and if not why not."""

    status: Literal["yes", "no", "not_yet"]
    reason: LongText | None = None

    @model_validator(mode="after")
    def _reason_when_not_told(self) -> ParentsAware:
        if self.status != "yes" and self.reason is None:
            raise ValueError("a reason is needed when parents are not aware")
        return self


class KnownAgency(_Model):
    """Another agency involved with the child or family."""

    name: ShortText
    """The agency or service, e.g. ``"Health visiting, Northbridge Community NHS Trust"``."""
    role: ShortText
    """Its involvement, e.g. ``"health visitor"``."""
    contact: Contact | None = None


class SensitiveIdentity(_Model):
    """An identity that must not be disclosed to some audiences (DfE golden rule 5)."""

    role: Literal[
        "referrer_non_professional",
        "referrer_professional",
        "witness",
        "victim_address",
        "other",
    ]
    do_not_disclose_to: tuple[ShortText, ...] = Field(min_length=1, max_length=10)
    """Audiences, e.g. ``"family"``, ``"alleged_perpetrator"``, ``"other_agencies"``."""
    subject: ShortText | None = None
    """Whose identity or which address this is."""


class Attachment(_Model):
    """A file sent with the message, base64 in the body and size-limited."""

    name: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f\x7f]+$")
    ]
    """A file name without any directory part."""
    media_type: Annotated[
        str,
        StringConstraints(
            max_length=127,
            pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$",
        ),
    ]
    """Lower-case ``type/subtype``, e.g. ``application/pdf``."""
    content_base64: str
    """The file, standard padded base64."""
    description: ShortText | None = None

    @model_validator(mode="after")
    def _content_size(self) -> Attachment:
        if len(self.content_base64) > (MAX_ATTACHMENT_BYTES // 3 + 1) * 4:
            raise ValueError(f"an attachment may be at most {MAX_ATTACHMENT_BYTES} bytes")
        try:
            raw = b64decode(self.content_base64, field="content_base64")
        except InvalidEnvelope as exc:
            raise ValueError(exc.detail) from None
        if len(raw) > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"an attachment may be at most {MAX_ATTACHMENT_BYTES} bytes")
        return self

    @property
    def size(self) -> int:
        """The decoded size in bytes."""
        return len(self.content)

    @property
    def content(self) -> bytes:
        """The decoded file."""
        return b64decode(self.content_base64, field="content_base64")


def _check_attachments(attachments: tuple[Attachment, ...]) -> None:
    if sum(a.size for a in attachments) > MAX_ATTACHMENTS_TOTAL_BYTES:
        raise ValueError(f"attachments may total at most {MAX_ATTACHMENTS_TOTAL_BYTES} bytes")


# -- bodies -----------------------------------------------------------------------------------


class _Body(_Model):
    """Fields every body carries: the routing identifiers repeated from the signed header."""

    message_id: Identifier
    thread_id: Identifier
    sender_agency: Identifier
    recipient_agencies: tuple[Identifier, ...] = Field(min_length=1, max_length=50)
    sent_by: Contact
    """The person sending, for follow-up."""

    @model_validator(mode="after")
    def _addressing(self) -> _Body:
        _unique(self.recipient_agencies, "recipient_agencies")
        if self.sender_agency in self.recipient_agencies:
            raise ValueError("the sender cannot also be a recipient")
        return self


class Referral(_Body):
    """A referral (request for services) to a children's social care front door.

    Carries what a MASH needs to decide the type of response within one working
    day: who the child is, who lives with them, what was seen or said (in the
    child's own words, with fact and opinion marked apart), whether the child is
    safe now, who knows, and whom to call back.
    """

    kind: Literal["REFERRAL"] = "REFERRAL"
    child: Child
    family_and_household: tuple[HouseholdMember, ...] = Field(default=(), max_length=30)
    concern_categories: tuple[ConcernCategory, ...] = Field(min_length=1, max_length=18)
    concern_summary: LongText
    child_words: tuple[ChildWords, ...] = Field(default=(), max_length=50)
    observations: tuple[Observation, ...] = Field(default=(), max_length=200)
    facts_vs_opinion_marked: StrictBool
    """The referrer confirms that fact and opinion are distinguished throughout."""
    immediate_risk: StrictBool
    child_location_now: ShortText
    safe_to_go_home: YesNoUnknown
    parents_aware: ParentsAware
    known_agencies: tuple[KnownAgency, ...] = Field(default=(), max_length=30)
    """Other agencies involved with the child or family."""
    referrer_contact_for_followup: Contact
    requested_action: LongText | None = None
    """What the referrer is asking the front door to do, if they can say."""
    sensitive_identities: tuple[SensitiveIdentity, ...] = Field(default=(), max_length=20)
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=MAX_ATTACHMENTS)

    @model_validator(mode="after")
    def _referral(self) -> Referral:
        _unique(self.concern_categories, "concern_categories")
        _check_attachments(self.attachments)
        return self


class Acknowledgement(_Body):
    """The front door's acknowledgement that it received a referral or notice."""

    kind: Literal["ACKNOWLEDGEMENT"] = "ACKNOWLEDGEMENT"
    in_reply_to: Identifier
    """The message acknowledged."""
    received_at: Instant
    contact_for_followup: Contact
    reference: ShortText
    """The recipient's own reference, to quote when following up."""


class DecisionFeedback(_Body):
    """The decision on a referral, told to the referrer with what they should do next.

    Feedback says what was decided and what the referrer needs to know to support
    the child; it should not pass on assessment content. When the threshold is not
    met, give the reasons and suggest other support (Working Together 2023 ch.3).
    A later feedback on the same thread revises or follows up the decision.
    """

    kind: Literal["DECISION_FEEDBACK"] = "DECISION_FEEDBACK"
    in_reply_to: Identifier
    """The referral decided on."""
    outcome_code: OutcomeCode
    summary_for_referrer: LongText
    referrer_next_steps: LongText
    allocated_worker: Contact | None = None
    threshold_not_met_reasons: LongText | None = None
    alternative_support_suggested: LongText | None = None
    decided_at: Instant


class RequestForInformation(_Body):
    """A request for information about a child (MASH checks, s.47(9), s.16H)."""

    kind: Literal["REQUEST_FOR_INFORMATION"] = "REQUEST_FOR_INFORMATION"
    child: Child
    information_requested: LongText
    request_basis_statement: LongText
    """Why the information is needed and for what function."""
    statutory_function_citation: ShortText
    """E.g. ``"Children Act 1989 s.47(1)"``."""
    response_due_by: Instant
    annex1_p1_statement: LongText | None = None
    """UK GDPR Annex 1 para 1 statement, when the recipient is not a public authority."""
    s47_enquiry_ref: ShortText | None = None
    s16h_purpose: Literal["16E", "16F"] | None = None
    in_reply_to: Identifier | None = None
    """The message this follows, when asked within a thread."""


class ResponseToRfi(_Body):
    """A reply to a request for information: what is provided, or why it is withheld."""

    kind: Literal["RESPONSE_TO_RFI"] = "RESPONSE_TO_RFI"
    in_reply_to: Identifier
    """The request answered."""
    information_provided_or_withheld: Literal["provided", "withheld", "partial"]
    information: LongText | None = None
    withholding_reason: LongText | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=MAX_ATTACHMENTS)

    @model_validator(mode="after")
    def _response(self) -> ResponseToRfi:
        answer = self.information_provided_or_withheld
        if answer in ("provided", "partial") and self.information is None and not self.attachments:
            raise ValueError(f"information is needed when the answer is {answer}")
        if answer in ("withheld", "partial") and self.withholding_reason is None:
            raise ValueError(f"a withholding_reason is needed when the answer is {answer}")
        if answer == "withheld" and (self.information is not None or self.attachments):
            raise ValueError("withheld responses carry no information")
        _check_attachments(self.attachments)
        return self


class InformationOnly(_Body):
    """Information shared without a referral: a notice or an emerging concern.

    Below the threshold for a referral on its own, but worth the front door
    seeing beside what others hold. Also used to add information to an open
    thread.
    """

    kind: Literal["INFORMATION_ONLY"] = "INFORMATION_ONLY"
    child: Child
    concern_categories: tuple[ConcernCategory, ...] = Field(default=(), max_length=18)
    concern_summary: LongText
    why_shared_without_referral: LongText
    observations: tuple[Observation, ...] = Field(default=(), max_length=200)
    in_reply_to: Identifier | None = None
    """The message this adds to, when sent within a thread."""

    @model_validator(mode="after")
    def _information(self) -> InformationOnly:
        _unique(self.concern_categories, "concern_categories")
        return self


class Escalation(_Body):
    """A professional disagreement raised under the partnership's escalation procedure."""

    kind: Literal["ESCALATION"] = "ESCALATION"
    escalation_stage: Annotated[StrictInt, Field(ge=1, le=5)]
    """The stage of the local escalation procedure (1 = practitioner to practitioner)."""
    issue_summary: LongText
    resolution_sought: LongText | None = None
    in_reply_to: Identifier | None = None
    """The message disagreed with, if one."""


class PoliceNotification(_Body):
    """A police notification to a school or front door (Operation Encompass and similar).

    Sent before the next school day so the child can be supported; usually not
    to be raised with the parents.
    """

    kind: Literal["POLICE_NOTIFICATION"] = "POLICE_NOTIFICATION"
    notification_type: Literal["operation_encompass", "police_protection", "other"]
    child: Child
    incident_datetime: Instant
    police_reference: ShortText
    incident_summary: LongText
    """What the school needs to know to support the child; not the investigation."""
    child_present: YesNoUnknown
    handling_marking: Literal["OFFICIAL", "OFFICIAL-SENSITIVE"]
    do_not_raise_with_parents: StrictBool = True
    support_advice: LongText | None = None


#: The body of any message kind, told apart by ``kind``.
MessageBody = Annotated[
    Referral
    | Acknowledgement
    | DecisionFeedback
    | RequestForInformation
    | ResponseToRfi
    | InformationOnly
    | Escalation
    | PoliceNotification,
    Field(discriminator="kind"),
]

#: The body model for each message kind that has one in this version.
BODY_TYPES: Mapping[MessageKind, type[BaseModel]] = MappingProxyType(
    {
        MessageKind.REFERRAL: Referral,
        MessageKind.ACKNOWLEDGEMENT: Acknowledgement,
        MessageKind.DECISION_FEEDBACK: DecisionFeedback,
        MessageKind.REQUEST_FOR_INFORMATION: RequestForInformation,
        MessageKind.RESPONSE_TO_RFI: ResponseToRfi,
        MessageKind.INFORMATION_ONLY: InformationOnly,
        MessageKind.ESCALATION: Escalation,
        MessageKind.POLICE_NOTIFICATION: PoliceNotification,
    }
)

_ADAPTER: TypeAdapter[MessageBody] = TypeAdapter(MessageBody)
_KIND_TEXT = re.compile(r"^[A-Z][A-Z_]{0,39}$")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidEnvelope("body has a duplicate key")
        result[key] = value
    return result


def _no_constants(_: str) -> NoReturn:
    raise InvalidEnvelope("body contains a non-finite number")


def _load(data: bytes) -> object:
    if len(data) > MAX_BODY_BYTES:
        raise InvalidEnvelope(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEnvelope("body is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except ValueError:
        raise InvalidEnvelope("body is not valid JSON") from None
    except RecursionError:
        raise InvalidEnvelope("body is nested too deeply") from None


def _summary(kind: str, error: ValidationError) -> str:
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    first = problems[0]
    location = [str(part) for part in first["loc"]]
    if location and location[0] == kind:
        location = location[1:]
    message = first["msg"].removeprefix("Value error, ")
    where = ".".join(location) or "body"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"invalid {kind} body: {where}: {message}{more}"


def parse_body(kind: str, data: bytes | Mapping[str, Any]) -> MessageBody:
    """Validate a decrypted body against the schema for ``kind`` (the signed header's kind).

    ``data`` is the plaintext JSON bytes or an already-decoded mapping. Raises
    :class:`InvalidEnvelope` with a one-line message (field path and problem, never
    the offending value) when the body is malformed, its ``kind`` differs from the
    header's, or the kind has no body schema in this version.
    """
    if kind not in BODY_TYPES:
        shown = kind if isinstance(kind, str) and _KIND_TEXT.fullmatch(kind) else "?"
        raise InvalidEnvelope(f"no body schema for message kind {shown}")
    if isinstance(data, bytes | bytearray | memoryview):
        value = _load(bytes(data))
    elif isinstance(data, Mapping):
        value = dict(data)
    else:
        raise InvalidEnvelope("body must be JSON bytes or a mapping")
    if not isinstance(value, dict):
        raise InvalidEnvelope("body must be a JSON object")
    if value.get("kind") != kind:
        raise InvalidEnvelope(f"body kind does not match the header kind {kind}")
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise InvalidEnvelope(_summary(kind, exc)) from None


def body_to_dict(body: MessageBody) -> dict[str, Any]:
    """Return ``body`` as a JSON-ready dict (every field present; instants as RFC 3339)."""
    return body.model_dump(mode="json")


def body_to_bytes(body: MessageBody) -> bytes:
    """Return ``body`` as canonical JSON bytes (RFC 8785), the plaintext to seal."""
    return canonical_json(body_to_dict(body))


def check_addressing(
    body: MessageBody,
    *,
    kind: str,
    message_id: str,
    thread_id: str,
    sender_agency: str,
    recipient_agencies: tuple[str, ...] | list[str],
) -> None:
    """Check that a decrypted body names the same kind, ids and agencies as its signed header.

    Recipients are compared as sets. Raises :class:`InvalidEnvelope` naming the
    first field that differs, so a re-addressed message is refused.
    """
    expected: list[tuple[str, object, object]] = [
        ("kind", body.kind, kind),
        ("message_id", body.message_id, message_id),
        ("thread_id", body.thread_id, thread_id),
        ("sender_agency", body.sender_agency, sender_agency),
        ("recipient_agencies", frozenset(body.recipient_agencies), frozenset(recipient_agencies)),
    ]
    for name, inside, outside in expected:
        if inside != outside:
            raise InvalidEnvelope(f"body {name} does not match the signed header")
