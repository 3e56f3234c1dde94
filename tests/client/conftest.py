"""Fixtures for the agency client tests: a real relay, real keys, agencies set up by the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.settings import Settings
from keys.identity import RootKey
from tests.client.harness import Agency, RelayThread, setup_agency


def relay_settings(root: RootKey, tmp: Path) -> Settings:
    """A relay on a fresh SQLite file, pinning ``root``."""
    return Settings(
        root_public_key=root.public_key,
        database_url=f"sqlite+aiosqlite:///{tmp}/relay.db",
        run_sweeper=False,
        log_level="WARNING",
        log_format="text",
    )


@dataclass
class Partnership:
    """A running relay and four agencies set up through ``agency init``."""

    root: RootKey
    relay: RelayThread
    tmp: Path
    school: Agency
    mash: Agency
    police: Agency
    auditor: Agency


def _partnership(tmp: Path, *, police: bool = True) -> Iterator[Partnership]:
    root = RootKey.generate()
    relay = RelayThread(relay_settings(root, tmp))
    url = relay.start()
    try:
        school = setup_agency(tmp, "school", root, url)
        mash = setup_agency(tmp, "mash", root, url)
        police_agency = setup_agency(tmp, "police", root, url) if police else school
        auditor = setup_agency(tmp, "auditor", root, url)
        yield Partnership(root, relay, tmp, school, mash, police_agency, auditor)
    finally:
        relay.close()


@pytest.fixture(name="partnership")
def _fresh_partnership(tmp_path: Path) -> Iterator[Partnership]:
    """A fresh partnership for one test (its relay can be stopped and restarted)."""
    yield from _partnership(tmp_path)


@pytest.fixture(name="shared", scope="module")
def _shared_partnership(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Partnership]:
    """One partnership shared by a module's tests (they must not stop the relay)."""
    yield from _partnership(tmp_path_factory.mktemp("partnership"))
