"""The database: engine choice, SQLite settings, threads, schema migrations.

The URL alone selects the engine: ``sqlite+aiosqlite:///relay.db`` (the embedded
default; ``sqlite:///`` also works) or ``postgresql+asyncpg://...``. The store sees
one interface, :class:`Database`: ``read(fn)`` runs ``fn(session)`` in a short
session, ``transaction(fn)`` runs ``fn(connection)`` in one committed transaction.
Store code is plain synchronous SQL either way.

* **SQLite** runs on the standard ``sqlite3`` driver in threads the database owns:
  one writer thread (SQLite has one writer anyway) and a few reader threads. A
  batch of writes or a read crosses threads once, instead of once per statement as
  with an async driver, which is most of the cost of a small transaction. Every
  connection is in WAL mode with ``synchronous=FULL``, so a committed transaction
  survives a power cut before any ``201`` is sent; transactions are begun
  explicitly (the driver's implicit BEGIN would break savepoints).
* **PostgreSQL** (and any other async URL) uses SQLAlchemy's async engine; the same
  synchronous store code runs through ``run_sync`` on the event loop. The pool and
  its timeouts come from :class:`PoolOptions` (``Settings.database_*``): every
  checkout is pinged, so connections broken by a database restart are replaced
  instead of failing a request; ``statement_timeout`` and a client-side command
  timeout bound every statement; a transaction left idle is ended by the server
  after twice the statement timeout, so no lock outlives a stuck relay.

Several relay processes on one PostgreSQL database
--------------------------------------------------
Every write transaction (each group commit of :class:`exchange.store.Writer`, each
migration) first takes one transaction-scoped advisory lock,
``pg_advisory_xact_lock(WRITE_LOCK_KEY)``. Write transactions therefore run one at a
time across every process, as they do on SQLite, and each one reads the data every
earlier one committed: "check, then insert or update" (duplicate ids, thread
transitions, deadline escalations, expiries, deletions) is exactly once without
per-row locking, and concurrent start-ups migrate the schema once. What runs in
parallel across processes is everything outside the write transaction: HTTP,
signature checks, parsing, policy, and every read. The lock is released by commit,
rollback or the end of the session, never held by a dead process.

:func:`is_unavailable` tells a database that cannot answer (down, restarting,
overloaded, timed out: the caller answers 503 with ``Retry-After``) from a bug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = [
    "WRITE_LOCK_KEY",
    "AsyncDatabase",
    "Database",
    "PoolOptions",
    "SQLiteDatabase",
    "alembic_config",
    "asyncpg_connect_kwargs",
    "head_revision",
    "is_unavailable",
    "open_database",
]

T = TypeVar("T")
_MIGRATIONS = Path(__file__).with_name("migrations")

#: The PostgreSQL advisory lock every write transaction holds (``b"exchwrit"``).
WRITE_LOCK_KEY = int.from_bytes(b"exchwrit", "big")

# SQLSTATE classes that mean "the database cannot serve now", not "bad statement":
# 08 connection exception, 53 insufficient resources, 57 operator intervention
# (shutdown, restart, statement timeout), 58 system error, 40 transaction rollback
# (serialisation failure, deadlock); 55P03 lock not available.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58", "40"})
_UNAVAILABLE_SQLSTATES = frozenset({"55P03"})


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot answer now (503), rather than a bug (500).

    True for refused or broken connections, a database shutting down or starting up,
    timeouts (connect, statement, command, waiting for a pooled connection), too many
    connections, and transactions the server rolled back (deadlock, serialisation).
    """
    if isinstance(
        exc,
        OSError  # includes ConnectionError and TimeoutError
        | sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError,
    ):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = _sqlstate(exc)
    if code is not None:
        return code[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or code in _UNAVAILABLE_SQLSTATES
    # asyncpg's own client-side errors (connection closed mid-operation), unwrapped.
    return type(exc).__module__.startswith("asyncpg") and any(
        cls.__name__ == "InterfaceError" for cls in type(exc).__mro__
    )


@dataclass(frozen=True)
class PoolOptions:
    """Connection pool and timeouts for a database server (PostgreSQL; SQLite ignores them).

    Durations are seconds; ``Settings`` documents each one (``database_*``).
    """

    pool_size: int = 10
    max_overflow: int = 5
    pool_timeout: float = 5.0
    pool_recycle: float = 1800.0
    pre_ping: bool = True
    connect_timeout: float = 5.0
    statement_timeout: float = 30.0
    command_timeout: float = 35.0
    retry_after: int = 5
    application_name: str = "exchange-relay"


def _server_settings(options: PoolOptions) -> dict[str, str]:
    statement_ms = max(0, round(options.statement_timeout * 1000))
    return {
        "application_name": options.application_name[:63],
        "statement_timeout": str(statement_ms),
        "idle_in_transaction_session_timeout": str(2 * statement_ms),
    }


def asyncpg_connect_kwargs(url: URL | str, options: PoolOptions | None = None) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect`` to the database a SQLAlchemy URL names.

    For a connection the pool does not manage (the push notifier's ``LISTEN``). Host,
    port, user, password, database and ``ssl``/``sslmode`` come from the URL
    (``?host=/run/postgresql`` selects a Unix socket directory).
    """
    url = make_url(url) if isinstance(url, str) else url
    options = options or PoolOptions()
    kwargs: dict[str, Any] = {
        "host": url.host or url.query.get("host"),
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "timeout": options.connect_timeout,
        "command_timeout": options.command_timeout,
        "server_settings": _server_settings(options),
    }
    ssl = url.query.get("ssl") or url.query.get("sslmode")
    if ssl:
        kwargs["ssl"] = ssl
    return {key: value for key, value in kwargs.items() if value is not None}


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the relay's migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


class Database:
    """Where the store's reads and write batches run."""

    url: URL
    #: Seconds a client should wait before retrying while the database is unavailable.
    retry_after: int = 5

    @property
    def dialect(self) -> str:
        """The engine's dialect name (``sqlite``, ``postgresql``)."""
        return self.url.get_backend_name()

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a short read session."""
        raise NotImplementedError

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` inside one transaction and commit it."""
        raise NotImplementedError

    async def dispose(self) -> None:
        """Close every connection and thread."""
        raise NotImplementedError

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (default: newest)."""
        await self.transaction(lambda connection: _upgrade(connection, revision))

    async def current_revision(self) -> str | None:
        """The schema revision the database is at, or None when empty."""
        return await self.transaction(_current)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


class SQLiteDatabase(Database):
    """SQLite on the standard driver, with its own writer thread and reader threads."""

    def __init__(self, url: URL, *, readers: int = 4) -> None:
        self.url = url
        sync_url = url.set(drivername="sqlite")
        memory = url.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if memory:
            kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_size"] = readers + 2
        self.engine = sqlalchemy.create_engine(sync_url, **kwargs)
        _configure_sqlite(self.engine)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="relay-db-writer")
        self._readers = ThreadPoolExecutor(
            1 if memory else readers, thread_name_prefix="relay-db-reader"
        )

    def _read(self, fn: Callable[[Session], T]) -> T:
        with Session(self.engine, expire_on_commit=False) as session:
            return fn(session)

    def _transaction(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return fn(connection)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a short read session on a reader thread."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._transaction, fn)

    async def dispose(self) -> None:
        """Wait for running work, then close the threads and connections."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._writer.shutdown, True)
        await loop.run_in_executor(None, self._readers.shutdown, True)
        self.engine.dispose()


class AsyncDatabase(Database):
    """Any database with an async SQLAlchemy driver (PostgreSQL via asyncpg).

    On PostgreSQL every :meth:`transaction` holds :data:`WRITE_LOCK_KEY` (see the
    module docstring), and connections carry the timeouts of :class:`PoolOptions`.
    """

    def __init__(self, url: URL, options: PoolOptions | None = None) -> None:
        self.url = url
        self.options = options = options or PoolOptions()
        self.retry_after = options.retry_after
        self._postgres = url.get_backend_name() == "postgresql"
        kwargs: dict[str, Any] = {
            "pool_pre_ping": options.pre_ping,
            "pool_size": options.pool_size,
            "max_overflow": options.max_overflow,
            "pool_timeout": options.pool_timeout,
            "pool_recycle": options.pool_recycle,
        }
        if url.get_driver_name() == "asyncpg":
            kwargs["connect_args"] = {
                "timeout": options.connect_timeout,
                "command_timeout": options.command_timeout,
                "server_settings": _server_settings(options),
            }
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a short read session."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            return await session.run_sync(fn)  # type: ignore[arg-type]

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction (holding the write lock on PostgreSQL)."""
        async with self.engine.begin() as connection:
            if self._postgres:
                await connection.exec_driver_sql(_LOCK)
            return await connection.run_sync(fn)

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema under the write lock: once, however many relays start at once."""
        async with self.engine.begin() as connection:
            if self._postgres:
                # DDL, and waiting for another process's migration, may take longer
                # than a request's statement timeout.
                await connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
                await connection.exec_driver_sql(_LOCK)
            await connection.run_sync(_upgrade, revision)

    async def dispose(self) -> None:
        """Close the pool."""
        await self.engine.dispose()


_LOCK = f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"


def open_database(database_url: str, options: PoolOptions | None = None) -> Database:
    """The :class:`Database` for ``database_url`` (``options`` apply to database servers)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SQLiteDatabase(url)
    return AsyncDatabase(url, options)
