"""Thread lifecycle: one explicit transition table for every thread the exchange tracks.

Theory of operation
-------------------
Rule 1: everything that affects thread state lives in this file. The relay's store
and the agency client's local thread record both call :func:`open_thread` and
:func:`advance`; neither keeps rules of its own. The relay is content-blind, so the
table is driven only by what it can see: the message *kind* in the signed header
(mapped to a :class:`ThreadEvent` by :func:`event_for_kind`), the signed delivery
and rejection receipts, and its own housekeeping (``EXPIRE``, ``CLOSE``).

A thread is opened by its first message, which fixes its :class:`ThreadType`:

* ``REFERRAL`` (a ``REFERRAL``): the full path
  SUBMITTED -> DELIVERED -> ACKNOWLEDGED -> DECISION_GIVEN -> CLOSED, with
  Working Together clocks (see :mod:`schemas.deadlines`).
* ``NOTIFICATION`` (an ``INFORMATION_ONLY`` or ``POLICE_NOTIFICATION``): the lighter
  path SUBMITTED -> DELIVERED -> ACKNOWLEDGED -> CLOSED and no clocks. The front
  door may still send a ``DECISION_FEEDBACK`` if it decides to act on what it was
  told (three notices about Leo that together suggest neglect).
* ``REQUEST`` (a standalone ``REQUEST_FOR_INFORMATION``, e.g. the front door's
  s.47(9) request to the police about Maya): SUBMITTED -> DELIVERED ->
  [ACKNOWLEDGED] -> RESPONDED -> CLOSED.

The two parties are named by their role in the thread, never by organisation type:
``referrer`` is whoever opened it (the referrer, the sharer, the requester) and
``recipient`` is whoever it was sent to; ``relay`` is the exchange itself. Every
cell of :data:`TRANSITIONS` names the roles that may cause it, so "who may send
what" is part of the table. :func:`advance` raises :class:`InvalidTransition` for
any (state, event, role) the table does not list.

Decisions recorded in the table (and why):

1. **Receipts first.** The recipient's client posts a signed delivery receipt
   before anything it sends in reply, so SUBMITTED accepts no reply from the
   recipient. Receipts are idempotent: a repeated receipt in any later open
   state changes nothing (at-least-once delivery makes duplicates normal).
2. **A decision implies acknowledgement.** ``DECISION_FEEDBACK`` is legal straight
   from DELIVERED; the acknowledgement clock counts it as met. A further
   ``DECISION_FEEDBACK`` in DECISION_GIVEN revises or follows up the decision
   (after more information, or with an assessment outcome). The relay cannot see
   the outcome code, so a front door that needs more information before deciding
   sends a ``REQUEST_FOR_INFORMATION`` (the decision clock keeps running) rather
   than a ``MORE_INFO_NEEDED`` decision.
3. **Side conversations do not change state.** Requests for information (from
   the recipient), responses (from the referrer), ``INFORMATION_ONLY`` updates
   (either side) and escalations (referrer) are allowed in every open state and
   leave it as it is. The referrer can add to or escalate a thread even before
   the recipient has collected it; the recipient can only reply to what it has
   receipted. Matching a response to its request (``in_reply_to``) is a body
   check, not a state.
4. **Withdrawal only before delivery.** Once the front door holds a concern about
   a child it cannot be "un-referred"; a referrer who made a mistake says so with
   ``INFORMATION_ONLY`` and the front door decides. ``EXPIRE`` (relay) likewise
   applies only to an undelivered thread, after the undelivered-expiry limit.
5. **Rejection is the recipient's.** ``REJECTION`` is the recipient's signed
   receipt saying it could not accept the message (it would not decrypt, or the
   full lawful-basis re-check failed). It is legal until the thread is
   acknowledged. (The relay's own refusals happen before a thread exists.)
6. **Closing belongs to whoever owns the outcome**: the front door for referrals
   and notifications, the requester for requests; the relay may also close a
   settled thread as housekeeping. A referral cannot close without a decision.
7. **Nothing after CLOSED except escalation.** KCSIE expects a referrer to escalate
   when unhappy with a decision or when the child's situation does not improve,
   which can be after closure. An ``ESCALATION`` from the referrer re-opens a
   closed referral to DECISION_GIVEN (the front door answers with a revised or
   confirmed decision and closes again) and a closed request to RESPONDED.
   WITHDRAWN, REJECTED and EXPIRED are final.

Overdue is not a state: it is computed from the clocks in :mod:`schemas.deadlines`,
so a thread can be ACKNOWLEDGED and overdue for its decision at once.

The diagram ``docs/state-machines/thread.dot`` is generated from the table::

    .venv/bin/python -c "from schemas.lifecycle import to_dot; print(to_dot(), end='')" \\
        > docs/state-machines/thread.dot
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeVar

from schemas.codes import MessageKind
from schemas.problems import InvalidTransition

__all__ = [
    "OPENINGS",
    "TRANSITIONS",
    "ActorRole",
    "ThreadEvent",
    "ThreadState",
    "ThreadType",
    "advance",
    "allowed_events",
    "event_for_kind",
    "is_open",
    "open_thread",
    "to_dot",
]


class ThreadState(StrEnum):
    """Where a thread is. Open states accept further messages; the rest are final."""

    SUBMITTED = "SUBMITTED"
    """Accepted by the relay and waiting in the recipient's mailbox."""
    DELIVERED = "DELIVERED"
    """The recipient signed a delivery receipt."""
    ACKNOWLEDGED = "ACKNOWLEDGED"
    """The recipient acknowledged it to the sender."""
    DECISION_GIVEN = "DECISION_GIVEN"
    """The front door's decision has been fed back (referral and notification threads)."""
    RESPONDED = "RESPONDED"
    """The recipient has answered (request threads)."""
    CLOSED = "CLOSED"
    """Settled; only an escalation by the referrer re-opens it."""
    WITHDRAWN = "WITHDRAWN"
    """Withdrawn by its sender before delivery. Final."""
    REJECTED = "REJECTED"
    """Refused by the recipient's signed rejection receipt. Final."""
    EXPIRED = "EXPIRED"
    """Never delivered within the undelivered-expiry limit. Final."""


class ThreadEvent(StrEnum):
    """Something that can happen to a thread: a message kind, a receipt or relay housekeeping."""

    REFERRAL_SUBMITTED = "REFERRAL_SUBMITTED"
    """A ``REFERRAL`` message (opens a referral thread)."""
    INFORMATION_ONLY = "INFORMATION_ONLY"
    """An ``INFORMATION_ONLY`` message (opens a notification thread, or adds to one)."""
    POLICE_NOTIFICATION = "POLICE_NOTIFICATION"
    """A ``POLICE_NOTIFICATION`` message (opens a notification thread)."""
    REQUEST_FOR_INFORMATION = "REQUEST_FOR_INFORMATION"
    """A ``REQUEST_FOR_INFORMATION`` message (opens a request thread, or asks within one)."""
    RESPONSE_TO_RFI = "RESPONSE_TO_RFI"
    """A ``RESPONSE_TO_RFI`` message."""
    ACKNOWLEDGEMENT = "ACKNOWLEDGEMENT"
    """An ``ACKNOWLEDGEMENT`` message."""
    DECISION_FEEDBACK = "DECISION_FEEDBACK"
    """A ``DECISION_FEEDBACK`` message."""
    ESCALATION = "ESCALATION"
    """An ``ESCALATION`` message."""
    DELIVERY_RECEIPT = "DELIVERY_RECEIPT"
    """The recipient's signed delivery receipt for the message that opened the thread."""
    REJECTION = "REJECTION"
    """The recipient's signed receipt refusing the message that opened the thread."""
    WITHDRAWAL = "WITHDRAWAL"
    """The sender withdraws an undelivered thread."""
    CLOSE = "CLOSE"
    """The thread is settled."""
    EXPIRE = "EXPIRE"
    """The relay gives up on an undelivered thread."""


class ThreadType(StrEnum):
    """What opened the thread, which fixes the path it may take."""

    REFERRAL = "REFERRAL"
    NOTIFICATION = "NOTIFICATION"
    REQUEST = "REQUEST"


class ActorRole(StrEnum):
    """Who causes an event, by role in the thread."""

    REFERRER = "referrer"
    """The agency that opened the thread."""
    RECIPIENT = "recipient"
    """The agency the thread was opened to."""
    RELAY = "relay"
    """The exchange itself."""


S = ThreadState
E = ThreadEvent
_F = ActorRole.REFERRER
_R = ActorRole.RECIPIENT
_X = ActorRole.RELAY

_Row = tuple[ThreadState, ThreadEvent, tuple[ActorRole, ...], ThreadState]

# The table. One row per (state, event): the roles that may cause it and the state it
# leads to. Any combination not listed is illegal.

_BEFORE_DELIVERY: tuple[_Row, ...] = (
    (S.SUBMITTED, E.DELIVERY_RECEIPT, (_R,), S.DELIVERED),
    (S.SUBMITTED, E.REJECTION, (_R,), S.REJECTED),
    (S.SUBMITTED, E.WITHDRAWAL, (_F,), S.WITHDRAWN),
    (S.SUBMITTED, E.EXPIRE, (_X,), S.EXPIRED),
    (S.SUBMITTED, E.INFORMATION_ONLY, (_F,), S.SUBMITTED),
)

_REFERRAL_ROWS: tuple[_Row, ...] = (
    *_BEFORE_DELIVERY,
    (S.SUBMITTED, E.ESCALATION, (_F,), S.SUBMITTED),
    # delivered: the front door holds it
    (S.DELIVERED, E.DELIVERY_RECEIPT, (_R,), S.DELIVERED),
    (S.DELIVERED, E.REJECTION, (_R,), S.REJECTED),
    (S.DELIVERED, E.ACKNOWLEDGEMENT, (_R,), S.ACKNOWLEDGED),
    (S.DELIVERED, E.DECISION_FEEDBACK, (_R,), S.DECISION_GIVEN),
    (S.DELIVERED, E.REQUEST_FOR_INFORMATION, (_R,), S.DELIVERED),
    (S.DELIVERED, E.RESPONSE_TO_RFI, (_F,), S.DELIVERED),
    (S.DELIVERED, E.INFORMATION_ONLY, (_F, _R), S.DELIVERED),
    (S.DELIVERED, E.ESCALATION, (_F,), S.DELIVERED),
    # acknowledged: waiting for the decision
    (S.ACKNOWLEDGED, E.DELIVERY_RECEIPT, (_R,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.DECISION_FEEDBACK, (_R,), S.DECISION_GIVEN),
    (S.ACKNOWLEDGED, E.REQUEST_FOR_INFORMATION, (_R,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.RESPONSE_TO_RFI, (_F,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.INFORMATION_ONLY, (_F, _R), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.ESCALATION, (_F,), S.ACKNOWLEDGED),
    # decided: feedback given; further outcomes may follow
    (S.DECISION_GIVEN, E.DELIVERY_RECEIPT, (_R,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.DECISION_FEEDBACK, (_R,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.REQUEST_FOR_INFORMATION, (_R,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.RESPONSE_TO_RFI, (_F,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.INFORMATION_ONLY, (_F, _R), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.ESCALATION, (_F,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.CLOSE, (_R, _X), S.CLOSED),
    # closed: only the referrer's escalation re-opens it
    (S.CLOSED, E.ESCALATION, (_F,), S.DECISION_GIVEN),
)

_NOTIFICATION_ROWS: tuple[_Row, ...] = (
    *_BEFORE_DELIVERY,
    (S.DELIVERED, E.DELIVERY_RECEIPT, (_R,), S.DELIVERED),
    (S.DELIVERED, E.REJECTION, (_R,), S.REJECTED),
    (S.DELIVERED, E.ACKNOWLEDGEMENT, (_R,), S.ACKNOWLEDGED),
    (S.DELIVERED, E.DECISION_FEEDBACK, (_R,), S.DECISION_GIVEN),
    (S.DELIVERED, E.REQUEST_FOR_INFORMATION, (_R,), S.DELIVERED),
    (S.DELIVERED, E.RESPONSE_TO_RFI, (_F,), S.DELIVERED),
    (S.DELIVERED, E.INFORMATION_ONLY, (_F, _R), S.DELIVERED),
    (S.ACKNOWLEDGED, E.DELIVERY_RECEIPT, (_R,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.DECISION_FEEDBACK, (_R,), S.DECISION_GIVEN),
    (S.ACKNOWLEDGED, E.REQUEST_FOR_INFORMATION, (_R,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.RESPONSE_TO_RFI, (_F,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.INFORMATION_ONLY, (_F, _R), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.CLOSE, (_R, _X), S.CLOSED),
    (S.DECISION_GIVEN, E.DELIVERY_RECEIPT, (_R,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.DECISION_FEEDBACK, (_R,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.REQUEST_FOR_INFORMATION, (_R,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.RESPONSE_TO_RFI, (_F,), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.INFORMATION_ONLY, (_F, _R), S.DECISION_GIVEN),
    (S.DECISION_GIVEN, E.CLOSE, (_R, _X), S.CLOSED),
)

_REQUEST_ROWS: tuple[_Row, ...] = (
    *_BEFORE_DELIVERY,
    (S.SUBMITTED, E.ESCALATION, (_F,), S.SUBMITTED),
    (S.DELIVERED, E.DELIVERY_RECEIPT, (_R,), S.DELIVERED),
    (S.DELIVERED, E.REJECTION, (_R,), S.REJECTED),
    (S.DELIVERED, E.ACKNOWLEDGEMENT, (_R,), S.ACKNOWLEDGED),
    (S.DELIVERED, E.RESPONSE_TO_RFI, (_R,), S.RESPONDED),
    (S.DELIVERED, E.INFORMATION_ONLY, (_F, _R), S.DELIVERED),
    (S.DELIVERED, E.ESCALATION, (_F,), S.DELIVERED),
    (S.ACKNOWLEDGED, E.DELIVERY_RECEIPT, (_R,), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.RESPONSE_TO_RFI, (_R,), S.RESPONDED),
    (S.ACKNOWLEDGED, E.INFORMATION_ONLY, (_F, _R), S.ACKNOWLEDGED),
    (S.ACKNOWLEDGED, E.ESCALATION, (_F,), S.ACKNOWLEDGED),
    (S.RESPONDED, E.DELIVERY_RECEIPT, (_R,), S.RESPONDED),
    (S.RESPONDED, E.RESPONSE_TO_RFI, (_R,), S.RESPONDED),
    (S.RESPONDED, E.INFORMATION_ONLY, (_F, _R), S.RESPONDED),
    (S.RESPONDED, E.ESCALATION, (_F,), S.RESPONDED),
    (S.RESPONDED, E.CLOSE, (_F, _X), S.CLOSED),
    (S.CLOSED, E.ESCALATION, (_F,), S.RESPONDED),
)

_Table = Mapping[ThreadState, Mapping[ThreadEvent, Mapping[ActorRole, ThreadState]]]


def _build(rows: Iterable[_Row]) -> _Table:
    table: dict[ThreadState, dict[ThreadEvent, dict[ActorRole, ThreadState]]] = {}
    for state, event, actors, target in rows:
        cell = table.setdefault(state, {})
        if event in cell:
            raise RuntimeError(f"duplicate transition row {state} {event}")
        cell[event] = dict.fromkeys(actors, target)
    return MappingProxyType(
        {
            state: MappingProxyType(
                {event: MappingProxyType(by_actor) for event, by_actor in events.items()}
            )
            for state, events in table.items()
        }
    )


#: ``TRANSITIONS[thread_type][state][event][actor_role] -> next state``.
TRANSITIONS: Final[Mapping[ThreadType, _Table]] = MappingProxyType(
    {
        ThreadType.REFERRAL: _build(_REFERRAL_ROWS),
        ThreadType.NOTIFICATION: _build(_NOTIFICATION_ROWS),
        ThreadType.REQUEST: _build(_REQUEST_ROWS),
    }
)

#: The events that open a thread, with the thread type each opens. Only the referrer
#: (by definition, whoever opens it) causes them; a new thread starts in SUBMITTED.
OPENINGS: Final[Mapping[ThreadEvent, ThreadType]] = MappingProxyType(
    {
        E.REFERRAL_SUBMITTED: ThreadType.REFERRAL,
        E.INFORMATION_ONLY: ThreadType.NOTIFICATION,
        E.POLICE_NOTIFICATION: ThreadType.NOTIFICATION,
        E.REQUEST_FOR_INFORMATION: ThreadType.REQUEST,
    }
)

_KIND_EVENTS: Final[Mapping[MessageKind, ThreadEvent]] = MappingProxyType(
    {
        MessageKind.REFERRAL: E.REFERRAL_SUBMITTED,
        MessageKind.ACKNOWLEDGEMENT: E.ACKNOWLEDGEMENT,
        MessageKind.DECISION_FEEDBACK: E.DECISION_FEEDBACK,
        MessageKind.REQUEST_FOR_INFORMATION: E.REQUEST_FOR_INFORMATION,
        MessageKind.RESPONSE_TO_RFI: E.RESPONSE_TO_RFI,
        MessageKind.INFORMATION_ONLY: E.INFORMATION_ONLY,
        MessageKind.POLICE_NOTIFICATION: E.POLICE_NOTIFICATION,
        MessageKind.ESCALATION: E.ESCALATION,
    }
)

_OPEN_STATES: Final = frozenset(
    {S.SUBMITTED, S.DELIVERED, S.ACKNOWLEDGED, S.DECISION_GIVEN, S.RESPONDED}
)


_T = TypeVar("_T", bound=StrEnum)


def _coerce(enum: type[_T], value: str, what: str) -> _T:
    try:
        return enum(value)
    except ValueError:
        raise InvalidTransition(f"unknown {what}") from None


def event_for_kind(kind: MessageKind | str) -> ThreadEvent:
    """The thread event a message of ``kind`` causes.

    Raises :class:`InvalidTransition` for kinds that have no place in a thread in
    this version (strategy discussions, conferences, file transfers, LADO referrals).
    """
    try:
        return _KIND_EVENTS[MessageKind(kind)]
    except (KeyError, ValueError):
        raise InvalidTransition("this message kind cannot be exchanged in a thread") from None


def open_thread(event: ThreadEvent | str) -> tuple[ThreadType, ThreadState]:
    """Open a new thread with its first event; return its type and first state (SUBMITTED).

    Raises :class:`InvalidTransition` when ``event`` cannot open a thread.
    """
    opening = _coerce(ThreadEvent, event, "thread event")
    thread_type = OPENINGS.get(opening)
    if thread_type is None:
        raise InvalidTransition(f"{opening} cannot open a thread")
    return thread_type, ThreadState.SUBMITTED


def advance(
    state: ThreadState | str,
    event: ThreadEvent | str,
    actor_role: ActorRole | str,
    *,
    thread_type: ThreadType | str = ThreadType.REFERRAL,
) -> ThreadState:
    """Return the state after ``actor_role`` causes ``event`` in ``state``.

    ``thread_type`` is the type :func:`open_thread` returned (default: a referral
    thread). Raises :class:`InvalidTransition` when the table does not allow it.
    """
    kind = _coerce(ThreadType, thread_type, "thread type")
    current = _coerce(ThreadState, state, "thread state")
    happened = _coerce(ThreadEvent, event, "thread event")
    actor = _coerce(ActorRole, actor_role, "actor role")
    by_actor = TRANSITIONS[kind].get(current, {}).get(happened)
    if by_actor is None:
        raise InvalidTransition(f"{happened} is not allowed in a {kind} thread that is {current}")
    target = by_actor.get(actor)
    if target is None:
        raise InvalidTransition(f"the {actor} may not send {happened} in a {current} {kind} thread")
    return target


def allowed_events(
    state: ThreadState | str,
    actor_role: ActorRole | str,
    *,
    thread_type: ThreadType | str = ThreadType.REFERRAL,
) -> frozenset[ThreadEvent]:
    """The events ``actor_role`` may cause now: what a client offers its user to send."""
    kind = _coerce(ThreadType, thread_type, "thread type")
    current = _coerce(ThreadState, state, "thread state")
    actor = _coerce(ActorRole, actor_role, "actor role")
    events = TRANSITIONS[kind].get(current, {})
    return frozenset(event for event, by_actor in events.items() if actor in by_actor)


def is_open(state: ThreadState | str) -> bool:
    """Whether the thread still accepts ordinary messages and its clocks still run."""
    return _coerce(ThreadState, state, "thread state") in _OPEN_STATES


def to_dot() -> str:
    """Render :data:`TRANSITIONS` as a Graphviz digraph, one cluster per thread type."""
    lines = [
        "// Generated from schemas/lifecycle.py by to_dot(); do not edit by hand.",
        "digraph thread {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for thread_type, table in TRANSITIONS.items():
        prefix = thread_type.value
        lines.append(f"  subgraph cluster_{prefix} {{")
        lines.append(f'    label="{prefix} thread";')
        lines.append(f'    "{prefix}:start" [shape=point, label=""];')
        states = [s for s in ThreadState if s in table or _reached(table, s)]
        for state in states:
            shape = "" if state in _OPEN_STATES else ", peripheries=2"
            lines.append(f'    "{prefix}:{state}" [label="{state}"{shape}];')
        openers = sorted(e for e, t in OPENINGS.items() if t is thread_type)
        label = "\\n".join(f"{e} (referrer)" for e in openers)
        lines.append(f'    "{prefix}:start" -> "{prefix}:{S.SUBMITTED}" [label="{label}"];')
        edges: dict[tuple[ThreadState, ThreadState], list[str]] = {}
        for state, events in table.items():
            for event, by_actor in events.items():
                for target in dict.fromkeys(by_actor.values()):
                    actors = ", ".join(a.value for a, t in by_actor.items() if t is target)
                    edges.setdefault((state, target), []).append(f"{event} ({actors})")
        for (source, target), labels in edges.items():
            text = "\\n".join(labels)
            lines.append(f'    "{prefix}:{source}" -> "{prefix}:{target}" [label="{text}"];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _reached(table: _Table, state: ThreadState) -> bool:
    return any(
        state in by_actor.values() for events in table.values() for by_actor in events.values()
    )
