"""The core packages stay pure: importing them pulls in no network, database or event loop."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("aiohttp", "sqlmodel", "sqlalchemy", "asyncio", "aiosqlite", "asyncpg")


def test_importing_core_pulls_in_no_io_frameworks() -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        "import schemas, keys\n"
        "for pkg in (schemas, keys):\n"
        "    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(mod.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"


def test_core_reads_no_environment_or_clock() -> None:
    """A crude but effective guard: no os.environ, datetime.now or time.time in the core."""
    import pathlib

    offenders = []
    for package in ("schemas", "keys"):
        for path in pathlib.Path(package).rglob("*.py"):
            text = path.read_text()
            for needle in ("os.environ", "datetime.now(", "datetime.utcnow(", "time.time("):
                if needle in text:
                    offenders.append(f"{path}: {needle}")
    assert offenders == []
