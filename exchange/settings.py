"""The relay's settings: one frozen object per process, built from an explicit mapping.

Nothing else in the relay reads the environment. ``Settings.from_env(os.environ)``
is called once by the CLI; tests build ``Settings(...)`` directly or with
:func:`dataclasses.replace`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from schemas.encoding import b64decode
from schemas.problems import ConfigurationError, InvalidEnvelope

__all__ = ["DEFAULT_DATABASE_URL", "MIB", "Settings"]

MIB = 1024 * 1024
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///exchange.db"
_SECRET = "<SECRET>"


def _redact_url(url: str) -> str:
    """Hide a password in a database URL (``user:pw@host`` -> ``user:<SECRET>@host``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:{_SECRET}@{host}" if ":" in credentials else url


@dataclass(frozen=True)
class Settings:
    """Everything the relay needs to run. Durations are :class:`timedelta`."""

    #: Name of this relay, returned in submit receipts ("where it was stored").
    relay_id: str = "relay"
    #: The partnership root's Ed25519 public key (32 bytes): the only pinned trust anchor.
    root_public_key: bytes = field(default=b"", repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    #: SQLAlchemy async URL: ``sqlite+aiosqlite:///path.db`` (default) or ``postgresql+asyncpg://``.
    database_url: str = DEFAULT_DATABASE_URL
    #: Run pending migrations when the app starts (``exchange migrate`` does it explicitly).
    migrate_on_start: bool = True
    #: PostgreSQL connection pool, per process: connections kept open, extra ones allowed
    #: under load, how long a request waits for a free one (then 503), how old a
    #: connection may get before it is replaced, and whether each checkout is pinged
    #: first (so connections broken by a database restart are replaced, not used).
    database_pool_size: int = 10
    database_max_overflow: int = 5
    database_pool_timeout: timedelta = timedelta(seconds=5)
    database_pool_recycle: timedelta = timedelta(minutes=30)
    database_pool_pre_ping: bool = True
    #: PostgreSQL: give up opening a connection after this long.
    database_connect_timeout: timedelta = timedelta(seconds=5)
    #: PostgreSQL ``statement_timeout`` (server side; a transaction left idle is ended
    #: after twice this, so no lock outlives a stuck relay).
    database_statement_timeout: timedelta = timedelta(seconds=30)
    #: Client-side limit on one statement (a backstop when the server cannot answer).
    database_command_timeout: timedelta = timedelta(seconds=35)
    #: ``Retry-After`` (seconds) on the 503 answered while the database is unreachable.
    database_retry_after: int = 5
    #: Largest accepted envelope (request body), in bytes. Default 10 MiB.
    max_envelope_bytes: int = 10 * MIB
    #: Longest a request body may take to arrive (a slow sender gets 408 and its slot back).
    request_body_timeout: timedelta = timedelta(seconds=30)
    #: How far a request signature's ``created`` may be from the relay clock.
    clock_skew: timedelta = timedelta(seconds=300)
    #: Per-agency token bucket: sustained requests per second and burst size.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 200
    #: Requests handled at once across all agencies; more get 503 + Retry-After.
    max_concurrent_requests: int = 512
    #: Requests of one agency handled at once; more get 429 + Retry-After (others go on).
    max_concurrent_requests_per_agency: int = 64
    #: Push (server-sent events) streams open at once, per agency and in total.
    max_streams_per_agency: int = 8
    max_streams_total: int = 1000
    #: Seconds between keep-alive comments on an idle push stream.
    push_heartbeat: timedelta = timedelta(seconds=15)
    #: How push wake-ups reach other relay processes: ``auto`` (PostgreSQL
    #: ``LISTEN/NOTIFY`` on PostgreSQL, in-process on SQLite), ``postgres`` or ``local``.
    push_notifier: str = "auto"
    #: Wait between attempts to reopen the notifier's ``LISTEN`` connection.
    push_reconnect_interval: timedelta = timedelta(seconds=1)
    #: Largest inbox page.
    max_page_size: int = 500
    default_page_size: int = 100
    #: Ciphertext is deleted this long after the last recipient's delivery receipt.
    retention_after_receipt: timedelta = timedelta(days=30)
    #: Messages with a recipient that has not posted a receipt expire after this long.
    undelivered_expiry: timedelta = timedelta(days=5)
    #: How often the background sweeper runs (retention, expiry, deadlines, nonce purge).
    sweep_interval: timedelta = timedelta(seconds=60)
    #: Run the sweeper as a background task (tests may drive it by hand).
    run_sweeper: bool = True
    #: How often to reload certificates and revocations published through another process.
    directory_refresh: timedelta = timedelta(seconds=5)
    #: Working-day calendar for thread deadlines.
    calendar: str = "england_and_wales"
    #: Extra non-working days on top of the calendar's bank holidays (local closures).
    extra_holidays: tuple[date, ...] = ()
    #: Deadlines, in working days.
    acknowledgement_working_days: int = 1
    decision_working_days: int = 1
    feedback_working_days: int = 1
    #: Working days without activity after which the relay closes a settled thread (a
    #: referral with its decision given, an acknowledged notification, an answered
    #: request); 0 leaves every thread open until its recipient's side closes it.
    close_settled_after_working_days: int = 10
    #: Group commit: the most submissions written in one transaction.
    write_batch_max: int = 128
    #: Transparency log key (docs/transparency-log.md): an encrypted key file made by
    #: ``exchange log-key init`` (created on first start if missing) and its passphrase.
    log_key_file: str | None = None
    log_key_passphrase: bytes = field(default=b"", repr=False)
    #: The log key's private bytes, held in memory instead of a file (tests, partner tests).
    log_private_key: bytes = field(default=b"", repr=False)
    #: Sign a tree head at least this often while the log grows (0: only on demand and per
    #: submit batch).
    tree_head_interval: timedelta = timedelta(seconds=10)
    #: Log format: ``json`` (default) or ``text``, and level.
    log_format: str = "json"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.root_public_key and len(self.root_public_key) != 32:
            raise ConfigurationError("the root public key must be 32 bytes")
        if self.max_envelope_bytes <= 0 or self.max_page_size <= 0:
            raise ConfigurationError("size limits must be positive")
        if not 0 < self.default_page_size <= self.max_page_size:
            raise ConfigurationError("default_page_size must be within 1..max_page_size")
        if self.rate_limit_per_second <= 0 or self.rate_limit_burst <= 0:
            raise ConfigurationError("rate limits must be positive")
        if self.log_format not in {"json", "text"}:
            raise ConfigurationError("log format must be json or text")
        if self.database_pool_size <= 0 or self.database_max_overflow < 0:
            raise ConfigurationError("the database pool size must be positive")
        if self.database_retry_after <= 0:
            raise ConfigurationError("database_retry_after must be positive")
        if self.push_notifier not in {"auto", "local", "postgres"}:
            raise ConfigurationError("push notifier must be auto, local or postgres")
        if self.push_notifier == "postgres" and not self.is_postgres:
            raise ConfigurationError("the postgres push notifier needs a PostgreSQL database")

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value: Any = getattr(self, f.name)
            if f.name == "database_url":
                value = _redact_url(value)
            elif f.name == "root_public_key":
                continue
            elif f.name in {"log_key_passphrase", "log_private_key"}:
                value = _SECRET if value else ""
            parts.append(f"{f.name}={value!r}")
        return "Settings(" + ", ".join(parts) + ")"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (embedded) rather than a server."""
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL (several relay processes may share it)."""
        return self.database_url.startswith(("postgresql", "postgres"))

    @property
    def uses_postgres_notifier(self) -> bool:
        """Whether push wake-ups go through PostgreSQL ``LISTEN/NOTIFY``."""
        return self.push_notifier == "postgres" or (
            self.push_notifier == "auto" and self.is_postgres
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``EXCHANGE_*`` variables in ``environ`` (default ``os.environ``).

        ``EXCHANGE_ROOT_PUBLIC_KEY`` (base64) or ``EXCHANGE_ROOT_PUBLIC_KEY_FILE`` (a file
        holding the base64 key) pins the partnership root. Durations are in seconds.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}

        def text(name: str, attr: str) -> None:
            if name in env:
                kwargs[attr] = env[name]

        def number(name: str, attr: str, kind: type[int] | type[float]) -> None:
            if name in env:
                try:
                    kwargs[attr] = kind(env[name])
                except ValueError:
                    raise ConfigurationError(f"{name} must be a number") from None

        def seconds(name: str, attr: str) -> None:
            if name in env:
                try:
                    kwargs[attr] = timedelta(seconds=float(env[name]))
                except ValueError:
                    raise ConfigurationError(f"{name} must be a number of seconds") from None

        def flag(name: str, attr: str) -> None:
            if name in env:
                kwargs[attr] = env[name].strip().lower() in {"1", "true", "yes", "on"}

        text("EXCHANGE_RELAY_ID", "relay_id")
        text("EXCHANGE_HOST", "host")
        number("EXCHANGE_PORT", "port", int)
        text("EXCHANGE_DATABASE_URL", "database_url")
        flag("EXCHANGE_MIGRATE_ON_START", "migrate_on_start")
        number("EXCHANGE_DATABASE_POOL_SIZE", "database_pool_size", int)
        number("EXCHANGE_DATABASE_MAX_OVERFLOW", "database_max_overflow", int)
        seconds("EXCHANGE_DATABASE_POOL_TIMEOUT", "database_pool_timeout")
        seconds("EXCHANGE_DATABASE_POOL_RECYCLE", "database_pool_recycle")
        flag("EXCHANGE_DATABASE_POOL_PRE_PING", "database_pool_pre_ping")
        seconds("EXCHANGE_DATABASE_CONNECT_TIMEOUT", "database_connect_timeout")
        seconds("EXCHANGE_DATABASE_STATEMENT_TIMEOUT", "database_statement_timeout")
        seconds("EXCHANGE_DATABASE_COMMAND_TIMEOUT", "database_command_timeout")
        number("EXCHANGE_DATABASE_RETRY_AFTER", "database_retry_after", int)
        number("EXCHANGE_MAX_ENVELOPE_BYTES", "max_envelope_bytes", int)
        seconds("EXCHANGE_REQUEST_BODY_TIMEOUT", "request_body_timeout")
        seconds("EXCHANGE_CLOCK_SKEW", "clock_skew")
        number("EXCHANGE_RATE_LIMIT_PER_SECOND", "rate_limit_per_second", float)
        number("EXCHANGE_RATE_LIMIT_BURST", "rate_limit_burst", int)
        number("EXCHANGE_MAX_CONCURRENT_REQUESTS", "max_concurrent_requests", int)
        number(
            "EXCHANGE_MAX_CONCURRENT_REQUESTS_PER_AGENCY", "max_concurrent_requests_per_agency", int
        )
        number("EXCHANGE_MAX_STREAMS_PER_AGENCY", "max_streams_per_agency", int)
        number("EXCHANGE_MAX_STREAMS_TOTAL", "max_streams_total", int)
        seconds("EXCHANGE_PUSH_HEARTBEAT", "push_heartbeat")
        text("EXCHANGE_PUSH_NOTIFIER", "push_notifier")
        seconds("EXCHANGE_PUSH_RECONNECT_INTERVAL", "push_reconnect_interval")
        number("EXCHANGE_MAX_PAGE_SIZE", "max_page_size", int)
        seconds("EXCHANGE_RETENTION_AFTER_RECEIPT", "retention_after_receipt")
        seconds("EXCHANGE_UNDELIVERED_EXPIRY", "undelivered_expiry")
        seconds("EXCHANGE_SWEEP_INTERVAL", "sweep_interval")
        seconds("EXCHANGE_DIRECTORY_REFRESH", "directory_refresh")
        text("EXCHANGE_CALENDAR", "calendar")
        number("EXCHANGE_ACKNOWLEDGEMENT_WORKING_DAYS", "acknowledgement_working_days", int)
        number("EXCHANGE_DECISION_WORKING_DAYS", "decision_working_days", int)
        number("EXCHANGE_FEEDBACK_WORKING_DAYS", "feedback_working_days", int)
        number("EXCHANGE_CLOSE_SETTLED_AFTER_WORKING_DAYS", "close_settled_after_working_days", int)
        number("EXCHANGE_WRITE_BATCH_MAX", "write_batch_max", int)
        text("EXCHANGE_LOG_FORMAT", "log_format")
        text("EXCHANGE_LOG_LEVEL", "log_level")
        text("EXCHANGE_LOG_KEY_FILE", "log_key_file")
        seconds("EXCHANGE_TREE_HEAD_INTERVAL", "tree_head_interval")
        kwargs["log_key_passphrase"] = _log_key_passphrase(env)
        if "EXCHANGE_EXTRA_HOLIDAYS" in env:
            try:
                kwargs["extra_holidays"] = tuple(
                    date.fromisoformat(part.strip())
                    for part in env["EXCHANGE_EXTRA_HOLIDAYS"].split(",")
                    if part.strip()
                )
            except ValueError:
                raise ConfigurationError(
                    "EXCHANGE_EXTRA_HOLIDAYS must be comma-separated YYYY-MM-DD dates"
                ) from None
        kwargs["root_public_key"] = _root_key(env)
        return cls(**kwargs)


def _log_key_passphrase(env: Mapping[str, str]) -> bytes:
    """``EXCHANGE_LOG_KEY_PASSPHRASE``, or the first line of ``..._PASSPHRASE_FILE``."""
    text = env.get("EXCHANGE_LOG_KEY_PASSPHRASE")
    path = env.get("EXCHANGE_LOG_KEY_PASSPHRASE_FILE")
    if text is None and path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read EXCHANGE_LOG_KEY_PASSPHRASE_FILE: {type(exc).__name__}"
            ) from None
        text = lines[0] if lines else ""
    return (text or "").encode("utf-8")


def _root_key(env: Mapping[str, str]) -> bytes:
    text = env.get("EXCHANGE_ROOT_PUBLIC_KEY")
    path = env.get("EXCHANGE_ROOT_PUBLIC_KEY_FILE")
    if text is None and path is not None:
        try:
            text = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read EXCHANGE_ROOT_PUBLIC_KEY_FILE: {exc}") from None
    if text is None:
        return b""
    try:
        key = b64decode(text.strip(), field="EXCHANGE_ROOT_PUBLIC_KEY")
    except InvalidEnvelope:
        raise ConfigurationError("EXCHANGE_ROOT_PUBLIC_KEY must be standard base64") from None
    if len(key) != 32:
        raise ConfigurationError("the root public key must be 32 bytes")
    return key
