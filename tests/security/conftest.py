"""Fixtures for the security suites: the relay test fixtures, on SQLite.

``relay_factory`` and ``scene`` are the relay tests' own (``tests/relay/conftest.py``);
the security suites run them on SQLite only (their subject is the relay's rules, which
do not depend on the database) to keep the CI run short.
"""

from __future__ import annotations

import pytest

from tests.relay.conftest import relay_factory, scene

__all__ = ["backend", "relay_factory", "scene"]


@pytest.fixture
def backend() -> str:
    """The security suites run on SQLite."""
    return "sqlite"
