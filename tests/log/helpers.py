"""Helpers for log tests: an auditor-side ``fetch`` over a scene, and proof checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agency_client import protocol
from keys.directory import Directory
from keys.transparency import SignedTreeHead, TreeHead, verify_tree_head
from schemas.encoding import b64decode
from schemas.merkle import leaf_hash, root_from_leaves, verify_consistency, verify_inclusion
from tests.relay.conftest import AgencyHTTP, Scene


def fetcher(member: AgencyHTTP) -> Callable[..., Any]:
    """A ``fetch(request, parser)`` for :func:`agency_client.audit.download`, as ``member``."""

    async def fetch(request: protocol.Request, parser: Callable[[protocol.Response], Any]) -> Any:
        reply = await member.send(
            request.method, request.path, query=request.query, body=request.body
        )
        headers = {k.lower(): v for k, v in reply.headers.items()}
        return protocol.parse(protocol.Response(reply.status, headers, reply.body), parser)

    return fetch


def message_id(envelope: Any) -> str:
    """The id in an envelope's header."""
    return str(json.loads(envelope.header_bytes)["id"])


async def head(scene: Scene, member: str = "auditor") -> tuple[SignedTreeHead, TreeHead]:
    """The relay's newest signed tree head, verified against the partnership's root."""
    reply = await scene.agency(member).get("/v1/log/head")
    assert reply.status == 200, reply.body
    signed = SignedTreeHead.from_json(reply.json()["tree_head"])
    return signed, verify_tree_head(signed, scene.partnership.directory())


async def all_leaves(scene: Scene) -> list[tuple[int, bytes]]:
    """Every leaf, as the auditor reads them."""
    leaves: list[tuple[int, bytes]] = []
    start = 0
    while True:
        reply = await scene.agency("auditor").get("/v1/log/leaves", f"start={start}&limit=1000")
        assert reply.status == 200, reply.body
        page = reply.json()
        leaves.extend((item["index"], b64decode(item["leaf"])) for item in page["items"])
        if page["end"] >= page["size"]:
            return leaves
        start = page["end"]


def assert_root(leaves: list[tuple[int, bytes]], tree: TreeHead) -> None:
    """The leaves are exactly ``0..size-1`` and hash to the head's root."""
    assert [index for index, _ in leaves][: tree.size] == list(range(tree.size))
    assert root_from_leaves([leaf_hash(leaf) for _, leaf in leaves[: tree.size]]) == tree.root


async def assert_inclusion(scene: Scene, index: int, leaf: bytes, tree: TreeHead) -> None:
    """The relay's inclusion proof for ``leaf`` at ``index`` leads to ``tree``'s root."""
    reply = await scene.agency("auditor").get(
        "/v1/log/proof/inclusion", f"index={index}&size={tree.size}"
    )
    assert reply.status == 200, reply.body
    proof = [b64decode(p) for p in reply.json()["proof"]]
    verify_inclusion(leaf_hash(leaf), index, tree.size, proof, tree.root)


async def assert_consistent(scene: Scene, old: TreeHead, new: TreeHead) -> None:
    """The relay proves ``new`` extends ``old``."""
    if old.size == new.size:
        assert old.root == new.root
        return
    reply = await scene.agency("school").get(
        "/v1/log/proof/consistency", f"first={old.size}&second={new.size}"
    )
    assert reply.status == 200, reply.body
    proof = [b64decode(p) for p in reply.json()["proof"]]
    verify_consistency(old.size, new.size, old.root, new.root, proof)


def directory_of(scene: Scene) -> Directory:
    """The partnership directory, pinning its root."""
    return scene.partnership.directory()
