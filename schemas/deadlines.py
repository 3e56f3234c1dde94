"""Working-day deadlines: when each side of a thread owes the other something.

Theory of operation
-------------------
Working Together 2023 sets its referral timescales in **working days**: Monday to
Friday, excluding bank holidays in England and Wales (which share one list). A
:class:`WorkingCalendar` holds that list, built from explicit dates (pure; for a
partnership's own calendar or gov.uk's ``bank-holidays.json``) or from the
maintained ``holidays`` package with :meth:`WorkingCalendar.england_and_wales`. A
calendar built for given years refuses dates outside them rather than guess.

**The rule.** A limit of *n* working days means the deadline is **the end of the
n-th working day after the day the clock started**, in the calendar's time zone
(Europe/London): 23:59:59 local time on that day, returned as an aware UTC
datetime. The day the clock starts never counts, whatever the time of day; so a
clock that starts on a weekend or bank holiday counts from the next working day.

* Delivered Friday 22 May 2026 15:00 (the Monday is the spring bank holiday):
  one working day ends Tuesday 26 May 23:59:59 BST.
* Delivered Saturday: one working day ends Monday 23:59:59 (if Monday works).
* ``n = 0`` means the end of the start day itself if it is a working day, else
  the end of the next working day.

A deadline is **met** by the first event that satisfies it (at or before ``due``
is on time, after is late) and **overdue** while it is unmet, ``now`` is after
``due`` and the thread is still open. Overdue is never a thread state (see
:mod:`schemas.lifecycle`): it is recomputed from timestamps whenever asked, so
the relay can name who is overdue without reading content.

**Clocks on a referral thread** (:func:`thread_deadlines`), all owned by the
recipient (the front door):

* ``T_DELIVERY`` (platform): from submission, the recipient's client must collect
  the referral within ``undelivered_expiry_working_days``; once overdue the relay
  expires the thread so the referrer knows to use another route.
* ``T_ACK_REFERRAL``: from delivery (the signed receipt; "referral received"),
  acknowledge within ``ack_working_days``. A decision counts as an
  acknowledgement.
* ``T_DECISION``: from delivery, decide within ``decision_working_days``.
* ``T_FEEDBACK``: from the decision, feed it back within ``feedback_working_days``.

In this product the decision is communicated by the ``DECISION_FEEDBACK`` message,
so the decision time *is* the feedback time unless the header gives a separate
``decided_at``. Notification and request threads carry only ``T_DELIVERY``: the
relay cannot see a request's ``response_due_by`` (it is in the encrypted body).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from schemas.lifecycle import ActorRole, ThreadState, ThreadType, is_open
from schemas.problems import ConfigurationError
from schemas.timefmt import format_time

__all__ = [
    "DEADLINE_CITES",
    "LONDON",
    "DeadlinePolicy",
    "DeadlineStatus",
    "WorkingCalendar",
    "add_working_days",
    "thread_deadlines",
    "working_days_between",
]

#: The time zone of England and Wales.
LONDON: Final = "Europe/London"

#: Where each deadline code comes from.
DEADLINE_CITES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "T_DELIVERY": "Exchange platform rule: undelivered expiry",
        "T_ACK_REFERRAL": "WT2023 ch.3; KCSIE Part one",
        "T_DECISION": "WT2023 ch.3; KCSIE Part one",
        "T_FEEDBACK": "WT2023 ch.3 (feedback duty); the limit is local practice",
    }
)

_END_OF_DAY = time(23, 59, 59)


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return moment


class WorkingCalendar:
    """Which days are working days: weekdays that are not holidays, in one time zone.

    Pure: the holiday dates are given. ``years``, when given, is the span the
    list is known to cover; asking about a date outside it raises
    :class:`ConfigurationError` instead of silently treating a missing bank
    holiday as a working day.
    """

    __slots__ = ("_holidays", "_tz", "_weekend", "_years")

    def __init__(
        self,
        holidays: Iterable[date],
        *,
        tz: str = LONDON,
        years: Iterable[int] | None = None,
        weekend: Iterable[int] = (5, 6),
    ) -> None:
        self._holidays = frozenset(holidays)
        self._tz = ZoneInfo(tz)
        self._years = None if years is None else frozenset(years)
        self._weekend = frozenset(weekend)
        if not self._weekend <= set(range(7)) or len(self._weekend) == 7:
            raise ValueError("weekend must be some but not all of the weekdays 0 (Mon) to 6 (Sun)")

    @classmethod
    def england_and_wales(cls, years: Iterable[int]) -> WorkingCalendar:
        """Bank holidays in England and Wales for ``years``, from the ``holidays`` package."""
        import holidays as holidays_package

        span = sorted(set(years))
        if not span:
            raise ValueError("give at least one year")
        bank_holidays = holidays_package.country_holidays("GB", subdiv="ENG", years=span)
        return cls(bank_holidays.keys(), tz=LONDON, years=span)

    @classmethod
    def from_govuk_bank_holidays(
        cls,
        data: Mapping[str, Any],
        *,
        division: str = "england-and-wales",
        years: Iterable[int] | None = None,
    ) -> WorkingCalendar:
        """Build from gov.uk's ``bank-holidays.json`` document, already parsed.

        ``years`` defaults to every year the division lists an event in.
        """
        try:
            events = data[division]["events"]
            days = [date.fromisoformat(event["date"]) for event in events]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a gov.uk bank holidays document: {exc}") from None
        covered = sorted({day.year for day in days}) if years is None else years
        return cls(days, tz=LONDON, years=covered)

    @property
    def holidays(self) -> frozenset[date]:
        """The holiday dates."""
        return self._holidays

    @property
    def tz(self) -> ZoneInfo:
        """The time zone the days are counted in."""
        return self._tz

    @property
    def years(self) -> frozenset[int] | None:
        """The years the holiday list covers, or ``None`` when unbounded."""
        return self._years

    def _check(self, day: date) -> None:
        if self._years is not None and day.year not in self._years:
            raise ConfigurationError(
                f"the working calendar does not cover {day.year}; build it with more years"
            )

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        self._check(day)
        return day.weekday() not in self._weekend and day not in self._holidays

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        candidate = day + timedelta(days=1)
        while not self.is_working_day(candidate):
            candidate += timedelta(days=1)
        return candidate

    def local_date(self, moment: datetime) -> date:
        """The calendar date of ``moment`` in this calendar's time zone."""
        return _aware(moment, "moment").astimezone(self._tz).date()

    def end_of_day(self, day: date) -> datetime:
        """23:59:59 local time on ``day``, as an aware UTC datetime."""
        return datetime.combine(day, _END_OF_DAY, tzinfo=self._tz).astimezone(UTC)

    def __repr__(self) -> str:
        span = "unbounded" if self._years is None else f"{min(self._years)}-{max(self._years)}"
        return f"WorkingCalendar({len(self._holidays)} holidays, {self._tz.key}, {span})"


def add_working_days(start: datetime, n: int, calendar: WorkingCalendar) -> datetime:
    """The end of the ``n``-th working day after the day ``start`` falls on (UTC).

    See the module docstring for the rule and examples. ``start`` must be aware;
    ``n`` must not be negative.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    day = calendar.local_date(start)
    if n == 0:
        target = day if calendar.is_working_day(day) else calendar.next_working_day(day)
    else:
        target = day
        for _ in range(n):
            target = calendar.next_working_day(target)
    return calendar.end_of_day(target)


def working_days_between(a: datetime, b: datetime, calendar: WorkingCalendar) -> int:
    """Working days after ``a``'s day up to and including ``b``'s day (negative if b < a).

    The inverse of :func:`add_working_days`: for ``n >= 1``,
    ``working_days_between(t, add_working_days(t, n, c), c) == n``.
    """
    first, last = calendar.local_date(a), calendar.local_date(b)
    if last < first:
        return -working_days_between(b, a, calendar)
    count = 0
    day = first + timedelta(days=1)
    while day <= last:
        if calendar.is_working_day(day):
            count += 1
        day += timedelta(days=1)
    return count


class DeadlinePolicy(BaseModel):
    """The partnership's limits, in working days (defaults: policy model ``timescales``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    ack_working_days: StrictInt = Field(default=1, ge=0, le=60)
    """``T_ACK_REFERRAL``: acknowledge a referral."""
    decision_working_days: StrictInt = Field(default=1, ge=0, le=60)
    """``T_DECISION``: decide the type of response."""
    feedback_working_days: StrictInt = Field(default=1, ge=0, le=60)
    """``T_FEEDBACK``: tell the referrer the decision (a local-practice figure)."""
    undelivered_expiry_working_days: StrictInt = Field(default=5, ge=1, le=60)
    """``T_DELIVERY``: collect a message from the mailbox before the relay expires it."""


@dataclass(frozen=True, slots=True)
class DeadlineStatus:
    """One clock on a thread: when it started, when it is due, and whether it was met."""

    code: str
    """``T_DELIVERY``, ``T_ACK_REFERRAL``, ``T_DECISION`` or ``T_FEEDBACK``."""
    owner: ActorRole
    """The side that must act."""
    started_at: datetime
    due: datetime
    met_at: datetime | None
    overdue: bool
    """Unmet, past due at ``now``, and the thread still open."""
    cite: str

    @property
    def met_late(self) -> bool:
        """Met, but after it was due."""
        return self.met_at is not None and self.met_at > self.due

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (times as RFC 3339 UTC)."""
        return {
            "code": self.code,
            "owner": self.owner.value,
            "started_at": format_time(self.started_at),
            "due": format_time(self.due),
            "met_at": None if self.met_at is None else format_time(self.met_at),
            "overdue": self.overdue,
            "met_late": self.met_late,
            "cite": self.cite,
        }


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def thread_deadlines(
    state: ThreadState | str,
    delivered_at: datetime | None,
    acknowledged_at: datetime | None,
    decided_at: datetime | None,
    feedback_at: datetime | None,
    now: datetime,
    calendar: WorkingCalendar,
    policy: DeadlinePolicy,
    *,
    submitted_at: datetime | None = None,
    thread_type: ThreadType | str = ThreadType.REFERRAL,
) -> list[DeadlineStatus]:
    """Every clock that has started on a thread, in the order they start.

    Times are those the relay recorded: ``delivered_at`` (the recipient's receipt),
    ``acknowledged_at`` (the ``ACKNOWLEDGEMENT``), ``feedback_at`` (the first
    ``DECISION_FEEDBACK``), ``decided_at`` (a separate decision time from that
    header, else the feedback time) and ``submitted_at`` (relay acceptance; gives
    ``T_DELIVERY`` when supplied). If the recipient replied but no receipt time is
    recorded, its earliest reply is taken as delivery. Clocks not yet started are
    left out.
    """
    for name, value in (
        ("delivered_at", delivered_at),
        ("acknowledged_at", acknowledged_at),
        ("decided_at", decided_at),
        ("feedback_at", feedback_at),
        ("now", now),
        ("submitted_at", submitted_at),
    ):
        if value is not None:
            _aware(value, name)
    running = is_open(state)
    kind = ThreadType(thread_type)
    decision_at = decided_at if decided_at is not None else feedback_at
    received_at = delivered_at or _earliest(acknowledged_at, decision_at)

    def status(code: str, started: datetime, limit: int, met: datetime | None) -> DeadlineStatus:
        due = add_working_days(started, limit, calendar)
        return DeadlineStatus(
            code=code,
            owner=ActorRole.RECIPIENT,
            started_at=started,
            due=due,
            met_at=met,
            overdue=running and met is None and now > due,
            cite=DEADLINE_CITES[code],
        )

    result: list[DeadlineStatus] = []
    if submitted_at is not None:
        result.append(
            status("T_DELIVERY", submitted_at, policy.undelivered_expiry_working_days, received_at)
        )
    if kind is not ThreadType.REFERRAL or received_at is None:
        return result
    result.append(
        status(
            "T_ACK_REFERRAL",
            received_at,
            policy.ack_working_days,
            _earliest(acknowledged_at, decision_at),
        )
    )
    result.append(status("T_DECISION", received_at, policy.decision_working_days, decision_at))
    if decision_at is not None:
        result.append(status("T_FEEDBACK", decision_at, policy.feedback_working_days, feedback_at))
    return result
