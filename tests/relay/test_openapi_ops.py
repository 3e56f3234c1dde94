"""OpenAPI kept in step with the routes; health, readiness, metrics; schema migrations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from exchange.app import create_app
from exchange.database import head_revision, open_database
from exchange.models import metadata
from exchange.openapi import build_openapi
from exchange.settings import Settings
from tests.relay.conftest import Scene


def _router_operations(app: Any) -> set[tuple[str, str]]:
    operations = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in {"HEAD", "OPTIONS"}:
            continue
        operations.add((route.method.lower(), path))
    return operations


def test_every_route_is_documented_and_vice_versa() -> None:
    app = create_app(Settings(root_public_key=bytes(32)))
    document = build_openapi(app)
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == _router_operations(app)
    assert document["openapi"].startswith("3.1")
    for path, ops in document["paths"].items():
        params = set(re.findall(r"{(\w+)}", path))
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == params
            assert op["responses"], path


def test_api_doc_lists_every_route() -> None:
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    app = create_app(Settings(root_public_key=bytes(32)))
    for method, path in _router_operations(app):
        if path.startswith("/v1/"):
            assert f"`{path}" in text, f"{method.upper()} {path} missing from docs/api.md"


async def test_served_openapi_health_ready_metrics(scene: Scene) -> None:
    async with scene.session.get(scene.url + "/openapi.json") as resp:
        assert resp.status == 200
        assert (await resp.json())["paths"] == build_openapi()["paths"]
    async with scene.session.get(scene.url + "/health") as resp:
        assert (await resp.json()) == {"status": "ok"}
    async with scene.session.get(scene.url + "/ready") as resp:
        assert resp.status == 200
    async with scene.session.get(scene.url + "/.well-known/safeguarding-exchange") as resp:
        info = await resp.json()
        assert info["max_envelope_bytes"] == 10 * 1024 * 1024
        assert info["root"] == scene.partnership.directory().root_fingerprint
    async with scene.session.get(scene.url + "/v1/directory") as resp:
        directory = await resp.json()
        assert len(directory["certificates"]) == len(scene.partnership.members)

    school = scene.agency("school")
    envelope = scene.referral()
    assert (await school.submit(envelope)).status == 201
    assert (await school.submit(b"nonsense")).status == 400
    async with scene.session.get(scene.url + "/metrics") as resp:
        text = await resp.text()
    assert "exchange_envelopes_accepted_total 1.0" in text
    assert 'exchange_envelopes_rejected_total{reason="invalid-envelope"} 1.0' in text
    assert "exchange_pending_deliveries 1.0" in text
    assert (
        'exchange_http_requests_total{method="POST",route="submit_envelope",status="201"}' in text
    )
    assert "exchange_http_request_duration_seconds_bucket" in text
    assert "exchange_overdue_threads" in text
    assert "exchange_write_queue_depth" in text


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    database = open_database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        assert await database.current_revision() is None
        await database.migrate()
        assert await database.current_revision() == head_revision()
        await database.migrate()  # idempotent

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        assert await database.transaction(diff) == []
    finally:
        await database.dispose()


async def test_sqlite_is_wal_with_full_sync(scene: Scene) -> None:
    if not scene.settings.is_sqlite:
        pytest.skip("SQLite only")
    from sqlalchemy import text

    from exchange.appkeys import DATABASE

    def pragmas(connection: Any) -> tuple[Any, Any]:
        mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        sync = connection.execute(text("PRAGMA synchronous")).scalar()
        return mode, sync

    mode, sync = await scene.relay.app[DATABASE].transaction(pragmas)
    assert mode == "wal"
    assert sync == 2  # FULL


def test_settings_from_env_and_secret_repr(tmp_path: Path) -> None:
    key = tmp_path / "root.pub"
    key.write_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    settings = Settings.from_env(
        {
            "EXCHANGE_ROOT_PUBLIC_KEY_FILE": str(key),
            "EXCHANGE_DATABASE_URL": "postgresql+asyncpg://relay:hunter2@db/exchange",
            "EXCHANGE_MAX_ENVELOPE_BYTES": "1024",
            "EXCHANGE_RETENTION_AFTER_RECEIPT": "86400",
            "EXCHANGE_EXTRA_HOLIDAYS": "2026-12-29, 2026-12-30",
            "EXCHANGE_RELAY_ID": "northbridge-relay",
        }
    )
    assert settings.root_public_key == bytes(32)
    assert settings.max_envelope_bytes == 1024
    assert settings.retention_after_receipt.days == 1
    assert len(settings.extra_holidays) == 2
    assert not settings.is_sqlite
    assert "hunter2" not in repr(settings)
    assert "<SECRET>" in repr(settings)
    defaults = Settings.from_env({})
    assert defaults.max_envelope_bytes == 10 * 1024 * 1024
    assert defaults.is_sqlite
    json.dumps(build_openapi())  # serialisable
