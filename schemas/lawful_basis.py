"""The lawful-basis tag: interchange format version 1 (``shared/policy/README.md``).

A tag says *why* a message may lawfully be shared. Its code fields travel in the
signed, readable message header (:meth:`BasisTag.header_codes`); the free-text
reasons under ``justification`` travel encrypted in the body and sealed to the
auditor (:class:`Justification`).

Parsing rules
-------------
* Every field the README shows is accepted; missing and ``null`` mean the same.
* Code fields are plain strings (or lists of strings), so a code this version
  does not know never breaks parsing: the policy engine reports it (rule ``X001``).
* The models are strict (no coercion of ``"yes"`` to ``True`` or ``5`` to
  ``"5"``) and forbid unknown keys (``extra="forbid"``), at every level. The
  header is readable by the relay, so an unexpected key could carry personal data
  in the clear; a typo in a key name would silently drop a declaration. Code that
  *builds* a tag therefore fails loudly. Code that *checks* a tag someone else
  wrote uses :func:`parse_basis`, which never raises: it drops what it cannot
  read and returns the problems as :class:`BasisIssue` values, which the policy
  engine turns into findings (``X002`` malformed, ``X003`` unknown field).

Fields beyond the README
------------------------
The README maps the policy model's ``requires_fields`` onto tag fields; those
mappings are implemented as written (``art10_underlying_condition``,
``professional_secrecy_basis``, ``dsa_ref``, the consent-entry fields, the
``justification`` texts ``incapacity_statement`` and
``vital_interest_justification``). A few fields the model needs but the README
does not place are added, all optional, so every README tag still parses:

* top level: ``p18_consent_reason`` (the model's tag-wide default reason),
  ``service_agreement`` (model), ``s16h_purpose`` (``16E``/``16F``, rule L021),
  ``request_ref`` (the request an Annex 1 para 1 disclosure answers, rule L005);
* consent entry: ``p18_consent_reason`` (model example), ``refused_by``, ``form``;
  ``given_by``/``refused_by`` hold :class:`~schemas.codes.ConsentGiver` codes,
  never names, because the header is readable;
* transparency: ``review_date`` and ``informed_date`` (model ``transparency_model``);
* justification: ``request_statement_public_task`` (L005),
  ``annex1_p1_statement`` (P010), ``withholding_reasoning`` (P009).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

__all__ = [
    "NOT_SOUGHT_REASON_TO_P18",
    "PARA36",
    "BasisIssue",
    "BasisTag",
    "ConsentEntry",
    "Justification",
    "ParsedBasis",
    "Transparency",
    "parse_basis",
    "split_art10_condition",
]

#: The policy model's ``not_sought_reason`` → Sch 1 para 18(2) reason mapping
#: (``consent_model.not_sought_reasons[].maps_to_p18``); ``other`` maps to nothing.
NOT_SOUGHT_REASON_TO_P18: Mapping[str, str | None] = MappingProxyType(
    {
        "would_increase_risk_to_child": "p18_2_c",
        "would_prejudice_enquiry_or_investigation": "p18_2_c",
        "urgency_delay_would_cause_harm": "p18_2_b",
        "cannot_be_given_age_or_capacity": "p18_2_a",
        "cannot_reasonably_obtain_unreachable": "p18_2_b",
        "data_subject_is_alleged_perpetrator": "p18_2_c",
        "risk_to_another_person": "p18_2_c",
        "other": None,
    }
)

#: DPA 2018 Sch 1 para 36: a Part 2 condition without its substantial-public-interest element.
PARA36 = "SCH1_P3_36"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PARA36_SPELLING = re.compile(r"^(SCH1_P3_36)\(([A-Za-z0-9_]+)\)$")


def _iso_date(value: str | None) -> str | None:
    if value is None:
        return None
    if not _ISO_DATE.fullmatch(value):
        raise ValueError("expected a date like 2026-11-24")
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("not a real calendar date") from None
    return value


def split_art10_condition(value: str | None) -> tuple[str | None, str | None]:
    """Split the model's ``SCH1_P3_36(SCH1_P2_18)`` spelling into (condition, underlying).

    Any other value comes back unchanged with no underlying condition.
    """
    if value is None:
        return None, None
    match = _PARA36_SPELLING.fullmatch(value)
    if match:
        return match.group(1), match.group(2)
    return value, None


_STRICT = ConfigDict(extra="forbid", frozen=True)


class Justification(BaseModel):
    """The free-text reasons behind a basis (encrypted in the body, sealed to the auditor).

    Missing and ``null`` mean "not given". The policy engine applies the length rule.
    """

    model_config = _STRICT

    statutory_function_citation: StrictStr | None = None
    legal_obligation_citation: StrictStr | None = None
    necessity: StrictStr | None = None
    proportionality: StrictStr | None = None
    substantial_public_interest: StrictStr | None = None
    public_interest: StrictStr | None = None
    override_justification: StrictStr | None = None
    unlawful_act_description: StrictStr | None = None
    why_consent_would_prejudice: StrictStr | None = None
    incapacity_statement: StrictStr | None = None
    vital_interest_justification: StrictStr | None = None
    request_statement_public_task: StrictStr | None = None
    annex1_p1_statement: StrictStr | None = None
    withholding_reasoning: StrictStr | None = None

    def text(self, name: str) -> str:
        """The named text with surrounding whitespace removed (``""`` when absent)."""
        value = getattr(self, name, None)
        return value.strip() if isinstance(value, str) else ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form with ``null`` fields dropped."""
        return self.model_dump(mode="json", exclude_none=True)


class ConsentEntry(BaseModel):
    """Data-protection consent for one data subject (the lawful-basis meaning of consent).

    The state decides which other fields are expected: ``not_sought`` needs
    ``not_sought_reason``; ``given`` needs ``given_by``, ``date``, ``scope`` and
    ``record_ref``; ``refused`` needs ``refused_by`` and ``date``; ``withdrawn`` needs
    ``date``. The policy engine checks this; parsing does not.
    """

    model_config = _STRICT

    data_subject_role: StrictStr | None = None
    state: StrictStr | None = None
    not_sought_reason: StrictStr | None = None
    p18_consent_reason: StrictStr | None = None
    given_by: StrictStr | None = None
    refused_by: StrictStr | None = None
    date: StrictStr | None = None
    scope: StrictStr | None = None
    record_ref: StrictStr | None = None
    form: StrictStr | None = None

    @field_validator("date")
    @classmethod
    def _check_date(cls, value: str | None) -> str | None:
        return _iso_date(value)

    def p18_reason(self) -> str | None:
        """The Sch 1 para 18(2) reason this entry gives: explicit, else derived from the reason."""
        if self.p18_consent_reason is not None:
            return self.p18_consent_reason
        if self.not_sought_reason is not None:
            return NOT_SOUGHT_REASON_TO_P18.get(self.not_sought_reason)
        return None


class Transparency(BaseModel):
    """Whether the family was told about the sharing and, if not, why and on whose authority."""

    model_config = _STRICT

    informed: StrictStr | None = None
    reason_not_informed: StrictStr | None = None
    decision_authorised_by: StrictStr | None = None
    review_date: StrictStr | None = None
    informed_date: StrictStr | None = None

    @field_validator("review_date", "informed_date")
    @classmethod
    def _check_dates(cls, value: str | None) -> str | None:
        return _iso_date(value)


class BasisTag(BaseModel):
    """A message's declared lawful basis (interchange format version 1).

    Construct with :meth:`model_validate` (strict: raises on anything unexpected),
    :meth:`from_parts` (header codes plus justification), or check someone else's
    tag with :func:`parse_basis` (never raises).
    """

    model_config = _STRICT

    regime: StrictStr | None = None
    art6: list[StrictStr] | None = None
    annex1_condition: StrictStr | None = None
    data_categories: list[StrictStr] | None = None
    special_categories: list[StrictStr] | None = None
    art9_condition: StrictStr | None = None
    sch1_condition: StrictStr | None = None
    art10_sch1_condition: StrictStr | None = None
    art10_underlying_condition: StrictStr | None = None
    sch8_condition: StrictStr | None = None
    gateways: list[StrictStr] | None = None
    p18_purpose: StrictStr | None = None
    p18_consent_reason: StrictStr | None = None
    data_subject_category: StrictStr | None = None
    consent: list[ConsentEntry] | None = None
    service_agreement: StrictStr | None = None
    transparency: Transparency | None = None
    confidentiality_basis: StrictStr | None = None
    onward_disclosure: StrictStr | None = None
    retention_class: StrictStr | None = None
    lia_reference: StrictStr | None = None
    dsa_ref: StrictStr | None = None
    professional_secrecy_basis: StrictStr | None = None
    s16h_purpose: StrictStr | None = None
    request_ref: StrictStr | None = None
    emergency: StrictBool | None = None
    justification: Justification = Field(default_factory=Justification)

    @field_validator("justification", mode="before")
    @classmethod
    def _null_justification(cls, value: object) -> object:
        return Justification() if value is None else value

    # -- the two halves ---------------------------------------------------------------------

    def header_codes(self) -> dict[str, Any]:
        """Everything except ``justification``, JSON-ready, with ``null`` fields dropped.

        This is what goes in the signed, readable message header.
        """
        return self.model_dump(mode="json", exclude_none=True, exclude={"justification"})

    def to_dict(self) -> dict[str, Any]:
        """The whole tag in the README format (nulls dropped; ``justification`` if any text)."""
        result = self.header_codes()
        justification = self.justification.to_dict()
        if justification:
            result["justification"] = justification
        return result

    @classmethod
    def from_parts(
        cls,
        codes: Mapping[str, Any],
        justification: Justification | Mapping[str, Any] | None = None,
    ) -> BasisTag:
        """Rebuild a tag from header codes and the (decrypted) justification.

        Raises ``ValueError`` if ``codes`` carries a justification of its own, and
        pydantic's ``ValidationError`` if either part is malformed.
        """
        if "justification" in codes:
            raise ValueError("header codes must not contain 'justification'; pass it separately")
        data = dict(codes)
        if isinstance(justification, Justification):
            data["justification"] = justification
        elif justification is not None:
            data["justification"] = Justification.model_validate(dict(justification))
        return cls.model_validate(data)

    # -- derived views -------------------------------------------------------------------------

    @property
    def art10_condition(self) -> str | None:
        """The Art 10 Sch 1 condition, without any ``(SCH1_P2_x)`` suffix."""
        return split_art10_condition(self.art10_sch1_condition)[0]

    @property
    def art10_underlying(self) -> str | None:
        """The Part 2 condition para 36 builds on, when the Art 10 condition is para 36.

        Taken from ``art10_underlying_condition``, else from the
        ``SCH1_P3_36(SCH1_P2_18)`` spelling, else it defaults to ``sch1_condition``
        (README). ``None`` when the Art 10 condition is not para 36.
        """
        condition, embedded = split_art10_condition(self.art10_sch1_condition)
        if condition != PARA36:
            return None
        return self.art10_underlying_condition or embedded or self.sch1_condition

    @property
    def art10_underlying_conflict(self) -> bool:
        """True when the para 36 suffix and ``art10_underlying_condition`` disagree."""
        _, embedded = split_art10_condition(self.art10_sch1_condition)
        explicit = self.art10_underlying_condition
        return embedded is not None and explicit is not None and embedded != explicit

    def consent_entries(self) -> tuple[ConsentEntry, ...]:
        """The consent entries (empty when none were given)."""
        return tuple(self.consent or ())

    def p18_consent_reasons(self) -> tuple[str, ...]:
        """The Sch 1 para 18(2) reasons the tag gives, without duplicates, in order.

        The tag-wide ``p18_consent_reason`` first, then each consent entry's explicit
        ``p18_consent_reason`` or the reason derived from its ``not_sought_reason``.
        Values are returned as written (unknown codes included); callers filter.
        """
        reasons: list[str] = []
        candidates = [self.p18_consent_reason] + [e.p18_reason() for e in self.consent_entries()]
        for reason in candidates:
            if reason is not None and reason not in reasons:
                reasons.append(reason)
        return tuple(reasons)


# -- lenient parsing -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasisIssue:
    """A part of a submitted tag that could not be used.

    ``path`` names the field (``consent[0].date``); ``problem`` says what was wrong
    in plain words. Neither ever contains the submitted value.
    """

    kind: Literal["unknown_field", "malformed"]
    path: str
    problem: str


@dataclass(frozen=True, slots=True)
class ParsedBasis:
    """The usable part of a submitted tag and the issues found while reading it."""

    tag: BasisTag
    issues: tuple[BasisIssue, ...]


#: The deepest container :func:`parse_basis` edits: ``consent`` → entry → field.
_MAX_DEPTH = 3

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,48}$")

_PROBLEMS = {
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "model_type": "expected an object",
    "dict_type": "expected an object",
    "model_attributes_type": "expected an object",
    "extra_forbidden": "not a field of this format",
}


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            name = str(item)
            name = name if _SAFE_NAME.fullmatch(name) else "(unprintable name)"
            parts.append(("." if parts else "") + name)
    return "".join(parts) or "(basis)"


def _problem(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind in _PROBLEMS:
        return _PROBLEMS[kind]
    if kind == "value_error":
        ctx = error.get("ctx") or {}
        cause = ctx.get("error") if isinstance(ctx, Mapping) else None
        if isinstance(cause, ValueError) and cause.args:
            return str(cause.args[0])
    return "not in the expected form"


def _sort_key(loc: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, x) if isinstance(x, int) else (1, str(x)) for x in loc)


def _remove(data: Any, loc: tuple[Any, ...]) -> bool:
    """Remove the item at ``loc``; False if ``loc`` cannot be resolved."""
    if not loc:
        return False
    parent = data
    for step in loc[:-1]:
        in_dict = isinstance(parent, dict) and step in parent
        in_list = isinstance(parent, list) and isinstance(step, int) and 0 <= step < len(parent)
        if not (in_dict or in_list):
            return True  # already gone with an enclosing item
        parent = parent[step]
    last = loc[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
        return True
    if isinstance(parent, list) and isinstance(last, int):
        if 0 <= last < len(parent):
            del parent[last]
        return True
    return False


def _copy_containers(value: Any, depth: int) -> Any:
    """Copy dicts and lists down to ``depth`` levels (deeper values are only ever dropped).

    Deliberately not ``copy.deepcopy``: a submitted value may be nested deeply
    enough to exhaust the recursion limit.
    """
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {k: _copy_containers(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_containers(v, depth - 1) for v in value]
    return value


def parse_basis(data: Mapping[str, Any]) -> ParsedBasis:
    """Read a submitted tag leniently: never raises, reports what it had to drop.

    Unknown keys and values of the wrong shape are removed (the whole field, or one
    list element or consent entry) and reported; the rest becomes a :class:`BasisTag`.
    """
    work: Any = _copy_containers(dict(data), _MAX_DEPTH)
    issues: list[BasisIssue] = []
    for _ in range(64):
        try:
            return ParsedBasis(BasisTag.model_validate(work), tuple(issues))
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
        locs: list[tuple[Any, ...]] = []
        for error in errors:
            loc = tuple(error["loc"])
            kind: Literal["unknown_field", "malformed"] = (
                "unknown_field" if error["type"] == "extra_forbidden" else "malformed"
            )
            issues.append(BasisIssue(kind, _path(loc), _problem(error)))
            locs.append(loc)
        for loc in sorted(set(locs), key=_sort_key, reverse=True):
            if not _remove(work, loc):
                return ParsedBasis(
                    BasisTag(), (*issues, BasisIssue("malformed", "(basis)", "unreadable"))
                )
    return ParsedBasis(BasisTag(), (*issues, BasisIssue("malformed", "(basis)", "unreadable")))
