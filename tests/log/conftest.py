"""Fixtures for transparency-log tests: a relay whose log key the partnership root certified.

``log_scene`` is a relay scene (``tests/relay/conftest.py``) whose partnership has one more
member, ``relay``: the relay's log key with a ``relay`` certificate issued by the root and
published like every other certificate. Tree heads are signed per submit batch and on
demand only (no periodic task), so tests never wait on a timer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keys.testing import STANDARD_MEMBERS, Partnership
from tests.relay.conftest import Scene, SceneFactory, backend, relay_factory

__all__ = ["RELAY_MEMBER", "backend", "log_partnership", "relay_factory"]

#: The relay's log key as a partnership member (role ``relay``, no mailbox).
RELAY_MEMBER = (
    "relay",
    "test-relay",
    "Test exchange relay transparency log",
    "exchange_relay",
    True,
    True,
    (),
    "relay",
)


def log_partnership(at: datetime | None = None) -> Partnership:
    """The standard test partnership plus the relay's certified log key."""
    return Partnership.create(at=at or datetime.now(UTC), members=(*STANDARD_MEMBERS, RELAY_MEMBER))


LogSceneFactory = Callable[..., contextlib.AbstractAsyncContextManager[Scene]]


@pytest.fixture
def log_factory(relay_factory: SceneFactory) -> LogSceneFactory:
    """Start relays with a certified log key: ``async with log_factory(**overrides) as scene``."""

    @contextlib.asynccontextmanager
    async def factory(
        *, partnership: Partnership | None = None, **overrides: Any
    ) -> AsyncIterator[Scene]:
        clock = overrides.get("clock")
        p = partnership or log_partnership(clock() if clock else None)
        overrides.setdefault("log_private_key", p["relay"].identity.to_private_bytes())
        overrides.setdefault("tree_head_interval", timedelta(0))
        async with relay_factory(partnership=p, **overrides) as scene:
            yield scene

    return factory


@pytest.fixture
async def log_scene(log_factory: LogSceneFactory) -> AsyncIterator[Scene]:
    """A relay on the wall clock with a certified log key and the whole partnership."""
    async with log_factory() as scene:
        yield scene
