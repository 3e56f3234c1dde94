"""Checks of the relay's transparency log after crashes (``exchange/log.py``).

After the last restart :func:`check` waits (bounded) until a signed tree head covers
every leaf, then checks that:

* the head verifies against the partnership root (the relay's certified log key);
* the leaves hash to its root;
* every accepted message has exactly one ``envelope`` leaf carrying exactly its stored
  header, at its receipt's event sequence, and every recorded delivery exactly one
  ``receipt`` leaf;
* every tree head seen during the run (polled while the relay was being killed, and
  the batch head in every submit receipt) is consistent with the final head: the
  crashes rewrote no history;
* every submit receipt's inclusion proof verifies against its batch head.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from keys.testing import Partnership
from keys.transparency import SignedTreeHead, TreeHead, verify_tree_head
from schemas.encoding import b64decode
from schemas.merkle import leaf_hash, root_from_leaves, verify_consistency, verify_inclusion
from schemas.problems import ExchangeError
from tests.relay.conftest import AgencyHTTP

__all__ = ["HeadWatcher", "check"]


class HeadWatcher:
    """Polls ``GET /v1/log/head`` during the run and keeps every distinct head it saw."""

    def __init__(self, auditor: Callable[[], AgencyHTTP]) -> None:
        self._auditor = auditor
        self.heads: dict[int, SignedTreeHead] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: fetch the newest head now and then (failures are expected)."""
        while not stop.is_set():
            try:
                reply = await self._auditor().get("/v1/log/head")
                if reply.status == 200:
                    signed = SignedTreeHead.from_json(reply.json()["tree_head"])
                    self.heads.setdefault(signed.head.size, signed)
            except (OSError, TimeoutError, ExchangeError, ValueError):
                pass
            except Exception as exc:  # aiohttp's errors while the relay is down
                if not type(exc).__module__.startswith("aiohttp"):
                    raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)


async def _leaves(auditor: AgencyHTTP) -> tuple[int, list[bytes]]:
    leaves: list[bytes] = []
    start = 0
    for _ in range(10_000):
        reply = await auditor.get("/v1/log/leaves", f"start={start}&limit=1000")
        assert reply.status == 200, reply.body
        page = reply.json()
        leaves.extend(b64decode(item["leaf"]) for item in page["items"])
        if page["end"] >= page["size"]:
            return page["size"], leaves
        start = page["end"]
    raise AssertionError("the log's leaves did not end")


async def check(
    auditor: AgencyHTTP,
    p: Partnership,
    accepted: dict[str, Any],
    delivered: set[tuple[str, str]],
    watcher: HeadWatcher,
    fail: Callable[[str], None],
) -> str:
    """Check the log (see the module docstring); return what was checked, for the report."""
    directory = p.directory()
    deadline = time.monotonic() + 60
    final: TreeHead | None = None
    while time.monotonic() < deadline:
        reply = await auditor.get("/v1/log/head")
        size, leaves = await _leaves(auditor)
        if reply.status == 200:
            signed = SignedTreeHead.from_json(reply.json()["tree_head"])
            try:
                head = verify_tree_head(signed, directory)
            except ExchangeError as exc:
                fail(f"the final tree head does not verify ({exc.code})")
                return "transparency log (head does not verify)"
            if head.size == size == len(leaves):
                final = head
                break
        await asyncio.sleep(0.1)
    if final is None:
        fail("no signed tree head covered every leaf within 60 s")
        return "transparency log (no covering head)"
    if root_from_leaves([leaf_hash(leaf) for leaf in leaves]) != final.root:
        fail("the leaves do not hash to the final tree head's root")
    parsed = [json.loads(leaf) for leaf in leaves]
    envelopes = collections.Counter(
        b64decode(v["header"]) for v in parsed if v["type"] == "envelope"
    )
    receipts = collections.Counter(
        (v.get("message_id"), v.get("recipient")) for v in parsed if v["type"] == "receipt"
    )
    sequences = {b64decode(v["header"]): v["sequence"] for v in parsed if v["type"] == "envelope"}
    for message_id, sent in accepted.items():
        header = _header_bytes(sent.wire)
        if envelopes[header] != 1:
            fail(f"{message_id}: {envelopes[header]} envelope leaves (want 1)")
        elif sequences[header] != sent.receipt["sequence"]:
            fail(f"{message_id}: its leaf names sequence {sequences[header]}")
    for key in delivered:
        if receipts[key] != 1:
            fail(f"delivery {key}: {receipts[key]} receipt leaves (want 1)")
    # Every head seen, during the run or in a receipt, is a prefix of the final one.
    seen: dict[int, SignedTreeHead] = dict(watcher.heads)
    proofs_checked = 0
    for sent in accepted.values():
        log = sent.receipt.get("log") or {}
        if "tree_head" not in log:
            continue
        signed = SignedTreeHead.from_json(log["tree_head"])
        seen.setdefault(signed.head.size, signed)
        head = signed.head
        proof = [b64decode(x) for x in log["inclusion_proof"]]
        try:
            verify_inclusion(
                leaf_hash(b64decode(log["leaf"])), log["leaf_index"], head.size, proof, head.root
            )
            proofs_checked += 1
        except ExchangeError:
            fail(f"{sent.message_id}: the inclusion proof in its receipt does not verify")
    stored = await auditor.get("/v1/log/heads", "since=0&limit=1000")
    if stored.status == 200:
        for item in stored.json()["items"]:
            signed = SignedTreeHead.from_json(item["tree_head"])
            seen.setdefault(signed.head.size, signed)
    for size in sorted(seen):
        signed = seen[size]
        try:
            head = verify_tree_head(signed, directory)
        except ExchangeError as exc:
            fail(f"a tree head of size {size} seen during the run does not verify ({exc.code})")
            continue
        if size > final.size:
            fail(f"a head of size {size} was seen, larger than the final {final.size}")
            continue
        if size == 0:
            continue
        reply = await auditor.get("/v1/log/proof/consistency", f"first={size}&second={final.size}")
        if reply.status != 200:
            fail(f"no consistency proof from {size} to {final.size} ({reply.status})")
            continue
        proof = [b64decode(x) for x in reply.json()["proof"]]
        try:
            verify_consistency(size, final.size, head.root, final.root, proof)
        except ExchangeError:
            fail(f"the head of size {size} is not consistent with the final head (rewritten)")
    return (
        f"transparency log: {final.size} leaves under a verified head, {len(seen)} earlier heads "
        f"consistent with it, {proofs_checked} receipt inclusion proofs"
    )


def _header_bytes(wire: bytes) -> bytes:
    return b64decode(json.loads(wire)["header"])
