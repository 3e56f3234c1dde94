"""Thread tracking glue: headers and receipts in, thread rows and deadline breaches out.

All rules come from :mod:`schemas.lifecycle` (the transition table) and
:mod:`schemas.deadlines` (working-day clocks); this module only maps what the
relay sees (a verified header, a receipt, an expiry) onto them and produces the
functions the store runs inside its write transactions. No I/O.

Conventions the relay adds (documented in ``docs/api.md``):

* A thread's ``recipient`` is the first recipient of the message that opened it;
  only that agency's delivery receipt for the opening message moves the thread
  to DELIVERED.
* A message that opens a thread (``thread == id``) of a kind the table cannot
  place (strategy records, conferences, file transfers, LADO referrals) is
  accepted untracked, and so are replies in such an untracked thread.
* Thread times are the relay's: receipt time, acceptance time of the
  acknowledgement and of the first decision feedback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

from exchange.settings import Settings
from exchange.store import Breach, ExpiryStep, NewNotice, ThreadRow, ThreadStep
from schemas.deadlines import (
    DeadlinePolicy,
    DeadlineStatus,
    WorkingCalendar,
    thread_deadlines,
    working_days_between,
)
from schemas.envelope import EnvelopeHeader
from schemas.lifecycle import (
    OPENINGS,
    ActorRole,
    ThreadEvent,
    ThreadState,
    advance,
    event_for_kind,
    is_open,
    open_thread,
)
from schemas.problems import ConfigurationError, InvalidTransition
from schemas.timefmt import format_time

__all__ = ["OPEN_STATES", "ThreadTracker"]

#: Thread states whose clocks still run.
OPEN_STATES: tuple[str, ...] = tuple(s.value for s in ThreadState if is_open(s))


class ThreadTracker:
    """Maps relay events onto the lifecycle table and the deadline clocks."""

    def __init__(self, settings: Settings) -> None:
        self._policy = DeadlinePolicy(
            ack_working_days=settings.acknowledgement_working_days,
            decision_working_days=settings.decision_working_days,
            feedback_working_days=settings.feedback_working_days,
        )
        if settings.calendar != "england_and_wales":
            raise ConfigurationError(f"unknown working calendar {settings.calendar!r}")
        self._extra: frozenset[date] = frozenset(settings.extra_holidays)
        self._calendar: WorkingCalendar | None = None
        self._close_after = settings.close_settled_after_working_days

    @property
    def policy(self) -> DeadlinePolicy:
        """The deadline limits in working days."""
        return self._policy

    def calendar(self, now: datetime) -> WorkingCalendar:
        """The working calendar, covering a few years either side of ``now``."""
        calendar = self._calendar
        years = calendar.years if calendar is not None else None
        if calendar is None or years is None or not {now.year - 1, now.year + 2} <= years:
            span = range(now.year - 5, now.year + 6)
            base = WorkingCalendar.england_and_wales(span)
            calendar = WorkingCalendar(base.holidays | self._extra, years=span)
            self._calendar = calendar
        return calendar

    # -- transitions -------------------------------------------------------------------------

    def opens_tracked_thread(self, header: EnvelopeHeader) -> bool:
        """Whether this header opens a thread the table tracks."""
        if header.thread != header.id:
            return False
        try:
            return event_for_kind(header.kind) in OPENINGS
        except InvalidTransition:
            return False

    def step_for_message(
        self, header: EnvelopeHeader, *, stored_at: datetime, thread_tracked: bool
    ) -> ThreadStep | None:
        """The thread change a newly accepted message makes, or None when untracked.

        Raises :class:`InvalidTransition` at once for a kind that can never be sent
        here; the returned step raises it for a kind the thread's current state or
        the sender's side does not allow.

        :param thread_tracked: for a reply, whether its thread is tracked (False: the
            opener was a kind the table does not place, so the reply is untracked too).
        """
        if header.thread == header.id:
            try:
                event = event_for_kind(header.kind)
            except InvalidTransition:
                return None  # a standalone kind the table does not place: untracked
            if event not in OPENINGS:
                raise InvalidTransition(f"a {header.kind} cannot open a thread")
            thread_type, state = open_thread(event)
            first = header.recipients[0]

            def opening(before: ThreadRow | None) -> ThreadRow:
                if before is not None:
                    raise InvalidTransition("this thread already exists")
                return ThreadRow(
                    thread_id=header.thread,
                    thread_type=thread_type.value,
                    opened_by_kind=header.kind,
                    referrer_agency=header.sender.agency,
                    referrer_mailbox=header.sender.mailbox,
                    recipient_agency=first.agency,
                    recipient_mailbox=first.mailbox,
                    state=state.value,
                    opened_at=stored_at,
                    updated_at=stored_at,
                )

            return opening
        if not thread_tracked:
            return None
        event = event_for_kind(header.kind)
        sender = header.sender.agency

        def reply(before: ThreadRow | None) -> ThreadRow:
            if before is None:
                raise InvalidTransition("this thread is not known to the relay")
            if sender == before.referrer_agency:
                role = ActorRole.REFERRER
            elif sender == before.recipient_agency:
                role = ActorRole.RECIPIENT
            else:
                raise InvalidTransition("the sender takes no part in this thread")
            state = advance(before.state, event, role, thread_type=before.thread_type)
            changes: dict[str, object] = {"state": state.value, "updated_at": stored_at}
            if event is ThreadEvent.ACKNOWLEDGEMENT and before.acknowledged_at is None:
                changes["acknowledged_at"] = stored_at
            if event is ThreadEvent.DECISION_FEEDBACK and before.feedback_at is None:
                changes["feedback_at"] = stored_at
            if state is ThreadState.CLOSED and before.closed_at is None:
                changes["closed_at"] = stored_at
            return replace(before, **changes)  # type: ignore[arg-type]

        return reply

    def step_for_receipt(self, *, message_id: str, agency: str, at: datetime) -> ThreadStep:
        """The thread change a delivery receipt makes (only the opener's, by its recipient)."""

        def delivered(before: ThreadRow | None) -> ThreadRow | None:
            if before is None or message_id != before.thread_id:
                return before
            if agency != before.recipient_agency:
                return before
            try:
                state = advance(
                    before.state,
                    ThreadEvent.DELIVERY_RECEIPT,
                    ActorRole.RECIPIENT,
                    thread_type=before.thread_type,
                )
            except InvalidTransition:
                return before  # a late receipt proves delivery but moves nothing
            delivered_at = before.delivered_at or at
            return replace(before, state=state.value, updated_at=at, delivered_at=delivered_at)

        return delivered

    def step_for_expiry(self, at: datetime) -> ExpiryStep:
        """The thread change an undelivered opener's expiry makes (SUBMITTED -> EXPIRED)."""

        def expired(before: ThreadRow, message_id: str, agency: str) -> ThreadRow | None:
            if message_id != before.thread_id or agency != before.recipient_agency:
                return None
            try:
                state = advance(
                    before.state,
                    ThreadEvent.EXPIRE,
                    ActorRole.RELAY,
                    thread_type=before.thread_type,
                )
            except InvalidTransition:
                return None
            return replace(before, state=state.value, updated_at=at)

        return expired

    def settled(self, rows: Sequence[ThreadRow], now: datetime) -> dict[str, ThreadStep]:
        """Housekeeping: close threads the table lets the relay close, once quiet long enough.

        A thread whose state allows the relay's ``CLOSE`` (a decided referral, an
        acknowledged notification, an answered request) closes after
        ``close_settled_after_working_days`` working days with no activity. Each step
        re-checks the row inside the write transaction, so a reply that arrived in
        the meantime keeps the thread open.
        """
        if self._close_after <= 0:
            return {}
        calendar = self.calendar(now)
        steps: dict[str, ThreadStep] = {}
        for row in rows:
            try:
                advance(row.state, ThreadEvent.CLOSE, ActorRole.RELAY, thread_type=row.thread_type)
            except InvalidTransition:
                continue
            if working_days_between(row.updated_at, now, calendar) < self._close_after:
                continue
            steps[row.thread_id] = self._close_step(row.updated_at, now)
        return steps

    @staticmethod
    def _close_step(seen_updated_at: datetime, now: datetime) -> ThreadStep:
        def close(before: ThreadRow | None) -> ThreadRow | None:
            if before is None or before.updated_at != seen_updated_at:
                return before  # something happened since the sweep looked
            state = advance(
                before.state, ThreadEvent.CLOSE, ActorRole.RELAY, thread_type=before.thread_type
            )
            return replace(before, state=state.value, updated_at=now, closed_at=now)

        return close

    # -- deadlines -----------------------------------------------------------------------------

    def deadlines(self, row: ThreadRow, now: datetime) -> list[DeadlineStatus]:
        """Every started clock on ``row`` at ``now``."""
        return thread_deadlines(
            row.state,
            row.delivered_at,
            row.acknowledged_at,
            None,
            row.feedback_at,
            now,
            self.calendar(now),
            self._policy,
            thread_type=row.thread_type,
        )

    def breaches(
        self,
        rows: Sequence[ThreadRow],
        recorded: Mapping[str, Mapping[str, datetime]],
        now: datetime,
    ) -> list[Breach]:
        """New deadline breaches (overdue and not yet escalated), each with its two notices."""
        found: list[Breach] = []
        for row in rows:
            seen = recorded.get(row.thread_id, {})
            for status in self.deadlines(row, now):
                if not status.overdue or status.code in seen:
                    continue
                detail = {
                    "deadline": status.code,
                    "due": format_time(status.due),
                    "owner": status.owner.value,
                    "state": row.state,
                }
                notices = tuple(
                    NewNotice(
                        agency=agency,
                        mailbox=mailbox,
                        notice="OVERDUE",
                        thread_id=row.thread_id,
                        message_id=row.thread_id,
                        detail=dict(detail),
                    )
                    for agency, mailbox in (
                        (row.referrer_agency, row.referrer_mailbox),
                        (row.recipient_agency, row.recipient_mailbox),
                    )
                )
                found.append(
                    Breach(
                        thread_id=row.thread_id,
                        deadline=status.code,
                        due_at=status.due,
                        notices=notices,
                    )
                )
        return found
