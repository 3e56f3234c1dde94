"""Scenario 1 (Maya) end to end through the ``agency`` CLI, against a real relay."""

from __future__ import annotations

from pathlib import Path

import agency_client
from tests.client.conftest import Partnership

TEMPLATES = Path(agency_client.__file__).parent / "templates"
REFERRAL = str(TEMPLATES / "referral.yaml")
WRONG_BASIS = str(TEMPLATES / "referral-wrong-basis.yaml")


def test_maya_referral_to_decision_and_audit(partnership: Partnership) -> None:
    school, mash, police, auditor = (
        partnership.school,
        partnership.mash,
        partnership.police,
        partnership.auditor,
    )

    # The DSL's wrong-basis attempt is refused before it leaves, with the finding shown.
    refused = school.cli("refer", WRONG_BASIS)
    assert refused.code == 1
    assert "Lawful basis rejected" in refused.err
    assert "[L002 REJECT_LAW]" in refused.err
    assert "Traceback" not in refused.err

    # The referral with the proper basis is sealed, accepted and receipted.
    sent = school.cli("--json", "refer", REFERRAL)
    assert sent.code == 0, sent.err
    referral = sent.json()
    assert referral["verdict"]["decision"] in {"accept", "warn"}
    assert referral["queued"] is False
    assert referral["receipt"]["message_id"] == referral["message_id"]
    thread = referral["thread_id"]
    assert thread == referral["message_id"]
    assert referral["relay_sees"]["basis"]["art6"] == ["A6_1_e"]
    assert "justification" not in referral["relay_sees"]["basis"]

    inbox = mash.cli("--json", "inbox")
    assert inbox.code == 0, inbox.err
    items = inbox.json()["items"]
    assert [(i["kind"], i["message_id"]) for i in items] == [("REFERRAL", thread)]
    assert items[0]["receipted"] is True
    assert items[0]["verdict"]["decision"] in {"accept", "warn"}

    shown = mash.cli("--json", "show", thread[:10], "--recheck")
    assert shown.code == 0, shown.err
    assert shown.json()["body"]["child"]["given_name"] == "Maya"
    assert shown.json()["recheck"]["decision"] in {"accept", "warn"}
    assert shown.json()["basis"]["justification"]["statutory_function_citation"] == (
        "Education Act 2002 s.175(2)"
    )

    ack = mash.cli("--json", "ack", thread, "--reference", "NB-FD-2026-118842")
    assert ack.code == 0, ack.err
    assert ack.json()["thread_id"] == thread

    rfi = mash.cli(
        "--json",
        "rfi",
        "--to",
        "northshire-police-ppu/public-protection",
        "--about",
        thread,
        "--request",
        "Any police involvement with the household.",
        "--why",
        "Deciding today whether to start s.47 enquiries.",
        "--enquiry-ref",
        "NB-FD-2026-118842",
    )
    assert rfi.code == 0, rfi.err
    request_id = rfi.json()["message_id"]
    assert "CA1989_S47_9" in rfi.json()["relay_sees"]["basis"]["gateways"]

    got = police.cli("--json", "inbox")
    assert [i["message_id"] for i in got.json()["items"]] == [request_id]
    answer = police.cli(
        "--json",
        "respond",
        request_id,
        "--provide",
        "One domestic incident at the address in August; a 2019 caution.",
        "--criminal-offence-data",
    )
    assert answer.code == 0, answer.err
    assert answer.json()["thread_id"] == request_id

    back = mash.cli("--json", "inbox")
    assert [i["kind"] for i in back.json()["items"]] == ["RESPONSE_TO_RFI"]

    decision = mash.cli(
        "--json",
        "decide",
        thread,
        "--outcome",
        "STRATEGY_S47",
        "--summary",
        "A strategy discussion is being held today; s.47 enquiries have started.",
        "--next-steps",
        "If the stepfather arrives, keep Maya in school and call Grace Adeyemi.",
        "--worker-name",
        "Grace Adeyemi",
        "--worker-role",
        "Social worker",
        "--worker-phone",
        "01632 960210",
    )
    assert decision.code == 0, decision.err

    teacher = school.cli("--json", "inbox")
    assert [i["kind"] for i in teacher.json()["items"]] == ["ACKNOWLEDGEMENT", "DECISION_FEEDBACK"]
    threads = school.cli("--json", "threads")
    assert threads.code == 0, threads.err
    (view,) = threads.json()["threads"]
    assert view["thread_id"] == thread
    assert view["state"] == "DECISION_GIVEN"
    assert view["relay_state_known"] is True
    assert view["outcome"]["outcome_code"] == "STRATEGY_S47"
    assert "keep Maya in school" in view["outcome"]["referrer_next_steps"]
    assert view["overdue"] is False
    text = school.cli("threads")
    assert "outcome: STRATEGY_S47" in text.out
    assert "allocated worker: Grace Adeyemi" in text.out

    receipts = school.cli("--json", "receipts", "verify")
    assert receipts.code == 0, receipts.out
    (check,) = receipts.json()["messages"]
    assert check["submit_receipt_ok"] is True
    assert check["delivered_to"] == ["northshire-mash"]

    audit = auditor.cli("--json", "audit")
    assert audit.code == 0, audit.out + audit.err
    entries = audit.json()["entries"]
    assert [e["kind"] for e in entries] == [
        "REFERRAL",
        "ACKNOWLEDGEMENT",
        "REQUEST_FOR_INFORMATION",
        "RESPONSE_TO_RFI",
        "DECISION_FEEDBACK",
    ]
    assert all(e["signature_ok"] and e["codes_verdict"] != "reject" for e in entries)
    assert entries[0]["basis_codes"]["art9_condition"] == "A9_2_g"
    assert audit.json()["failed"] == 0


def test_local_threads_follow_the_lifecycle(partnership: Partnership) -> None:
    school, mash = partnership.school, partnership.mash
    thread = school.cli("--json", "refer", REFERRAL).json()["thread_id"]
    assert mash.cli("inbox").code == 0
    # The relay is asked; its view (DELIVERED after the receipt) is what is shown.
    (view,) = mash.cli("--json", "threads").json()["threads"]
    assert (view["thread_id"], view["state"], view["role"]) == (thread, "DELIVERED", "received")
    deadlines = {d["code"]: d for d in view["deadlines"]}
    assert {"T_ACK_REFERRAL", "T_DECISION"} <= set(deadlines)
    assert deadlines["T_ACK_REFERRAL"]["met_at"] is None
    # With the relay down, the local record (driven by the same lifecycle table) is shown.
    partnership.relay.stop()
    offline = mash.cli("--json", "threads").json()
    assert offline["relay_reachable"] is False
    assert offline["threads"][0]["state"] == "DELIVERED"
