"""Pool, timeout and notifier settings: parsed, validated, and handed to the engine as set.

Pure: no server needed (these run, and pass, on a machine without PostgreSQL).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from exchange.app import make_notifier, pool_options
from exchange.database import AsyncDatabase, PoolOptions, asyncpg_connect_kwargs, open_database
from exchange.push import LocalNotifier, PostgresNotifier
from exchange.settings import Settings
from schemas.problems import ConfigurationError

PG = "postgresql+asyncpg://relay:hunter2@db.internal:6432/exchange"


def test_database_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "EXCHANGE_DATABASE_URL": PG,
            "EXCHANGE_DATABASE_POOL_SIZE": "20",
            "EXCHANGE_DATABASE_MAX_OVERFLOW": "0",
            "EXCHANGE_DATABASE_POOL_TIMEOUT": "2.5",
            "EXCHANGE_DATABASE_POOL_RECYCLE": "600",
            "EXCHANGE_DATABASE_POOL_PRE_PING": "false",
            "EXCHANGE_DATABASE_CONNECT_TIMEOUT": "3",
            "EXCHANGE_DATABASE_STATEMENT_TIMEOUT": "10",
            "EXCHANGE_DATABASE_COMMAND_TIMEOUT": "12",
            "EXCHANGE_DATABASE_RETRY_AFTER": "2",
            "EXCHANGE_PUSH_NOTIFIER": "postgres",
            "EXCHANGE_PUSH_RECONNECT_INTERVAL": "0.5",
            "EXCHANGE_RELAY_ID": "northshire",
        }
    )
    assert settings.is_postgres
    assert settings.uses_postgres_notifier
    assert settings.database_pool_timeout == timedelta(seconds=2.5)
    assert "hunter2" not in repr(settings)
    options = pool_options(settings)
    assert options == PoolOptions(
        pool_size=20,
        max_overflow=0,
        pool_timeout=2.5,
        pool_recycle=600.0,
        pre_ping=False,
        connect_timeout=3.0,
        statement_timeout=10.0,
        command_timeout=12.0,
        retry_after=2,
        application_name="exchange northshire",
    )
    database = open_database(settings.database_url, options)
    assert isinstance(database, AsyncDatabase)
    pool = database.engine.pool
    assert pool.size() == 20  # type: ignore[attr-defined]
    assert pool._pre_ping is False
    assert database.retry_after == 2


def test_defaults_are_documented_values() -> None:
    settings = Settings()
    assert (settings.database_pool_size, settings.database_max_overflow) == (10, 5)
    assert settings.database_pool_pre_ping is True
    assert settings.database_statement_timeout == timedelta(seconds=30)
    assert settings.database_connect_timeout == timedelta(seconds=5)
    assert settings.database_retry_after == 5
    assert settings.push_notifier == "auto"
    assert not settings.uses_postgres_notifier  # SQLite by default


def test_notifier_follows_the_database() -> None:
    assert isinstance(make_notifier(Settings()), LocalNotifier)
    assert not isinstance(make_notifier(Settings()), PostgresNotifier)
    assert isinstance(make_notifier(Settings(database_url=PG)), PostgresNotifier)
    local = Settings(database_url=PG, push_notifier="local")
    assert not isinstance(make_notifier(local), PostgresNotifier)


@pytest.mark.parametrize(
    "changes",
    [
        {"database_pool_size": 0},
        {"database_max_overflow": -1},
        {"database_retry_after": 0},
        {"push_notifier": "redis"},
        {"push_notifier": "postgres"},  # on SQLite
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**changes)  # type: ignore[arg-type]


def test_listen_connection_uses_the_same_server_and_timeouts() -> None:
    options = PoolOptions(connect_timeout=3, command_timeout=12, statement_timeout=10)
    kwargs = asyncpg_connect_kwargs(PG + "?ssl=require", options)
    assert kwargs["host"] == "db.internal"
    assert kwargs["port"] == 6432
    assert (kwargs["user"], kwargs["password"], kwargs["database"]) == (
        "relay",
        "hunter2",
        "exchange",
    )
    assert kwargs["ssl"] == "require"
    assert kwargs["timeout"] == 3
    assert kwargs["command_timeout"] == 12
    assert kwargs["server_settings"]["statement_timeout"] == "10000"
    assert kwargs["server_settings"]["idle_in_transaction_session_timeout"] == "20000"
    socket_dir = asyncpg_connect_kwargs("postgresql+asyncpg://relay@/exchange?host=/run/pg")
    assert socket_dir["host"] == "/run/pg"
    assert "port" not in socket_dir
