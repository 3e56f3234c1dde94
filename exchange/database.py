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
  synchronous store code runs through ``run_sync`` on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = [
    "AsyncDatabase",
    "Database",
    "SQLiteDatabase",
    "alembic_config",
    "head_revision",
    "open_database",
]

T = TypeVar("T")
_MIGRATIONS = Path(__file__).with_name("migrations")


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
    """Any database with an async SQLAlchemy driver (PostgreSQL via asyncpg)."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=True)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a short read session."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            return await session.run_sync(fn)  # type: ignore[arg-type]

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction."""
        async with self.engine.begin() as connection:
            return await connection.run_sync(fn)

    async def dispose(self) -> None:
        """Close the pool."""
        await self.engine.dispose()


def open_database(database_url: str) -> Database:
    """The :class:`Database` for ``database_url``."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SQLiteDatabase(url)
    return AsyncDatabase(url)
