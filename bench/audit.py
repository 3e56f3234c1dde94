"""Benchmark of the auditor's verification over a large transparency log, and proof sizes.

Run: ``.venv/bin/python -m bench.audit [--messages 100000] [--workers 2]``.

It seals ``--messages`` real referrals (school to front door, each with its delivery
receipt), logs them exactly as the relay does (:mod:`exchange.log_leaves`, RFC 9162
nodes, a signed tree head every 256 leaves, the consistency proof between each pair of
heads), then times :func:`agency_client.audit_verify.verify_material`: every head's
signature and consistency, the tree rebuilt from all leaves, every header's signature,
basis codes, sealed justification and full basis, every receipt, and the timeliness of
every thread. Beside it, in the same run: the raw Ed25519 verify rate, and the sizes of
inclusion and consistency proofs. Figures are in ``docs/transparency-log.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from nacl.signing import SigningKey

from agency_client.audit_verify import AuditMaterial, HeaderRow, verify_material
from bench._timing import fmt_us, per_op_seconds, print_table
from exchange.log_leaves import envelope_leaf, receipt_leaf
from keys.receipts import sign_receipt
from keys.sealing import header_digest, new_message_id, seal
from keys.testing import STANDARD_MEMBERS, Partnership
from keys.transparency import SignedTreeHead, sign_tree_head
from schemas.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    nodes_completed_by,
    tree_root,
)
from tests.fixtures.scenarios import maya_referral, readdress, school_referral_basis

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
HEAD_EVERY = 256
RELAY_MEMBER = (
    "relay",
    "bench-relay",
    "Benchmark relay transparency log",
    "exchange_relay",
    True,
    True,
    (),
    "relay",
)


def _partnership() -> Partnership:
    return Partnership.create(at=AT, members=(*STANDARD_MEMBERS, RELAY_MEMBER))


def _seal_chunk(job: tuple[int, int]) -> list[tuple[bytes, bytes, bytes, dict[str, str], str]]:
    """Seal ``count`` referrals starting at ``first`` (in a worker process)."""
    first, count = job
    p = _partnership()
    school, mash, auditor = p["school"], p["mash"], p["auditor"]
    basis = school_referral_basis()
    template = maya_referral()
    out = []
    for number in range(first, first + count):
        created = AT + timedelta(seconds=number)
        message_id = new_message_id()
        body = readdress(
            template,
            message_id=message_id,
            thread_id=message_id,
            sender_agency=school.agency_id,
            recipient_agencies=(mash.agency_id,),
        )
        envelope = seal(
            identity=school.identity,
            sender=school.certificate,
            sender_mailbox="dsl",
            recipients=[(mash.certificate, "front-door")],
            auditor=auditor.certificate,
            kind="REFERRAL",
            body=body,
            basis=basis,
            created_at=created,
            message_id=message_id,
        )
        receipt = sign_receipt(
            mash.identity,
            mash.certificate,
            message_id=message_id,
            header_digest=header_digest(envelope.header_bytes),
            received_at=created + timedelta(seconds=30),
        )
        out.append(
            (
                envelope.header_bytes,
                envelope.signature,
                envelope.seals_bytes,
                receipt.to_json(),
                message_id,
            )
        )
    return out


def build_material(
    messages: int, workers: int
) -> tuple[AuditMaterial, dict[tuple[int, int], bytes], float]:
    """Seal, log and sign: the material an auditor would download for this log."""
    started = time.perf_counter()
    chunk = max(1, min(2_000, messages // max(1, workers * 4) or 1))
    jobs = [(first, min(chunk, messages - first)) for first in range(0, messages, chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        sealed = [item for part in pool.map(_seal_chunk, jobs) for item in part]
    seal_seconds = time.perf_counter() - started

    p = _partnership()
    relay = p["relay"]
    nodes: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    leaves: list[tuple[int, bytes]] = []
    heads: list[SignedTreeHead] = []
    headers: dict[str, HeaderRow] = {}
    sequence = 0

    def append(leaf: bytes) -> None:
        index = len(leaves)
        for level, position, value in nodes_completed_by(index, leaf_hash(leaf), node):
            nodes[(level, position)] = value
        leaves.append((index, leaf))
        if len(leaves) % HEAD_EVERY == 0:
            heads.append(_head(relay, len(leaves), node))

    for number, (header, signature, seals, receipt, message_id) in enumerate(sealed):
        stored = AT + timedelta(seconds=number, milliseconds=100)
        sequence += 1
        append(envelope_leaf(sequence=sequence, at=stored, header=header, signature=signature))
        headers[message_id] = HeaderRow(
            message_id=message_id,
            sequence=sequence,
            header=header,
            signature=signature,
            seals=seals,
        )
        sequence += 1
        append(
            receipt_leaf(
                sequence=sequence,
                at=stored + timedelta(seconds=30),
                message_id=message_id,
                recipient=p["mash"].agency_id,
                receipt=receipt,
            )
        )
    if len(leaves) % HEAD_EVERY:
        heads.append(_head(relay, len(leaves), node))
    sizes = [h.head.size for h in heads]
    consistency = {
        (a, b): tuple(consistency_proof(a, b, node)) for a, b in itertools.pairwise(sizes)
    }
    directory = p.directory()
    material = AuditMaterial(
        directory=directory,
        heads=heads,
        consistency=consistency,
        start=0,
        end=len(leaves),
        frontier=[],
        leaves=leaves,
        headers=headers,
    )
    return material, nodes, seal_seconds


def _head(relay: Any, size: int, node: Any) -> SignedTreeHead:
    timestamp = AT + timedelta(seconds=size // 2 + 1)
    return sign_tree_head(
        relay.identity,
        relay.certificate,
        size=size,
        root=tree_root(size, node),
        timestamp=timestamp,
    )


def proof_sizes(nodes: dict[tuple[int, int], bytes], size: int) -> list[list[str]]:
    """Inclusion and consistency proof sizes for a log of ``size`` leaves."""

    def node(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    step = max(1, size // 997)
    inclusion = [len(inclusion_proof(i, size, node)) for i in range(0, size, step)]
    olds = [max(1, size // d) for d in (2, 3, 10, 100, 1000)] + [size - 1, size - HEAD_EVERY]
    consistency = [len(consistency_proof(old, size, node)) for old in olds if 0 < old < size]
    wire = 46  # one hash on the wire: 44 base64 characters plus quotes and a comma
    return [
        [
            f"inclusion proof, {size:,} leaves",
            f"{min(inclusion)}–{max(inclusion)} (median {statistics.median(inclusion):.0f})",
            f"{32 * max(inclusion)} B",
            f"{wire * max(inclusion)} B",
        ],
        [
            "consistency proof (old size n/2 … n−1)",
            f"{min(consistency)}–{max(consistency)}",
            f"{32 * max(consistency)} B",
            f"{wire * max(consistency)} B",
        ],
    ]


def main(argv: list[str] | None = None) -> None:
    """Build the log, time the verification, print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument(
        "--verify-workers",
        type=int,
        default=max(1, os.cpu_count() or 1),
        help="processes the verification uses for headers (1: this process only)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    signing = SigningKey.generate()
    data = os.urandom(700)
    signature = signing.sign(data).signature
    ed_verify = per_op_seconds(lambda: signing.verify_key.verify(data, signature))

    print(f"sealing and logging {args.messages:,} referrals with receipts ...", flush=True)
    material, nodes, seal_seconds = build_material(args.messages, args.workers)
    auditor = _partnership()["auditor"].identity
    stages: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        stages.setdefault(stage, time.perf_counter())

    print("verifying ...", flush=True)
    started = time.perf_counter()
    report = verify_material(
        material,
        identity=auditor,
        now=AT + timedelta(hours=1),
        progress=progress,
        workers=args.verify_workers,
    )
    elapsed = time.perf_counter() - started
    assert report["ok"], report["failures"][:3]
    assert report["messages"]["justifications_read"] == args.messages

    order = sorted(stages.items(), key=lambda kv: kv[1])
    marks = [*(t for _, t in order), started + elapsed]
    stage_rows = [[stage, f"{marks[i + 1] - t:,.2f} s"] for i, (stage, t) in enumerate(order)]
    headers_per_second = args.messages / elapsed
    leaves = len(material.leaves)
    head_bytes = len(material.heads[-1].head_bytes)
    mean_leaf = statistics.mean(len(leaf) for _, leaf in material.leaves)
    rows = [
        ["Ed25519 verify (PyNaCl, raw)", f"{1 / ed_verify:,.0f} /s", fmt_us(ed_verify)],
        [
            "audit verify, headers (all checks)",
            f"{headers_per_second:,.0f} headers/s",
            fmt_us(elapsed / args.messages),
        ],
        ["audit verify, log leaves", f"{leaves / elapsed:,.0f} leaves/s", fmt_us(elapsed / leaves)],
        ["seal (generation, per worker)", "", fmt_us(seal_seconds * args.workers / args.messages)],
    ]
    print()
    print(
        f"{args.messages:,} messages, {leaves:,} leaves, {len(material.heads):,} signed tree "
        f"heads (one per {HEAD_EVERY} leaves); verified in {elapsed:,.1f} s with "
        f"{args.verify_workers} worker(s) on {os.cpu_count()} core(s)."
    )
    print_table(["what", "rate", "per item"], rows)
    print()
    print_table(["stage", "time"], stage_rows)
    print()
    size_rows = proof_sizes(nodes, leaves)
    size_rows.append(["signed tree head", "1", f"{head_bytes + 64} B", ""])
    size_rows.append(["log leaf (envelope + receipt, mean)", "1", f"{mean_leaf:,.0f} B", ""])
    print_table(["proof", "hashes", "bytes", "on the wire (JSON)"], size_rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "messages": args.messages,
                    "leaves": leaves,
                    "tree_heads": len(material.heads),
                    "verify_seconds": elapsed,
                    "headers_per_second": headers_per_second,
                    "ed25519_verify_per_second": 1 / ed_verify,
                    "stages": {row[0]: row[1] for row in stage_rows},
                    "proofs": size_rows,
                },
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
