"""Fixtures for the PostgreSQL tests: a real server, a fresh database per test, relay processes.

The server is ``EXCHANGE_TEST_DATABASE_URL`` (``.ci/run`` starts PostgreSQL and sets
it). Without it, or when the server does not answer, every test here is skipped
with the reason, and the reason is repeated at the end of the run so a green run
without PostgreSQL can not be mistaken for one with it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from keys.testing import Partnership
from tests.postgres.cluster import Cluster, admin_dsn, fresh_database, now

URL_VARIABLE = "EXCHANGE_TEST_DATABASE_URL"
_probe: dict[str, str | None] = {}


def _unreachable_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when the server answers."""
    if "reason" in _probe:
        return _probe["reason"]
    url = os.environ.get(URL_VARIABLE)
    reason: str | None = None
    if not url:
        reason = f"{URL_VARIABLE} is not set, so there is no PostgreSQL server to test against"
    else:
        import asyncpg

        async def ping() -> None:
            connection = await asyncpg.connect(admin_dsn(url), timeout=5)
            await connection.close()

        try:
            asyncio.run(ping())
        except Exception as exc:  # any failure means "not reachable"
            where = make_url(url).render_as_string(hide_password=True)
            reason = f"PostgreSQL at {where} is not reachable ({type(exc).__name__}: {exc})"
    _probe["reason"] = reason
    return reason


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``postgres`` (``pytest -m postgres`` selects them)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly, at the end of the run, that the PostgreSQL tests did not run."""
    reason = _probe.get("reason")
    if reason:
        terminalreporter.write_sep("=", "PostgreSQL tests SKIPPED", yellow=True, bold=True)
        terminalreporter.write_line(f"tests/postgres did not run: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's SQLAlchemy URL (skips the test when there is none)."""
    reason = _unreachable_reason()
    if reason:
        pytest.skip(reason)
    return os.environ[URL_VARIABLE]


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped after the test."""
    async with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def partnership() -> Partnership:
    """A complete fictional partnership (school, MASH, police, auditor...)."""
    return Partnership.create(at=now())


@pytest.fixture
async def cluster(
    database_url: str, partnership: Partnership, tmp_path: Path
) -> AsyncIterator[Cluster]:
    """Relay processes on one fresh database (start them with ``await cluster.add(n)``)."""
    async with aiohttp.ClientSession() as session:
        running = Cluster(database_url, partnership, tmp_path, session)
        try:
            yield running
        finally:
            running.stop()
            print(running.diagnostics())  # shown by pytest when the test failed


@pytest.fixture
def restartable_server(postgres_url: str) -> str:
    """The version of this machine's PostgreSQL cluster, if a test may restart it (else skip)."""
    url = make_url(postgres_url)
    if url.host not in (None, "127.0.0.1", "localhost", "::1"):
        pytest.skip("the test server is not on this machine, so it cannot be restarted")
    clusters = Path("/etc/postgresql")
    versions = sorted(clusters.glob("*/main")) if clusters.is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        pytest.skip("pg_ctlcluster is not available to restart the test server")
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        pytest.skip("only root or postgres may restart the test server")
    return versions[-1].parent.name
