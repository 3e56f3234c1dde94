"""The relay's transparency log: every event is a leaf, heads are signed and prove them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import keys.sealing
from keys.transparency import SignedTreeHead, parse_leaf, verify_tree_head
from schemas.encoding import b64decode
from schemas.merkle import leaf_hash, tree_root, verify_inclusion
from tests.log.conftest import LogSceneFactory
from tests.log.helpers import (
    all_leaves,
    assert_consistent,
    assert_inclusion,
    assert_root,
    head,
    message_id,
)
from tests.relay.conftest import BASIS, FakeClock, Scene, SceneFactory

LEAF_FOR_EVENT = {
    "header_accepted": "envelope",
    "receipt": "receipt",
    "submission_rejected": "rejection",
    "delivery_expired": "expiry",
    "content_deleted": "deletion",
}


def _lookup(nodes: dict[tuple[int, int], bytes]) -> Callable[[int, int], bytes]:
    def node(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    return node


async def _events(scene: Scene) -> list[dict[str, Any]]:
    reply = await scene.agency("auditor").get("/v1/audit/events", "since=0&limit=500")
    assert reply.status == 200
    return list(reply.json()["items"])


async def test_every_event_is_a_leaf_and_the_heads_prove_them(
    log_factory: LogSceneFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with log_factory(clock=clock) as scene:
        school, mash = scene.agency("school"), scene.agency("mash")
        kept = scene.referral()
        sent = await school.submit(kept)
        assert sent.status == 201, sent.body
        first = sent.json()["log"]
        assert first["leaf_index"] == 0
        assert (await mash.get(f"/v1/envelopes/{message_id(kept)}")).status == 200
        assert (await mash.acknowledge(kept, message_id(kept))).status == 201
        lost = scene.seal("school", ["police"], kind="REFERRAL")
        assert (await school.submit(lost)).status == 201

        with monkeypatch.context() as patch:  # a client that skips its own policy check
            patch.setattr(keys.sealing, "raise_for_verdict", lambda verdict: None)
            unlawful = scene.seal("school", ["mash"], basis={**BASIS, "art6": ["A6_1_f"]})
        refused = await school.submit(unlawful)
        assert refused.status == 422
        assert (await school.submit(unlawful)).status == 422  # logged once, not twice

        clock.advance(days=6)
        assert (await scene.relay.service.sweep())["expired"] == 1
        clock.advance(days=31)
        assert (await scene.relay.service.sweep())["deleted"] >= 1

        signed, tree = await head(scene)
        leaves = await all_leaves(scene)
        assert tree.size == len(leaves)
        assert_root(leaves, tree)
        parsed = [parse_leaf(leaf) for _, leaf in leaves]
        events = [e for e in await _events(scene) if e["type"] in LEAF_FOR_EVENT]
        assert [(v["sequence"], v["type"]) for v in parsed] == [
            (e["sequence"], LEAF_FOR_EVENT[e["type"]]) for e in events
        ]
        assert [v["type"] for v in parsed] == [
            "envelope",
            "receipt",
            "envelope",
            "rejection",
            "expiry",
            "deletion",
            "deletion",
        ]
        rejection = parsed[3]
        assert "L002" in rejection["rules"]
        assert rejection["code"] == "lawful-basis-rejected"
        assert b64decode(rejection["header"]) == unlawful.header_bytes
        assert b64decode(parsed[0]["header"]) == kept.header_bytes
        receipt = parsed[1]
        assert (receipt["message_id"], receipt["recipient"]) == (
            message_id(kept),
            "northbridge-front-door",
        )
        for index, leaf in leaves:
            await assert_inclusion(scene, index, leaf, tree)

        # The submit receipt's head and proof, and that head extends into the newest one.
        receipt_head = verify_tree_head(
            SignedTreeHead.from_json(first["tree_head"]), scene.partnership.directory()
        )
        proof = [b64decode(p) for p in first["inclusion_proof"]]
        verify_inclusion(
            leaf_hash(b64decode(first["leaf"])), 0, receipt_head.size, proof, receipt_head.root
        )
        await assert_consistent(scene, receipt_head, tree)

        # Every head the relay signed is consistent with the newest, and the frontier of any
        # size reproduces that size's root.
        heads = (await scene.agency("police").get("/v1/log/heads", "since=0")).json()["items"]
        assert [h["size"] for h in heads] == sorted({h["size"] for h in heads})
        assert heads[-1]["size"] == tree.size
        for item in heads:
            older = verify_tree_head(
                SignedTreeHead.from_json(item["tree_head"]), scene.partnership.directory()
            )
            await assert_consistent(scene, older, tree)
            frontier = (
                await scene.agency("school").get("/v1/log/frontier", f"size={older.size}")
            ).json()["nodes"]
            nodes = {(n["level"], n["index"]): b64decode(n["hash"]) for n in frontier}
            assert tree_root(older.size, _lookup(nodes)) == older.root
        assert signed.head.size == tree.size


async def test_concurrent_submissions_make_one_gapless_sequence(log_scene: Scene) -> None:
    senders = ["school", "mash", "police", "gp", "academy"]
    envelopes = [
        (sender, log_scene.seal(sender, ["mash" if sender != "mash" else "school"]))
        for sender in senders
        for _ in range(8)
    ]
    replies = await asyncio.gather(
        *(log_scene.agency(sender).submit(envelope) for sender, envelope in envelopes)
    )
    assert all(r.status == 201 for r in replies), [r.body for r in replies if r.status != 201]
    receipts = [r.json() for r in replies]
    indexes = sorted(r["log"]["leaf_index"] for r in receipts)
    assert indexes == list(range(len(envelopes)))

    _, tree = await head(log_scene)
    leaves = await all_leaves(log_scene)
    assert_root(leaves, tree)
    directory = log_scene.partnership.directory()
    for receipt, (_, envelope) in zip(receipts, envelopes, strict=True):
        part = receipt["log"]
        batch_head = verify_tree_head(SignedTreeHead.from_json(part["tree_head"]), directory)
        leaf = b64decode(part["leaf"])
        assert b64decode(parse_leaf(leaf)["header"]) == envelope.header_bytes
        proof = [b64decode(p) for p in part["inclusion_proof"]]
        verify_inclusion(
            leaf_hash(leaf), part["leaf_index"], batch_head.size, proof, batch_head.root
        )
        await assert_consistent(log_scene, batch_head, tree)


async def test_a_repeated_submission_is_proved_against_the_newest_head(log_scene: Scene) -> None:
    school = log_scene.agency("school")
    envelope = log_scene.referral()
    first = (await school.submit(envelope)).json()["log"]
    assert (await school.submit(log_scene.referral())).status == 201
    again = await school.submit(envelope)
    assert again.status == 200
    repeat = again.json()["log"]
    assert repeat["leaf_index"] == first["leaf_index"] == 0
    assert repeat["leaf"] == first["leaf"]
    newest = verify_tree_head(
        SignedTreeHead.from_json(repeat["tree_head"]), log_scene.partnership.directory()
    )
    assert newest.size == 2
    proof = [b64decode(p) for p in repeat["inclusion_proof"]]
    verify_inclusion(leaf_hash(b64decode(repeat["leaf"])), 0, 2, proof, newest.root)


async def test_agencies_see_and_prove_only_their_own_entries(log_scene: Scene) -> None:
    school, mash, police = (log_scene.agency(k) for k in ("school", "mash", "police"))
    to_mash = log_scene.referral()
    to_police = log_scene.seal("gp", ["police"])
    assert (await school.submit(to_mash)).status == 201
    assert (await log_scene.agency("gp").submit(to_police)).status == 201

    def indexes(reply: Any) -> list[int]:
        assert reply.status == 200, reply.body
        return [item["index"] for item in reply.json()["items"]]

    assert indexes(await school.get("/v1/log/leaves")) == [0]
    assert indexes(await mash.get("/v1/log/leaves")) == [0]
    assert indexes(await police.get("/v1/log/leaves")) == [1]
    assert indexes(await log_scene.agency("auditor").get("/v1/log/leaves")) == [0, 1]

    assert (await police.get("/v1/log/proof/inclusion", "index=1&size=2")).status == 200
    denied = await police.get("/v1/log/proof/inclusion", "index=0&size=2")
    assert (denied.status, denied.problem_code) == (403, "forbidden")
    assert (await school.get("/v1/log/head")).status == 200
    assert (await police.get("/v1/log/proof/consistency", "first=1&second=2")).status == 200
    other = await police.get(f"/v1/envelopes/{message_id(to_mash)}/log")
    assert (other.status, other.problem_code) == (403, "not-recipient")
    mine = await mash.get(f"/v1/envelopes/{message_id(to_mash)}/log")
    assert mine.status == 200
    assert [e["type"] for e in mine.json()["entries"]] == ["envelope"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/log/proof/inclusion", "index=0"),
        ("/v1/log/proof/inclusion", "index=5&size=9"),
        ("/v1/log/proof/inclusion", "index=1&size=1"),
        ("/v1/log/proof/consistency", "first=0&second=1"),
        ("/v1/log/proof/consistency", "first=1&second=99"),
        ("/v1/log/frontier", "size=x"),
        ("/v1/log/leaves", "limit=5000"),
        ("/v1/log/heads", "from=yesterday"),
    ],
)
async def test_bad_log_requests_are_problems(log_scene: Scene, path: str, query: str) -> None:
    assert (await log_scene.agency("school").submit(log_scene.referral())).status == 201
    reply = await log_scene.agency("auditor").get(path, query)
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.problem_code == "invalid-request"


async def test_without_a_certified_log_key_leaves_are_kept_but_no_head_is_signed(
    relay_factory: SceneFactory,
) -> None:
    async with relay_factory() as scene:
        reply = await scene.agency("school").submit(scene.referral())
        assert reply.status == 201
        log = reply.json()["log"]
        assert log["leaf_index"] == 0
        assert "tree_head" not in log
        missing = await scene.agency("auditor").get("/v1/log/head")
        assert (missing.status, missing.problem_code) == (404, "not-found")
        assert len((await scene.agency("auditor").get("/v1/log/leaves")).json()["items"]) == 1
