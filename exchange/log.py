"""The relay's transparency log: its key, its signed tree heads, and what callers may read.

Theory of operation
-------------------
Every accepted envelope header, delivery receipt, expiry, deletion and
basis rejection is a leaf (:mod:`exchange.log_leaves`) of an RFC 9162 Merkle tree,
appended in the same transaction as the event it records
(:mod:`exchange.log_store`). This module owns the parts that are not SQL:

**The log key.** The relay signs tree heads with an Ed25519 key certified by
the partnership root with role ``relay``. It comes from ``log_private_key``
(in memory, for tests) or the encrypted key file ``log_key_file``, which is
created on first start when it does not exist, next to a certificate request
for the partnership administrator (``exchange cert issue --request ...
--role relay``). Until a certificate for that key is published to the
directory, leaves are still appended but no head is signed: receipts carry the
leaf index only.

**Tree heads.** A submit batch signs one head over everything it committed, so
every submit receipt carries the leaf index, that head and the leaf's
inclusion proof. Other appends (receipts, sweeps) are covered by the next head:
one is signed on demand (``GET /v1/log/head``) and at least every
``tree_head_interval`` while the log grows. Heads are stored, one per size, so
the auditor can fetch every head of a period and check they are consistent.

**Who reads what.** Tree heads, consistency proofs and frontiers are hashes
only: every authenticated caller may read them. Leaves and inclusion proofs are
the auditor's, and each agency's for the entries that concern it (messages it
sent or receives, and its own refused submissions).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from exchange.auth import Caller, Clock
from exchange.directory_cache import DirectoryCache
from exchange.log_store import HeadRow, LeafRow
from exchange.settings import Settings
from exchange.store import Accepted, RelayStore
from keys.certificate_request import make_certificate_request
from keys.certificates import Certificate
from keys.directory import CertificateStatus
from keys.identity import AgencyIdentity
from keys.keystore import Limits, load_identity, save_identity
from keys.transparency import SignedTreeHead, sign_tree_head
from schemas.encoding import b64encode
from schemas.problems import ConfigurationError, Forbidden, InvalidRequest, NotFound
from schemas.timefmt import format_time

__all__ = [
    "MAX_PAGE",
    "TransparencyLog",
    "create_log_key",
    "head_view",
    "leaf_view",
    "log_key_request_path",
]

logger = logging.getLogger("exchange.log")

#: Largest page of leaves or heads.
MAX_PAGE = 1000


def log_key_request_path(key_file: Path) -> Path:
    """Where the certificate request for a log key file is written (next to it)."""
    return key_file.with_name(key_file.name + ".request.json")


def create_log_key(
    path: Path,
    passphrase: bytes,
    *,
    relay_id: str,
    at: datetime,
    limits: Limits = "moderate",
) -> tuple[AgencyIdentity, dict[str, Any]]:
    """Generate a relay log key, save it encrypted at ``path`` and return its certificate request.

    The request (role ``relay``, organisation type ``exchange_relay``) is also written next
    to the key file for the partnership administrator to certify.
    """
    if not passphrase:
        raise ConfigurationError("the log key needs a passphrase (EXCHANGE_LOG_KEY_PASSPHRASE)")
    identity = AgencyIdentity.generate()
    save_identity(
        path,
        identity,
        passphrase,
        metadata={"agency_id": relay_id, "purpose": "relay transparency log key"},
        limits=limits,
    )
    request = make_certificate_request(
        identity,
        agency_id=relay_id,
        name=f"{relay_id} transparency log",
        org_type="exchange_relay",
        public_authority=True,
        apd_in_place=True,
        mailboxes=[],
        role="relay",
        created_at=at,
    )
    request_path = log_key_request_path(path)
    request_path.write_text(json.dumps(request, indent=2, sort_keys=True) + "\n", "utf-8")
    return identity, request


def head_view(row: HeadRow) -> dict[str, Any]:
    """The wire form of a signed tree head (the signed bytes plus a readable copy)."""
    head = row.signed.head
    return {
        "log": head.log,
        "size": row.size,
        "root": b64encode(row.root),
        "timestamp": format_time(row.timestamp),
        "tree_head": row.signed.to_json(),
    }


def leaf_view(row: LeafRow) -> dict[str, Any]:
    """The wire form of a leaf: its index, type and exact bytes."""
    return {"index": row.index, "type": row.leaf_type, "leaf": b64encode(row.leaf)}


class TransparencyLog:
    """The relay's log key, tree heads and log reads (framework-free)."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: RelayStore,
        directory: DirectoryCache,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.directory = directory
        self.clock = clock
        self.identity: AgencyIdentity | None = None
        self._signing = asyncio.Lock()
        self._warned_uncertified = False
        self._task: asyncio.Task[None] | None = None

    # -- the key -------------------------------------------------------------------------------

    async def load_key(self) -> None:
        """Load (or on first start create) the log key, and let the store sign heads with it."""
        settings = self.settings
        if settings.log_private_key:
            self.identity = AgencyIdentity.from_private_bytes(settings.log_private_key)
        elif settings.log_key_file:
            path = Path(settings.log_key_file)
            if path.exists():
                self.identity = await asyncio.to_thread(
                    load_identity, path, settings.log_key_passphrase
                )
            else:
                identity, _ = await asyncio.to_thread(
                    create_log_key,
                    path,
                    settings.log_key_passphrase,
                    relay_id=settings.relay_id,
                    at=self.clock(),
                )
                self.identity = identity
                logger.warning(
                    "created the transparency log key; have it certified with "
                    "`exchange cert issue --request FILE` and publish the certificate",
                    extra={
                        "fields": {
                            "fingerprint": identity.public_keys.fingerprint,
                            "request": str(log_key_request_path(path)),
                        }
                    },
                )
        else:
            logger.warning(
                "no transparency log key (EXCHANGE_LOG_KEY_FILE): leaves are logged but "
                "tree heads are not signed"
            )
        self.store.head_signer = self.sign

    def certificate(self, at: datetime) -> Certificate | None:
        """The newest valid ``relay`` certificate for this log key in the directory, if any."""
        identity = self.identity
        if identity is None:
            return None
        directory = self.directory.directory
        best: Certificate | None = None
        for certificate in directory.certificates:
            body = certificate.body
            if body.role != "relay" or body.public_keys != identity.public_keys:
                continue
            if directory.status(certificate.id, at=at) is not CertificateStatus.VALID:
                continue
            if best is None or body.not_before > best.body.not_before:
                best = certificate
        return best

    def sign(self, size: int, root: bytes) -> SignedTreeHead | None:
        """Sign a tree head over ``(size, root)`` now; None without a certified key.

        Called inside write transactions (on the database's writer thread).
        """
        now = self.clock()
        certificate = self.certificate(now)
        if certificate is None or self.identity is None:
            if self.identity is not None and not self._warned_uncertified:
                self._warned_uncertified = True
                logger.warning(
                    "the transparency log key has no valid relay certificate in the directory: "
                    "tree heads are not signed",
                    extra={"fields": {"fingerprint": self.identity.public_keys.fingerprint}},
                )
            return None
        return sign_tree_head(self.identity, certificate, size=size, root=root, timestamp=now)

    # -- heads ---------------------------------------------------------------------------------

    async def ensure_head(self) -> HeadRow | None:
        """A signed head covering every committed leaf (signed now if needed), or the newest."""
        async with self._signing:
            if self.identity is not None:
                row = await self.store.sign_tree_head(self.sign)
                if row is not None:
                    return row
            return await self.store.latest_head()

    def start(self) -> None:
        """Start signing heads every ``tree_head_interval`` (nothing when it is 0)."""
        if self._task is None and self.settings.tree_head_interval.total_seconds() > 0:
            self._task = asyncio.get_running_loop().create_task(
                self.run_periodic(), name="tree-heads"
            )

    async def stop(self) -> None:
        """Stop the periodic signer."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_periodic(self) -> None:
        """Sign a head every ``tree_head_interval`` while the log grows (a background task)."""
        interval = self.settings.tree_head_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                if self.identity is not None:
                    latest = await self.store.latest_head()
                    size = await self.store.log_size()
                    if latest is None or latest.size < size:
                        await self.ensure_head()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep signing later; the failure is logged by type only
                logger.error(
                    "signing a tree head failed", extra={"fields": {"error": type(exc).__name__}}
                )

    async def head(self, caller: Caller) -> dict[str, Any]:
        """``GET /v1/log/head``: the newest signed head, signed on demand if the log grew."""
        row = await self.ensure_head()
        if row is None:
            raise NotFound("the log has no signed tree head yet")
        return head_view(row)

    async def heads(
        self,
        caller: Caller,
        *,
        since: int,
        limit: int | None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> dict[str, Any]:
        """``GET /v1/log/heads``: signed heads larger than ``since``, oldest first."""
        rows = await self.store.tree_heads(
            since_size=since,
            limit=self._limit(limit),
            not_before=not_before,
            not_after=not_after,
        )
        return {
            "items": [head_view(row) for row in rows],
            "next_since": rows[-1].size if rows else since,
        }

    # -- leaves and proofs -----------------------------------------------------------------------

    def _limit(self, limit: int | None) -> int:
        if limit is None:
            return self.settings.default_page_size
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        return limit

    async def _size(self) -> int:
        return await self.store.log_size()

    async def leaves(self, caller: Caller, *, start: int, limit: int | None) -> dict[str, Any]:
        """``GET /v1/log/leaves``: leaves from ``start`` (an agency sees only its own entries)."""
        size = await self._size()
        end = min(size, start + self._limit(limit))
        agency = None if caller.is_auditor else caller.agency_id
        rows = await self.store.log_leaves(start=start, end=end, agency=agency)
        return {
            "size": size,
            "start": start,
            "end": max(start, end),
            "items": [leaf_view(row) for row in rows],
        }

    def _check_size(self, size: int, committed: int) -> None:
        if size > committed:
            raise InvalidRequest(f"the log has only {committed} leaves")

    async def inclusion(self, caller: Caller, *, index: int, size: int) -> dict[str, Any]:
        """``GET /v1/log/proof/inclusion``: PATH(index, D[size])."""
        self._check_size(size, await self._size())
        if not 0 <= index < size:
            raise InvalidRequest("index must be below size")
        if not caller.is_auditor and not await self.store.leaf_concerns(index, caller.agency_id):
            raise Forbidden("an agency may prove only the log entries that concern it")
        proof = await self.store.inclusion(index, size)
        return {"index": index, "size": size, "proof": [b64encode(p) for p in proof]}

    async def consistency(self, caller: Caller, *, first: int, second: int) -> dict[str, Any]:
        """``GET /v1/log/proof/consistency``: PROOF(first, D[second])."""
        self._check_size(second, await self._size())
        if not 0 < first <= second:
            raise InvalidRequest("consistency needs 0 < first <= second")
        proof = await self.store.consistency(first, second)
        return {"first": first, "second": second, "proof": [b64encode(p) for p in proof]}

    async def frontier(self, caller: Caller, *, size: int) -> dict[str, Any]:
        """``GET /v1/log/frontier``: the perfect subtrees whose hashes give the root of ``size``."""
        self._check_size(size, await self._size())
        nodes = await self.store.frontier(size)
        return {
            "size": size,
            "nodes": [
                {"level": level, "index": index, "hash": b64encode(value)}
                for level, index, value in nodes
            ],
        }

    async def message_entries(self, message_id: str) -> dict[str, Any]:
        """The log entries about one message, each proved against the newest signed head.

        The caller's right to see the message is checked by the service.
        """
        head = await self.ensure_head()
        rows = await self.store.message_leaves(message_id)
        proved = [row for row in rows if head is not None and row.index < head.size]
        proofs = (
            await self.store.inclusions([row.index for row in proved], head.size)
            if head is not None and proved
            else []
        )
        by_index = {row.index: proof for row, proof in zip(proved, proofs, strict=True)}
        entries = []
        for row in rows:
            entry = leaf_view(row)
            proof = by_index.get(row.index)
            entry["inclusion_proof"] = None if proof is None else [b64encode(p) for p in proof]
            entries.append(entry)
        return {
            "message_id": message_id,
            "tree_head": None if head is None else head_view(head),
            "entries": entries,
        }

    # -- receipts --------------------------------------------------------------------------------

    def submit_receipt_log(self, accepted: Accepted) -> dict[str, Any] | None:
        """The ``log`` part of a fresh submit receipt: leaf index, batch head, inclusion proof."""
        if accepted.leaf_index is None:
            return None
        part: dict[str, Any] = {
            "leaf_index": accepted.leaf_index,
            "leaf": b64encode(accepted.leaf),
        }
        if accepted.tree_head is not None:
            part["tree_head"] = accepted.tree_head.to_json()
            part["inclusion_proof"] = [b64encode(p) for p in accepted.inclusion]
        return part

    async def receipt_log_for(self, message_id: str) -> dict[str, Any] | None:
        """The ``log`` part of a repeated submit receipt, proved against the newest head."""
        rows = [r for r in await self.store.message_leaves(message_id) if r.leaf_type == "envelope"]
        if not rows:
            return None
        index = rows[0].index
        part: dict[str, Any] = {"leaf_index": index, "leaf": b64encode(rows[0].leaf)}
        head = await self.ensure_head()
        if head is not None and index < head.size:
            proof = await self.store.inclusion(index, head.size)
            part["tree_head"] = head.signed.to_json()
            part["inclusion_proof"] = [b64encode(p) for p in proof]
        return part
