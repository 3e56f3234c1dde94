"""The basis tag: the README interchange format, its two halves, lenient parsing."""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.codes import NotSoughtReason
from schemas.lawful_basis import (
    NOT_SOUGHT_REASON_TO_P18,
    BasisTag,
    ConsentEntry,
    Justification,
    Transparency,
    parse_basis,
    split_art10_condition,
)

CASES_DIR = pathlib.Path(__file__).resolve().parent.parent / "policy_cases"
README_TAG: dict[str, Any] = json.loads((CASES_DIR / "readme_example.json").read_text())["basis"]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# -- the README format ---------------------------------------------------------------------------


def test_readme_tag_parses_strictly() -> None:
    tag = BasisTag.model_validate(README_TAG)
    assert tag.art6 == ["A6_1_e"]
    assert tag.consent_entries()[0].not_sought_reason == "data_subject_is_alleged_perpetrator"
    assert tag.transparency == Transparency(
        informed="no",
        reason_not_informed="would_increase_risk_to_child",
        decision_authorised_by="DSL",
    )
    assert tag.justification.statutory_function_citation == "Education Act 2002 s.175(2)"
    assert tag.emergency is False


def test_header_codes_are_the_tag_without_justification_or_nulls() -> None:
    tag = BasisTag.model_validate(README_TAG)
    expected = _without_nulls({k: v for k, v in README_TAG.items() if k != "justification"})
    assert tag.header_codes() == expected
    assert "justification" not in tag.header_codes()
    assert "annex1_condition" not in tag.header_codes()
    json.dumps(tag.header_codes())


def test_header_codes_drop_nested_nulls() -> None:
    tag = BasisTag.model_validate(
        {"consent": [{"state": "given", "scope": None}], "transparency": {"informed": "yes"}}
    )
    assert tag.header_codes() == {
        "consent": [{"state": "given"}],
        "transparency": {"informed": "yes"},
    }


def test_from_parts_round_trips() -> None:
    tag = BasisTag.model_validate(README_TAG)
    assert BasisTag.from_parts(tag.header_codes(), tag.justification) == tag
    assert BasisTag.from_parts(tag.header_codes(), tag.justification.to_dict()) == tag
    assert BasisTag.from_parts(tag.header_codes()).justification == Justification()
    assert BasisTag.model_validate(tag.to_dict()) == tag


def test_from_parts_refuses_a_justification_in_the_header() -> None:
    with pytest.raises(ValueError, match="justification"):
        BasisTag.from_parts(README_TAG, None)


def test_to_dict_includes_justification_only_when_there_is_text() -> None:
    tag = BasisTag.model_validate({"art6": ["A6_1_e"]})
    assert tag.to_dict() == {"art6": ["A6_1_e"]}
    with_text = BasisTag.model_validate({"art6": ["A6_1_e"], "justification": {"necessity": "x"}})
    assert with_text.to_dict()["justification"] == {"necessity": "x"}


def test_missing_and_null_mean_the_same() -> None:
    nulls = {name: None for name in BasisTag.model_fields}
    assert BasisTag.model_validate(nulls) == BasisTag()
    assert BasisTag.model_validate({"justification": None}).justification == Justification()
    assert BasisTag.model_validate({}).header_codes() == {}


def test_unknown_codes_never_break_parsing() -> None:
    tag = BasisTag.model_validate(
        {"art6": ["A6_1_zz"], "regime": "MARS", "consent": [{"state": "maybe"}]}
    )
    assert tag.art6 == ["A6_1_zz"]
    assert tag.regime == "MARS"


@pytest.mark.parametrize(
    "data",
    [
        {"child_name": "x"},
        {"consent": [{"state": "given", "note": "x"}]},
        {"transparency": {"informed": "no", "why": "x"}},
        {"justification": {"feelings": "x"}},
        {"emergency": "yes"},
        {"emergency": 1},
        {"art6": "A6_1_e"},
        {"art6": [6]},
        {"consent": {"state": "given"}},
        {"consent": [{"date": "24/11/2026"}]},
        {"consent": [{"date": "2026-02-30"}]},
        {"transparency": {"review_date": "soon"}},
        {"retention_class": 25},
    ],
)
def test_strict_validation_refuses_what_the_format_does_not_allow(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BasisTag.model_validate(data)


def test_models_are_frozen() -> None:
    tag = BasisTag.model_validate(README_TAG)
    with pytest.raises(ValidationError):
        tag.regime = "DPA_PART3"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        tag.justification.necessity = "x"  # type: ignore[misc]


def test_justification_text_is_stripped() -> None:
    j = Justification(necessity="  now  ", proportionality="   ")
    assert j.text("necessity") == "now"
    assert j.text("proportionality") == ""
    assert j.text("public_interest") == ""


# -- para 18 consent reasons ------------------------------------------------------------------

EXPECTED_MAPPING = {
    "would_increase_risk_to_child": "p18_2_c",
    "would_prejudice_enquiry_or_investigation": "p18_2_c",
    "urgency_delay_would_cause_harm": "p18_2_b",
    "cannot_be_given_age_or_capacity": "p18_2_a",
    "cannot_reasonably_obtain_unreachable": "p18_2_b",
    "data_subject_is_alleged_perpetrator": "p18_2_c",
    "risk_to_another_person": "p18_2_c",
    "other": None,
}


def test_mapping_covers_every_not_sought_reason() -> None:
    assert set(NOT_SOUGHT_REASON_TO_P18) == {r.value for r in NotSoughtReason}
    assert dict(NOT_SOUGHT_REASON_TO_P18) == EXPECTED_MAPPING


@pytest.mark.parametrize(("reason", "p18"), sorted(EXPECTED_MAPPING.items()))
def test_p18_reason_is_derived_from_not_sought_reason(reason: str, p18: str | None) -> None:
    entry = ConsentEntry(state="not_sought", not_sought_reason=reason)
    assert entry.p18_reason() == p18
    tag = BasisTag(consent=[entry])
    assert tag.p18_consent_reasons() == (() if p18 is None else (p18,))


def test_explicit_p18_reason_wins() -> None:
    entry = ConsentEntry(
        state="not_sought", not_sought_reason="other", p18_consent_reason="p18_2_b"
    )
    assert entry.p18_reason() == "p18_2_b"
    refused = ConsentEntry(state="refused", p18_consent_reason="p18_2_c")
    assert refused.p18_reason() == "p18_2_c"
    assert ConsentEntry(state="refused").p18_reason() is None


def test_p18_reasons_in_order_without_repeats_including_the_tag_default() -> None:
    assert BasisTag.model_validate(README_TAG).p18_consent_reasons() == ("p18_2_c", "p18_2_a")
    tag = BasisTag.model_validate(
        {
            "p18_consent_reason": "p18_2_b",
            "consent": [
                {"state": "not_sought", "not_sought_reason": "risk_to_another_person"},
                {"state": "not_sought", "not_sought_reason": "would_increase_risk_to_child"},
            ],
        }
    )
    assert tag.p18_consent_reasons() == ("p18_2_b", "p18_2_c")


# -- Art 10 via para 36 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SCH1_P3_36(SCH1_P2_18)", ("SCH1_P3_36", "SCH1_P2_18")),
        ("SCH1_P3_36", ("SCH1_P3_36", None)),
        ("SCH1_P2_10", ("SCH1_P2_10", None)),
        ("SCH1_P2_10(SCH1_P2_18)", ("SCH1_P2_10(SCH1_P2_18)", None)),
        (None, (None, None)),
    ],
)
def test_split_art10_condition(value: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_art10_condition(value) == expected


def test_art10_underlying_defaults_to_sch1_condition_for_para36() -> None:
    tag = BasisTag.model_validate(README_TAG)
    assert tag.art10_condition == "SCH1_P3_36"
    assert tag.art10_underlying == "SCH1_P2_18"


def test_art10_underlying_from_the_model_spelling_and_explicit_field() -> None:
    spelled = BasisTag(art10_sch1_condition="SCH1_P3_36(SCH1_P2_6)", sch1_condition="SCH1_P2_18")
    assert spelled.art10_condition == "SCH1_P3_36"
    assert spelled.art10_underlying == "SCH1_P2_6"
    assert not spelled.art10_underlying_conflict
    explicit = BasisTag(
        art10_sch1_condition="SCH1_P3_36",
        art10_underlying_condition="SCH1_P2_10",
        sch1_condition="SCH1_P2_18",
    )
    assert explicit.art10_underlying == "SCH1_P2_10"
    conflict = BasisTag(
        art10_sch1_condition="SCH1_P3_36(SCH1_P2_18)", art10_underlying_condition="SCH1_P2_6"
    )
    assert conflict.art10_underlying_conflict
    assert BasisTag(art10_sch1_condition="SCH1_P2_10").art10_underlying is None
    assert BasisTag(sch1_condition="SCH1_P2_18").art10_underlying is None


# -- lenient parsing ----------------------------------------------------------------------


def test_parse_basis_of_a_good_tag_reports_nothing() -> None:
    parsed = parse_basis(README_TAG)
    assert parsed.issues == ()
    assert parsed.tag == BasisTag.model_validate(README_TAG)


def test_parse_basis_drops_and_reports_what_it_cannot_read() -> None:
    data = copy.deepcopy(README_TAG)
    data["emergency"] = "no"
    data["art6"] = ["A6_1_e", 7]
    data["colour"] = "blue"
    data["consent"] = [
        {"state": "given", "date": "2026-13-01", "x": 1},
        "junk",
        {"state": "refused"},
    ]
    data["transparency"] = 5
    parsed = parse_basis(data)
    found = {(i.kind, i.path) for i in parsed.issues}
    assert found == {
        ("malformed", "emergency"),
        ("malformed", "art6[1]"),
        ("unknown_field", "colour"),
        ("malformed", "consent[0].date"),
        ("unknown_field", "consent[0].x"),
        ("malformed", "consent[1]"),
        ("malformed", "transparency"),
    }
    tag = parsed.tag
    assert tag.emergency is None
    assert tag.art6 == ["A6_1_e"]
    assert [e.state for e in tag.consent_entries()] == ["given", "refused"]
    assert tag.transparency is None
    assert tag.sch1_condition == "SCH1_P2_18"  # the rest survives
    date_issue = next(i for i in parsed.issues if i.path == "consent[0].date")
    assert date_issue.problem == "not a real calendar date"


def test_parse_basis_never_echoes_values_or_odd_key_names() -> None:
    parsed = parse_basis({"Maya Pemberton lives at 4 Elm Rd": 1, "regime": ["Maya Pemberton"]})
    text = repr(parsed.issues)
    assert "Pemberton" not in text
    assert "(unprintable name)" in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
structured = st.dictionaries(
    st.sampled_from([*BasisTag.model_fields, "extra"]),
    json_values
    | st.lists(st.dictionaries(st.sampled_from([*ConsentEntry.model_fields, "y"]), json_values)),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6) | structured)
def test_parse_basis_never_raises(data: dict[str, Any]) -> None:
    parsed = parse_basis(data)
    assert isinstance(parsed.tag, BasisTag)
    # What survives is valid under the strict model, and no key is silently dropped.
    assert BasisTag.model_validate(parsed.tag.to_dict()) == parsed.tag
    reported = {i.path.split("[")[0].split(".")[0] for i in parsed.issues}
    for key in data:
        if key not in BasisTag.model_fields:
            assert key in reported or "(unprintable name)" in reported
