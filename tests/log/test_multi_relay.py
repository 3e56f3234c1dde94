"""Several relay processes sharing one database append one consistent sequence."""

from __future__ import annotations

import asyncio
import json

import pytest

from exchange.testing import started_relay
from keys.transparency import SignedTreeHead, verify_tree_head
from schemas.encoding import b64decode
from tests.log.conftest import LogSceneFactory
from tests.log.helpers import all_leaves, assert_consistent, assert_root, head
from tests.relay.conftest import AgencyHTTP


async def test_two_relays_on_one_database_share_one_log(
    log_factory: LogSceneFactory, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("several relay processes share PostgreSQL; SQLite has a single writer")
    async with log_factory() as scene, started_relay(scene.settings) as second:
        senders = ["school", "police", "gp", "academy", "mash"]

        def client(key: str, url: str) -> AgencyHTTP:
            member = scene.partnership[key]
            return AgencyHTTP(scene.session, url, member.identity, member.certificate)

        jobs = []
        for round_ in range(6):
            for number, sender in enumerate(senders):
                url = scene.url if (round_ + number) % 2 else second.url
                envelope = scene.seal(sender, ["mash" if sender != "mash" else "school"])
                jobs.append(client(sender, url).submit(envelope))
        replies = await asyncio.gather(*jobs)
        assert all(r.status == 201 for r in replies), [r.body for r in replies if r.status >= 300]

        indexes = sorted(r.json()["log"]["leaf_index"] for r in replies)
        assert indexes == list(range(len(replies)))  # no gaps, no duplicates
        _, tree = await head(scene)
        leaves = await all_leaves(scene)
        assert_root(leaves, tree)
        sequences = [int(json.loads(leaf)["sequence"]) for _, leaf in leaves]
        assert sequences == sorted(sequences)  # leaf order is event order, across processes
        directory = scene.partnership.directory()
        for reply in replies:
            part = reply.json()["log"]
            signed = SignedTreeHead.from_json(part["tree_head"])
            batch = verify_tree_head(signed, directory)
            assert b64decode(part["leaf"]) == dict(leaves)[part["leaf_index"]]
            await assert_consistent(scene, batch, tree)
