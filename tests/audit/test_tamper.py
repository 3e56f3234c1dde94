"""Each way of cheating is detected and named: by the auditor's verification, or (for what an
agency can see) by the agency client the moment it looks."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

import exchange.log
import exchange.service
import keys.sealing
from keys.transparency import leaf_bytes, parse_leaf
from schemas.merkle import leaf_hash, nodes_completed_by
from schemas.timefmt import format_time
from tests.audit.conftest import (
    REFERRAL,
    WRONG_BASIS,
    LoggedPartnership,
    full_scenario,
    refer,
)


def _codes(report: dict[str, object]) -> set[str]:
    failures = report["failures"]
    assert isinstance(failures, list)
    return {str(f["code"]) for f in failures}


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line and not line.startswith("... ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_header_row_altered_in_the_relay_database(logged: LoggedPartnership) -> None:
    thread = full_scenario(logged)
    with logged.db() as db:
        (header,) = db.execute(
            "SELECT header FROM messages WHERE message_id = ?", (thread,)
        ).fetchone()
        forged = bytes(header).replace(b'"A6_1_e"', b'"A6_1_c"')
        assert forged != bytes(header)
        db.execute("UPDATE messages SET header = ? WHERE message_id = ?", (forged, thread))
    result, report = logged.audit()
    assert result.code == 1
    assert "header-altered" in _codes(report)
    (named,) = [f for f in report["failures"] if f["code"] == "header-altered"]
    assert named["message_id"] == thread
    assert "FAIL header-altered" in result.out


def test_leaf_deleted(logged: LoggedPartnership) -> None:
    full_scenario(logged)
    with logged.db() as db:
        db.execute("DELETE FROM log_leaves WHERE leaf_index = 1")
    result, report = logged.audit()
    assert result.code == 1
    codes = _codes(report)
    assert "log-leaf-missing" in codes
    assert "log-root-mismatch" in codes
    (missing,) = [f for f in report["failures"] if f["code"] == "log-leaf-missing"]
    assert missing["leaf_index"] == 1


def test_leaf_reordered(logged: LoggedPartnership) -> None:
    full_scenario(logged)
    with logged.db() as db:
        rows = db.execute(
            "SELECT leaf_index, leaf, leaf_hash FROM log_leaves WHERE leaf_index IN (1, 2)"
        ).fetchall()
        (i, leaf_i, hash_i), (j, leaf_j, hash_j) = rows
        db.execute(
            "UPDATE log_leaves SET leaf=?, leaf_hash=? WHERE leaf_index=?", (leaf_j, hash_j, i)
        )
        db.execute(
            "UPDATE log_leaves SET leaf=?, leaf_hash=? WHERE leaf_index=?", (leaf_i, hash_i, j)
        )
    result, report = logged.audit()
    assert result.code == 1
    codes = _codes(report)
    assert "log-leaf-out-of-order" in codes
    assert "log-root-mismatch" in codes


def _rewrite_history(db: sqlite3.Connection) -> None:
    """What a relay that rewrites its past does: change an old leaf, recompute every node, and
    throw away the heads it signed (the relay signs new ones over the rewritten tree)."""
    leaves = [bytes(r[0]) for r in db.execute("SELECT leaf FROM log_leaves ORDER BY leaf_index")]
    first = parse_leaf(leaves[0])
    at = datetime.fromisoformat(first["at"].replace("Z", "+00:00")) - timedelta(hours=1)
    fields = {k: v for k, v in first.items() if k != "type"}
    leaves[0] = leaf_bytes(first["type"], {**fields, "at": format_time(at)})
    nodes: dict[tuple[int, int], bytes] = {}
    db.execute("BEGIN")
    db.execute("DELETE FROM log_nodes")
    db.execute("DELETE FROM log_heads")
    for index, leaf in enumerate(leaves):
        hashed = leaf_hash(leaf)
        db.execute(
            "UPDATE log_leaves SET leaf = ?, leaf_hash = ? WHERE leaf_index = ?",
            (leaf, hashed, index),
        )
        for level, position, value in nodes_completed_by(
            index, hashed, lambda lvl, pos: nodes[(lvl, pos)]
        ):
            nodes[(level, position)] = value
            db.execute("INSERT INTO log_nodes VALUES (?, ?, ?)", (level, position, value))
    db.execute("COMMIT")


def test_tree_head_resigned_over_rewritten_history(logged: LoggedPartnership) -> None:
    refer(logged)  # the school keeps the tree head its receipt was proved against
    audited, _ = logged.audit()
    assert audited.code == 0, audited.out
    with logged.db() as db:
        _rewrite_history(db)

    # The next receipt carries a head signed over the rewritten log: a fork for the school.
    again = logged.school.cli("refer", REFERRAL)
    assert again.code == 1
    line = _one_line(again.err)
    assert line.startswith("agency: error:")
    assert "forked or was rewritten" in line

    # The auditor, who saw the old head, names it too (and the rewritten leaf breaks nothing
    # else: the new heads are consistent among themselves, but not with what was seen).
    result, report = logged.audit()
    assert result.code == 1
    assert "log-fork" in _codes(report)


def test_receipt_whose_inclusion_proof_does_not_match(
    logged: LoggedPartnership, monkeypatch: pytest.MonkeyPatch
) -> None:
    refer(logged)
    original = exchange.log.TransparencyLog.submit_receipt_log

    def corrupted(self: exchange.log.TransparencyLog, accepted: object) -> object:
        part = original(self, accepted)  # type: ignore[arg-type]
        assert part is not None
        assert part["inclusion_proof"]
        part["inclusion_proof"] = list(reversed(part["inclusion_proof"]))
        if len(part["inclusion_proof"]) == 1:
            part["inclusion_proof"] = ["A" * 43 + "="]
        return part

    monkeypatch.setattr(exchange.log.TransparencyLog, "submit_receipt_log", corrupted)
    sent = logged.school.cli("refer", REFERRAL)
    assert sent.code == 1
    line = _one_line(sent.err)
    assert "inclusion proof does not match the relay's signed tree head" in line

    # Later, with an honest relay, `receipts verify` names the stored bad receipt.
    monkeypatch.undo()
    checked = logged.school.cli("--json", "receipts", "verify")
    assert checked.code == 1
    problems = [p for m in checked.json()["messages"] for p in m["problems"]]
    assert any("inclusion proof does not match" in p for p in problems)


def test_message_whose_basis_the_policy_rejects(
    logged: LoggedPartnership, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier relay (or a misconfigured one) accepted a basis the rules reject.
    with monkeypatch.context() as patch:
        patch.setattr(keys.sealing, "raise_for_verdict", lambda verdict: None)
        patch.setattr(exchange.service, "raise_for_verdict", lambda verdict: None)
        sent = logged.school.cli("--json", "refer", WRONG_BASIS)
    assert sent.code == 0, sent.err
    message_id = sent.json()["message_id"]
    result, report = logged.audit()
    assert result.code == 1
    (rejected,) = [f for f in report["failures"] if f["code"] == "basis-rejected"]
    assert rejected["message_id"] == message_id
    assert "L002" in rejected["message"]
    entry = next(e for e in report["entries"] if e["message_id"] == message_id)
    assert entry["codes_verdict"] == "reject"
    assert any(f["rule"] == "L002" for f in entry["findings"])


def test_missing_justification(logged: LoggedPartnership) -> None:
    thread = full_scenario(logged)
    with logged.db() as db:
        db.execute("UPDATE messages SET seals = NULL WHERE message_id = ?", (thread,))
    result, report = logged.audit()
    assert result.code == 1
    (missing,) = [f for f in report["failures"] if f["code"] == "justification-missing"]
    assert missing["message_id"] == thread
    assert report["messages"]["justifications_read"] == 2


def test_corrupted_justification(logged: LoggedPartnership) -> None:
    thread = full_scenario(logged)
    with logged.db() as db:
        (seals,) = db.execute(
            "SELECT seals FROM messages WHERE message_id = ?", (thread,)
        ).fetchone()
        value = json.loads(seals)
        value["justification"] = value["justification"][:-8] + "AAAAAAA="
        forged = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        db.execute("UPDATE messages SET seals = ? WHERE message_id = ?", (forged, thread))
    result, report = logged.audit()
    assert result.code == 1
    assert "justification-invalid" in _codes(report)


def test_referral_with_no_feedback_past_its_deadline(logged: LoggedPartnership) -> None:
    thread = refer(logged)  # delivered (receipted) but never acknowledged or decided
    on_time, report = logged.audit()
    assert on_time.code == 0, on_time.out
    assert report["timeliness"]["open_by_mailbox"] == {"northshire-mash/front-door": 1}

    later = format_time(datetime.now(UTC) + timedelta(days=10))
    result, report = logged.audit("--as-of", later)
    assert result.code == 1
    overdue = [f for f in report["failures"] if f["code"] == "deadline-overdue"]
    assert {f["deadline"] for f in overdue} == {"T_ACK_REFERRAL", "T_DECISION"}
    assert all(f["thread"] == thread for f in overdue)
    timeliness = report["timeliness"]
    assert timeliness["overdue"] == 1
    assert timeliness["overdue_by_mailbox"] == {"northshire-mash/front-door": 1}
    assert timeliness["overdue_by_agency"] == {"northshire-mash": 1}
    assert timeliness["feedback_distribution"] == {"none yet": 1}
    assert "overdue at northshire-mash/front-door: 1" in result.out
