"""The fuzz drivers shared by the CI tests and ``bench/fuzz.py``.

:func:`run_core` checks mutants against the pure core's verify/open paths;
:func:`run_http` submits mutants to a running relay as real agencies (signed requests)
and asserts every answer. The mutators and oracles are in :mod:`tests.security.mutations`.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

from keys.testing import Partnership
from schemas import problems
from tests.relay.conftest import Scene
from tests.reliability.traffic import client_for, seal_envelope
from tests.security.mutations import (
    ATTACKER,
    Bases,
    FuzzStats,
    Mutator,
    check_envelope,
    check_receipt,
    is_equivalent,
    make_bases,
)

__all__ = ["make_bases_at", "run_core", "run_http"]


def make_bases_at(p: Partnership, now: datetime) -> Bases:
    """Genuine envelopes and receipts sealed now by the partnership's members."""

    def seal(p: Partnership, sender: str, to: list[str], kind: str, **thread: Any) -> Any:
        return seal_envelope(p, sender, to, kind=kind, created_at=now, **thread)

    return make_bases(p, now, seal)


def run_core(cases: int, seed: int) -> FuzzStats:
    """Check ``cases`` mutants (4 envelopes : 1 receipt) against the pure core."""
    now = datetime.now(UTC).replace(microsecond=0)
    bases = make_bases_at(Partnership.create(at=now), now)
    mutator = Mutator(bases, random.Random(seed))
    stats = FuzzStats()
    for _ in range(cases * 10):  # bounded: equivalents are drawn again
        if stats.total >= cases:
            break
        if mutator.rng.random() < 0.8:
            check_envelope(bases, mutator.envelope(), stats)
        else:
            check_receipt(bases, mutator.receipt(), stats)
    return stats


def _known_problem(status: int, headers: Any, body: bytes) -> str:
    assert headers.get("Content-Type", "").startswith("application/problem+json"), body[:200]
    problem = json.loads(body)
    cls = problems.from_problem(problem)
    assert type(cls).code == problem["code"]
    assert problem["status"] == status
    return str(problem["code"])


async def run_http(scene: Scene, cases: int, seed: int) -> str:
    """Submit ``cases`` mutants to the relay as real agencies; assert every answer; summarise."""
    p = scene.partnership
    now = datetime.now(UTC).replace(microsecond=0)
    bases = make_bases_at(p, now)
    agencies = {key: client_for(scene.session, scene.url, p, key) for key in p.members}
    # The genuine messages are at the relay (receipts need them; replays are of them).
    receipts_of: dict[str, dict[str, Any]] = {}
    for base in bases.envelopes:
        if base.envelope.header_bytes == bases.envelopes[-1].envelope.header_bytes:
            # The acknowledgement needs the front door's receipt for the referral first.
            first = bases.receipts[0]
            referral = json.loads(first.message.envelope.header_bytes)["id"]
            receipted = await agencies[first.recipient].post_json(
                f"/v1/envelopes/{referral}/receipts", first.receipt.to_json()
            )
            assert receipted.status == 201, receipted.body
        reply = await agencies[base.sender].submit(base.envelope)
        assert reply.status == 201, reply.body
        receipts_of[json.loads(base.envelope.header_bytes)["id"]] = reply.json()
    mutator = Mutator(bases, random.Random(seed))
    statuses: dict[int, int] = {}
    codes: dict[str, int] = {}
    sent = 0
    for _ in range(cases * 10):
        if sent >= cases:
            break
        if mutator.rng.random() < 0.8:
            mutant = mutator.envelope()
            if mutant.directory != "current":
                continue  # revocation and expiry replays are the core test's (same code)
            if is_equivalent(bases, mutant):
                continue
            submitter = agencies[mutant.resigned_by or mutant.base.sender]
            reply = await submitter.submit(mutant.wire)
        else:
            receipt = mutator.receipt()
            if receipt.directory != "current":
                continue
            if is_equivalent(bases, receipt):
                continue
            target = json.loads(receipt.target.envelope.header_bytes)["id"]
            body = json.dumps(receipt.value).encode()
            reply = await agencies[receipt.poster].send(
                "POST", f"/v1/envelopes/{target}/receipts", body=body
            )
        sent += 1
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
        assert reply.status < 500, (reply.status, reply.body[:300])
        if reply.status >= 400:
            code = _known_problem(reply.status, reply.headers, reply.body)
            codes[code] = codes.get(code, 0) + 1
            continue
        # Only a header the attacker re-signed as itself may be stored, and as the attacker's.
        assert mutant.resigned_by == ATTACKER, (reply.status, reply.body[:300])
        stored = await agencies["auditor"].get(f"/v1/envelopes/{reply.json()['message_id']}/header")
        assert stored.json()["sender"]["agency"] == p[ATTACKER].agency_id
    # Replays of the genuine messages: the same receipt again, never a second message.
    for base in bases.envelopes:
        reply = await agencies[base.sender].submit(base.envelope)
        assert reply.status == 200
        original = receipts_of[json.loads(base.envelope.header_bytes)["id"]]
        assert {**reply.json(), "duplicate": False} == original
    # The relay holds the genuine messages and nothing else from the fuzz.
    headers = await agencies["auditor"].get("/v1/audit/headers", "limit=500")
    senders = [item["sender"]["agency"] for item in headers.json()["items"]]
    genuine = len(bases.envelopes)
    assert len(senders) - senders.count(p[ATTACKER].agency_id) == genuine
    assert sent >= cases
    return (
        f"http (seed {seed}): {sent} mutated requests -> {dict(sorted(statuses.items()))}, "
        f"problems {dict(sorted(codes.items()))}; 0 accepted, 0 server errors"
    )
