"""Threads and working-day deadlines across the spring bank holiday weekend (injected clock).

Friday 22 May 2026, 15:00 in London: a school refers to the front door and the
front door's client collects it five minutes later. Monday 25 May is the spring
bank holiday, so acknowledgement and decision (one working day each) are due by
the end of Tuesday 26 May. Nobody answers: on Wednesday both sides get one
escalation notice per missed deadline, and only one however often the sweeper runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from keys.testing import Partnership
from tests.relay.conftest import FakeClock, Scene

FRIDAY_3PM = datetime(2026, 5, 22, 14, 0, tzinfo=UTC)  # 15:00 BST


def _id(envelope: Any) -> str:
    return str(json.loads(envelope.header_bytes)["id"])


def _notices(inbox: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in inbox["items"] if item["type"] == "notice"]


async def test_referral_thread_across_bank_holiday_weekend(relay_factory: Any) -> None:
    clock = FakeClock(FRIDAY_3PM)
    partnership = Partnership.create(at=clock())
    async with relay_factory(clock=clock, partnership=partnership) as scene:
        school, mash = scene.agency("school"), scene.agency("mash")
        referral = scene.referral()
        thread = _id(referral)
        assert (await school.submit(referral)).status == 201

        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "SUBMITTED"
        assert state["deadlines"] == []

        # Receipts first: the front door cannot acknowledge what it has not receipted.
        early_ack = scene.seal(
            "mash", ["school"], kind="ACKNOWLEDGEMENT", thread_id=thread, in_reply_to=thread
        )
        refused = await mash.submit(early_ack)
        assert refused.status == 409
        assert refused.problem_code == "invalid-transition"

        clock.advance(minutes=5)
        assert (await mash.acknowledge(referral, thread)).status == 201
        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "DELIVERED"
        due = {d["code"]: d["due"] for d in state["deadlines"]}
        assert due == {
            "T_ACK_REFERRAL": "2026-05-26T22:59:59Z",
            "T_DECISION": "2026-05-26T22:59:59Z",
        }

        # The referrer's side may not acknowledge its own referral.
        wrong_side = scene.seal(
            "school", ["mash"], kind="ACKNOWLEDGEMENT", thread_id=thread, in_reply_to=thread
        )
        refused = await school.submit(wrong_side)
        assert refused.status == 409
        assert refused.problem_code == "invalid-transition"

        # Bank holiday Monday, late: nothing is overdue yet.
        clock.set(datetime(2026, 5, 25, 22, 0, tzinfo=UTC))
        summary = await scene.relay.service.sweep()
        assert summary["breaches"] == 0
        got = await mash.get(f"/v1/agencies/{mash.agency_id}/overdue")
        assert got.status == 200, got.body
        assert got.json()["threads"] == []

        # Tuesday evening, still within the working day.
        clock.set(datetime(2026, 5, 26, 22, 30, tzinfo=UTC))
        assert (await scene.relay.service.sweep())["breaches"] == 0

        # Wednesday morning: both clocks have run out.
        clock.set(datetime(2026, 5, 27, 8, 0, tzinfo=UTC))
        summary = await scene.relay.service.sweep()
        assert summary["breaches"] == 2
        assert summary["overdue_threads"] == 1
        assert (await scene.relay.service.sweep())["breaches"] == 0  # exactly once

        for agency in (school, mash):
            notices = _notices(await agency.inbox())
            assert sorted(n["detail"]["deadline"] for n in notices) == [
                "T_ACK_REFERRAL",
                "T_DECISION",
            ]
            assert {n["notice"] for n in notices} == {"OVERDUE"}
            assert {n["thread"] for n in notices} == {thread}

        overdue = (await mash.get(f"/v1/agencies/{mash.agency_id}/overdue")).json()["threads"]
        assert [(t["thread"], t["role"]) for t in overdue] == [(thread, "recipient")]
        overdue = (await school.get(f"/v1/agencies/{school.agency_id}/overdue")).json()["threads"]
        assert [(t["thread"], t["role"]) for t in overdue] == [(thread, "referrer")]
        listed = (await school.get("/v1/threads", "role=sent&overdue=true")).json()["threads"]
        assert [t["thread"] for t in listed] == [thread]

        # The front door acknowledges and decides, late.
        ack = scene.seal(
            "mash", ["school"], kind="ACKNOWLEDGEMENT", thread_id=thread, in_reply_to=thread
        )
        assert (await mash.submit(ack)).status == 201
        clock.advance(hours=2)
        decision = scene.seal(
            "mash", ["school"], kind="DECISION_FEEDBACK", thread_id=thread, in_reply_to=thread
        )
        assert (await mash.submit(decision)).status == 201

        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "DECISION_GIVEN"
        assert state["overdue"] is False
        clocks = {d["code"]: d for d in state["deadlines"]}
        assert clocks["T_ACK_REFERRAL"]["met_late"] is True
        assert clocks["T_DECISION"]["met_late"] is True
        assert clocks["T_FEEDBACK"]["met_at"] is not None
        assert [m["kind"] for m in state["messages"]] == [
            "REFERRAL",
            "ACKNOWLEDGEMENT",
            "DECISION_FEEDBACK",
        ]
        assert (await scene.relay.service.sweep())["breaches"] == 0
        received = (await mash.get("/v1/threads", "role=received")).json()["threads"]
        assert [t["state"] for t in received] == ["DECISION_GIVEN"]


async def test_replies_need_a_known_thread_and_a_participant(scene: Scene) -> None:
    school, mash, police = scene.agency("school"), scene.agency("mash"), scene.agency("police")
    stray = scene.seal(
        "mash", ["school"], kind="ACKNOWLEDGEMENT", thread_id="f" * 32, in_reply_to="f" * 32
    )
    reply = await mash.submit(stray)
    assert reply.status == 409
    assert reply.problem_code == "invalid-transition"

    # An acknowledgement cannot open a thread.
    opener = scene.seal("mash", ["school"], kind="ACKNOWLEDGEMENT")
    reply = await mash.submit(opener)
    assert reply.status == 409

    referral = scene.referral()
    thread = _id(referral)
    assert (await school.submit(referral)).status == 201
    assert (await mash.acknowledge(referral, thread)).status == 201
    outsider = scene.seal(
        "police", ["school"], kind="INFORMATION_ONLY", thread_id=thread, in_reply_to=thread
    )
    reply = await police.submit(outsider)
    assert reply.status == 409
    assert reply.problem_code == "invalid-transition"


async def test_information_only_opens_a_notification_thread(scene: Scene) -> None:
    police, mash = scene.agency("police"), scene.agency("mash")
    notice = scene.seal("police", ["mash"], kind="INFORMATION_ONLY")
    thread = _id(notice)
    assert (await police.submit(notice)).status == 201
    assert (await mash.acknowledge(notice, thread)).status == 201
    state = (await police.get(f"/v1/threads/{thread}")).json()
    assert state["type"] == "NOTIFICATION"
    assert state["state"] == "DELIVERED"
    assert state["deadlines"] == []


async def test_relay_closes_a_decided_referral_after_quiet_working_days(
    relay_factory: Any,
) -> None:
    """Housekeeping: a decided referral closes after 10 quiet working days, not before."""
    clock = FakeClock(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))  # a Tuesday
    partnership = Partnership.create(at=clock())
    async with relay_factory(clock=clock, partnership=partnership) as scene:
        school, mash = scene.agency("school"), scene.agency("mash")
        referral = scene.referral()
        thread = _id(referral)
        assert (await school.submit(referral)).status == 201
        assert (await mash.acknowledge(referral, thread)).status == 201
        decision = scene.seal(
            "mash", ["school"], kind="DECISION_FEEDBACK", thread_id=thread, in_reply_to=thread
        )
        assert (await mash.submit(decision)).status == 201

        # Nine working days later (across a weekend): still open.
        clock.set(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
        assert (await scene.relay.service.sweep())["closed_threads"] == 0
        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "DECISION_GIVEN"

        # Ten working days: the relay closes it, once.
        clock.set(datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
        assert (await scene.relay.service.sweep())["closed_threads"] == 1
        assert (await scene.relay.service.sweep())["closed_threads"] == 0
        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "CLOSED"

        # The referrer can still escalate a closed thread (KCSIE: follow up if worried).
        escalation = scene.seal(
            "school", ["mash"], kind="ESCALATION", thread_id=thread, in_reply_to=thread
        )
        assert (await school.submit(escalation)).status == 201
        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "DECISION_GIVEN"


async def test_an_undecided_referral_is_never_closed_by_housekeeping(scene: Scene) -> None:
    school, mash = scene.agency("school"), scene.agency("mash")
    referral = scene.referral()
    thread = _id(referral)
    assert (await school.submit(referral)).status == 201
    assert (await mash.acknowledge(referral, thread)).status == 201
    tracker = scene.relay.service.tracker
    rows = await scene.relay.service.store.threads(open_states=("DELIVERED",))
    far_future = datetime(2027, 6, 1, tzinfo=UTC)
    assert tracker.settled(rows, far_future) == {}
