"""Sign-in sessions: kept in memory on the server, named by a random cookie.

A session is created when someone opens the sign-in page (so that the sign-in form
itself carries a CSRF token) and replaced by a new one, with a new id and a new
token, when they sign in: an id seen before sign-in is never valid after it. A
session ends after ``idle_timeout`` without a request that counts as activity (live
updates do not count), ``absolute_timeout`` after it began, or at sign-out. Nothing
is written to disk: restarting ``agency ui`` signs everyone out.

A session also holds the referral being written (the draft) between the form's
steps, so content never travels in URLs or hidden fields and is forgotten when the
session ends.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["Session", "SessionStore"]

_MAX_ANONYMOUS = 500
_ANONYMOUS_TTL = timedelta(minutes=30)


@dataclass
class Session:
    """One browser's sign-in: who, since when, and the form token."""

    id: str
    csrf_token: str
    created_at: datetime
    last_seen: datetime
    username: str | None = None
    credential: str = ""
    """The password hash at sign-in: a changed password ends the session."""
    draft: dict[str, Any] = field(default_factory=dict)
    """The referral being written, step by step (in memory only)."""
    flashes: list[tuple[str, str]] = field(default_factory=list)
    """Messages to show once on the next page: (kind, text)."""

    @property
    def signed_in(self) -> bool:
        """Whether someone has signed in with this session."""
        return self.username is not None

    def csrf_ok(self, token: str | None) -> bool:
        """Whether ``token`` is this session's form token (constant-time)."""
        return bool(token) and hmac.compare_digest(
            self.csrf_token.encode("ascii"), str(token).encode("utf-8", "replace")
        )

    def flash(self, kind: str, text: str) -> None:
        """Show ``text`` once on the next page (``kind``: success, info or error)."""
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        """The pending messages, forgetting them."""
        pending, self.flashes = self.flashes, []
        return pending


class SessionStore:
    """Every live session, by id.

    :param idle_timeout: a signed-in session ends after this long without activity.
    :param absolute_timeout: a signed-in session ends this long after sign-in.
    :param clock: the time source (tests inject one to make sessions expire).
    """

    def __init__(
        self,
        *,
        idle_timeout: timedelta,
        absolute_timeout: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def _new(self, username: str | None, credential: str = "") -> Session:
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            username=username,
            credential=credential,
        )
        self._sessions[session.id] = session
        return session

    def anonymous(self) -> Session:
        """A session for the sign-in page (bounded: the oldest are dropped first)."""
        self.sweep()
        anonymous = [s for s in self._sessions.values() if not s.signed_in]
        if len(anonymous) >= _MAX_ANONYMOUS:
            for old in sorted(anonymous, key=lambda s: s.created_at)[: len(anonymous) // 2]:
                self._sessions.pop(old.id, None)
        return self._new(None)

    def sign_in(self, previous: Session | None, username: str, credential: str) -> Session:
        """End ``previous`` and start a signed-in session with a fresh id and token.

        ``credential`` is the account's password hash now; if it changes, the session ends.
        """
        if previous is not None:
            self._sessions.pop(previous.id, None)
        return self._new(username, credential)

    def end(self, session: Session) -> None:
        """Sign out: forget the session and its draft."""
        self._sessions.pop(session.id, None)

    def end_user(self, username: str) -> None:
        """End every session of one user."""
        for session in [s for s in self._sessions.values() if s.username == username]:
            self.end(session)

    def expired(self, session: Session) -> bool:
        """Whether ``session`` has run out of time."""
        now = self._clock()
        if not session.signed_in:
            return now - session.created_at > _ANONYMOUS_TTL
        return (
            now - session.last_seen > self.idle_timeout
            or now - session.created_at > self.absolute_timeout
        )

    def lookup(self, session_id: str | None, *, touch: bool) -> tuple[Session | None, bool]:
        """The live session named by a cookie, and whether one existed but had expired.

        ``touch`` counts the request as activity (resets the idle timer).
        """
        if not session_id:
            return None, False
        session = self._sessions.get(session_id)
        if session is None:
            return None, False
        if self.expired(session):
            self.end(session)
            return None, session.signed_in
        if touch:
            session.last_seen = self._clock()
        return session, False

    def still_valid(self, session: Session) -> bool:
        """Whether ``session`` is live (without counting this as activity)."""
        return self._sessions.get(session.id) is session and not self.expired(session)

    def sweep(self) -> int:
        """Forget expired sessions; return how many."""
        gone = [s for s in self._sessions.values() if self.expired(s)]
        for session in gone:
            self.end(session)
        return len(gone)

    def __len__(self) -> int:
        return len(self._sessions)
