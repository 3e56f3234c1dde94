"""Staff accounts for the web page: names, roles and Argon2id password hashes.

Accounts live in one JSON file in the agency's home (``ui-users.json``, mode 0600),
written atomically. A password is stored only as an Argon2id hash string
(``nacl.pwhash.argon2id.str``: salt and cost inside the string), so a copied file
does not reveal passwords and each guess costs memory as well as time.

Verification runs in a worker thread (it takes tens of milliseconds and 64 MiB) and
at most two at a time, so a burst of sign-ins cannot exhaust the machine's memory.
An unknown user name is checked against a dummy hash, so the answer takes as long
as for a real one. After ``max_failed`` wrong passwords in a row an account is
locked for a while (:class:`SignInGuard`).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nacl.exceptions
from nacl.pwhash import argon2id

from agency_client.home import read_json_file, write_json_file
from schemas.problems import ConfigurationError, InvalidRequest
from schemas.timefmt import format_time, parse_time

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "SignInGuard",
    "User",
    "UserStore",
    "hash_password",
    "valid_username",
    "verify_password",
]

#: NCSC advice: length beats complexity (three random words make a good password).
MIN_PASSWORD_LENGTH = 12
_MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_FORMAT = "agency-ui-users-v1"

#: Argon2id cost (libsodium's "interactive": 64 MiB, 2 passes), above OWASP's minimum.
OPSLIMIT = argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = argon2id.MEMLIMIT_INTERACTIVE

_DUMMY_HASH: bytes | None = None


def valid_username(name: str) -> str:
    """A user name, lower-cased; :class:`InvalidRequest` unless 2-64 of ``a-z 0-9 . _ -``."""
    clean = name.strip().lower()
    if not _USERNAME.fullmatch(clean):
        raise InvalidRequest(
            "a user name is 2 to 64 lower-case letters, digits, dots, dashes or underscores"
        )
    return clean


def _password_bytes(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def hash_password(password: str) -> str:
    """The Argon2id hash string of ``password`` (checks the length first)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters "
            "(three random words work well)"
        )
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise InvalidRequest("that password is too long")
    return argon2id.str(_password_bytes(password), opslimit=OPSLIMIT, memlimit=MEMLIMIT).decode(
        "ascii"
    )


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the Argon2id hash string ``stored`` (never raises)."""
    if len(password) > _MAX_PASSWORD_LENGTH:
        return False
    try:
        return bool(argon2id.verify(stored.encode("ascii"), _password_bytes(password)))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = argon2id.str(b"not a real password", opslimit=OPSLIMIT, memlimit=MEMLIMIT)
    return _DUMMY_HASH.decode("ascii")


@dataclass(frozen=True, slots=True)
class User:
    """One member of staff who may sign in."""

    username: str
    name: str
    job_role: str
    password_hash: str
    created_at: datetime
    phone: str | None = None
    email: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The file form."""
        data: dict[str, Any] = {
            "username": self.username,
            "name": self.name,
            "job_role": self.job_role,
            "password_hash": self.password_hash,
            "created_at": format_time(self.created_at),
        }
        if self.phone:
            data["phone"] = self.phone
        if self.email:
            data["email"] = self.email
        return data

    @classmethod
    def from_json(cls, data: Any) -> User:
        """Read one account; :class:`ConfigurationError` when it is malformed."""
        try:
            return cls(
                username=valid_username(str(data["username"])),
                name=str(data["name"]),
                job_role=str(data["job_role"]),
                password_hash=str(data["password_hash"]),
                created_at=parse_time(str(data["created_at"])),
                phone=str(data["phone"]) if data.get("phone") else None,
                email=str(data["email"]) if data.get("email") else None,
            )
        except (KeyError, TypeError, InvalidRequest, ValueError):
            raise ConfigurationError("the user accounts file holds a malformed account") from None


class UserStore:
    """The user accounts file of one agency."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._verify_slots = asyncio.Semaphore(2)

    def load(self) -> dict[str, User]:
        """Every account by user name (none when the file does not exist yet)."""
        if not self.path.exists():
            return {}
        data = read_json_file(self.path, "user accounts file")
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ConfigurationError(f"{self.path} is not a user accounts file")
        users = [User.from_json(item) for item in data.get("users", [])]
        return {user.username: user for user in users}

    def _save(self, users: dict[str, User]) -> None:
        write_json_file(
            self.path,
            {"format": _FORMAT, "users": [users[name].to_json() for name in sorted(users)]},
        )

    def get(self, username: str) -> User | None:
        """One account, or ``None``."""
        try:
            return self.load().get(valid_username(username))
        except InvalidRequest:
            return None

    def add(
        self,
        username: str,
        *,
        name: str,
        job_role: str,
        password: str,
        now: datetime,
        phone: str | None = None,
        email: str | None = None,
    ) -> User:
        """Create an account; :class:`InvalidRequest` if the name is taken or the password short."""
        username = valid_username(username)
        if not name.strip() or not job_role.strip():
            raise InvalidRequest("give the person's name and job role")
        users = self.load()
        if username in users:
            raise InvalidRequest(f"there is already a user called {username}")
        user = User(
            username=username,
            name=name.strip(),
            job_role=job_role.strip(),
            password_hash=hash_password(password),
            created_at=now,
            phone=phone or None,
            email=email or None,
        )
        users[username] = user
        self._save(users)
        return user

    def set_password(self, username: str, password: str) -> User:
        """Replace an account's password."""
        users = self.load()
        username = valid_username(username)
        if username not in users:
            raise InvalidRequest(f"there is no user called {username}")
        users[username] = replace(users[username], password_hash=hash_password(password))
        self._save(users)
        return users[username]

    def remove(self, username: str) -> None:
        """Delete an account (its open sessions end at their next request)."""
        users = self.load()
        username = valid_username(username)
        if username not in users:
            raise InvalidRequest(f"there is no user called {username}")
        del users[username]
        self._save(users)

    async def authenticate(self, username: str, password: str) -> User | None:
        """The account if ``password`` is right, else ``None`` (same cost either way)."""
        try:
            user = self.get(username)
        except ConfigurationError:
            user = None
        stored = user.password_hash if user is not None else _dummy_hash()
        async with self._verify_slots:
            ok = await asyncio.to_thread(verify_password, stored, password)
        return user if ok and user is not None else None


class SignInGuard:
    """Counts failed sign-ins per user name and locks an account after too many.

    :param max_failed: wrong passwords in a row before the lock.
    :param lockout: how long the lock lasts.
    :param clock: the time source.
    """

    def __init__(self, max_failed: int, lockout: timedelta, clock: Callable[[], datetime]) -> None:
        self._max = max_failed
        self._lockout = lockout
        self._clock = clock
        self._failures: dict[str, tuple[int, datetime | None]] = {}

    def locked(self, username: str) -> bool:
        """Whether sign-in is refused for ``username`` right now."""
        _, until = self._failures.get(username, (0, None))
        if until is None:
            return False
        if self._clock() >= until:
            self._failures.pop(username, None)
            return False
        return True

    def failed(self, username: str) -> None:
        """Record a wrong password."""
        count, _ = self._failures.get(username, (0, None))
        count += 1
        until = self._clock() + self._lockout if count >= self._max else None
        if len(self._failures) > 10_000:  # bounded memory: forget the oldest entries
            for key in list(self._failures)[:1000]:
                del self._failures[key]
        self._failures[username] = (count, until)

    def succeeded(self, username: str) -> None:
        """Forget the failures of ``username``."""
        self._failures.pop(username, None)
