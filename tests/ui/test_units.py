"""Pure pieces of the web page: passwords, sessions, settings, the referral form, display."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agency_client.ui import display
from agency_client.ui.app import safe_next
from agency_client.ui.referral import (
    basis_from_answers,
    contents_from_form,
    contents_guess,
    data_categories,
    referral_from_form,
)
from agency_client.ui.sessions import SessionStore
from agency_client.ui.settings import UISettings, is_loopback
from agency_client.ui.users import SignInGuard, UserStore, hash_password, verify_password
from schemas.policy.guidance import suggest_basis
from schemas.problems import ConfigurationError, InvalidRequest

T0 = datetime(2026, 5, 22, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_passwords_are_argon2id_hashes() -> None:
    stored = hash_password("three random words here")
    assert stored.startswith("$argon2id$")
    assert "three" not in stored
    assert verify_password(stored, "three random words here")
    assert not verify_password(stored, "three random words hero")
    assert not verify_password("not a hash", "anything")
    with pytest.raises(InvalidRequest, match="at least 12"):
        hash_password("short")


async def test_user_store_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = UserStore(tmp_path / "ui-users.json")
    store.add("Priya", name="Priya Shah", job_role="DSL", password="correct horse battery", now=T0)
    assert (tmp_path / "ui-users.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(InvalidRequest, match="already"):
        store.add("priya", name="P", job_role="R", password="another long password", now=T0)
    assert await store.authenticate("PRIYA", "correct horse battery") is not None
    assert await store.authenticate("priya", "wrong horse battery") is None
    assert await store.authenticate("nobody", "correct horse battery") is None
    store.remove("priya")
    assert store.load() == {}


def test_sign_in_guard_locks_and_unlocks() -> None:
    clock = Clock()
    guard = SignInGuard(3, timedelta(minutes=15), clock)
    for _ in range(2):
        guard.failed("priya")
    assert not guard.locked("priya")
    guard.failed("priya")
    assert guard.locked("priya")
    assert not guard.locked("tom")
    clock.now += timedelta(minutes=16)
    assert not guard.locked("priya")


def test_sessions_rotate_and_expire() -> None:
    clock = Clock()
    store = SessionStore(
        idle_timeout=timedelta(minutes=30), absolute_timeout=timedelta(hours=10), clock=clock
    )
    anonymous = store.anonymous()
    signed = store.sign_in(anonymous, "priya", "hash")
    assert signed.id != anonymous.id
    assert signed.csrf_token != anonymous.csrf_token
    assert store.lookup(anonymous.id, touch=True) == (None, False)
    clock.now += timedelta(minutes=29)
    assert store.lookup(signed.id, touch=True)[0] is signed
    clock.now += timedelta(minutes=29)  # touched 29 minutes ago: still live
    assert store.lookup(signed.id, touch=False)[0] is signed
    clock.now += timedelta(minutes=2)  # not touched for 31 minutes
    assert store.lookup(signed.id, touch=True) == (None, True)
    day = store.sign_in(None, "priya", "hash")
    for _ in range(40):
        clock.now += timedelta(minutes=20)
        session, expired = store.lookup(day.id, touch=True)
        if session is None:
            break
    assert expired
    assert clock.now - day.created_at > timedelta(hours=10)
    assert not signed.csrf_ok("")
    assert not day.csrf_ok("nope")
    assert day.csrf_ok(day.csrf_token)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/threads/abc", "/threads/abc"),
        ("/?show=overdue", "/?show=overdue"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_settings_serve_this_machine_only() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(ConfigurationError, match="this machine only"):
        UISettings(host="0.0.0.0")
    assert UISettings(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"
    with pytest.raises(ConfigurationError, match="tls-key"):
        UISettings(tls_cert=__import__("pathlib").Path("cert.pem"))
    assert not UISettings().cookies_secure
    assert UISettings(secure_cookies=True).cookies_secure


def _form(**values: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in values.items()}


def test_referral_form_errors_name_the_field() -> None:
    _, _, errors = referral_from_form({})
    assert errors["child_given_name"] == "Enter the child's first name"
    assert errors["concern_categories"].startswith("Choose at least one")
    assert "sent_by_phone" in errors
    _, _, errors = referral_from_form(
        _form(
            to="mash/front-door",
            child_given_name="Leo",
            child_address_line="1 Elm Row",
            child_postcode="ZZZZZZ",
            concern_categories="neglect",
            concern_summary="Often hungry.",
            child_location_now="Nursery",
            immediate_risk="no",
            safe_to_go_home="yes",
            parents_aware="yes",
            sent_by_name="Ann",
            sent_by_role="Nursery manager",
            sent_by_phone="01632 960400",
        )
    )
    assert list(errors) == ["child_postcode"]
    assert errors["child_postcode"] == "Postcode must be a UK postcode like AB1 2CD"
    assert "ZZZZZZ" not in errors["child_postcode"]


def test_contents_guess_and_basis_answers() -> None:
    recipient, fields, errors = referral_from_form(
        _form(
            to="mash/front-door",
            child_given_name="Maya",
            hh0_name="Craig Dawson",
            hh0_relationship="stepfather",
            hh0_alleged="yes",
            concern_categories="physical_abuse",
            concern_summary="A bruise.",
            child_location_now="School",
            immediate_risk="yes",
            safe_to_go_home="unknown",
            parents_aware="no",
            parents_reason="Risk.",
            sent_by_name="Priya Shah",
            sent_by_role="DSL",
            sent_by_email="dsl@oakfield-primary.example",
        )
    )
    assert errors == {}
    assert recipient == "mash/front-door"
    guess = contents_guess(fields)
    assert guess == {"special": True, "special_categories": ["health"], "criminal": True}
    _, errors = contents_from_form(_form(special="yes", criminal="no"))
    assert errors == {
        "special_categories": "Choose which kinds of sensitive information it includes"
    }
    suggestion = suggest_basis(
        "maintained_school",
        "local_authority_childrens_services",
        "REFERRAL",
        data_categories(guess),
    )
    basis, errors = basis_from_answers(suggestion, guess, _form(art6="A6_1_f"))
    assert basis["art6"] == ["A6_1_f"]
    assert "annex1_condition" not in basis
    assert {"necessity", "told_family", "consent_parent_or_pr_holder_reason"} <= set(errors)


def test_times_are_shown_in_uk_local_time() -> None:
    assert display.local_time("2026-05-22T14:00:00Z") == "Fri 22 May 2026, 15:00"
    assert display.local_time("2026-12-01T14:00:00Z") == "Tue 01 Dec 2026, 14:00"
    assert display.local_time(None) == ""
    assert display.label(display.OUTCOME_LABELS, "STRATEGY_S47").startswith("Strategy")
    assert display.label(display.OUTCOME_LABELS, "NEW_CODE") == "New code"
