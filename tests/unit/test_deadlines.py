"""Working-day arithmetic and thread deadlines (England and Wales calendar)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.deadlines import (
    DeadlinePolicy,
    DeadlineStatus,
    WorkingCalendar,
    add_working_days,
    thread_deadlines,
    working_days_between,
)
from schemas.lifecycle import ActorRole, ThreadState, ThreadType
from schemas.problems import ConfigurationError
from tests.fixtures import scenarios

LONDON = ZoneInfo("Europe/London")
CAL = WorkingCalendar.england_and_wales(range(2020, 2041))
POLICY = DeadlinePolicy()


def london(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


def by_code(statuses: list[DeadlineStatus]) -> dict[str, DeadlineStatus]:
    return {s.code: s for s in statuses}


# -- the calendar -----------------------------------------------------------------------------


def test_england_and_wales_2026_bank_holidays() -> None:
    calendar = WorkingCalendar.england_and_wales([2026])
    weekday_holidays = {d for d in calendar.holidays if d.weekday() < 5}
    assert weekday_holidays == {
        date(2026, 1, 1),  # New Year's Day
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 6),  # Easter Monday
        date(2026, 5, 4),  # Early May bank holiday
        date(2026, 5, 25),  # Spring bank holiday
        date(2026, 8, 31),  # Summer bank holiday
        date(2026, 12, 25),  # Christmas Day
        date(2026, 12, 28),  # Boxing Day (substitute day)
    }
    assert not calendar.is_working_day(date(2026, 12, 28))
    assert calendar.is_working_day(date(2026, 12, 29))


def test_england_and_wales_share_bank_holidays() -> None:
    years = range(2024, 2031)
    england = holidays.country_holidays("GB", subdiv="ENG", years=years)
    wales = holidays.country_holidays("GB", subdiv="WLS", years=years)
    assert set(england) == set(wales)


def test_calendar_refuses_years_it_does_not_cover() -> None:
    calendar = WorkingCalendar.england_and_wales([2026])
    with pytest.raises(ConfigurationError, match="2027"):
        add_working_days(london(2026, 12, 31, 12, 0), 2, calendar)


def test_unbounded_calendar_from_explicit_dates() -> None:
    calendar = WorkingCalendar({date(2030, 1, 1)})
    assert calendar.years is None
    assert not calendar.is_working_day(date(2030, 1, 1))
    assert calendar.is_working_day(date(2099, 1, 1))  # a Thursday, no list: trusted as given


def test_from_govuk_bank_holidays_document() -> None:
    document = {
        "england-and-wales": {
            "division": "england-and-wales",
            "events": [
                {
                    "title": "Spring bank holiday",
                    "date": "2026-05-25",
                    "notes": "",
                    "bunting": True,
                },
                {"title": "Christmas Day", "date": "2026-12-25", "notes": "", "bunting": True},
            ],
        },
        "scotland": {"division": "scotland", "events": []},
    }
    calendar = WorkingCalendar.from_govuk_bank_holidays(document)
    assert calendar.holidays == {date(2026, 5, 25), date(2026, 12, 25)}
    assert calendar.years == frozenset({2026})
    with pytest.raises(ConfigurationError):
        WorkingCalendar.from_govuk_bank_holidays({"events": []})


def test_weekend_must_leave_working_days() -> None:
    with pytest.raises(ValueError, match="weekend"):
        WorkingCalendar((), weekend=range(7))


# -- add_working_days: the rule, literally -----------------------------------------------------


def test_scenario_7_noah_friday_before_bank_holiday_monday() -> None:
    # GP refers Noah at 15:00 on Friday 22 May 2026; Monday 25 May is the spring bank holiday.
    due = add_working_days(scenarios.S7_REFERRAL_AT, 1, CAL)
    assert due == london(2026, 5, 26, 23, 59, 59)  # end of Tuesday, BST
    assert due == datetime(2026, 5, 26, 22, 59, 59, tzinfo=UTC)
    assert due.tzinfo is UTC


def test_brief_example_friday_1400_before_bank_holiday() -> None:
    assert add_working_days(london(2026, 8, 28, 14, 0), 1, CAL) == london(2026, 9, 1, 23, 59, 59)


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # an ordinary Tuesday morning -> end of Wednesday
        (london(2026, 11, 24, 9, 30), 1, london(2026, 11, 25, 23, 59, 59)),
        # late on a working day: the start day never counts
        (london(2026, 11, 24, 23, 59), 1, london(2026, 11, 25, 23, 59, 59)),
        # Saturday and Sunday count from Monday
        (london(2026, 11, 28, 10, 0), 1, london(2026, 11, 30, 23, 59, 59)),
        (london(2026, 11, 29, 10, 0), 1, london(2026, 11, 30, 23, 59, 59)),
        # Easter: Thursday 2 April -> Good Friday and Easter Monday skipped
        (london(2026, 4, 2, 16, 0), 1, london(2026, 4, 7, 23, 59, 59)),
        # Christmas Eve 2026 -> 25th and substitute Boxing Day (28th) skipped
        (london(2026, 12, 24, 11, 0), 1, london(2026, 12, 29, 23, 59, 59)),
        # on a bank holiday itself
        (london(2026, 5, 25, 9, 0), 1, london(2026, 5, 26, 23, 59, 59)),
        # several days
        (london(2026, 11, 24, 9, 30), 5, london(2026, 12, 1, 23, 59, 59)),
        # n = 0: end of the same working day, or of the next working day
        (london(2026, 11, 24, 9, 30), 0, london(2026, 11, 24, 23, 59, 59)),
        (london(2026, 11, 28, 9, 30), 0, london(2026, 11, 30, 23, 59, 59)),
    ],
)
def test_add_working_days_examples(start: datetime, n: int, due: datetime) -> None:
    assert add_working_days(start, n, CAL) == due


def test_local_day_is_used_not_the_utc_day() -> None:
    # 23:30 UTC on Monday 25 May is 00:30 BST on Tuesday: the clock starts on Tuesday.
    start = datetime(2026, 5, 25, 23, 30, tzinfo=UTC)
    assert add_working_days(start, 1, CAL) == london(2026, 5, 27, 23, 59, 59)


def test_across_the_clock_change() -> None:
    # Friday 27 March 2026 (GMT) -> Monday 30 March (BST, clocks went forward on the 29th).
    due = add_working_days(london(2026, 3, 27, 12, 0), 1, CAL)
    assert due == datetime(2026, 3, 30, 22, 59, 59, tzinfo=UTC)
    winter = add_working_days(london(2026, 11, 24, 12, 0), 1, CAL)
    assert winter == datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC)


def test_add_working_days_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(london(2026, 1, 5, 9, 0), -1, CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_days(datetime(2026, 1, 5, 9, 0), 1, CAL)


@pytest.mark.parametrize(
    ("a", "b", "days"),
    [
        (london(2026, 5, 22, 15, 0), london(2026, 5, 26, 9, 0), 1),
        (london(2026, 5, 22, 15, 0), london(2026, 5, 22, 23, 0), 0),
        (london(2026, 5, 22, 15, 0), london(2026, 5, 25, 9, 0), 0),  # only the bank holiday
        (london(2026, 12, 24, 9, 0), london(2027, 1, 4, 9, 0), 4),  # 29, 30, 31 Dec, 4 Jan
        (london(2026, 5, 26, 9, 0), london(2026, 5, 22, 15, 0), -1),
    ],
)
def test_working_days_between_examples(a: datetime, b: datetime, days: int) -> None:
    assert working_days_between(a, b, CAL) == days


# -- properties -------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2039, 12, 1), timezones=st.just(UTC)
)
limits = st.integers(min_value=0, max_value=45)


@given(instants, limits)
def test_deadline_never_lands_on_a_weekend_or_holiday(start: datetime, n: int) -> None:
    due = add_working_days(start, n, CAL)
    local = due.astimezone(LONDON)
    assert local.weekday() < 5
    assert local.date() not in CAL.holidays
    assert (local.hour, local.minute, local.second) == (23, 59, 59)
    assert due > start


@given(instants, instants, limits)
def test_deadline_is_monotonic_in_start(a: datetime, b: datetime, n: int) -> None:
    early, late = sorted((a, b))
    assert add_working_days(early, n, CAL) <= add_working_days(late, n, CAL)


@given(instants, limits, limits)
def test_deadline_is_monotonic_in_n(start: datetime, m: int, n: int) -> None:
    small, big = sorted((m, n))
    assert add_working_days(start, small, CAL) <= add_working_days(start, big, CAL)
    # Strictly later for n >= 1. n = 0 ("by the end of today") on a weekend or bank
    # holiday means the end of the next working day, the same day as n = 1.
    if 1 <= small < big:
        assert add_working_days(start, small, CAL) < add_working_days(start, big, CAL)


def test_zero_days_from_a_bank_holiday_is_the_next_working_day() -> None:
    new_year = datetime(2020, 1, 1, 10, 0, tzinfo=UTC)  # a Wednesday and a bank holiday
    assert add_working_days(new_year, 0, CAL) == add_working_days(new_year, 1, CAL)
    assert CAL.local_date(add_working_days(new_year, 0, CAL)).isoformat() == "2020-01-02"


@given(instants, st.integers(min_value=1, max_value=45))
def test_working_days_between_inverts_add_working_days(start: datetime, n: int) -> None:
    due = add_working_days(start, n, CAL)
    assert working_days_between(start, due, CAL) == n
    assert working_days_between(due, start, CAL) == -n
    # one second later is past the deadline day, into a later day
    assert CAL.local_date(due + timedelta(seconds=1)) > CAL.local_date(due)


# -- thread deadlines -------------------------------------------------------------------------


def test_scenario_7_noah_becomes_overdue_after_tuesday() -> None:
    delivered = scenarios.S7_REFERRAL_AT + timedelta(seconds=3)

    def at(now: datetime) -> dict[str, DeadlineStatus]:
        return by_code(
            thread_deadlines(
                ThreadState.DELIVERED,
                delivered,
                None,
                None,
                None,
                now,
                CAL,
                POLICY,
                submitted_at=scenarios.S7_REFERRAL_AT,
            )
        )

    tuesday_evening = at(london(2026, 5, 26, 23, 59, 59))
    assert set(tuesday_evening) == {"T_DELIVERY", "T_ACK_REFERRAL", "T_DECISION"}
    assert tuesday_evening["T_ACK_REFERRAL"].due == london(2026, 5, 26, 23, 59, 59)
    assert not any(s.overdue for s in tuesday_evening.values())

    wednesday = at(london(2026, 5, 27, 0, 0, 0))
    ack, decision = wednesday["T_ACK_REFERRAL"], wednesday["T_DECISION"]
    assert ack.overdue
    assert decision.overdue
    assert ack.owner is decision.owner is ActorRole.RECIPIENT
    assert ack.met_at is None
    assert not wednesday["T_DELIVERY"].overdue
    assert wednesday["T_DELIVERY"].met_at == delivered


def test_scenario_1_maya_all_met_on_time() -> None:
    delivered = scenarios.S1_REFERRAL_AT + timedelta(seconds=2)
    acknowledged = scenarios.london(2026, 11, 24, 9, 31)
    feedback = scenarios.london(2026, 11, 24, 13, 12)
    statuses = by_code(
        thread_deadlines(
            ThreadState.DECISION_GIVEN,
            delivered,
            acknowledged,
            scenarios.maya_decision().decided_at,
            feedback,
            london(2026, 12, 15, 9, 0),
            CAL,
            POLICY,
        )
    )
    assert list(statuses) == ["T_ACK_REFERRAL", "T_DECISION", "T_FEEDBACK"]
    assert statuses["T_ACK_REFERRAL"].met_at == acknowledged
    assert statuses["T_DECISION"].met_at == datetime(2026, 11, 24, 13, 10, tzinfo=UTC)
    assert statuses["T_FEEDBACK"].started_at == statuses["T_DECISION"].met_at
    assert statuses["T_FEEDBACK"].met_at == feedback
    assert not any(s.overdue or s.met_late for s in statuses.values())


def test_decision_counts_as_acknowledgement_and_feedback_time_is_decision_time() -> None:
    delivered = london(2026, 5, 22, 15, 0)
    feedback = london(2026, 5, 26, 11, 0)
    statuses = by_code(
        thread_deadlines(
            ThreadState.DECISION_GIVEN,
            delivered,
            None,
            None,
            feedback,
            london(2026, 6, 1, 9, 0),
            CAL,
            POLICY,
        )
    )
    assert statuses["T_ACK_REFERRAL"].met_at == feedback
    assert statuses["T_DECISION"].met_at == feedback
    assert statuses["T_FEEDBACK"].started_at == feedback
    assert statuses["T_FEEDBACK"].met_at == feedback


def test_late_deadlines_are_met_late_not_overdue() -> None:
    delivered = london(2026, 5, 22, 15, 0)
    acknowledged = london(2026, 5, 27, 9, 0)
    statuses = by_code(
        thread_deadlines(
            ThreadState.ACKNOWLEDGED,
            delivered,
            acknowledged,
            None,
            None,
            london(2026, 5, 27, 9, 5),
            CAL,
            POLICY,
        )
    )
    assert statuses["T_ACK_REFERRAL"].met_late
    assert not statuses["T_ACK_REFERRAL"].overdue
    assert statuses["T_DECISION"].overdue
    assert "T_FEEDBACK" not in statuses


def test_separate_decision_time_starts_the_feedback_clock() -> None:
    delivered = london(2026, 11, 24, 9, 30)
    decided = london(2026, 11, 24, 16, 0)
    feedback = london(2026, 11, 27, 10, 0)  # Friday: after the end of Wednesday
    statuses = by_code(
        thread_deadlines(
            ThreadState.DECISION_GIVEN,
            delivered,
            None,
            decided,
            feedback,
            london(2026, 11, 30, 9, 0),
            CAL,
            POLICY,
        )
    )
    assert statuses["T_DECISION"].met_at == decided
    assert not statuses["T_DECISION"].met_late
    assert statuses["T_FEEDBACK"].due == london(2026, 11, 25, 23, 59, 59)
    assert statuses["T_FEEDBACK"].met_late


@pytest.mark.parametrize(
    "state", [ThreadState.WITHDRAWN, ThreadState.REJECTED, ThreadState.EXPIRED, ThreadState.CLOSED]
)
def test_clocks_stop_when_the_thread_is_not_open(state: ThreadState) -> None:
    statuses = thread_deadlines(
        state,
        london(2026, 5, 22, 15, 0),
        None,
        None,
        None,
        london(2026, 7, 1, 9, 0),
        CAL,
        POLICY,
        submitted_at=london(2026, 5, 22, 15, 0),
    )
    assert statuses
    assert not any(s.overdue for s in statuses)


def test_undelivered_thread_has_only_the_delivery_clock() -> None:
    submitted = london(2026, 5, 22, 15, 0)
    statuses = thread_deadlines(
        ThreadState.SUBMITTED,
        None,
        None,
        None,
        None,
        london(2026, 6, 1, 23, 59, 59),
        CAL,
        POLICY,
        submitted_at=submitted,
    )
    assert [s.code for s in statuses] == ["T_DELIVERY"]
    # five working days after Friday 22 May, skipping the bank holiday: Tue-Fri, then Monday
    assert statuses[0].due == london(2026, 6, 1, 23, 59, 59)
    assert not statuses[0].overdue
    later = thread_deadlines(
        ThreadState.SUBMITTED,
        None,
        None,
        None,
        None,
        london(2026, 6, 2, 0, 0),
        CAL,
        POLICY,
        submitted_at=submitted,
    )
    assert later[0].overdue


def test_no_submission_time_and_no_delivery_means_no_clocks() -> None:
    statuses = thread_deadlines(
        ThreadState.SUBMITTED, None, None, None, None, london(2026, 6, 1, 9, 0), CAL, POLICY
    )
    assert statuses == []


def test_a_reply_without_a_recorded_receipt_counts_as_delivery() -> None:
    acknowledged = london(2026, 11, 24, 10, 0)
    statuses = by_code(
        thread_deadlines(
            ThreadState.ACKNOWLEDGED,
            None,
            acknowledged,
            None,
            None,
            london(2026, 11, 24, 11, 0),
            CAL,
            POLICY,
        )
    )
    assert statuses["T_ACK_REFERRAL"].started_at == acknowledged


@pytest.mark.parametrize("thread_type", [ThreadType.NOTIFICATION, ThreadType.REQUEST])
def test_notification_and_request_threads_carry_no_referral_clocks(
    thread_type: ThreadType,
) -> None:
    statuses = thread_deadlines(
        ThreadState.DELIVERED,
        london(2026, 2, 3, 10, 0),
        None,
        None,
        None,
        london(2026, 3, 1, 9, 0),
        CAL,
        POLICY,
        submitted_at=london(2026, 2, 3, 10, 0),
        thread_type=thread_type,
    )
    assert [s.code for s in statuses] == ["T_DELIVERY"]
    assert not statuses[0].overdue


def test_policy_limits_are_configurable() -> None:
    policy = DeadlinePolicy(ack_working_days=2, decision_working_days=3)
    statuses = by_code(
        thread_deadlines(
            ThreadState.DELIVERED,
            london(2026, 5, 22, 15, 0),
            None,
            None,
            None,
            london(2026, 5, 22, 16, 0),
            CAL,
            policy,
        )
    )
    assert statuses["T_ACK_REFERRAL"].due == london(2026, 5, 27, 23, 59, 59)
    assert statuses["T_DECISION"].due == london(2026, 5, 28, 23, 59, 59)


def test_policy_defaults_and_validation() -> None:
    assert POLICY.model_dump() == {
        "ack_working_days": 1,
        "decision_working_days": 1,
        "feedback_working_days": 1,
        "undelivered_expiry_working_days": 5,
    }
    with pytest.raises(ValidationError):
        DeadlinePolicy(ack_working_days=-1)
    with pytest.raises(ValidationError):
        DeadlinePolicy(ack_working_days="1")
    with pytest.raises(ValidationError):
        DeadlinePolicy(surprise=1)  # type: ignore[call-arg]


def test_thread_deadlines_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="now"):
        thread_deadlines(
            ThreadState.DELIVERED,
            london(2026, 5, 22, 15, 0),
            None,
            None,
            None,
            datetime(2026, 5, 23, 9, 0),
            CAL,
            POLICY,
        )


def test_deadline_status_to_dict() -> None:
    status = by_code(
        thread_deadlines(
            ThreadState.DELIVERED,
            scenarios.S7_REFERRAL_AT,
            None,
            None,
            None,
            london(2026, 5, 27, 9, 0),
            CAL,
            POLICY,
        )
    )["T_ACK_REFERRAL"]
    assert status.to_dict() == {
        "code": "T_ACK_REFERRAL",
        "owner": "recipient",
        "started_at": "2026-05-22T14:00:00Z",
        "due": "2026-05-26T22:59:59Z",
        "met_at": None,
        "overdue": True,
        "met_late": False,
        "cite": "WT2023 ch.3; KCSIE Part one",
    }
