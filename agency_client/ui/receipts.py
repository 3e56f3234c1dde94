"""Receipt status of the messages this agency sent on one thread, checked for the page.

For each sent message: did the relay accept it (its submit receipt names our header
digest), and which recipients signed a delivery receipt for it (each signature
verified against the partnership directory, and bound to the same header digest).
The same checks as ``agency receipts``, limited to the messages on the page.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from agency_client import protocol
from agency_client.client import AgencyClient
from keys.receipts import DeliveryReceipt, verify_receipt
from keys.sealing import header_digest
from schemas.encoding import b64decode
from schemas.problems import ExchangeError

__all__ = ["ReceiptStatus", "receipt_status"]


@dataclass(frozen=True, slots=True)
class ReceiptStatus:
    """What the receipts say about one sent message."""

    accepted: bool
    """The relay's submit receipt is stored and matches the header we signed."""
    sequence: int | None
    """The relay's log entry, when the receipt gives one."""
    queued: bool
    """Still waiting in the outbox (the relay could not be reached)."""
    delivered_to: tuple[str, ...]
    """Recipients whose signed delivery receipt verified."""
    problem: str | None = None


async def receipt_status(client: AgencyClient, message_ids: list[str]) -> dict[str, ReceiptStatus]:
    """Check the receipts of the sent messages ``message_ids`` (unknown ids are skipped)."""
    wanted = set(message_ids)
    if not wanted:
        return {}
    entries = [e for e in await client.store.outbox(pending_only=False) if e.message_id in wanted]
    directory = None
    result: dict[str, ReceiptStatus] = {}
    for entry in entries:
        if entry.receipt is None:
            result[entry.message_id] = ReceiptStatus(
                accepted=False,
                sequence=None,
                queued=not entry.sent,
                delivered_to=(),
                problem="refused by the relay" if entry.sent else None,
            )
            continue
        sequence = entry.receipt.get("sequence")
        accepted = False
        with contextlib.suppress(ExchangeError, KeyError, TypeError, ValueError):
            stored = await client.store.message(entry.message_id)
            if stored is not None:
                digest = header_digest(b64decode(str(stored.content.get("header", ""))))
                claimed = entry.receipt.get("header_digest")
                accepted = claimed is not None and b64decode(str(claimed)) == digest
                delivered: list[str] = []
                status = await client.transport.call(
                    protocol.get_status(entry.message_id), protocol.parse_status
                )
                if directory is None:
                    directory = await client.directory()
                for recipient in status.recipients:
                    raw = recipient.get("receipt")
                    if raw is None:
                        continue
                    try:
                        body = verify_receipt(
                            DeliveryReceipt.from_json(raw), directory, at=client.now()
                        )
                    except ExchangeError:
                        continue
                    if body.header_digest == digest and body.message_id == entry.message_id:
                        delivered.append(body.recipient)
                result[entry.message_id] = ReceiptStatus(
                    accepted=accepted,
                    sequence=sequence if isinstance(sequence, int) else None,
                    queued=False,
                    delivered_to=tuple(delivered),
                )
                continue
        result[entry.message_id] = ReceiptStatus(
            accepted=accepted,
            sequence=sequence if isinstance(sequence, int) else None,
            queued=False,
            delivered_to=(),
            problem="delivery status unavailable",
        )
    return result
