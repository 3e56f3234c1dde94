"""The thread transition table: every (state, event, role) combination, and the key paths."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from schemas.codes import MessageKind
from schemas.lifecycle import (
    OPENINGS,
    TRANSITIONS,
    ActorRole,
    ThreadEvent,
    ThreadState,
    ThreadType,
    advance,
    allowed_events,
    event_for_kind,
    is_open,
    open_thread,
    to_dot,
)
from schemas.problems import InvalidTransition
from tests.fixtures import scenarios

DOT_FILE = Path(__file__).resolve().parents[2] / "docs" / "state-machines" / "thread.dot"

# An independent statement of the table: thread type, state, event, roles -> next state.
# F = referrer, R = recipient, X = relay. Any change to TRANSITIONS must be made here too.
EXPECTED_TABLE = """
REFERRAL     SUBMITTED       DELIVERY_RECEIPT         R    DELIVERED
REFERRAL     SUBMITTED       REJECTION                R    REJECTED
REFERRAL     SUBMITTED       WITHDRAWAL               F    WITHDRAWN
REFERRAL     SUBMITTED       EXPIRE                   X    EXPIRED
REFERRAL     SUBMITTED       INFORMATION_ONLY         F    SUBMITTED
REFERRAL     SUBMITTED       ESCALATION               F    SUBMITTED
REFERRAL     DELIVERED       DELIVERY_RECEIPT         R    DELIVERED
REFERRAL     DELIVERED       REJECTION                R    REJECTED
REFERRAL     DELIVERED       ACKNOWLEDGEMENT          R    ACKNOWLEDGED
REFERRAL     DELIVERED       DECISION_FEEDBACK        R    DECISION_GIVEN
REFERRAL     DELIVERED       REQUEST_FOR_INFORMATION  R    DELIVERED
REFERRAL     DELIVERED       RESPONSE_TO_RFI          F    DELIVERED
REFERRAL     DELIVERED       INFORMATION_ONLY         FR   DELIVERED
REFERRAL     DELIVERED       ESCALATION               F    DELIVERED
REFERRAL     ACKNOWLEDGED    DELIVERY_RECEIPT         R    ACKNOWLEDGED
REFERRAL     ACKNOWLEDGED    DECISION_FEEDBACK        R    DECISION_GIVEN
REFERRAL     ACKNOWLEDGED    REQUEST_FOR_INFORMATION  R    ACKNOWLEDGED
REFERRAL     ACKNOWLEDGED    RESPONSE_TO_RFI          F    ACKNOWLEDGED
REFERRAL     ACKNOWLEDGED    INFORMATION_ONLY         FR   ACKNOWLEDGED
REFERRAL     ACKNOWLEDGED    ESCALATION               F    ACKNOWLEDGED
REFERRAL     DECISION_GIVEN  DELIVERY_RECEIPT         R    DECISION_GIVEN
REFERRAL     DECISION_GIVEN  DECISION_FEEDBACK        R    DECISION_GIVEN
REFERRAL     DECISION_GIVEN  REQUEST_FOR_INFORMATION  R    DECISION_GIVEN
REFERRAL     DECISION_GIVEN  RESPONSE_TO_RFI          F    DECISION_GIVEN
REFERRAL     DECISION_GIVEN  INFORMATION_ONLY         FR   DECISION_GIVEN
REFERRAL     DECISION_GIVEN  ESCALATION               F    DECISION_GIVEN
REFERRAL     DECISION_GIVEN  CLOSE                    RX   CLOSED
REFERRAL     CLOSED          ESCALATION               F    DECISION_GIVEN

NOTIFICATION SUBMITTED       DELIVERY_RECEIPT         R    DELIVERED
NOTIFICATION SUBMITTED       REJECTION                R    REJECTED
NOTIFICATION SUBMITTED       WITHDRAWAL               F    WITHDRAWN
NOTIFICATION SUBMITTED       EXPIRE                   X    EXPIRED
NOTIFICATION SUBMITTED       INFORMATION_ONLY         F    SUBMITTED
NOTIFICATION DELIVERED       DELIVERY_RECEIPT         R    DELIVERED
NOTIFICATION DELIVERED       REJECTION                R    REJECTED
NOTIFICATION DELIVERED       ACKNOWLEDGEMENT          R    ACKNOWLEDGED
NOTIFICATION DELIVERED       DECISION_FEEDBACK        R    DECISION_GIVEN
NOTIFICATION DELIVERED       REQUEST_FOR_INFORMATION  R    DELIVERED
NOTIFICATION DELIVERED       RESPONSE_TO_RFI          F    DELIVERED
NOTIFICATION DELIVERED       INFORMATION_ONLY         FR   DELIVERED
NOTIFICATION ACKNOWLEDGED    DELIVERY_RECEIPT         R    ACKNOWLEDGED
NOTIFICATION ACKNOWLEDGED    DECISION_FEEDBACK        R    DECISION_GIVEN
NOTIFICATION ACKNOWLEDGED    REQUEST_FOR_INFORMATION  R    ACKNOWLEDGED
NOTIFICATION ACKNOWLEDGED    RESPONSE_TO_RFI          F    ACKNOWLEDGED
NOTIFICATION ACKNOWLEDGED    INFORMATION_ONLY         FR   ACKNOWLEDGED
NOTIFICATION ACKNOWLEDGED    CLOSE                    RX   CLOSED
NOTIFICATION DECISION_GIVEN  DELIVERY_RECEIPT         R    DECISION_GIVEN
NOTIFICATION DECISION_GIVEN  DECISION_FEEDBACK        R    DECISION_GIVEN
NOTIFICATION DECISION_GIVEN  REQUEST_FOR_INFORMATION  R    DECISION_GIVEN
NOTIFICATION DECISION_GIVEN  RESPONSE_TO_RFI          F    DECISION_GIVEN
NOTIFICATION DECISION_GIVEN  INFORMATION_ONLY         FR   DECISION_GIVEN
NOTIFICATION DECISION_GIVEN  CLOSE                    RX   CLOSED

REQUEST      SUBMITTED       DELIVERY_RECEIPT         R    DELIVERED
REQUEST      SUBMITTED       REJECTION                R    REJECTED
REQUEST      SUBMITTED       WITHDRAWAL               F    WITHDRAWN
REQUEST      SUBMITTED       EXPIRE                   X    EXPIRED
REQUEST      SUBMITTED       INFORMATION_ONLY         F    SUBMITTED
REQUEST      SUBMITTED       ESCALATION               F    SUBMITTED
REQUEST      DELIVERED       DELIVERY_RECEIPT         R    DELIVERED
REQUEST      DELIVERED       REJECTION                R    REJECTED
REQUEST      DELIVERED       ACKNOWLEDGEMENT          R    ACKNOWLEDGED
REQUEST      DELIVERED       RESPONSE_TO_RFI          R    RESPONDED
REQUEST      DELIVERED       INFORMATION_ONLY         FR   DELIVERED
REQUEST      DELIVERED       ESCALATION               F    DELIVERED
REQUEST      ACKNOWLEDGED    DELIVERY_RECEIPT         R    ACKNOWLEDGED
REQUEST      ACKNOWLEDGED    RESPONSE_TO_RFI          R    RESPONDED
REQUEST      ACKNOWLEDGED    INFORMATION_ONLY         FR   ACKNOWLEDGED
REQUEST      ACKNOWLEDGED    ESCALATION               F    ACKNOWLEDGED
REQUEST      RESPONDED       DELIVERY_RECEIPT         R    RESPONDED
REQUEST      RESPONDED       RESPONSE_TO_RFI          R    RESPONDED
REQUEST      RESPONDED       INFORMATION_ONLY         FR   RESPONDED
REQUEST      RESPONDED       ESCALATION               F    RESPONDED
REQUEST      RESPONDED       CLOSE                    FX   CLOSED
REQUEST      CLOSED          ESCALATION               F    RESPONDED
"""

_ROLE_LETTERS = {"F": ActorRole.REFERRER, "R": ActorRole.RECIPIENT, "X": ActorRole.RELAY}
Key = tuple[ThreadType, ThreadState, ThreadEvent, ActorRole]


def _expected() -> dict[Key, ThreadState]:
    expected: dict[Key, ThreadState] = {}
    for line in EXPECTED_TABLE.strip().splitlines():
        if not line.strip():
            continue
        thread_type, state, event, roles, target = line.split()
        for letter in roles:
            key = (
                ThreadType(thread_type),
                ThreadState(state),
                ThreadEvent(event),
                _ROLE_LETTERS[letter],
            )
            assert key not in expected, f"duplicate expectation {key}"
            expected[key] = ThreadState(target)
    return expected


EXPECTED = _expected()
ALL_COMBINATIONS = list(itertools.product(ThreadType, ThreadState, ThreadEvent, ActorRole))


def _flatten() -> dict[Key, ThreadState]:
    return {
        (thread_type, state, event, actor): target
        for thread_type, table in TRANSITIONS.items()
        for state, events in table.items()
        for event, by_actor in events.items()
        for actor, target in by_actor.items()
    }


# -- the whole table --------------------------------------------------------------------------


def test_table_is_exactly_the_expected_table() -> None:
    assert _flatten() == EXPECTED


def test_every_combination_advances_or_raises() -> None:
    legal = 0
    for thread_type, state, event, actor in ALL_COMBINATIONS:
        key = (thread_type, state, event, actor)
        if key in EXPECTED:
            assert advance(state, event, actor, thread_type=thread_type) is EXPECTED[key], key
            legal += 1
        else:
            with pytest.raises(InvalidTransition):
                advance(state, event, actor, thread_type=thread_type)
    assert legal == len(EXPECTED) == 87
    assert len(ALL_COMBINATIONS) == 3 * 9 * 13 * 3


def test_plain_strings_work_like_the_enums() -> None:
    assert advance("SUBMITTED", "DELIVERY_RECEIPT", "recipient") is ThreadState.DELIVERED
    assert (
        advance("DELIVERED", "RESPONSE_TO_RFI", "recipient", thread_type="REQUEST")
        is ThreadState.RESPONDED
    )


@pytest.mark.parametrize(
    ("state", "event", "actor", "thread_type"),
    [
        ("LIMBO", "CLOSE", "relay", "REFERRAL"),
        ("SUBMITTED", "TELEPATHY", "relay", "REFERRAL"),
        ("SUBMITTED", "EXPIRE", "auditor", "REFERRAL"),
        ("SUBMITTED", "EXPIRE", "relay", "GOSSIP"),
    ],
)
def test_unknown_names_raise_invalid_transition(
    state: str, event: str, actor: str, thread_type: str
) -> None:
    with pytest.raises(InvalidTransition, match="unknown"):
        advance(state, event, actor, thread_type=thread_type)


def test_invalid_transition_is_a_409_problem() -> None:
    with pytest.raises(InvalidTransition) as caught:
        advance(ThreadState.CLOSED, ThreadEvent.DECISION_FEEDBACK, ActorRole.RECIPIENT)
    assert caught.value.status == 409
    assert caught.value.to_problem()["code"] == "invalid-transition"


def test_wrong_side_is_named_in_the_error() -> None:
    with pytest.raises(InvalidTransition, match="referrer may not send DECISION_FEEDBACK"):
        advance(ThreadState.ACKNOWLEDGED, ThreadEvent.DECISION_FEEDBACK, ActorRole.REFERRER)


@pytest.mark.parametrize(
    ("thread_type", "state", "actor"),
    [(t, s, a) for t in ThreadType for s in ThreadState for a in ActorRole],
)
def test_allowed_events_agrees_with_advance(
    thread_type: ThreadType, state: ThreadState, actor: ActorRole
) -> None:
    allowed = allowed_events(state, actor, thread_type=thread_type)
    assert allowed == {e for (t, s, e, a) in EXPECTED if (t, s, a) == (thread_type, state, actor)}


def test_final_states_accept_nothing() -> None:
    for thread_type, state, event, actor in ALL_COMBINATIONS:
        if state in (ThreadState.WITHDRAWN, ThreadState.REJECTED, ThreadState.EXPIRED):
            with pytest.raises(InvalidTransition):
                advance(state, event, actor, thread_type=thread_type)


def test_closed_accepts_only_the_referrers_escalation() -> None:
    for thread_type, _, event, actor in ALL_COMBINATIONS:
        legal = allowed_events(ThreadState.CLOSED, actor, thread_type=thread_type)
        expected_legal = (
            {ThreadEvent.ESCALATION}
            if actor is ActorRole.REFERRER and thread_type is not ThreadType.NOTIFICATION
            else set()
        )
        assert legal == expected_legal, (thread_type, event, actor)


def test_recipient_cannot_reply_before_receipting() -> None:
    for thread_type in ThreadType:
        assert allowed_events(
            ThreadState.SUBMITTED, ActorRole.RECIPIENT, thread_type=thread_type
        ) == {
            ThreadEvent.DELIVERY_RECEIPT,
            ThreadEvent.REJECTION,
        }


def test_relay_only_expires_undelivered_and_closes_settled_threads() -> None:
    relay_events = {(t, s, e) for (t, s, e, a) in EXPECTED if a is ActorRole.RELAY}
    assert {e for (_, _, e) in relay_events} == {ThreadEvent.EXPIRE, ThreadEvent.CLOSE}
    assert {s for (_, s, e) in relay_events if e is ThreadEvent.EXPIRE} == {ThreadState.SUBMITTED}


# -- key paths, literally ----------------------------------------------------------------------


def _walk(thread_type: ThreadType, steps: list[tuple[ThreadEvent, ActorRole, ThreadState]]) -> None:
    state = ThreadState.SUBMITTED
    for event, actor, expected in steps:
        state = advance(state, event, actor, thread_type=thread_type)
        assert state is expected, (event, actor)


F, R, X = ActorRole.REFERRER, ActorRole.RECIPIENT, ActorRole.RELAY
Ev = ThreadEvent
St = ThreadState


def test_scenario_1_maya_full_referral_path() -> None:
    referral = scenarios.maya_referral()
    thread_type, state = open_thread(event_for_kind(referral.kind))
    assert (thread_type, state) == (ThreadType.REFERRAL, St.SUBMITTED)
    _walk(
        ThreadType.REFERRAL,
        [
            (Ev.DELIVERY_RECEIPT, R, St.DELIVERED),
            (event_for_kind(scenarios.maya_acknowledgement().kind), R, St.ACKNOWLEDGED),
            (Ev.REQUEST_FOR_INFORMATION, R, St.ACKNOWLEDGED),
            (Ev.RESPONSE_TO_RFI, F, St.ACKNOWLEDGED),
            (event_for_kind(scenarios.maya_decision().kind), R, St.DECISION_GIVEN),
            (Ev.DECISION_FEEDBACK, R, St.DECISION_GIVEN),  # e.g. the s.47 outcome later
            (Ev.CLOSE, R, St.CLOSED),
        ],
    )


def test_scenario_1_request_to_police_is_its_own_thread() -> None:
    rfi = scenarios.maya_rfi_to_police()
    assert open_thread(event_for_kind(rfi.kind)) == (ThreadType.REQUEST, St.SUBMITTED)
    _walk(
        ThreadType.REQUEST,
        [
            (Ev.DELIVERY_RECEIPT, R, St.DELIVERED),
            (event_for_kind(scenarios.maya_police_response().kind), R, St.RESPONDED),
            (Ev.CLOSE, F, St.CLOSED),
        ],
    )


def test_a_decision_may_come_before_an_acknowledgement() -> None:
    _walk(
        ThreadType.REFERRAL,
        [
            (Ev.DELIVERY_RECEIPT, R, St.DELIVERED),
            (Ev.DECISION_FEEDBACK, R, St.DECISION_GIVEN),
        ],
    )
    with pytest.raises(InvalidTransition):
        advance(St.DECISION_GIVEN, Ev.ACKNOWLEDGEMENT, R)


def test_scenario_2_leo_notices_take_the_lighter_path() -> None:
    for notice in scenarios.leo_information_notices():
        assert open_thread(event_for_kind(notice.kind)) == (ThreadType.NOTIFICATION, St.SUBMITTED)
    _walk(
        ThreadType.NOTIFICATION,
        [
            (Ev.DELIVERY_RECEIPT, R, St.DELIVERED),
            (Ev.ACKNOWLEDGEMENT, R, St.ACKNOWLEDGED),
            (Ev.CLOSE, R, St.CLOSED),
        ],
    )
    with pytest.raises(InvalidTransition):
        advance(St.DELIVERED, Ev.ESCALATION, F, thread_type=ThreadType.NOTIFICATION)


def test_scenario_4_police_notification_opens_a_notification_thread() -> None:
    notice = scenarios.sam_police_notification()
    assert open_thread(event_for_kind(notice.kind)) == (ThreadType.NOTIFICATION, St.SUBMITTED)


def test_scenario_7_noah_unanswered_then_escalated() -> None:
    _walk(
        ThreadType.REFERRAL,
        [
            (Ev.DELIVERY_RECEIPT, R, St.DELIVERED),
            (event_for_kind(scenarios.noah_escalation().kind), F, St.DELIVERED),
            (Ev.ACKNOWLEDGEMENT, R, St.ACKNOWLEDGED),
            (Ev.DECISION_FEEDBACK, R, St.DECISION_GIVEN),
        ],
    )


def test_escalation_reopens_a_closed_referral() -> None:
    assert advance(St.CLOSED, Ev.ESCALATION, F) is St.DECISION_GIVEN
    with pytest.raises(InvalidTransition):
        advance(St.CLOSED, Ev.ESCALATION, R)


def test_withdrawal_only_before_delivery() -> None:
    assert advance(St.SUBMITTED, Ev.WITHDRAWAL, F) is St.WITHDRAWN
    for state in (St.DELIVERED, St.ACKNOWLEDGED, St.DECISION_GIVEN):
        with pytest.raises(InvalidTransition):
            advance(state, Ev.WITHDRAWAL, F)


def test_a_referral_cannot_close_without_a_decision() -> None:
    for state in (St.SUBMITTED, St.DELIVERED, St.ACKNOWLEDGED):
        for actor in ActorRole:
            with pytest.raises(InvalidTransition):
                advance(state, Ev.CLOSE, actor)


def test_duplicate_receipts_are_harmless() -> None:
    for state in (St.DELIVERED, St.ACKNOWLEDGED, St.DECISION_GIVEN):
        assert advance(state, Ev.DELIVERY_RECEIPT, R) is state


# -- openings, kinds, helpers ------------------------------------------------------------------


def test_openings() -> None:
    assert dict(OPENINGS) == {
        Ev.REFERRAL_SUBMITTED: ThreadType.REFERRAL,
        Ev.INFORMATION_ONLY: ThreadType.NOTIFICATION,
        Ev.POLICE_NOTIFICATION: ThreadType.NOTIFICATION,
        Ev.REQUEST_FOR_INFORMATION: ThreadType.REQUEST,
    }
    for event in ThreadEvent:
        if event in OPENINGS:
            assert open_thread(event) == (OPENINGS[event], St.SUBMITTED)
        else:
            with pytest.raises(InvalidTransition):
                open_thread(event)


def test_opening_events_cannot_recur_except_as_in_thread_messages() -> None:
    for thread_type, state, _event, actor in ALL_COMBINATIONS:
        for event in (Ev.REFERRAL_SUBMITTED, Ev.POLICE_NOTIFICATION):
            with pytest.raises(InvalidTransition):
                advance(state, event, actor, thread_type=thread_type)


def test_event_for_kind() -> None:
    assert {kind: event_for_kind(kind) for kind in MessageKind if kind in _SUPPORTED} == {
        MessageKind.REFERRAL: Ev.REFERRAL_SUBMITTED,
        MessageKind.ACKNOWLEDGEMENT: Ev.ACKNOWLEDGEMENT,
        MessageKind.DECISION_FEEDBACK: Ev.DECISION_FEEDBACK,
        MessageKind.REQUEST_FOR_INFORMATION: Ev.REQUEST_FOR_INFORMATION,
        MessageKind.RESPONSE_TO_RFI: Ev.RESPONSE_TO_RFI,
        MessageKind.INFORMATION_ONLY: Ev.INFORMATION_ONLY,
        MessageKind.POLICE_NOTIFICATION: Ev.POLICE_NOTIFICATION,
        MessageKind.ESCALATION: Ev.ESCALATION,
    }
    assert event_for_kind("REFERRAL") is Ev.REFERRAL_SUBMITTED


_SUPPORTED = {
    "REFERRAL",
    "ACKNOWLEDGEMENT",
    "DECISION_FEEDBACK",
    "REQUEST_FOR_INFORMATION",
    "RESPONSE_TO_RFI",
    "INFORMATION_ONLY",
    "POLICE_NOTIFICATION",
    "ESCALATION",
}


@pytest.mark.parametrize("kind", [k for k in MessageKind if k not in _SUPPORTED] + ["NOT_A_KIND"])
def test_kinds_without_threads_raise(kind: str) -> None:
    with pytest.raises(InvalidTransition):
        event_for_kind(kind)


def test_is_open() -> None:
    assert {s for s in ThreadState if is_open(s)} == {
        St.SUBMITTED,
        St.DELIVERED,
        St.ACKNOWLEDGED,
        St.DECISION_GIVEN,
        St.RESPONDED,
    }
    assert is_open("DELIVERED")
    with pytest.raises(InvalidTransition):
        is_open("LIMBO")


def test_table_cannot_be_mutated() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[ThreadType.REFERRAL][St.CLOSED][Ev.CLOSE] = {}  # type: ignore[index]


def test_dot_file_is_generated_from_the_table() -> None:
    dot = to_dot()
    assert DOT_FILE.read_text(encoding="utf-8") == dot, (
        "docs/state-machines/thread.dot is stale: regenerate it with to_dot()"
    )
    assert dot.startswith("// Generated")
    assert dot.rstrip().endswith("}")
    for thread_type in ThreadType:
        assert f"cluster_{thread_type}" in dot
    # every legal (state -> target) pair appears as an edge
    for thread_type, state, _event, _actor in EXPECTED:
        assert f'"{thread_type}:{state}" -> ' in dot
