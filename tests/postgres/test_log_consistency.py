"""Four relay processes append to one transparency log at once; the log stays one sequence.

Four ``exchange serve`` processes share one PostgreSQL database and one certified log
key. Clients submit envelopes and post receipts through all four at once, and keep
asking random processes for a freshly signed tree head while they do. Afterwards a
full check, as an auditor would make it from outside plus a look at the tables:

* the leaves are exactly ``0..n-1`` and every accepted header and receipt is one leaf;
* every head any process signed (per submit batch, or on demand) is signed by the log
  key, and its root is the root of the first ``size`` leaves: one history, no fork;
* each process proves every head consistent with the final one;
* every submit receipt's inclusion proof holds against the head that came with it;
* the event log is gapless, and each leaf records its own event.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from keys.keystore import save_identity
from keys.testing import Partnership
from keys.transparency import SignedTreeHead, TreeHead, parse_leaf, verify_tree_head
from schemas.encoding import b64decode
from schemas.merkle import leaf_hash, root_from_leaves, verify_consistency, verify_inclusion
from tests.log.conftest import log_partnership
from tests.postgres.cluster import Cluster, message_id, seal_for
from tests.relay.conftest import AgencyHTTP

PASSPHRASE = "log key passphrase for the test"
PER_SUBMITTER = 8
SENDERS = ("school", "police", "gp", "academy")


@pytest.fixture
def partnership() -> Partnership:
    """The test partnership plus the relay's log key, certified by the root (role ``relay``)."""
    return log_partnership()


async def test_four_processes_append_to_one_consistent_log(cluster: Cluster) -> None:
    p = cluster.partnership
    key_file = cluster.workdir / "relay-log.key"
    save_identity(key_file, p["relay"].identity, PASSPHRASE.encode(), limits="interactive")
    relays = await cluster.add(
        4,
        {
            "EXCHANGE_LOG_KEY_FILE": str(key_file),
            "EXCHANGE_LOG_KEY_PASSPHRASE": PASSPHRASE,
            "EXCHANGE_TREE_HEAD_INTERVAL": "0",
        },
    )
    directory = p.directory()
    heads: list[TreeHead] = []
    receipts: list[tuple[dict[str, Any], bytes]] = []
    done = asyncio.Event()

    async def submitter(sender: str, number: int) -> None:
        rng = random.Random(number)
        for _ in range(PER_SUBMITTER):
            envelope = seal_for(p, sender, ["mash"])
            reply = await cluster.member(sender, rng.choice(relays)).submit(envelope)
            assert reply.status == 201, reply.body
            receipts.append((reply.json(), envelope.header_bytes))
            # The front door's receipt, through another process: another leaf.
            posted = await cluster.member("mash", rng.choice(relays)).acknowledge(
                envelope, message_id(envelope)
            )
            assert posted.status == 201, posted.body

    async def head_watcher(number: int) -> None:
        rng = random.Random(100 + number)
        while not done.is_set():
            reply = await cluster.member("auditor", rng.choice(relays)).get("/v1/log/head")
            if reply.status == 200:
                signed = SignedTreeHead.from_json(reply.json()["tree_head"])
                heads.append(verify_tree_head(signed, directory))
            else:
                assert reply.status == 404, reply.body  # nothing logged yet
            await asyncio.sleep(0)

    watchers = [asyncio.create_task(head_watcher(n)) for n in range(2)]
    try:
        await asyncio.gather(*(submitter(s, n) for n, s in enumerate(SENDERS)))
    finally:
        done.set()
        await asyncio.gather(*watchers)

    # Quiet now: every process signs the same final head.
    finals = []
    for relay in relays:
        reply = await cluster.member("school", relay).get("/v1/log/head")
        assert reply.status == 200, reply.body
        finals.append(
            verify_tree_head(SignedTreeHead.from_json(reply.json()["tree_head"]), directory)
        )
    assert len({(h.size, h.root) for h in finals}) == 1
    final = finals[0]
    submissions = len(SENDERS) * PER_SUBMITTER
    assert final.size == 2 * submissions  # an envelope leaf and a receipt leaf each

    # The leaves: 0..n-1, each accepted header once, each receipt once.
    auditor = cluster.member("auditor", relays[0])
    leaves = await _all_leaves(auditor)
    assert [index for index, _ in leaves] == list(range(final.size))
    parsed = [parse_leaf(leaf) for _, leaf in leaves]
    assert Counter(v["type"] for v in parsed) == {"envelope": submissions, "receipt": submissions}
    submitted_headers = Counter(header for _, header in receipts)
    assert Counter(b64decode(v["header"]) for v in parsed if v["type"] == "envelope") == (
        submitted_headers
    )
    hashes = [leaf_hash(leaf) for _, leaf in leaves]

    # Every head any process signed, during the run or in a submit receipt, is a prefix
    # of this one history, and every process proves it consistent with the final head.
    batch_heads = [
        verify_tree_head(SignedTreeHead.from_json(r["log"]["tree_head"]), directory)
        for r, _ in receipts
    ]
    all_heads = {(h.size, h.root): h for h in [*heads, *batch_heads, *finals]}
    assert len({size for size, _ in all_heads}) == len(all_heads)  # one root per size
    for head in all_heads.values():
        assert root_from_leaves(hashes[: head.size]) == head.root, head.size
    for i, head in enumerate(sorted(all_heads.values(), key=lambda h: h.size)):
        if head.size == final.size:
            continue
        relay = relays[i % len(relays)]
        reply = await cluster.member("police", relay).get(
            "/v1/log/proof/consistency", f"first={head.size}&second={final.size}"
        )
        assert reply.status == 200, reply.body
        proof = [b64decode(x) for x in reply.json()["proof"]]
        verify_consistency(head.size, final.size, head.root, final.root, proof)

    # Each submit receipt's leaf and inclusion proof, against the head that came with it.
    for (receipt, header), head in zip(receipts, batch_heads, strict=True):
        part = receipt["log"]
        leaf = b64decode(part["leaf"])
        assert leaves[part["leaf_index"]][1] == leaf
        assert b64decode(parse_leaf(leaf)["header"]) == header
        proof = [b64decode(x) for x in part["inclusion_proof"]]
        verify_inclusion(leaf_hash(leaf), part["leaf_index"], head.size, proof, head.root)

    # The tables: a gapless event log, and each leaf recording its own event.
    events = await cluster.query("SELECT sequence, event_type FROM events ORDER BY sequence")
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    kinds = {e["sequence"]: e["event_type"] for e in events}
    for value in parsed:
        expected = "header_accepted" if value["type"] == "envelope" else "receipt"
        assert kinds[value["sequence"]] == expected
    assert len({v["sequence"] for v in parsed}) == len(parsed)


async def _all_leaves(auditor: AgencyHTTP) -> list[tuple[int, bytes]]:
    leaves: list[tuple[int, bytes]] = []
    start = 0
    while True:
        reply = await auditor.get("/v1/log/leaves", f"start={start}&limit=1000")
        assert reply.status == 200, reply.body
        page = reply.json()
        leaves.extend((item["index"], b64decode(item["leaf"])) for item in page["items"])
        if page["end"] >= page["size"]:
            return leaves
        start = page["end"]
