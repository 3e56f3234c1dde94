"""The benchmark's partnership, its pre-sealed envelopes and pre-signed receipts.

**Partnership.** The seeded test partnership (``keys.testing``) plus ``EXTRA_FRONT_DOORS``
extra children's-services front doors (``fd0000`` ... ``fd0999``), so that the push
scaling run can connect 1,000 streams at one stream per agency (the relay allows at
most 8 streams per agency). Everything is derived from the seed and the day, so the
orchestrator and every load-generator process build the same keys independently.

**Envelopes.** A real ``seal()`` costs about 0.6 ms here, so tens of thousands of
envelopes per run would take longer to seal than to submit. Instead each
(sender, recipient) pair gets one *template* made by the real ``seal()`` (a trimmed
Maya referral: about 2 KiB of body ciphertext, 6.6 KiB on the wire), and each
benchmark envelope is the template with a fresh ``id`` (and ``thread`` = ``id``: every
message opens its own thread, as a referral does), its header re-canonicalised and
**re-signed with the sender's key**. Body, seals and their digests are the
template's. Everything the relay checks (strict wire form, header signature,
certificate, body and seals digests, seals structure, policy over the header basis,
thread transition) passes exactly as for a freshly sealed message; only a recipient
*opening* it would refuse it, because the id inside the ciphertext is the template's.
The relay never decrypts, so its work per message is the same. :func:`derive` checks
a sample against ``verify_header`` so a mistake here fails loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keys.directory import Directory
from keys.http_signatures import new_nonce, sign_request
from keys.receipts import sign_receipt
from keys.sealing import header_digest, new_message_id, seal, verify_header
from keys.testing import STANDARD_MEMBERS, Member, Partnership
from schemas.encoding import DOMAIN_ENVELOPE, b64encode, canonical_json, pae
from schemas.envelope import SealedEnvelope
from tests.fixtures.scenarios import maya_referral, readdress, school_referral_basis

__all__ = [
    "EXTRA_FRONT_DOORS",
    "Prepared",
    "bench_at",
    "bench_partnership",
    "derive",
    "extra_key",
    "signed_headers",
    "template",
]

#: Extra front doors in the benchmark partnership (push scaling: one stream each).
EXTRA_FRONT_DOORS = 1000


def extra_key(i: int) -> str:
    """The partnership key of extra front door ``i``."""
    return f"fd{i:04d}"


def bench_at(now: datetime | None = None) -> datetime:
    """Midnight UTC today: certificates are valid from a day before it for a year."""
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def bench_partnership(at: datetime) -> Partnership:
    """The standard partnership plus :data:`EXTRA_FRONT_DOORS` front doors."""
    extras = tuple(
        (
            extra_key(i),
            f"front-door-{i:04d}",
            f"Front Door {i:04d}",
            "local_authority_childrens_services",
            True,
            True,
            ("front-door",),
            "agency",
        )
        for i in range(EXTRA_FRONT_DOORS)
    )
    return Partnership.create(
        at=at, seed=b"bench-partnership", members=(*STANDARD_MEMBERS, *extras)
    )


def template(partnership: Partnership, sender: str, recipient: str, at: datetime) -> SealedEnvelope:
    """One real sealed referral from ``sender`` to ``recipient`` (about 2 KiB of body)."""
    p = partnership
    source, target = p[sender], p[recipient]
    message_id = new_message_id()
    body = readdress(
        maya_referral(),
        message_id=message_id,
        thread_id=message_id,
        sender_agency=source.agency_id,
        recipient_agencies=(target.agency_id,),
    )
    # Trim the scenario to about 2 KiB of plaintext: child, concern, contacts.
    body = body.model_copy(
        update={"family_and_household": (), "observations": (), "known_agencies": ()}
    )
    return seal(
        identity=source.identity,
        sender=source.certificate,
        sender_mailbox=source.mailbox,
        recipients=[(target.certificate, target.mailbox)],
        auditor=p["auditor"].certificate,
        kind="REFERRAL",
        body=body,
        basis=school_referral_basis(),
        # Now (a minute back, for clock differences): never in the future, whatever the hour.
        created_at=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1),
        message_id=message_id,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """One envelope ready to submit, and the receipt its recipient will post."""

    message_id: str
    recipient: str  # agency id
    wire: bytes
    receipt: bytes  # JSON body of POST /v1/envelopes/{id}/receipts


def derive(
    directory: Directory,
    base: SealedEnvelope,
    sender: Member,
    recipient: Member,
    count: int,
    *,
    received_at: datetime,
    check: bool = True,
) -> list[Prepared]:
    """``count`` envelopes re-stamped from ``base`` with fresh ids, with their receipts."""
    header = json.loads(base.header_bytes)
    body_part = b'{"body":"' + b64encode(base.body).encode() + b'","header":"'
    seals_part = b'","seals":"' + b64encode(base.seals_bytes).encode() + b'","signature":"'
    out: list[Prepared] = []
    for i in range(count):
        message_id = new_message_id()
        header["id"] = header["thread"] = message_id
        # The header is plain ASCII strings, ints and lists: sorted compact JSON is its
        # RFC 8785 form (checked against canonical_json on the first one).
        header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if check and i == 0 and header_bytes != canonical_json(header):
            raise AssertionError("derived header is not canonical")
        signature = sender.identity.sign(pae(DOMAIN_ENVELOPE, header_bytes))
        # The canonical wire form, assembled from the template's encoded parts (keys sorted).
        wire = b"".join(
            (
                body_part,
                b64encode(header_bytes).encode(),
                seals_part,
                b64encode(signature).encode(),
                b'","v":1}',
            )
        )
        if check and i == 0:
            envelope = SealedEnvelope(
                header_bytes=header_bytes,
                signature=signature,
                seals_bytes=base.seals_bytes,
                body=base.body,
            )
            verify_header(envelope, directory, at=received_at)
            if wire != envelope.to_wire():
                raise AssertionError("derived wire form is not canonical")
        receipt = sign_receipt(
            recipient.identity,
            recipient.certificate,
            message_id=message_id,
            header_digest=header_digest(header_bytes),
            received_at=received_at,
        )
        out.append(
            Prepared(
                message_id=message_id,
                recipient=recipient.agency_id,
                wire=wire,
                receipt=json.dumps(receipt.to_json()).encode(),
            )
        )
    return out


def signed_headers(
    member: Member, method: str, path: str, query: str, body: bytes
) -> list[tuple[str, str]]:
    """RFC 9421 headers for one request, signed now with a fresh nonce."""
    headers = sign_request(
        identity=member.identity,
        key_id=member.certificate.id,
        method=method,
        path=path,
        query=query,
        body=body,
        created=datetime.now(UTC),
        nonce=new_nonce(),
    )
    return list(headers.items())
