"""Mutation fuzzing of envelopes and receipts: the mutators and the oracles.

A :class:`Mutator` turns valid, really sealed envelopes and really signed delivery
receipts into hostile variants, drawn from a seeded RNG:

* **bit flips** anywhere in the wire bytes, or inside one decoded part (header,
  signature, seals, ciphertext) re-encoded so the flip gets past base64;
* **truncations** and extensions of the wire or of one part;
* **field swaps and edits** inside the header, seals or receipt JSON (ids, kinds,
  senders, recipients, basis codes, digests, times), and parts swapped between
  envelopes;
* **re-encodings** of the same values: non-canonical JSON (key order, spacing,
  escapes), non-canonical base64 (no padding, URL alphabet, line breaks), odd wire
  JSON (duplicate or extra keys, another version, deep nesting);
* **substituted keys**: a signature by another agency's key, a header naming another
  certificate, seals wrapped for another agency, a re-signature by an attacker agency;
* **replays**: a genuine envelope or receipt verified after its signer's certificate
  was revoked or expired, a receipt for one message presented for another;
* **re-addressing**: recipients or the sender changed, with or without re-signing.

The oracles (:func:`check_envelope`, :func:`check_receipt`) run the pure core's
verify/open paths exactly as the relay, the recipient and the auditor do. A mutant
that decodes to exactly the original parts is *equivalent* (the same message) and is
counted apart. Otherwise every path must refuse it with an
:class:`~schemas.problems.ExchangeError`: anything else raised is a *crash*, and a
path that returns is an *acceptance*. The one acceptance that is not a forgery is a
header re-signed by the attacker *as itself*: ``verify_header`` then attributes it to
the attacker (who could send any message of its own), and the recipient's open still
refuses it because the sealed routing names the original sender.

Used by ``tests/security/test_mutation_fuzz.py`` (CI) and ``bench/fuzz.py mutate``.
"""

from __future__ import annotations

import base64
import collections
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keys.directory import Directory
from keys.receipts import DeliveryReceipt, sign_receipt, verify_receipt
from keys.sealing import (
    header_digest,
    open_envelope,
    open_justification,
    parse_envelope,
    verify_header,
)
from keys.testing import Partnership
from schemas.encoding import DOMAIN_ENVELOPE, DOMAIN_RECEIPT, b64encode, canonical_json, pae
from schemas.envelope import SealedEnvelope
from schemas.problems import ExchangeError

__all__ = [
    "ATTACKER",
    "Bases",
    "FuzzStats",
    "Mutant",
    "Mutator",
    "ReceiptBase",
    "ReceiptMutant",
    "check_envelope",
    "check_receipt",
    "is_equivalent",
    "make_bases",
]

#: The partnership member that plays the attacker (a member with valid keys of its own).
ATTACKER = "unrelated"
_PARTS = ("header", "signature", "seals", "body")


@dataclass(frozen=True)
class EnvelopeBase:
    """A genuine envelope, who sent it and who may open it."""

    envelope: SealedEnvelope
    sender: str
    recipients: tuple[str, ...]

    @property
    def parts(self) -> tuple[bytes, bytes, bytes, bytes]:
        e = self.envelope
        return (e.header_bytes, e.signature, e.seals_bytes, e.body)


@dataclass(frozen=True)
class ReceiptBase:
    """A genuine delivery receipt and the message it is for."""

    receipt: DeliveryReceipt
    recipient: str
    message: EnvelopeBase


@dataclass
class Bases:
    """Everything the mutators start from and the oracles check against."""

    partnership: Partnership
    now: datetime
    envelopes: list[EnvelopeBase]
    receipts: list[ReceiptBase]
    directory: Directory
    revoked: Directory  # the same partnership with every sender's certificate revoked
    genuine_parts: set[tuple[bytes, bytes, bytes, bytes]] = field(default_factory=set)
    genuine_receipts: set[tuple[bytes, bytes]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.genuine_parts = {b.parts for b in self.envelopes}
        self.genuine_receipts = {(r.receipt.body_bytes, r.receipt.signature) for r in self.receipts}


def make_bases(p: Partnership, now: datetime, seal: Callable[..., SealedEnvelope]) -> Bases:
    """Seal a varied set of genuine envelopes and receipts.

    ``seal(p, sender, to, kind, thread_id=None, in_reply_to=None)`` seals one. The
    acknowledgement replies to the first referral (so a relay accepts it once the
    front door's receipt for the referral is in).
    """
    plan = [
        ("school", ("mash",), "REFERRAL"),
        ("school", ("mash", "police"), "REFERRAL"),
        ("gp", ("mash",), "REFERRAL"),
        ("police", ("mash",), "POLICE_NOTIFICATION"),
        ("school", ("mash",), "INFORMATION_ONLY"),
        ("mash", ("police",), "REQUEST_FOR_INFORMATION"),
    ]
    envelopes = [
        EnvelopeBase(seal(p, sender, list(to), kind), sender, to) for sender, to, kind in plan
    ]
    referral_id = json.loads(envelopes[0].envelope.header_bytes)["id"]
    ack = seal(
        p, "mash", ["school"], "ACKNOWLEDGEMENT", thread_id=referral_id, in_reply_to=referral_id
    )
    envelopes.append(EnvelopeBase(ack, "mash", ("school",)))
    receipts = []
    for base in envelopes:
        header = json.loads(base.envelope.header_bytes)
        for key in base.recipients:
            member = p[key]
            receipt = sign_receipt(
                member.identity,
                member.certificate,
                message_id=header["id"],
                header_digest=header_digest(base.envelope.header_bytes),
                received_at=now,
            )
            receipts.append(ReceiptBase(receipt, key, base))
    revoking = Partnership(
        root=p.root, members=dict(p.members), issued_at=p.issued_at, revocations=p.revocations
    )
    for key in sorted({b.sender for b in envelopes} | {r.recipient for r in receipts}):
        revoking.revoke(key, at=now - timedelta(minutes=1))
    return Bases(p, now, envelopes, receipts, p.directory(), revoking.directory())


# -- the mutants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """A hostile envelope: the bytes, how they were made, and how to check them."""

    operator: str
    wire: bytes
    base: EnvelopeBase
    resigned_by: str | None = None  # an agency that re-signed the header as itself
    directory: str = "current"  # "current", "revoked" (replay after revocation), "expired"


@dataclass(frozen=True)
class ReceiptMutant:
    """A hostile receipt (its wire JSON value) and the message it is presented for."""

    operator: str
    value: Any
    target: EnvelopeBase
    poster: str  # the member that presents it (the genuine receipt's recipient)
    directory: str = "current"


def _flip(data: bytes, rng: random.Random, bits: int = 1) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    out = bytearray(data)
    for _ in range(bits):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _wire(parts: dict[str, Any], **extra: Any) -> bytes:
    value: dict[str, Any] = {"v": 1, **parts, **extra}
    return json.dumps(value, separators=(",", ":")).encode()


def _encode(parts: tuple[bytes, bytes, bytes, bytes]) -> dict[str, str]:
    return {name: b64encode(data) for name, data in zip(_PARTS, parts, strict=True)}


def _dumps_any(value: Any) -> bytes:
    """Canonical JSON when the value has a canonical form, plain JSON otherwise."""
    try:
        return canonical_json(value)
    except (TypeError, ValueError, ExchangeError):
        pass
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError):
        return json.dumps(value, separators=(",", ":")).encode()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a leaf (and to each object/array) of a JSON value."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def _delete(value: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        value = value[step]
    del value[path[-1]]


_ODD_VALUES: tuple[Any, ...] = (
    None, True, 0, -1, 1.5, 2**64, "", "x" * 300, "\u0000", "\ud800", "😀", [], {}, [1], {"a": 1},
    "2026-02-30T25:61:00Z", "00000000000000000000000000000000", "front-door", "../..",
)  # fmt: skip


class Mutator:
    """Seeded generator of hostile envelopes and receipts from :class:`Bases`."""

    ENVELOPE_OPERATORS: tuple[str, ...] = (
        "wire-bitflip",
        "wire-truncate",
        "wire-splice",
        "part-bitflip",
        "part-truncate",
        "part-extend",
        "part-swap",
        "header-field-edit",
        "header-field-swap",
        "header-field-delete",
        "header-reencode",
        "seals-edit",
        "base64-reencode",
        "wire-json-odd",
        "signature-substituted",
        "sender-cert-substituted",
        "resigned-by-attacker",
        "readdressed",
        "replay-after-revocation",
        "replay-after-expiry",
    )
    RECEIPT_OPERATORS: tuple[str, ...] = (
        "receipt-bitflip",
        "receipt-truncate",
        "receipt-field-edit",
        "receipt-field-swap",
        "receipt-reencode",
        "receipt-substituted-key",
        "receipt-for-another-message",
        "receipt-replay-after-revocation",
        "receipt-json-odd",
    )

    def __init__(self, bases: Bases, rng: random.Random) -> None:
        self.bases = bases
        self.rng = rng
        p = bases.partnership
        self.attacker = p[ATTACKER]
        self.agency_ids = [m.agency_id for m in p.members.values()]
        self.cert_ids = [m.certificate.id for m in p.members.values()]
        self._envelope_ops: list[tuple[str, Callable[[EnvelopeBase], Mutant]]] = [
            ("wire-bitflip", self._wire_bitflip),
            ("wire-truncate", self._wire_truncate),
            ("wire-splice", self._wire_splice),
            ("part-bitflip", self._part_bitflip),
            ("part-truncate", self._part_truncate),
            ("part-extend", self._part_extend),
            ("part-swap", self._part_swap),
            ("header-field-edit", self._header_field_edit),
            ("header-field-swap", self._header_field_swap),
            ("header-field-delete", self._header_field_delete),
            ("header-reencode", self._header_reencode),
            ("seals-edit", self._seals_edit),
            ("base64-reencode", self._base64_reencode),
            ("wire-json-odd", self._wire_json_odd),
            ("signature-substituted", self._signature_substituted),
            ("sender-cert-substituted", self._sender_cert_substituted),
            ("resigned-by-attacker", self._resigned_by_attacker),
            ("readdressed", self._readdressed),
            ("replay-after-revocation", self._replay_revoked),
            ("replay-after-expiry", self._replay_expired),
        ]
        self._receipt_ops: list[tuple[str, Callable[[ReceiptBase], ReceiptMutant]]] = [
            ("receipt-bitflip", self._receipt_bitflip),
            ("receipt-truncate", self._receipt_truncate),
            ("receipt-field-edit", self._receipt_field_edit),
            ("receipt-field-swap", self._receipt_field_swap),
            ("receipt-reencode", self._receipt_reencode),
            ("receipt-substituted-key", self._receipt_substituted_key),
            ("receipt-for-another-message", self._receipt_other_message),
            ("receipt-replay-after-revocation", self._receipt_revoked),
            ("receipt-json-odd", self._receipt_json_odd),
        ]
        assert tuple(n for n, _ in self._envelope_ops) == self.ENVELOPE_OPERATORS
        assert tuple(n for n, _ in self._receipt_ops) == self.RECEIPT_OPERATORS

    def envelope(self) -> Mutant:
        """One hostile envelope."""
        _, op = self.rng.choice(self._envelope_ops)
        return op(self.rng.choice(self.bases.envelopes))

    def receipt(self) -> ReceiptMutant:
        """One hostile receipt."""
        _, op = self.rng.choice(self._receipt_ops)
        return op(self.rng.choice(self.bases.receipts))

    # -- envelope operators ------------------------------------------------------------------

    def _wire_bitflip(self, base: EnvelopeBase) -> Mutant:
        wire = _flip(base.envelope.to_wire(), self.rng, self.rng.choice((1, 1, 2, 8)))
        return Mutant("wire-bitflip", wire, base)

    def _wire_truncate(self, base: EnvelopeBase) -> Mutant:
        wire = base.envelope.to_wire()
        return Mutant("wire-truncate", wire[: self.rng.randrange(len(wire))], base)

    def _wire_splice(self, base: EnvelopeBase) -> Mutant:
        wire = bytearray(base.envelope.to_wire())
        i = self.rng.randrange(len(wire))
        if self.rng.random() < 0.5:
            del wire[i : i + self.rng.randint(1, 16)]
        else:
            wire[i:i] = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 16)))
        return Mutant("wire-splice", bytes(wire), base)

    def _with_part(self, base: EnvelopeBase, index: int, data: bytes) -> bytes:
        parts = list(base.parts)
        parts[index] = data
        return _wire(_encode(tuple(parts)))  # type: ignore[arg-type]

    def _part_bitflip(self, base: EnvelopeBase) -> Mutant:
        i = self.rng.randrange(4)
        data = _flip(base.parts[i], self.rng, self.rng.choice((1, 1, 3)))
        return Mutant(f"part-bitflip:{_PARTS[i]}", self._with_part(base, i, data), base)

    def _part_truncate(self, base: EnvelopeBase) -> Mutant:
        i = self.rng.randrange(4)
        data = base.parts[i]
        cut = data[: self.rng.randrange(len(data))] if data else b""
        return Mutant(f"part-truncate:{_PARTS[i]}", self._with_part(base, i, cut), base)

    def _part_extend(self, base: EnvelopeBase) -> Mutant:
        i = self.rng.randrange(4)
        extra = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))
        data = base.parts[i] + extra if self.rng.random() < 0.7 else extra + base.parts[i]
        return Mutant(f"part-extend:{_PARTS[i]}", self._with_part(base, i, data), base)

    def _part_swap(self, base: EnvelopeBase) -> Mutant:
        other = self.rng.choice([b for b in self.bases.envelopes if b is not base])
        parts = list(base.parts)
        for i in self.rng.sample(range(4), self.rng.randint(1, 3)):
            parts[i] = other.parts[i]
        return Mutant("part-swap", _wire(_encode(tuple(parts))), base)  # type: ignore[arg-type]

    def _header(self, base: EnvelopeBase) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base.envelope.header_bytes)
        return value

    def _plausible(self, old: Any) -> Any:
        """Another value for a field: from another header, a member, or an odd one."""
        choice = self.rng.random()
        if choice < 0.3:
            other = self._header(self.rng.choice(self.bases.envelopes))
            paths = [q for q in _paths(other) if not isinstance(_get(other, q), dict | list)]
            return _get(other, self.rng.choice(paths))
        if choice < 0.5:
            return self.rng.choice(self.agency_ids + self.cert_ids)
        if choice < 0.7 and isinstance(old, str) and old:
            text = list(old)
            text[self.rng.randrange(len(text))] = self.rng.choice("0aZ-_/ ")
            return "".join(text)
        return self.rng.choice(_ODD_VALUES)

    def _header_bytes_edit(
        self, base: EnvelopeBase, operator: str, edit: Callable[[dict[str, Any]], None]
    ) -> Mutant:
        header = self._header(base)
        edit(header)
        return Mutant(operator, self._with_part(base, 0, _dumps_any(header)), base)

    def _header_field_edit(self, base: EnvelopeBase) -> Mutant:
        header = self._header(base)
        path = self.rng.choice(_paths(header))

        def edit(h: dict[str, Any]) -> None:
            _set(h, path, self._plausible(_get(h, path)))

        return self._header_bytes_edit(base, "header-field-edit", edit)

    def _header_field_swap(self, base: EnvelopeBase) -> Mutant:
        header = self._header(base)
        a, b = self.rng.sample(_paths(header), 2)
        if a[: len(b)] == b or b[: len(a)] == a:  # one inside the other: swap with a sibling
            b = self.rng.choice([q for q in _paths(header) if q[:1] != a[:1]])

        def edit(h: dict[str, Any]) -> None:
            try:
                va, vb = _get(h, a), _get(h, b)
                _set(h, a, vb)
                _set(h, b, va)
            except (KeyError, IndexError, TypeError):
                _set(h, a, None)

        return self._header_bytes_edit(base, "header-field-swap", edit)

    def _header_field_delete(self, base: EnvelopeBase) -> Mutant:
        header = self._header(base)
        path = self.rng.choice(_paths(header))
        return self._header_bytes_edit(base, "header-field-delete", lambda h: _delete(h, path))

    def _header_reencode(self, base: EnvelopeBase) -> Mutant:
        header = self._header(base)
        style = self.rng.randrange(4)
        if style == 0:
            data = json.dumps(header, indent=1).encode()
        elif style == 1:
            data = json.dumps(dict(reversed(list(header.items()))), separators=(",", ":")).encode()
        elif style == 2:
            data = json.dumps(header, sort_keys=True).encode()  # spaces after separators
        else:
            text = canonical_json(header).decode()
            data = text.replace('"', '"', 1).replace(":", ": ", 1).encode()
        return Mutant("header-reencode", self._with_part(base, 0, data), base)

    def _seals_edit(self, base: EnvelopeBase) -> Mutant:
        seals = json.loads(base.envelope.seals_bytes)
        other = json.loads(self.rng.choice(self.bases.envelopes).envelope.seals_bytes)
        choice = self.rng.randrange(5)
        if choice == 0 and len(seals["recipients"]) > 1:  # swap wrapped keys between recipients
            a, b = seals["recipients"][0], seals["recipients"][1]
            a["body_key"], b["body_key"] = b["body_key"], a["body_key"]
        elif choice == 1:  # a recipient renamed
            seals["recipients"][0]["agency"] = self.rng.choice(self.agency_ids)
        elif choice == 2:  # keys wrapped for someone else (from another envelope)
            seals["recipients"][0]["body_key"] = other["recipients"][0]["body_key"]
        elif choice == 3:
            seals["auditor"] = other["auditor"]
        else:
            seals["justification"] = other["justification"]
        data = canonical_json(seals)
        return Mutant("seals-edit", self._with_part(base, 2, data), base)

    def _base64_reencode(self, base: EnvelopeBase) -> Mutant:
        parts = _encode(base.parts)
        name = self.rng.choice(_PARTS)
        raw = base.parts[_PARTS.index(name)]
        style = self.rng.randrange(5)
        if style == 0:
            parts[name] = parts[name].rstrip("=") or "A"
        elif style == 1:
            parts[name] = base64.urlsafe_b64encode(raw).decode()
        elif style == 2:
            parts[name] = base64.encodebytes(raw).decode()  # line breaks
        elif style == 3:
            parts[name] = " " + parts[name]
        else:
            parts[name] = parts[name] + "=="
        return Mutant(f"base64-reencode:{name}", _wire(parts), base)

    def _wire_json_odd(self, base: EnvelopeBase) -> Mutant:
        parts = _encode(base.parts)
        style = self.rng.randrange(8)
        if style == 0:
            wire = _wire(parts, extra="field")
        elif style == 1:
            wire = json.dumps({**parts, "v": 2}).encode()
        elif style == 2:
            wire = json.dumps({**parts, "v": "1"}).encode()
        elif style == 3:
            name = self.rng.choice(_PARTS)
            del parts[name]
            wire = _wire(parts)
        elif style == 4:  # a duplicate key: the last one wins in most parsers
            other = _encode(self.rng.choice(self.bases.envelopes).parts)
            text = _wire(parts).decode()
            wire = (text[:-1] + f',"header":"{other["header"]}"}}').encode()
        elif style == 5:
            wire = b"[" * 50_000 + b"]" * 50_000
        elif style == 6:
            wire = json.dumps({**parts, "header": {"nested": parts["header"]}}).encode()
        else:
            wire = self.rng.choice((b"", b"null", b"1", b'"x"', b"{}", b"\xff\xfe", b"{" * 10))
        return Mutant("wire-json-odd", wire, base)

    def _signature_substituted(self, base: EnvelopeBase) -> Mutant:
        who = self.rng.choice([k for k in self.bases.partnership.members if k != base.sender])
        identity = self.bases.partnership[who].identity
        signature = identity.sign(pae(DOMAIN_ENVELOPE, base.envelope.header_bytes))
        return Mutant("signature-substituted", self._with_part(base, 1, signature), base)

    def _sender_cert_substituted(self, base: EnvelopeBase) -> Mutant:
        header = self._header(base)
        header["sender"]["cert"] = self.attacker.certificate.id
        data = canonical_json(header)
        signature = base.envelope.signature
        if self.rng.random() < 0.5:  # and signed by the attacker, whose certificate it names
            signature = self.attacker.identity.sign(pae(DOMAIN_ENVELOPE, data))
        parts = (data, signature, base.parts[2], base.parts[3])
        return Mutant("sender-cert-substituted", _wire(_encode(parts)), base)

    def _resigned_by_attacker(self, base: EnvelopeBase) -> Mutant:
        """The attacker claims the ciphertext as its own message (a correct attribution)."""
        header = self._header(base)
        header["sender"] = {
            "agency": self.attacker.agency_id,
            "mailbox": self.attacker.mailbox,
            "cert": self.attacker.certificate.id,
        }
        if self.rng.random() < 0.3:
            header["recipients"] = [{"agency": self.attacker.agency_id, "mailbox": "office"}]
        data = canonical_json(header)
        signature = self.attacker.identity.sign(pae(DOMAIN_ENVELOPE, data))
        parts = (data, signature, base.parts[2], base.parts[3])
        return Mutant("resigned-by-attacker", _wire(_encode(parts)), base, ATTACKER)

    def _readdressed(self, base: EnvelopeBase) -> Mutant:
        header = self._header(base)
        target = self.rng.choice(list(self.bases.partnership.members.values()))
        header["recipients"] = [{"agency": target.agency_id, "mailbox": target.mailbox}]
        data = canonical_json(header)
        return Mutant("readdressed", self._with_part(base, 0, data), base)

    def _replay_revoked(self, base: EnvelopeBase) -> Mutant:
        return Mutant("replay-after-revocation", base.envelope.to_wire(), base, None, "revoked")

    def _replay_expired(self, base: EnvelopeBase) -> Mutant:
        return Mutant("replay-after-expiry", base.envelope.to_wire(), base, None, "expired")

    # -- receipt operators -------------------------------------------------------------------

    def _receipt_value(self, base: ReceiptBase, body: bytes, signature: bytes) -> dict[str, str]:
        return {"body": b64encode(body), "signature": b64encode(signature)}

    def _receipt_bitflip(self, base: ReceiptBase) -> ReceiptMutant:
        r = base.receipt
        if self.rng.random() < 0.5:
            value = self._receipt_value(base, _flip(r.body_bytes, self.rng), r.signature)
        else:
            value = self._receipt_value(base, r.body_bytes, _flip(r.signature, self.rng))
        return ReceiptMutant("receipt-bitflip", value, base.message, base.recipient)

    def _receipt_truncate(self, base: ReceiptBase) -> ReceiptMutant:
        r = base.receipt
        body = r.body_bytes[: self.rng.randrange(len(r.body_bytes))]
        value = self._receipt_value(base, body, r.signature)
        return ReceiptMutant("receipt-truncate", value, base.message, base.recipient)

    def _receipt_body(self, base: ReceiptBase) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base.receipt.body_bytes)
        return value

    def _receipt_field_edit(self, base: ReceiptBase) -> ReceiptMutant:
        body = self._receipt_body(base)
        key = self.rng.choice(sorted(body))
        body[key] = self._plausible(body[key])
        value = self._receipt_value(base, _dumps_any(body), base.receipt.signature)
        return ReceiptMutant("receipt-field-edit", value, base.message, base.recipient)

    def _receipt_field_swap(self, base: ReceiptBase) -> ReceiptMutant:
        body = self._receipt_body(base)
        a, b = self.rng.sample(sorted(body), 2)
        body[a], body[b] = body[b], body[a]
        value = self._receipt_value(base, canonical_json(body), base.receipt.signature)
        return ReceiptMutant("receipt-field-swap", value, base.message, base.recipient)

    def _receipt_reencode(self, base: ReceiptBase) -> ReceiptMutant:
        body = self._receipt_body(base)
        style = self.rng.randrange(3)
        if style == 0:
            value = self._receipt_value(base, json.dumps(body).encode(), base.receipt.signature)
        elif style == 1:
            value = base.receipt.to_json()
            value["signature"] = base64.urlsafe_b64encode(base.receipt.signature).decode()
        else:
            value = base.receipt.to_json()
            value["body"] = value["body"].rstrip("=")
        return ReceiptMutant("receipt-reencode", value, base.message, base.recipient)

    def _receipt_substituted_key(self, base: ReceiptBase) -> ReceiptMutant:
        """Signed by the attacker, naming the real recipient (or the attacker itself)."""
        body = self._receipt_body(base)
        if self.rng.random() < 0.5:
            body["recipient"] = self.attacker.agency_id
            body["cert"] = self.attacker.certificate.id
        data = canonical_json(body)
        signature = self.attacker.identity.sign(pae(DOMAIN_RECEIPT, data))
        value = self._receipt_value(base, data, signature)
        return ReceiptMutant("receipt-substituted-key", value, base.message, base.recipient)

    def _receipt_other_message(self, base: ReceiptBase) -> ReceiptMutant:
        target = self.rng.choice([b for b in self.bases.envelopes if b is not base.message])
        value = base.receipt.to_json()
        return ReceiptMutant("receipt-for-another-message", value, target, base.recipient)

    def _receipt_revoked(self, base: ReceiptBase) -> ReceiptMutant:
        return ReceiptMutant(
            "receipt-replay-after-revocation",
            base.receipt.to_json(),
            base.message,
            base.recipient,
            "revoked",
        )

    def _receipt_json_odd(self, base: ReceiptBase) -> ReceiptMutant:
        value: Any = self.rng.choice(
            (
                None,
                [],
                "x",
                {"body": None, "signature": None},
                {**base.receipt.to_json(), "extra": 1},
                {"body": base.receipt.to_json()["body"]},
                {"body": 1, "signature": 2},
                [[[[[]]]]],
            )
        )
        return ReceiptMutant("receipt-json-odd", value, base.message, base.recipient)


# -- the oracles ---------------------------------------------------------------------------


@dataclass
class FuzzStats:
    """Counts per operator and outcome; crashes and acceptances keep an example each."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    rejections: collections.Counter[str] = field(default_factory=collections.Counter)
    crashes: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    equivalent: int = 0
    attributed_to_attacker: int = 0

    @property
    def total(self) -> int:
        """Mutated inputs checked (equivalents excluded)."""
        return sum(self.counts.values())

    def merge(self, other: FuzzStats) -> None:
        """Add ``other``'s counts to these."""
        self.counts.update(other.counts)
        self.rejections.update(other.rejections)
        self.crashes += other.crashes
        self.accepted += other.accepted
        self.equivalent += other.equivalent
        self.attributed_to_attacker += other.attributed_to_attacker

    def summary(self) -> str:
        """A few lines for the test output."""
        lines = [
            f"{self.total} mutated inputs: {len(self.accepted)} accepted, "
            f"{len(self.crashes)} crashes, {self.equivalent} equivalent re-encodings skipped, "
            f"{self.attributed_to_attacker} re-signed headers attributed to the attacker",
            "by operator: "
            + ", ".join(f"{op}={n}" for op, n in sorted(self.counts.items(), key=lambda x: x[0])),
            "rejected as: " + ", ".join(f"{c}={n}" for c, n in self.rejections.most_common()),
        ]
        return "\n".join(lines)


class _Refused(Exception):
    pass


def _refuses(stats: FuzzStats, what: str, fn: Callable[[], Any]) -> bool:
    """Run one verification path: True if it refused with an ExchangeError."""
    try:
        fn()
    except ExchangeError as exc:
        stats.rejections[exc.code] += 1
        return True
    except Exception as exc:  # anything untyped is a crash
        stats.crashes.append(f"{what}: {type(exc).__name__}: {str(exc)[:120]}")
        raise _Refused from None
    return False


def _directory(bases: Bases, which: str) -> tuple[Directory, datetime]:
    if which == "revoked":
        return bases.revoked, bases.now
    if which == "expired":
        return bases.directory, bases.now + timedelta(days=3650)
    return bases.directory, bases.now


def check_envelope(bases: Bases, mutant: Mutant, stats: FuzzStats) -> str:
    """Run the relay's, every recipient's and the auditor's path on one mutant.

    Returns ``equivalent`` (the same message: not counted), ``attributed`` (re-signed
    by the attacker as itself), ``rejected``, ``accepted`` or ``crashed``.
    """
    p = bases.partnership
    label = f"{mutant.operator}"
    try:
        envelope = parse_envelope(mutant.wire)
    except ExchangeError as exc:
        stats.counts[mutant.operator] += 1
        stats.rejections[exc.code] += 1
        return "rejected"
    except Exception as exc:
        stats.counts[mutant.operator] += 1
        stats.crashes.append(f"{label} parse: {type(exc).__name__}: {str(exc)[:120]}")
        return "crashed"
    parts = (envelope.header_bytes, envelope.signature, envelope.seals_bytes, envelope.body)
    if parts in bases.genuine_parts and mutant.directory == "current":
        stats.equivalent += 1
        return "equivalent"
    stats.counts[mutant.operator] += 1
    directory, at = _directory(bases, mutant.directory)
    accepted_before = len(stats.accepted)
    outcome = "rejected"
    try:
        # The relay: public keys only.
        verified: list[Any] = []
        if not _refuses(
            stats,
            f"{label} verify_header",
            lambda: verified.append(verify_header(envelope, directory, at=at)),
        ):
            sender = verified[0].header.sender.agency
            if mutant.resigned_by is not None and sender == p[mutant.resigned_by].agency_id:
                stats.attributed_to_attacker += 1
                outcome = "attributed"
            else:
                stats.accepted.append(f"{label}: verify_header accepted it (sender {sender})")
        # Every party that could open it: the intended recipients and the attacker.
        for key in sorted({*mutant.base.recipients, ATTACKER}):
            member = p[key]
            if not _refuses(
                stats,
                f"{label} open_envelope({key})",
                lambda member=member: open_envelope(  # type: ignore[misc]
                    envelope, member.identity, directory, agency_id=member.agency_id, at=at
                ),
            ):
                stats.accepted.append(f"{label}: open_envelope accepted it for {key}")
        # The auditor reads the justification: only the header and seals matter to it.
        auditor = p["auditor"]
        if not _refuses(
            stats,
            f"{label} open_justification",
            lambda: open_justification(
                envelope.header_bytes,
                envelope.signature,
                envelope.seals_bytes,
                auditor.identity,
                directory,
                at=at,
            ),
        ):
            seen = (envelope.header_bytes, envelope.signature, envelope.seals_bytes)
            if mutant.directory != "current" or seen not in {x[:3] for x in bases.genuine_parts}:
                stats.accepted.append(f"{label}: open_justification accepted it")
    except _Refused:
        return "crashed"
    return "accepted" if len(stats.accepted) > accepted_before else outcome


def check_receipt(bases: Bases, mutant: ReceiptMutant, stats: FuzzStats) -> str:
    """The relay's receipt check: strict parse, signature, and binding to the message.

    Returns ``equivalent``, ``rejected``, ``accepted`` or ``crashed``.
    """
    directory, at = _directory(bases, mutant.directory)
    target = mutant.target
    target_id = json.loads(target.envelope.header_bytes)["id"]
    target_digest = header_digest(target.envelope.header_bytes)
    poster = bases.partnership[mutant.poster].agency_id
    recipients = {bases.partnership[k].agency_id for k in target.recipients}
    outcome: list[str] = []

    def accept() -> None:
        receipt = DeliveryReceipt.from_json(mutant.value)
        genuine = (receipt.body_bytes, receipt.signature) in bases.genuine_receipts
        body = verify_receipt(receipt, directory, at=at)
        if body.message_id != target_id or body.header_digest != target_digest:
            raise _binding_error()
        if body.recipient != poster or poster not in recipients:
            raise _binding_error()
        outcome.append("equivalent" if genuine and mutant.directory == "current" else "accepted")

    try:
        refused = _refuses(stats, mutant.operator, accept)
    except _Refused:
        stats.counts[mutant.operator] += 1
        return "crashed"
    if refused:
        stats.counts[mutant.operator] += 1
        return "rejected"
    if outcome == ["equivalent"]:
        stats.equivalent += 1
        return "equivalent"
    stats.counts[mutant.operator] += 1
    stats.accepted.append(f"{mutant.operator}: receipt accepted")
    return "accepted"


def is_equivalent(bases: Bases, mutant: Mutant | ReceiptMutant) -> bool:
    """Whether a mutant decodes to a genuine envelope or receipt, as presented originally."""
    if mutant.directory != "current":
        return False
    try:
        if isinstance(mutant, Mutant):
            e = parse_envelope(mutant.wire)
            return (e.header_bytes, e.signature, e.seals_bytes, e.body) in bases.genuine_parts
        receipt = DeliveryReceipt.from_json(mutant.value)
    except Exception:
        return False
    for genuine in bases.receipts:
        if (receipt.body_bytes, receipt.signature) == (
            genuine.receipt.body_bytes,
            genuine.receipt.signature,
        ):
            return genuine.message is mutant.target and genuine.recipient == mutant.poster
    return False


def _binding_error() -> ExchangeError:
    from schemas.problems import InvalidReceipt

    return InvalidReceipt("the receipt is for another message")
