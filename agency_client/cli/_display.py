"""How received messages and notices are shown."""

from __future__ import annotations

from typing import Any

from agency_client.client import ReceiveResult
from agency_client.protocol import NoticeItem

__all__ = ["result_json", "result_line"]


def result_line(result: ReceiveResult) -> str:
    """One line about one inbox item (ids, kind, sender, basis re-check; no content)."""
    item = result.item
    if isinstance(item, NoticeItem):
        about = f" on thread {item.thread}" if item.thread else ""
        return f"NOTICE {item.notice}{about}"
    if result.error is not None:
        return (
            f"REFUSED {item.kind} {item.message_id} from {item.sender}: "
            f"{result.error.diagnostics()}"
        )
    message = result.message
    assert message is not None
    verdict = message.content.get("verdict", {}).get("decision", "?")
    return (
        f"{message.kind} {message.message_id} from {message.counterpart} "
        f"(thread {message.thread_id}); signature verified; basis re-check: {verdict}; "
        f"receipt {'sent' if message.status == 'receipted' else 'pending'}"
    )


def result_json(result: ReceiveResult) -> dict[str, Any]:
    """One inbox item for ``--json`` output (no content: use ``agency show`` for that)."""
    item = result.item
    if isinstance(item, NoticeItem):
        return {
            "type": "notice",
            "cursor": item.cursor,
            "notice": item.notice,
            "thread": item.thread,
            "message_id": item.message_id,
            "detail": item.detail,
        }
    data: dict[str, Any] = {
        "type": "envelope",
        "cursor": item.cursor,
        "message_id": item.message_id,
        "kind": item.kind,
        "thread": item.thread,
        "sender": item.sender,
    }
    if result.error is not None:
        data["error"] = result.error.to_problem()
    elif result.message is not None:
        data["verdict"] = result.message.content.get("verdict")
        data["receipted"] = result.message.status == "receipted"
    return data
