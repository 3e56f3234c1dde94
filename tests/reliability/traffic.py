"""Real sealed messages and signed-request clients for tests that run without a ``Scene``.

The reliability and security tests drive relays in other processes (or many relays), so
they seal with the partnership directly; everything else reuses the relay test helpers
(``tests/relay/conftest.py``: the README basis, the scenario bodies, ``AgencyHTTP``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from keys.sealing import new_message_id, seal
from keys.testing import Partnership
from schemas.envelope import SealedEnvelope
from schemas.lawful_basis import BasisTag
from tests.fixtures.scenarios import readdress
from tests.relay.conftest import BASIS, BODIES, AgencyHTTP

__all__ = ["client_for", "seal_envelope"]


def _now() -> datetime:
    return datetime.now(UTC)


def seal_envelope(
    p: Partnership,
    sender: str,
    recipients: Iterable[str],
    *,
    kind: str = "REFERRAL",
    body: Any = None,
    basis: Mapping[str, Any] | None = None,
    created_at: datetime | None = None,
    message_id: str | None = None,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    body_update: Mapping[str, Any] | None = None,
) -> SealedEnvelope:
    """Seal a real envelope of ``kind`` from member ``sender`` to members ``recipients``.

    Without ``body`` the scenario body for ``kind`` is re-addressed to these members;
    ``body_update`` then replaces top-level fields of it (a marker in the summary, say).
    """
    from_member = p[sender]
    keys = list(recipients)
    message_id = message_id or new_message_id()
    if body is None:
        routing: dict[str, Any] = {
            "message_id": message_id,
            "thread_id": thread_id or message_id,
            "sender_agency": from_member.agency_id,
            "recipient_agencies": tuple(p[r].agency_id for r in keys),
        }
        if in_reply_to is not None:
            routing["in_reply_to"] = in_reply_to
        body = readdress(BODIES[kind](), **routing)
        if body_update:
            body = body.model_copy(update=dict(body_update))
    return seal(
        identity=from_member.identity,
        sender=from_member.certificate,
        sender_mailbox=from_member.mailbox,
        recipients=[(p[r].certificate, p[r].mailbox) for r in keys],
        auditor=p["auditor"].certificate,
        kind=kind,
        body=body,
        basis=BasisTag.model_validate(dict(basis or BASIS)),
        created_at=created_at or _now(),
        thread_id=thread_id,
        in_reply_to=in_reply_to,
        message_id=message_id,
    )


def client_for(
    session: aiohttp.ClientSession,
    base_url: str,
    p: Partnership,
    key: str,
    clock: Callable[[], datetime] = _now,
) -> AgencyHTTP:
    """A signed-request HTTP client acting as member ``key``."""
    member = p[key]
    return AgencyHTTP(
        session=session,
        base_url=base_url,
        identity=member.identity,
        certificate=member.certificate,
        clock=clock,
    )
