"""Write ``tests/vectors/envelope-v1.json``: known-answer vectors for envelope v1.

Run ``python -m tests.vectors.generate`` only when the format changes on purpose;
``tests/unit/test_vectors.py`` checks the committed file reproduces exactly.

Randomness is replaced by a published stream: call ``i`` (counting from 0) of
``random_bytes(n)`` returns the first ``n`` bytes of
``SHA-512("safeguard:test-vector-rng:v1" || u64le(i))``. ``seal`` draws, in order:
body key, justification key, salt, body nonce, justification nonce, then for each
recipient the ephemeral secret for its body key and for its justification key,
then the ephemeral secret for the auditor's justification key.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keys.sealing import seal
from keys.testing import Partnership
from schemas.encoding import DOMAIN_ENVELOPE, b64encode, pae
from schemas.messages import body_to_dict
from tests.fixtures import scenarios as s

VECTORS = Path(__file__).with_name("envelope-v1.json")
AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SEED = b"safeguard envelope v1 vectors"
MESSAGE_ID = "0196a3c1d2e3f405162738495a6b7c8d"


def vector_rng() -> Callable[[int], bytes]:
    """The published deterministic byte stream."""
    counter = 0

    def random_bytes(n: int) -> bytes:
        nonlocal counter
        block = hashlib.sha512(
            b"safeguard:test-vector-rng:v1" + struct.pack("<Q", counter)
        ).digest()
        counter += 1
        if n > len(block):
            raise ValueError("vector rng serves at most 64 bytes a call")
        return block[:n]

    return random_bytes


def build() -> dict[str, Any]:
    """Seal the fixed referral with fixed keys and return the vector document."""
    partnership = Partnership.create(at=AT, seed=SEED)
    school, mash, auditor = partnership["school"], partnership["mash"], partnership["auditor"]
    body = s.readdress(
        s.maya_referral(),
        message_id=MESSAGE_ID,
        thread_id=MESSAGE_ID,
        sender_agency=school.agency_id,
        recipient_agencies=(mash.agency_id,),
    )
    basis = s.school_referral_basis()
    envelope = seal(
        identity=school.identity,
        sender=school.certificate,
        sender_mailbox="dsl",
        recipients=[(mash.certificate, "front-door")],
        auditor=auditor.certificate,
        kind="REFERRAL",
        body=body,
        basis=basis,
        created_at=AT,
        message_id=MESSAGE_ID,
        random_bytes=vector_rng(),
    )
    return {
        "description": "Envelope v1 known-answer vector: Oakfield Primary refers Maya (fictional).",
        "rng": "call i returns SHA-512('safeguard:test-vector-rng:v1' || u64le(i))[:n]",
        "partnership_seed": SEED.decode(),
        "root_public_key": b64encode(partnership.root.public_key),
        "certificates": {
            "sender": school.certificate.to_json(),
            "recipient": mash.certificate.to_json(),
            "auditor": auditor.certificate.to_json(),
        },
        "private_keys": {
            "sender": b64encode(school.identity.to_private_bytes()),
            "recipient": b64encode(mash.identity.to_private_bytes()),
            "auditor": b64encode(auditor.identity.to_private_bytes()),
        },
        "input": {
            "kind": "REFERRAL",
            "created_at": "2026-11-24T09:30:00Z",
            "message_id": MESSAGE_ID,
            "sender_mailbox": "dsl",
            "recipients": [[mash.agency_id, "front-door"]],
            "body": body_to_dict(body),
            "basis": basis.model_dump(mode="json", exclude_none=True),
        },
        "expected": {
            "header_utf8": envelope.header_bytes.decode(),
            "signed_pae_hex": pae(DOMAIN_ENVELOPE, envelope.header_bytes).hex(),
            "wire": envelope.to_wire_dict(),
        },
    }


def main() -> None:
    """Regenerate the vector file."""
    VECTORS.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {VECTORS}")


if __name__ == "__main__":
    main()
