"""The auditor's verification, pure: audit material in, a JSON-ready report out.

Theory of operation
-------------------
:class:`AuditMaterial` is everything the auditor downloaded for a period (or read
from a bundle): signed tree heads, the relay's consistency proofs between them,
the leaves ``[start, end)`` with the *frontier* of ``start`` (the perfect subtrees
that hash to the tree head of size ``start``), the relay's header rows (for the
seals) and the directory. :func:`verify_material` checks it, in this order:

1. **Tree heads**: every head's signature against the relay log certificate the
   pinned root issued, and the relay's consistency proof between each pair of
   consecutive heads.
2. **The log itself**: indices contiguous (a deleted leaf is named), every leaf a
   canonical leaf, event sequences strictly increasing (a reordered leaf is
   named); the tree is rebuilt from the frontier and the leaves with
   :func:`schemas.merkle.nodes_completed_by`, and the root of *every* head in the
   period must come out exactly (a rewritten leaf is named with the head it
   contradicts). That proves the heads consistent with each other and with the
   leaves, beyond the relay's own proofs.
3. **Each accepted header** (from its leaf, not from the relay's tables): the
   sender's signature against the certificate valid when it was created, that
   certificate still valid when the relay accepted it, the basis codes through
   the same policy engine the relay ran, and the justification sealed to the
   auditor (present, non-empty, matching the header's commitment, then the full
   tag through the engine). The relay's stored header row must be byte-for-byte
   the logged one (an altered row is named).
4. **Receipts, expiries, refusals**: receipt signatures and the digest of the
   header they acknowledge; refused headers re-checked (their rule ids counted).
5. **Timeliness**: threads rebuilt from the logged headers and receipts with
   :mod:`schemas.lifecycle`, and their working-day clocks with
   :mod:`schemas.deadlines`, exactly as the relay does, from the relay's own
   logged times.

Nothing here reads a message body: the body is not in the material.
"""

from __future__ import annotations

import hmac
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keys.directory import CertificateStatus, Directory
from keys.identity import AgencyIdentity
from keys.receipts import DeliveryReceipt, verify_receipt
from keys.sealing import basis_verdict, header_digest, open_justification, verify_seals
from keys.transparency import SignedTreeHead, TreeHead, parse_leaf, verify_tree_head
from schemas.deadlines import (
    DeadlinePolicy,
    WorkingCalendar,
    thread_deadlines,
    working_days_between,
)
from schemas.encoding import b64decode
from schemas.envelope import EnvelopeHeader
from schemas.lawful_basis import BasisTag, Justification
from schemas.lifecycle import (
    OPENINGS,
    ActorRole,
    ThreadEvent,
    ThreadState,
    advance,
    event_for_kind,
    is_open,
    open_thread,
)
from schemas.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    nodes_completed_by,
    tree_root,
    verify_consistency,
)
from schemas.policy import POLICY_VERSION
from schemas.problems import ExchangeError, InvalidTransition, LogConsistencyError, NotRecipient
from schemas.timefmt import format_time, parse_time

__all__ = [
    "REPORT_TYPE",
    "AuditMaterial",
    "HeaderRow",
    "Progress",
    "verify_material",
]

REPORT_TYPE = "safeguarding-exchange/audit-report/v1"
#: How far a header's claimed creation time may be after the relay's acceptance time.
CLOCK_SKEW = timedelta(seconds=300)
#: Condition fields of a basis tag, in the order the report lists them.
CONDITION_FIELDS = ("art9_condition", "sch1_condition", "art10_sch1_condition", "annex1_condition")

#: ``progress(stage, done, total)``: called as verification goes (for a progress bar).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class HeaderRow:
    """The relay's stored row for an accepted header (from ``/v1/audit/headers``)."""

    message_id: str
    sequence: int
    header: bytes
    signature: bytes
    seals: bytes | None
    stored_at: str | None = None


@dataclass
class AuditMaterial:
    """Everything an audit of one period checks (downloaded, or read from a bundle)."""

    directory: Directory
    heads: list[SignedTreeHead]
    consistency: dict[tuple[int, int], tuple[bytes, ...]]
    start: int
    end: int
    frontier: list[tuple[int, int, bytes]]
    leaves: list[tuple[int, bytes]]
    headers: dict[str, HeaderRow]
    period_from: datetime | None = None
    period_to: datetime | None = None
    known_head: SignedTreeHead | None = None
    """The newest head the auditor kept from an earlier run (must be extended)."""
    log_available: bool = True
    """False when the relay signs no tree heads: ``leaves`` are then built from its header
    rows, so signatures, bases and justifications are checked but not the log."""


@dataclass
class _Thread:
    thread_id: str
    thread_type: str
    kind: str
    referrer: tuple[str, str]
    recipient: tuple[str, str]
    state: str
    opened_at: datetime
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    feedback_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass
class _Run:
    """The report under construction."""

    material: AuditMaterial
    identity: AgencyIdentity | None
    now: datetime
    policy: DeadlinePolicy
    calendar: WorkingCalendar
    show_justifications: bool
    progress: Progress
    workers: int = 1
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    heads: list[TreeHead] = field(default_factory=list)
    leaves: dict[int, dict[str, Any]] = field(default_factory=dict)
    logged_headers: dict[str, bytes] = field(default_factory=dict)
    org_types: dict[str, str] = field(default_factory=dict)

    def fail(self, code: str, message: str, **where: Any) -> None:
        self.failures.append({"code": code, "message": message, **where})

    def warn(self, code: str, message: str, **where: Any) -> None:
        self.warnings.append({"code": code, "message": message, **where})


def _noop(stage: str, done: int, total: int) -> None:
    return None


def verify_material(
    material: AuditMaterial,
    *,
    identity: AgencyIdentity | None,
    now: datetime,
    policy: DeadlinePolicy | None = None,
    calendar: WorkingCalendar | None = None,
    show_justifications: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Verify ``material`` and return the report (``report["ok"]`` is False on any failure).

    :param identity: the auditor's keys, to open the justifications sealed to it (None:
        check the seals' structure and digests only).
    :param now: when the audit runs (deadlines are judged at ``period_to`` or ``now``).
    :param workers: processes to verify headers in (used from
        :data:`PARALLEL_THRESHOLD` headers up; the report is the same either way).
    """
    judged_at = min(now, material.period_to) if material.period_to else now
    years = range(judged_at.year - 6, judged_at.year + 3)
    run = _Run(
        material=material,
        identity=identity,
        now=judged_at,
        policy=policy or DeadlinePolicy(),
        calendar=calendar or WorkingCalendar.england_and_wales(years),
        show_justifications=show_justifications,
        progress=progress or _noop,
        workers=max(1, workers),
    )
    log_summary = _verify_heads(run)
    log_summary.update(_verify_tree(run))
    log_summary["available"] = material.log_available
    if not material.log_available:
        run.warn(
            "log-unavailable",
            "the relay signs no tree heads (no certified log key): the headers were checked "
            "but the log's completeness and order could not be verified",
        )
    messages = _verify_headers(run)
    rejections = _verify_other_leaves(run)
    timeliness = _timeliness(run)
    by_type = Counter(str(v.get("type")) for v in run.leaves.values())
    log_summary["leaves"] = len(run.material.leaves)
    log_summary["by_type"] = dict(sorted(by_type.items()))
    return {
        "type": REPORT_TYPE,
        "generated_at": format_time(now),
        "policy_version": POLICY_VERSION,
        "period": {
            "from": None if material.period_from is None else format_time(material.period_from),
            "to": None if material.period_to is None else format_time(material.period_to),
            "first_leaf": material.start,
            "end_leaf": material.end,
            "judged_at": format_time(judged_at),
        },
        "log": log_summary,
        "messages": messages,
        "basis": _basis_mix(run),
        "rejections": rejections,
        "timeliness": timeliness,
        "entries": run.entries,
        "failures": run.failures,
        "warnings": run.warnings,
        "summary": {
            "failures": len(run.failures),
            "warnings": len(run.warnings),
            "failures_by_code": dict(sorted(Counter(f["code"] for f in run.failures).items())),
        },
        "ok": not run.failures,
        "failed": sum(1 for e in run.entries if e["problems"]),
        "content_read": False,
    }


# -- 1. tree heads ------------------------------------------------------------------------------


def _verify_heads(run: _Run) -> dict[str, Any]:
    material = run.material
    verified: dict[int, TreeHead] = {}
    logs: set[str] = set()
    for index, signed in enumerate(material.heads):
        run.progress("tree heads", index + 1, len(material.heads))
        try:
            head = verify_tree_head(signed, material.directory)
        except ExchangeError as exc:
            run.fail("tree-head-signature", f"a tree head does not verify ({exc.code})")
            continue
        logs.add(head.log)
        previous = verified.get(head.size)
        if previous is not None and previous.root != head.root:
            run.fail(
                "log-fork",
                f"two signed tree heads of size {head.size} have different roots",
                tree_size=head.size,
            )
        verified.setdefault(head.size, head)
    if len(logs) > 1:
        run.fail("tree-head-log", f"tree heads from several logs: {sorted(logs)}")
    run.heads = [verified[size] for size in sorted(verified)]
    checked = 0
    for older, newer in itertools.pairwise(run.heads):
        if newer.timestamp < older.timestamp:
            run.fail(
                "tree-head-order",
                f"the head of size {newer.size} is dated before the head of size {older.size}",
                tree_size=newer.size,
            )
        proof = material.consistency.get((older.size, newer.size))
        if proof is None:
            continue
        checked += 1
        try:
            verify_consistency(older.size, newer.size, older.root, newer.root, proof)
        except LogConsistencyError as exc:
            run.fail(
                "tree-head-consistency",
                f"the relay cannot prove the head of size {newer.size} extends the head of "
                f"size {older.size}: {exc}",
                tree_size=newer.size,
            )
    known = material.known_head
    if known is not None and run.heads:
        _check_known_head(run, known)
    latest = run.heads[-1] if run.heads else None
    return {
        "log_id": next(iter(logs), None),
        "tree_heads": len(material.heads),
        "tree_heads_verified": len(run.heads),
        "consistency_proofs_checked": checked,
        "latest_head": None
        if latest is None
        else {
            "size": latest.size,
            "timestamp": format_time(latest.timestamp),
            "root": latest.root.hex(),
        },
    }


def _check_known_head(run: _Run, known: SignedTreeHead) -> None:
    try:
        kept = verify_tree_head(known, run.material.directory)
    except ExchangeError:
        return
    same = [h for h in run.heads if h.size == kept.size]
    if same and same[0].root != kept.root:
        run.fail(
            "log-fork",
            f"the relay now signs a different tree of size {kept.size} than the one this "
            "auditor saw before: it forked or rewrote history",
            tree_size=kept.size,
        )


# -- 2. the tree ------------------------------------------------------------------------------


def _verify_tree(run: _Run) -> dict[str, Any]:
    material = run.material
    nodes: dict[tuple[int, int], bytes] = {(lvl, idx): h for lvl, idx, h in material.frontier}

    def lookup(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    heads_by_size = {h.size: h for h in run.heads}
    anchor = heads_by_size.get(material.start)
    if material.start > 0:
        try:
            root = tree_root(material.start, lookup)
        except KeyError:
            root = EMPTY_ROOT
            run.fail("log-frontier", "the relay's frontier does not cover the start of the period")
        if anchor is not None and root != anchor.root:
            run.fail(
                "log-frontier",
                f"the relay's frontier does not hash to the signed head of size {material.start}",
                tree_size=material.start,
            )
    expected = material.start
    last_sequence = -1
    broken = False
    total = len(material.leaves)
    roots_checked = 0
    for position, (index, leaf) in enumerate(material.leaves):
        if position % 256 == 0 or position + 1 == total:
            run.progress("log leaves", position + 1, total)
        if index < expected:
            run.fail("log-leaf-duplicate", f"leaf {index} appears twice", leaf_index=index)
            broken = True
            continue
        if index > expected:
            run.fail(
                "log-leaf-missing",
                f"leaves {expected}..{index - 1} are missing from the log (deleted?)",
                leaf_index=expected,
            )
            broken = True
            expected = index
        try:
            value = parse_leaf(leaf)
        except ExchangeError:
            run.fail(
                "log-leaf-malformed", f"leaf {index} is not a canonical log leaf", leaf_index=index
            )
            value = {"type": "?"}
        sequence = value.get("sequence")
        if isinstance(sequence, int):
            if sequence <= last_sequence:
                run.fail(
                    "log-leaf-out-of-order",
                    f"leaf {index} (event {sequence}) comes after event {last_sequence}: "
                    "the log was reordered",
                    leaf_index=index,
                )
            last_sequence = max(last_sequence, sequence)
        run.leaves[index] = value
        if not broken:
            for level, node_index, hashed in nodes_completed_by(index, leaf_hash(leaf), lookup):
                nodes[(level, node_index)] = hashed
        expected = index + 1
        head = heads_by_size.get(expected)
        if head is not None and not broken:
            roots_checked += 1
            if tree_root(expected, lookup) != head.root:
                run.fail(
                    "log-root-mismatch",
                    f"leaves up to {expected} do not hash to the signed tree head of size "
                    f"{expected}: the log was altered after it was signed",
                    tree_size=expected,
                )
    if expected < material.end:
        run.fail(
            "log-leaf-missing",
            f"leaves {expected}..{material.end - 1} are missing from the log",
            leaf_index=expected,
        )
        broken = True
    if broken:
        for head in run.heads:
            if material.start < head.size <= material.end:
                run.fail(
                    "log-root-mismatch",
                    f"the leaves served do not reproduce the signed tree head of size {head.size}",
                    tree_size=head.size,
                )
                break
    return {"roots_checked": roots_checked, "root_verified": not broken and roots_checked > 0}


# -- 3. headers --------------------------------------------------------------------------------


def _codes(basis: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in basis.items() if k != "justification"}


def _verify_headers(run: _Run) -> dict[str, Any]:
    material = run.material
    envelope_leaves = [
        (index, value) for index, value in sorted(run.leaves.items()) if value["type"] == "envelope"
    ]
    kinds: Counter[str] = Counter()
    signatures_ok = justifications = 0
    if run.workers > 1 and len(envelope_leaves) >= PARALLEL_THRESHOLD:
        _verify_in_parallel(run, envelope_leaves)
    else:
        for position, (index, value) in enumerate(envelope_leaves):
            if position % 64 == 0 or position + 1 == len(envelope_leaves):
                run.progress("headers", position + 1, len(envelope_leaves))
            run.entries.append(_verify_one(run, index, value))
    for entry in run.entries:
        kinds[entry["kind"]] += 1
        signatures_ok += int(entry["signature_ok"])
        justifications += int(entry["justification_read"])
    logged = set(run.logged_headers)
    sequences = [v["sequence"] for v in run.leaves.values() if isinstance(v.get("sequence"), int)]
    for message_id, row in sorted(material.headers.items(), key=lambda kv: kv[1].sequence):
        if message_id in logged:
            continue
        if not sequences or not min(sequences) <= row.sequence <= max(sequences):
            continue  # accepted outside the leaves audited
        run.fail(
            "header-not-logged",
            "the relay holds an accepted header that is not in the log",
            message_id=message_id,
        )
    return {
        "checked": len(envelope_leaves),
        "signatures_ok": signatures_ok,
        "justifications_read": justifications,
        "by_kind": dict(sorted(kinds.items())),
    }


#: From this many headers up, ``workers > 1`` verifies them in that many processes.
PARALLEL_THRESHOLD = 4000
_CHUNK = 1000
_WORKER: dict[str, Any] = {}

_Chunk = tuple[list[tuple[int, dict[str, Any]]], dict[str, HeaderRow]]
_ChunkResult = tuple[
    list[dict[str, Any]],
    list[dict[str, Any]],
    list[dict[str, Any]],
    dict[str, bytes],
    dict[str, str],
]


def _init_worker(
    directory: dict[str, Any], root: bytes, identity: bytes | None, show: bool, now: datetime
) -> None:
    """Rebuild the verification context in a worker process (keys never leave this machine)."""
    _WORKER.update(
        directory=Directory.from_json(directory, root_public_key=root),
        identity=None if identity is None else AgencyIdentity.from_private_bytes(identity),
        show=show,
        now=now,
        calendar=WorkingCalendar.england_and_wales(range(now.year - 1, now.year + 1)),
    )


def _verify_chunk(job: _Chunk) -> _ChunkResult:
    """Verify one chunk of envelope leaves in a worker; return what :class:`_Run` collected."""
    leaves, rows = job
    material = AuditMaterial(
        directory=_WORKER["directory"],
        heads=[],
        consistency={},
        start=0,
        end=0,
        frontier=[],
        leaves=[],
        headers=rows,
    )
    run = _Run(
        material=material,
        identity=_WORKER["identity"],
        now=_WORKER["now"],
        policy=DeadlinePolicy(),
        calendar=_WORKER["calendar"],
        show_justifications=_WORKER["show"],
        progress=_noop,
    )
    entries = [_verify_one(run, index, value) for index, value in leaves]
    return entries, run.failures, run.warnings, run.logged_headers, run.org_types


def _chunk_rows(material: AuditMaterial, leaves: list[tuple[int, dict[str, Any]]]) -> _Chunk:
    ids = set()
    for _, value in leaves:
        try:
            header = json.loads(b64decode(str(value.get("header")), field="header"))
        except (ValueError, ExchangeError):
            continue
        if isinstance(header, dict) and isinstance(header.get("id"), str):
            ids.add(header["id"])
    return leaves, {i: material.headers[i] for i in ids if i in material.headers}


def _verify_in_parallel(run: _Run, envelope_leaves: list[tuple[int, dict[str, Any]]]) -> None:
    """Verify headers in ``run.workers`` processes; merge in log order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    material = run.material
    identity = None if run.identity is None else run.identity.to_private_bytes()
    chunks = [
        _chunk_rows(material, envelope_leaves[start : start + _CHUNK])
        for start in range(0, len(envelope_leaves), _CHUNK)
    ]
    done = 0
    with ProcessPoolExecutor(
        max_workers=run.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(
            material.directory.to_json(),
            material.directory.root_public_key,
            identity,
            run.show_justifications,
            run.now,
        ),
    ) as pool:
        for (leaves, _), result in zip(chunks, pool.map(_verify_chunk, chunks), strict=True):
            entries, failures, warnings, logged, org_types = result
            run.entries.extend(entries)
            run.failures.extend(failures)
            run.warnings.extend(warnings)
            run.logged_headers.update(logged)
            run.org_types.update(org_types)
            done += len(leaves)
            run.progress("headers", done, len(envelope_leaves))


def _verify_one(run: _Run, index: int, value: Mapping[str, Any]) -> dict[str, Any]:
    material = run.material
    directory = material.directory
    entry: dict[str, Any] = {
        "leaf_index": index,
        "sequence": value.get("sequence"),
        "message_id": None,
        "kind": "?",
        "sender": "?",
        "sender_org_type": None,
        "recipients": [],
        "accepted_at": value.get("at"),
        "basis_codes": {},
        "policy_version": None,
        "signature_ok": False,
        "codes_verdict": "not checked",
        "full_verdict": None,
        "justification_read": False,
        "findings": [],
        "problems": [],
    }

    def problem(code: str, message: str) -> None:
        entry["problems"].append(code)
        run.fail(code, message, leaf_index=index, message_id=entry["message_id"])

    try:
        header_bytes = b64decode(str(value.get("header")), field="header")
        signature = b64decode(str(value.get("signature")), field="signature")
        accepted_at = parse_time(value.get("at"), field="at")
        header, sender = _header_and_sender(header_bytes, signature, directory)
    except ExchangeError as exc:
        problem("header-signature", f"the header in leaf {index} does not verify ({exc.code})")
        return entry
    entry.update(
        message_id=header.id,
        kind=header.kind,
        sender=header.sender.agency,
        sender_org_type=str(sender.org_type),
        recipients=list(header.recipient_agencies),
        basis_codes=_codes(header.basis),
        policy_version=header.policy_version,
        signature_ok=True,
        thread=header.thread,
    )
    run.org_types[header.sender.agency] = str(sender.org_type)
    run.logged_headers[header.id] = header_bytes
    if header.created_at > accepted_at + CLOCK_SKEW:
        problem("header-from-future", "the header claims a creation time after the relay got it")
    if header.sender.cert and (
        directory.status(header.sender.cert, at=accepted_at) is not CertificateStatus.VALID
    ):
        problem(
            "sender-certificate-invalid",
            "the sender's certificate was not valid when the relay accepted the message",
        )
    if header.policy_version != POLICY_VERSION:
        run.warn(
            "policy-version",
            f"recorded under policy {header.policy_version}; re-checked with {POLICY_VERSION}",
            message_id=header.id,
        )

    row = material.headers.get(header.id)
    seals: bytes | None = None
    if row is None:
        problem("header-missing", "the relay no longer shows this logged header")
    else:
        if not hmac.compare_digest(row.header, header_bytes) or not hmac.compare_digest(
            row.signature, signature
        ):
            problem(
                "header-altered",
                "the relay's stored header differs from the one it logged (altered in storage)",
            )
        seals = row.seals

    try:
        recipients = [directory.agency(a, at=header.created_at) for a in header.recipient_agencies]
    except ExchangeError as exc:
        problem("recipient-certificate", f"a recipient had no valid certificate ({exc.code})")
        return entry
    codes = basis_verdict(
        kind=header.kind,
        sent_at=header.created_at,
        sender=sender,
        recipients=recipients,
        basis=header.basis,
        justification_available=False,
    )
    entry["codes_verdict"] = codes.decision
    findings = [f.to_json_dict() for f in codes.findings]
    if codes.decision == "reject":
        rules = sorted({f.rule for f in codes.findings if f.level.startswith("REJECT")})
        problem("basis-rejected", f"the basis codes fail the policy ({', '.join(rules)})")

    justification = _justification(run, header_bytes, signature, seals, header, problem)
    if justification is not None:
        entry["justification_read"] = True
        entry["justification_fields"] = sorted(justification.to_dict())
        if run.show_justifications:
            entry["justification"] = justification.to_dict()
        full = basis_verdict(
            kind=header.kind,
            sent_at=header.created_at,
            sender=sender,
            recipients=recipients,
            basis=BasisTag.from_parts(header.basis, justification).model_dump(
                mode="json", exclude_none=True
            ),
            justification_available=True,
        )
        entry["full_verdict"] = full.decision
        seen = {(f["rule"], f["message"]) for f in findings}
        findings.extend(f.to_json_dict() for f in full.findings if (f.rule, f.message) not in seen)
        if full.decision == "reject" and codes.decision != "reject":
            rules = sorted({f.rule for f in full.findings if f.level.startswith("REJECT")})
            problem(
                "basis-rejected",
                f"the basis with its justification fails the policy ({', '.join(rules)})",
            )
    entry["findings"] = findings
    return entry


def _header_and_sender(header_bytes: bytes, signature: bytes, directory: Directory) -> Any:
    from keys.sealing import verify_signed_header

    created = _claimed_time(header_bytes)
    return verify_signed_header(header_bytes, signature, directory, at=created)


def _claimed_time(header_bytes: bytes) -> datetime:
    try:
        value = json.loads(header_bytes)
        return parse_time(value["created_at"], field="created_at")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        from schemas.problems import InvalidEnvelope

        raise InvalidEnvelope("the header has no readable creation time") from None


def _justification(
    run: _Run,
    header_bytes: bytes,
    signature: bytes,
    seals: bytes | None,
    header: EnvelopeHeader,
    problem: Callable[[str, str], None],
) -> Justification | None:
    """Open the justification sealed to the auditor; name what is wrong with it."""
    if not seals:
        problem("justification-missing", "no sealed justification is available for this message")
        return None
    directory = run.material.directory
    identity = run.identity
    try:
        verify_seals(header, seals)
    except ExchangeError as exc:
        problem("justification-invalid", f"the seals do not match the header ({exc.code})")
        return None
    if identity is None:
        return None
    try:
        _, justification = open_justification(
            header_bytes, signature, seals, identity, directory, at=header.created_at
        )
    except NotRecipient:
        run.warn(
            "justification-not-readable",
            "the justification is sealed to another auditor key; only its digest was checked",
            message_id=header.id,
        )
        return None
    except ExchangeError as exc:
        problem(
            "justification-invalid",
            f"the sealed justification does not open or match the header ({exc.code})",
        )
        return None
    if not any(justification.text(name) for name in justification.to_dict()):
        problem("justification-empty", "the sealed justification is empty")
    return justification


# -- 4. receipts, expiries, refusals --------------------------------------------------------------


def _verify_other_leaves(run: _Run) -> dict[str, Any]:
    directory = run.material.directory
    by_rule: Counter[str] = Counter()
    by_org: Counter[str] = Counter()
    total = 0
    items = sorted(run.leaves.items())
    for position, (index, value) in enumerate(items):
        if position % 256 == 0 or position + 1 == len(items):
            run.progress("receipts and refusals", position + 1, len(items))
        kind = value.get("type")
        if kind == "receipt":
            _verify_receipt_leaf(run, index, value)
        elif kind == "rejection":
            total += 1
            rules = value.get("rules")
            for rule in rules if isinstance(rules, list) else []:
                by_rule[str(rule)] += 1
            try:
                header_bytes = b64decode(str(value.get("header")), field="header")
                signature = b64decode(str(value.get("signature")), field="signature")
                header, sender = _header_and_sender(header_bytes, signature, directory)
            except ExchangeError as exc:
                run.fail(
                    "rejection-signature",
                    f"a logged refusal's header does not verify ({exc.code})",
                    leaf_index=index,
                )
                continue
            by_org[str(sender.org_type)] += 1
            try:
                recipients = [
                    directory.agency(a, at=header.created_at) for a in header.recipient_agencies
                ]
            except ExchangeError:
                continue
            verdict = basis_verdict(
                kind=header.kind,
                sent_at=header.created_at,
                sender=sender,
                recipients=recipients,
                basis=header.basis,
                justification_available=False,
            )
            if verdict.decision != "reject":
                run.warn(
                    "rejection-disputed",
                    "the relay refused a basis the current policy accepts",
                    message_id=header.id,
                )
    return {
        "total": total,
        "by_rule": dict(sorted(by_rule.items())),
        "by_sender_org_type": dict(sorted(by_org.items())),
    }


def _verify_receipt_leaf(run: _Run, index: int, value: Mapping[str, Any]) -> None:
    message_id = str(value.get("message_id"))
    try:
        receipt = DeliveryReceipt.from_json(value.get("receipt"))
        received_at = parse_time(value.get("at"), field="at")
        body = verify_receipt(receipt, run.material.directory, at=received_at)
    except ExchangeError as exc:
        run.fail(
            "receipt-invalid",
            f"a logged delivery receipt does not verify ({exc.code})",
            leaf_index=index,
            message_id=message_id,
        )
        return
    header = run.logged_headers.get(message_id)
    if body.message_id != message_id or body.recipient != value.get("recipient"):
        run.fail(
            "receipt-invalid",
            "a logged receipt names another message or recipient",
            leaf_index=index,
            message_id=message_id,
        )
    elif header is not None and not hmac.compare_digest(body.header_digest, header_digest(header)):
        run.fail(
            "receipt-invalid",
            "a logged receipt acknowledges another header than the one logged",
            leaf_index=index,
            message_id=message_id,
        )


# -- 5. timeliness -------------------------------------------------------------------------------


def _timeliness(run: _Run) -> dict[str, Any]:
    threads: dict[str, _Thread] = {}
    run.progress("timeliness", 1, 1)
    for _, value in sorted(run.leaves.items()):
        kind = value.get("type")
        try:
            at = parse_time(value.get("at"), field="at")
        except ExchangeError:
            continue
        if kind == "envelope":
            message_id = _leaf_message(run, value)
            if message_id is None:
                continue
            _step_message(threads, run.logged_headers[message_id], at)
        elif kind in {"receipt", "expiry"}:
            thread = threads.get(str(value.get("message_id")))
            if thread is None or value.get("recipient") != thread.recipient[0]:
                continue
            event = ThreadEvent.DELIVERY_RECEIPT if kind == "receipt" else ThreadEvent.EXPIRE
            role = ActorRole.RECIPIENT if kind == "receipt" else ActorRole.RELAY
            try:
                thread.state = advance(
                    thread.state, event, role, thread_type=thread.thread_type
                ).value
            except InvalidTransition:
                continue
            if kind == "receipt" and thread.delivered_at is None:
                thread.delivered_at = at
    return _timeliness_report(run, threads)


def _leaf_message(run: _Run, value: Mapping[str, Any]) -> str | None:
    try:
        header = json.loads(b64decode(str(value.get("header")), field="header"))
        message_id = header.get("id") if isinstance(header, dict) else None
    except (ValueError, ExchangeError):
        return None
    return message_id if message_id in run.logged_headers else None


def _step_message(threads: dict[str, _Thread], header_bytes: bytes, at: datetime) -> None:
    from schemas.envelope import parse_header

    header = parse_header(header_bytes)
    if header.thread == header.id:
        try:
            event = event_for_kind(header.kind)
        except InvalidTransition:
            return
        if event not in OPENINGS:
            return
        thread_type, state = open_thread(event)
        first = header.recipients[0]
        threads[header.id] = _Thread(
            thread_id=header.id,
            thread_type=thread_type.value,
            kind=header.kind,
            referrer=(header.sender.agency, header.sender.mailbox),
            recipient=(first.agency, first.mailbox),
            state=state.value,
            opened_at=at,
        )
        return
    thread = threads.get(header.thread)
    if thread is None:
        return
    if header.sender.agency == thread.referrer[0]:
        role = ActorRole.REFERRER
    elif header.sender.agency == thread.recipient[0]:
        role = ActorRole.RECIPIENT
    else:
        return
    try:
        event = event_for_kind(header.kind)
        state = advance(thread.state, event, role, thread_type=thread.thread_type)
    except InvalidTransition:
        return
    thread.state = state.value
    if event is ThreadEvent.ACKNOWLEDGEMENT and thread.acknowledged_at is None:
        thread.acknowledged_at = at
    if event is ThreadEvent.DECISION_FEEDBACK and thread.feedback_at is None:
        thread.feedback_at = at
    if state is ThreadState.CLOSED and thread.closed_at is None:
        thread.closed_at = at


def _wd(run: _Run, start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return working_days_between(start, end, run.calendar)


def _timeliness_report(run: _Run, threads: dict[str, _Thread]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    open_by_mailbox: Counter[str] = Counter()
    overdue_by_mailbox: Counter[str] = Counter()
    overdue_by_agency: Counter[str] = Counter()
    feedback_days: Counter[str] = Counter()
    ack_days: list[int] = []
    decision_days: list[int] = []
    referral_threads = 0
    for thread in sorted(threads.values(), key=lambda t: t.opened_at):
        deadlines = thread_deadlines(
            thread.state,
            thread.delivered_at,
            thread.acknowledged_at,
            None,
            thread.feedback_at,
            run.now,
            run.calendar,
            run.policy,
            thread_type=thread.thread_type,
        )
        mailbox = f"{thread.recipient[0]}/{thread.recipient[1]}"
        overdue = [d for d in deadlines if d.overdue]
        late = [d for d in deadlines if d.met_late]
        still_open = is_open(thread.state)
        if still_open:
            open_by_mailbox[mailbox] += 1
        if overdue:
            overdue_by_mailbox[mailbox] += 1
            overdue_by_agency[thread.recipient[0]] += 1
        for status in overdue:
            run.fail(
                "deadline-overdue",
                f"{status.code} was due {format_time(status.due)} and is not met "
                f"({thread.recipient[0]} owes the {thread.kind.lower().replace('_', ' ')} "
                f"thread {thread.thread_id[:12]})",
                thread=thread.thread_id,
                deadline=status.code,
                mailbox=mailbox,
            )
        for status in late:
            run.fail(
                "deadline-missed",
                f"{status.code} was met late ({format_time(status.met_at or status.due)}, due "
                f"{format_time(status.due)})",
                thread=thread.thread_id,
                deadline=status.code,
                mailbox=mailbox,
            )
        received = thread.delivered_at
        ack = _wd(run, received, thread.acknowledged_at or thread.feedback_at)
        decision = _wd(run, received, thread.feedback_at)
        feedback = _wd(run, thread.opened_at, thread.feedback_at)
        if thread.thread_type == "REFERRAL":
            referral_threads += 1
            if ack is not None:
                ack_days.append(ack)
            if decision is not None:
                decision_days.append(decision)
            if feedback is not None:
                feedback_days[str(min(feedback, 5)) if feedback < 5 else "5+"] += 1
            elif still_open:
                feedback_days["none yet"] += 1
        rows.append(
            {
                "thread": thread.thread_id,
                "type": thread.thread_type,
                "opened_by": thread.kind,
                "referrer": f"{thread.referrer[0]}/{thread.referrer[1]}",
                "mailbox": mailbox,
                "state": thread.state,
                "open": still_open,
                "opened_at": format_time(thread.opened_at),
                "delivered_at": _t(thread.delivered_at),
                "acknowledged_at": _t(thread.acknowledged_at),
                "feedback_at": _t(thread.feedback_at),
                "working_days": {
                    "acknowledgement": ack,
                    "decision": decision,
                    "feedback": feedback,
                },
                "overdue": [d.code for d in overdue],
                "met_late": [d.code for d in late],
                "deadlines": [d.to_dict() for d in deadlines],
            }
        )
    order = ["0", "1", "2", "3", "4", "5+", "none yet"]
    return {
        "threads": len(rows),
        "referral_threads": referral_threads,
        "open": sum(1 for r in rows if r["open"]),
        "overdue": sum(1 for r in rows if r["overdue"]),
        "met_late": sum(1 for r in rows if r["met_late"]),
        "limits_working_days": {
            "acknowledgement": run.policy.ack_working_days,
            "decision": run.policy.decision_working_days,
            "feedback": run.policy.feedback_working_days,
        },
        "acknowledgement_working_days": ack_days,
        "decision_working_days": decision_days,
        "feedback_distribution": {k: feedback_days[k] for k in order if feedback_days[k]},
        "open_by_mailbox": dict(sorted(open_by_mailbox.items())),
        "overdue_by_mailbox": dict(sorted(overdue_by_mailbox.items())),
        "overdue_by_agency": dict(sorted(overdue_by_agency.items())),
        "thread_list": rows,
    }


def _t(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


# -- basis mix ---------------------------------------------------------------------------------


def _basis_mix(run: _Run) -> dict[str, Any]:
    art6: dict[str, Counter[str]] = defaultdict(Counter)
    conditions: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in run.entries:
        if not entry["signature_ok"]:
            continue
        org = str(entry["sender_org_type"])
        basis = entry["basis_codes"]
        for code in basis.get("art6") or []:
            art6[org][str(code)] += 1
        for name in CONDITION_FIELDS:
            value = basis.get(name)
            for code in value if isinstance(value, list) else [value] if value else []:
                conditions[org][str(code)] += 1
    return {
        "art6_by_sender_org_type": {
            org: dict(sorted(c.items())) for org, c in sorted(art6.items())
        },
        "conditions_by_sender_org_type": {
            org: dict(sorted(c.items())) for org, c in sorted(conditions.items())
        },
    }
