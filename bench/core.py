"""Benchmark of the pure core: seal, open, verify and policy, beside the raw primitives.

Run: ``.venv/bin/python -m bench.core``. Every figure is a median of several runs
and is printed beside the cost of the PyNaCl primitives it is built from,
measured in the same run, so that the ratio column is meaningful on a noisy machine.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime

import nacl.utils
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
from nacl.public import PrivateKey, SealedBox
from nacl.signing import SigningKey

from bench._timing import fmt_us, per_op_seconds, print_table
from keys.sealing import open_envelope, seal, verify_header
from keys.testing import Partnership
from schemas.lawful_basis import BasisTag
from schemas.policy import PartyContext, PolicyRequest, evaluate
from tests.fixtures.scenarios import maya_referral, school_referral_basis

MESSAGE_ID = "0" * 32


def _referral_of_size(size: int, partnership: Partnership) -> dict[str, object]:
    """Maya's referral grown to about ``size`` bytes (an attachment for large sizes)."""
    body = maya_referral(
        message_id=MESSAGE_ID,
        thread_id=MESSAGE_ID,
        sender_agency=partnership["school"].agency_id,
        recipient_agencies=[partnership["mash"].agency_id],
    )
    data = body.model_dump(mode="json", exclude_none=True)
    padding = max(0, size - len(json.dumps(data)))
    if padding > 8_000:
        raw = os.urandom(padding * 3 // 4)
        data["attachments"] = [
            {
                "name": "chronology.pdf",
                "media_type": "application/pdf",
                "content_base64": base64.b64encode(raw).decode(),
            }
        ]
    else:
        data["concern_summary"] = str(data["concern_summary"]) + " x" * (padding // 2)
    return data


def main() -> None:
    """Measure and print the table."""
    at = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    partnership = Partnership.create(at=at)
    directory = partnership.directory()
    school, mash, auditor = partnership["school"], partnership["mash"], partnership["auditor"]
    basis = BasisTag.model_validate(school_referral_basis())

    signing = SigningKey.generate()
    verify_key = signing.verify_key
    box_key = PrivateKey.generate()
    sealed_box = SealedBox(box_key.public_key)
    unseal_box = SealedBox(box_key)
    small = os.urandom(256)
    signature = signing.sign(small).signature
    wrapped = sealed_box.encrypt(os.urandom(32))
    key = nacl.utils.random(32)
    nonce = nacl.utils.random(24)

    rows: list[list[str]] = []
    ed_sign = per_op_seconds(lambda: signing.sign(small))
    ed_verify = per_op_seconds(lambda: verify_key.verify(small, signature))
    box_seal = per_op_seconds(lambda: sealed_box.encrypt(key))
    box_open = per_op_seconds(lambda: unseal_box.decrypt(wrapped))
    for name, cost in [
        ("Ed25519 sign (PyNaCl)", ed_sign),
        ("Ed25519 verify (PyNaCl)", ed_verify),
        ("SealedBox wrap 32 B", box_seal),
        ("SealedBox unwrap 32 B", box_open),
    ]:
        rows.append([name, fmt_us(cost), "primitive", "1.0"])

    for label, size in [("2 KiB", 2048), ("1 MiB", 1 << 20)]:
        body = _referral_of_size(size, partnership)
        plaintext = os.urandom(size)
        aead = per_op_seconds(
            lambda p=plaintext: crypto_aead_xchacha20poly1305_ietf_encrypt(p, b"", nonce, key),
            repeats=5,
        )
        # seal = 1 sign + 4 wraps (2 keys x 1 recipient + auditor ... ) + 2 AEAD + hashing
        primitives = ed_sign + 3 * box_seal + aead
        envelope = seal(
            identity=school.identity,
            sender=school.certificate,
            sender_mailbox="dsl",
            recipients=[(mash.certificate, "front-door")],
            auditor=auditor.certificate,
            kind="REFERRAL",
            body=body,
            basis=basis,
            created_at=at,
            message_id=MESSAGE_ID,
        )

        def do_seal(b: dict[str, object] = body) -> object:
            return seal(
                identity=school.identity,
                sender=school.certificate,
                sender_mailbox="dsl",
                recipients=[(mash.certificate, "front-door")],
                auditor=auditor.certificate,
                kind="REFERRAL",
                body=b,
                basis=basis,
                created_at=at,
                message_id="0" * 32,
            )

        seal_cost = per_op_seconds(do_seal, repeats=5)
        rows.append(
            [
                f"seal referral {label}",
                fmt_us(seal_cost),
                f"sign+3 wraps+AEAD {fmt_us(primitives)}",
                f"{seal_cost / primitives:.1f}",
            ]
        )
        open_cost = per_op_seconds(
            lambda e=envelope: open_envelope(
                e, mash.identity, directory, agency_id=mash.agency_id, at=at
            ),
            repeats=5,
        )
        open_primitives = ed_verify + 2 * box_open + aead
        rows.append(
            [
                f"open referral {label}",
                fmt_us(open_cost),
                f"verify+2 unwraps+AEAD {fmt_us(open_primitives)}",
                f"{open_cost / open_primitives:.1f}",
            ]
        )
        verify_cost = per_op_seconds(
            lambda e=envelope: verify_header(e, directory, at=at), repeats=5
        )
        rows.append(
            [
                f"verify_header {label}",
                fmt_us(verify_cost),
                f"Ed25519 verify {fmt_us(ed_verify)}",
                f"{verify_cost / ed_verify:.1f}",
            ]
        )

    request = PolicyRequest(
        kind="REFERRAL",
        sent_at=at,
        sender=PartyContext(org_type="maintained_school", public_authority=True, apd_in_place=True),
        recipient=PartyContext(
            org_type="local_authority_childrens_services", public_authority=True
        ),
        basis=basis.model_dump(mode="json", exclude_none=True),
    )
    policy_cost = per_op_seconds(lambda: evaluate(request))
    rows.append(
        [
            "policy evaluate (full tag)",
            fmt_us(policy_cost),
            f"Ed25519 verify {fmt_us(ed_verify)}",
            f"{policy_cost / ed_verify:.1f}",
        ]
    )

    print(f"bench/core.py — {os.cpu_count()} cores, medians of repeated runs")
    print_table(["operation", "median", "baseline (same run)", "ratio"], rows)


if __name__ == "__main__":
    main()
