"""The auditor's run: download a period of the relay's log, verify it, or bundle it for later.

Theory of operation
-------------------
:func:`download` fetches, for a period, everything :mod:`agency_client.audit_verify`
needs and nothing more: the signed tree heads (every head the relay signed in the
period, plus the newest), the relay's consistency proof between each consecutive
pair, the frontier of the first leaf, the leaves themselves, the relay's header
rows (for the seals; never a body) and the directory, re-verified against the
pinned root. The period runs from the last head signed before ``from`` to the last
head signed at or before ``to`` (or the newest head).

:func:`export_bundle` writes the same material into one file signed by the
auditor (``safeguarding-exchange/audit-bundle/v1``); :func:`read_bundle` checks that
signature against the auditor certificate in the bundle's own directory, which is
itself verified against the pinned root, so ``agency audit verify --bundle`` needs
no relay and trusts nothing but the root.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agency_client import protocol
from agency_client.audit_verify import AuditMaterial, HeaderRow, Progress
from keys.directory import Directory
from keys.identity import AgencyIdentity
from keys.transparency import SignedTreeHead, TreeHead, leaf_bytes
from schemas.encoding import b64decode, b64encode, canonical_json, pae
from schemas.problems import BadSignature, ConfigurationError, InvalidEnvelope, NotFound
from schemas.timefmt import format_time, parse_time

__all__ = [
    "BUNDLE_TYPE",
    "DOMAIN_AUDIT_BUNDLE",
    "Fetch",
    "bundle_body",
    "download",
    "export_bundle",
    "read_bundle",
]

BUNDLE_TYPE = "safeguarding-exchange/audit-bundle/v1"
#: Domain separation for the auditor's signature over a bundle.
DOMAIN_AUDIT_BUNDLE = "safeguard:audit-bundle:v1"
PAGE = 1000

#: ``fetch(request, parser)``: one relay call (the client's transport).
Fetch = Callable[[protocol.Request, Callable[[protocol.Response], Any]], Any]


@dataclass(frozen=True, slots=True)
class _Head:
    signed: SignedTreeHead
    head: TreeHead


def _unverified(signed: SignedTreeHead) -> _Head:
    """Parse a head to choose the period by time; :func:`verify_material` verifies it."""
    return _Head(signed=signed, head=signed.head)


async def _all_heads(fetch: Fetch, progress: Progress) -> list[_Head]:
    heads: dict[int, _Head] = {}
    since = 0
    while True:
        items, next_since = await fetch(
            protocol.get_tree_heads(since=since, limit=PAGE), protocol.parse_tree_heads
        )
        for item in items:
            parsed = _unverified(item.signed)
            heads.setdefault(parsed.head.size, parsed)
        progress("downloading tree heads", len(heads), len(heads))
        if not items or next_since <= since:
            break
        since = next_since
    return [heads[size] for size in sorted(heads)]


async def download(
    fetch: Fetch,
    directory: Directory,
    *,
    period_from: datetime | None = None,
    period_to: datetime | None = None,
    known_head: SignedTreeHead | None = None,
    progress: Progress | None = None,
    headers_only_fallback: bool = True,
) -> AuditMaterial:
    """Fetch one period of the log (see the module docstring) for :func:`verify_material`.

    When the relay has no signed tree head (its log key is not certified) and
    ``headers_only_fallback`` is set, the material is built from the relay's header rows
    alone (``log_available=False``): the log itself cannot be verified then.

    :raises NotFound: when the relay has no signed tree head and there is no fallback.
    """
    report: Progress = progress or (lambda stage, done, total: None)
    try:
        latest = await fetch(protocol.get_log_head(), protocol.parse_log_head)
    except NotFound:
        if not headers_only_fallback:
            raise
        return await _headers_only(fetch, directory, period_from, period_to, report)
    heads = await _all_heads(fetch, report)
    if all(h.head.size != latest.size for h in heads):
        heads.append(_unverified(latest.signed))
        heads.sort(key=lambda h: h.head.size)
    before = [h for h in heads if period_from is not None and h.head.timestamp < period_from]
    start = before[-1].head.size if before else 0
    within = [h for h in heads if period_to is None or h.head.timestamp <= period_to]
    end = within[-1].head.size if within else start
    chosen = [h for h in heads if start <= h.head.size <= end]

    consistency: dict[tuple[int, int], tuple[bytes, ...]] = {}
    pairs = list(itertools.pairwise(chosen))
    for number, (older, newer) in enumerate(pairs, start=1):
        report("downloading consistency proofs", number, len(pairs))
        first, second = older.head.size, newer.head.size
        consistency[(first, second)] = await fetch(
            protocol.get_consistency_proof(first=first, second=second), protocol.parse_proof
        )
    frontier: list[tuple[int, int, bytes]] = []
    if start > 0:
        frontier = list(await fetch(protocol.get_log_frontier(size=start), protocol.parse_frontier))

    leaves: list[tuple[int, bytes]] = []
    cursor = start
    while cursor < end:
        page = await fetch(
            protocol.get_log_leaves(start=cursor, limit=min(PAGE, end - cursor)),
            protocol.parse_log_leaves,
        )
        leaves.extend((item.index, item.leaf) for item in page.items if item.index < end)
        report("downloading log leaves", min(page.end, end) - start, end - start)
        if page.end <= cursor:
            break
        cursor = page.end

    headers = await _header_rows(fetch, leaves, report)
    return AuditMaterial(
        directory=directory,
        heads=[h.signed for h in chosen],
        consistency=consistency,
        start=start,
        end=end,
        frontier=frontier,
        leaves=leaves,
        headers=headers,
        period_from=period_from,
        period_to=period_to,
        known_head=known_head,
    )


async def _headers_only(
    fetch: Fetch,
    directory: Directory,
    period_from: datetime | None,
    period_to: datetime | None,
    report: Progress,
) -> AuditMaterial:
    """Material from the header feed alone, for a relay that signs no tree heads."""
    rows = await _header_rows(fetch, None, report)
    chosen = []
    for row in sorted(rows.values(), key=lambda r: r.sequence):
        stored = parse_time(row.stored_at, field="stored_at") if row.stored_at else None
        if stored is not None and period_from is not None and stored < period_from:
            continue
        if stored is not None and period_to is not None and stored > period_to:
            continue
        chosen.append(row)
    leaves = [
        (
            index,
            leaf_bytes(
                "envelope",
                {
                    "sequence": row.sequence,
                    "at": row.stored_at,
                    "header": b64encode(row.header),
                    "signature": b64encode(row.signature),
                },
            ),
        )
        for index, row in enumerate(chosen)
    ]
    return AuditMaterial(
        directory=directory,
        heads=[],
        consistency={},
        start=0,
        end=len(leaves),
        frontier=[],
        leaves=leaves,
        headers={row.message_id: row for row in chosen},
        period_from=period_from,
        period_to=period_to,
        log_available=False,
    )


def _sequences(leaves: list[tuple[int, bytes]]) -> list[int]:
    found = []
    for _, leaf in leaves:
        try:
            value = json.loads(leaf)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(value, dict) and isinstance(value.get("sequence"), int):
            found.append(value["sequence"])
    return found


async def _header_rows(
    fetch: Fetch, leaves: list[tuple[int, bytes]] | None, report: Progress
) -> dict[str, HeaderRow]:
    """The relay's header rows (with seals) for the events the leaves cover (None: all)."""
    rows: dict[str, HeaderRow] = {}
    if leaves is None:
        first, last = 1, 2**62
    else:
        sequences = _sequences(leaves)
        if not sequences:
            return rows
        first, last = min(sequences), max(sequences)
    cursor = first - 1
    while cursor < last:
        page = await fetch(
            protocol.get_audit_headers(since=cursor, limit=500), protocol.parse_audit_page
        )
        for item in page.items:
            record = item.record
            if item.sequence <= last:
                rows[record.message_id] = HeaderRow(
                    message_id=record.message_id,
                    sequence=item.sequence,
                    header=record.header_bytes,
                    signature=record.signature,
                    seals=record.seals_bytes,
                    stored_at=_opt_text(record.raw.get("stored_at")),
                )
        if leaves is None:
            report("downloading headers", len(rows), len(rows))
        else:
            done = max(0, min(page.next_since or last, last) - first)
            report("downloading headers", done, last - first)
        if not page.items or page.next_since is None or page.next_since <= cursor:
            break
        cursor = page.next_since
    return rows


def _opt_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# -- bundles -------------------------------------------------------------------------------------


def _b64_list(values: Any) -> list[str]:
    return [b64encode(v) for v in values]


def bundle_body(
    material: AuditMaterial, *, auditor_cert: str, created_at: datetime
) -> dict[str, Any]:
    """The bundle's signed content: the material as JSON (exact bytes, base64)."""
    return {
        "type": BUNDLE_TYPE,
        "v": 1,
        "created_at": format_time(created_at),
        "auditor_cert": auditor_cert,
        "period": {
            "from": None if material.period_from is None else format_time(material.period_from),
            "to": None if material.period_to is None else format_time(material.period_to),
        },
        "directory": material.directory.to_json(),
        "tree_heads": [h.to_json() for h in material.heads],
        "consistency": [
            {"first": first, "second": second, "proof": _b64_list(proof)}
            for (first, second), proof in sorted(material.consistency.items())
        ],
        "start": material.start,
        "end": material.end,
        "frontier": [
            {"level": level, "index": index, "hash": b64encode(value)}
            for level, index, value in material.frontier
        ],
        "leaves": [{"index": index, "leaf": b64encode(leaf)} for index, leaf in material.leaves],
        "headers": [
            {
                "message_id": row.message_id,
                "sequence": row.sequence,
                "header": b64encode(row.header),
                "signature": b64encode(row.signature),
                "seals": None if row.seals is None else b64encode(row.seals),
                "stored_at": row.stored_at,
            }
            for row in sorted(material.headers.values(), key=lambda r: r.sequence)
        ],
        "log_available": material.log_available,
    }


def export_bundle(
    path: Path,
    material: AuditMaterial,
    *,
    identity: AgencyIdentity,
    auditor_cert: str,
    created_at: datetime,
) -> dict[str, Any]:
    """Write a signed, self-contained audit bundle to ``path``; return a summary."""
    body = canonical_json(bundle_body(material, auditor_cert=auditor_cert, created_at=created_at))
    document = {
        "type": BUNDLE_TYPE,
        "body": b64encode(body),
        "signature": b64encode(identity.sign(pae(DOMAIN_AUDIT_BUNDLE, body))),
    }
    try:
        with path.open("x", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.write("\n")
    except FileExistsError:
        raise ConfigurationError(f"{path} already exists; refusing to overwrite it") from None
    return {
        "bundle": str(path),
        "bytes": path.stat().st_size,
        "tree_heads": len(material.heads),
        "leaves": len(material.leaves),
        "headers": len(material.headers),
        "start": material.start,
        "end": material.end,
    }


def _field(value: Any, name: str, kind: type) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get(name), kind):
        raise InvalidEnvelope(f"the audit bundle's {name} is missing or malformed")
    return value[name]


def read_bundle(path: Path, root_public_key: bytes) -> tuple[AuditMaterial, dict[str, Any]]:
    """Read and check a bundle offline; return its material and signed body.

    The directory in the bundle is verified against ``root_public_key`` (the pinned
    root), and the bundle's signature against the auditor certificate it names.

    :raises BadSignature: when the bundle was altered or not signed by an auditor.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the bundle {path}: {exc.strerror}") from None
    except ValueError:
        raise InvalidEnvelope("the audit bundle is not JSON") from None
    if _field(document, "type", str) != BUNDLE_TYPE:
        raise InvalidEnvelope("not a version 1 audit bundle")
    body_bytes = b64decode(_field(document, "body", str), field="body")
    signature = b64decode(_field(document, "signature", str), field="signature")
    try:
        body = json.loads(body_bytes)
    except ValueError:
        raise InvalidEnvelope("the audit bundle's body is not JSON") from None
    if _field(body, "type", str) != BUNDLE_TYPE or canonical_json(body) != body_bytes:
        raise InvalidEnvelope("the audit bundle's body is not a canonical version 1 body")
    directory = Directory.from_json(body["directory"], root_public_key=root_public_key)
    created_at = parse_time(_field(body, "created_at", str), field="created_at")
    signer = directory.by_id(_field(body, "auditor_cert", str), at=created_at)
    if signer.role != "auditor":
        raise BadSignature("the audit bundle is not signed by an auditor certificate")
    signer.public_keys.verify(pae(DOMAIN_AUDIT_BUNDLE, body_bytes), signature)
    period = _field(body, "period", dict)
    try:
        material = _material(body, directory, period)
    except (KeyError, TypeError, ValueError):
        raise InvalidEnvelope("the audit bundle's content is malformed") from None
    summary = {
        "bundle": str(path),
        "signed_by": signer.agency_id,
        "created_at": body["created_at"],
    }
    return material, summary


def _material(body: dict[str, Any], directory: Directory, period: dict[str, Any]) -> AuditMaterial:
    return AuditMaterial(
        directory=directory,
        heads=[SignedTreeHead.from_json(h) for h in _field(body, "tree_heads", list)],
        consistency={
            (int(c["first"]), int(c["second"])): tuple(
                b64decode(p, field="proof") for p in c["proof"]
            )
            for c in _field(body, "consistency", list)
        },
        start=int(_field(body, "start", int)),
        end=int(_field(body, "end", int)),
        frontier=[
            (int(n["level"]), int(n["index"]), b64decode(n["hash"], field="hash"))
            for n in _field(body, "frontier", list)
        ],
        leaves=[
            (int(item["index"]), b64decode(item["leaf"], field="leaf"))
            for item in _field(body, "leaves", list)
        ],
        headers={
            h["message_id"]: HeaderRow(
                message_id=h["message_id"],
                sequence=int(h["sequence"]),
                header=b64decode(h["header"], field="header"),
                signature=b64decode(h["signature"], field="signature"),
                seals=None if h["seals"] is None else b64decode(h["seals"], field="seals"),
                stored_at=h.get("stored_at"),
            )
            for h in _field(body, "headers", list)
        },
        period_from=None if period.get("from") is None else parse_time(period["from"]),
        period_to=None if period.get("to") is None else parse_time(period["to"]),
        log_available=bool(body.get("log_available", True)),
    )
