"""The agency client's pure log checks: inclusion of its own header, heads that extend."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from agency_client.audit_log import (
    check_extends,
    envelope_leaf_matches,
    verify_envelope_inclusion,
)
from agency_client.cli.cmd_audit import ProgressBar
from agency_client.protocol import ReceiptLog, parse_receipt_log
from exchange.log_leaves import envelope_leaf
from keys.testing import STANDARD_MEMBERS, Partnership
from keys.transparency import sign_tree_head, verify_tree_head
from schemas.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    nodes_completed_by,
    tree_root,
)
from schemas.problems import LogConsistencyError
from tests.log.conftest import RELAY_MEMBER

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


class Log:
    """An honest in-memory log signed with the partnership's relay key."""

    def __init__(self, partnership: Partnership, leaves: list[bytes]) -> None:
        self.p = partnership
        self.leaves = leaves
        self.nodes: dict[tuple[int, int], bytes] = {}
        for index, leaf in enumerate(leaves):
            for level, position, value in nodes_completed_by(index, leaf_hash(leaf), self.node):
                self.nodes[(level, position)] = value

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def head(self, size: int, root: bytes | None = None):  # type: ignore[no-untyped-def]
        relay = self.p["relay"]
        return sign_tree_head(
            relay.identity,
            relay.certificate,
            size=size,
            root=root if root is not None else tree_root(size, self.node),
            timestamp=AT + timedelta(seconds=size),
        )


@pytest.fixture
def log() -> Log:
    p = Partnership.create(at=AT, members=(*STANDARD_MEMBERS, RELAY_MEMBER))
    leaves = [
        envelope_leaf(sequence=i, at=AT, header=b'{"n":%d}' % i, signature=bytes([i]) * 64)
        for i in range(1, 12)
    ]
    return Log(p, leaves)


def test_inclusion_of_our_own_header(log: Log) -> None:
    directory = log.p.directory()
    signed = log.head(11)
    receipt = ReceiptLog(
        leaf_index=4,
        leaf=log.leaves[4],
        tree_head=signed,
        inclusion_proof=tuple(inclusion_proof(4, 11, log.node)),
    )
    head = verify_envelope_inclusion(receipt, b'{"n":5}', bytes([5]) * 64, directory)
    assert head is not None
    assert head.size == 11
    assert envelope_leaf_matches(log.leaves[4], b'{"n":5}', bytes([5]) * 64)
    with pytest.raises(LogConsistencyError, match="another header"):
        verify_envelope_inclusion(receipt, b'{"n":6}', bytes([5]) * 64, directory)
    bad = ReceiptLog(4, log.leaves[4], signed, tuple(reversed(receipt.inclusion_proof)))
    with pytest.raises(LogConsistencyError, match="inclusion proof does not match"):
        verify_envelope_inclusion(bad, b'{"n":5}', bytes([5]) * 64, directory)
    unsigned = ReceiptLog(4, log.leaves[4], None, ())
    assert verify_envelope_inclusion(unsigned, b'{"n":5}', bytes([5]) * 64, directory) is None


def test_heads_that_extend_and_heads_that_fork(log: Log) -> None:
    directory = log.p.directory()
    old = verify_tree_head(log.head(5), directory)
    new = verify_tree_head(log.head(11), directory)
    check_extends(old, new, consistency_proof(5, 11, log.node))
    check_extends(new, old, consistency_proof(5, 11, log.node))  # an older head, either order
    check_extends(old, old, ())
    rewritten = Log(log.p, [b"rewritten", *log.leaves[1:]])
    forged = verify_tree_head(rewritten.head(11), directory)
    with pytest.raises(LogConsistencyError, match="forked or was rewritten"):
        check_extends(old, forged, consistency_proof(5, 11, rewritten.node))
    other_root = verify_tree_head(log.head(5, root=bytes(32)), directory)
    with pytest.raises(LogConsistencyError, match="forked or was rewritten"):
        check_extends(old, other_root, ())


def test_receipt_log_part_is_parsed_strictly(log: Log) -> None:
    assert parse_receipt_log(None) is None
    part = parse_receipt_log({"leaf_index": 0, "leaf": "e30="})
    assert part is not None
    assert part.tree_head is None
    with pytest.raises(Exception, match="leaf_index"):
        parse_receipt_log({"leaf_index": "0", "leaf": "e30="})


def test_progress_bar_draws_on_a_terminal_and_every_tenth_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar(tty, forced=False)
    for done in range(1, 101):
        bar("headers", done, 100)
    assert "\r" in tty.getvalue()
    assert tty.getvalue().endswith("100% (100/100)\n")
    plain = io.StringIO()
    ProgressBar(plain, forced=False)("headers", 1, 2)
    assert plain.getvalue() == ""
    forced = ProgressBar(plain, forced=True)
    for done in range(1, 101):
        forced("headers", done, 100)
    assert len(plain.getvalue().splitlines()) == 11
