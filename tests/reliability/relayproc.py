"""A real relay in its own process (``python -m exchange serve``) for reliability tests.

The relay runs on a SQLite file with its standard error captured to a file, on a
loopback port chosen for it. It can be killed with SIGKILL at any moment and started
again on the same database (and, when the port is still free, the same port);
``url`` always names where it serves now. Every wait is bounded: a relay that does
not answer ``/health`` within ``ready_timeout`` seconds fails the test with the tail
of its log.

Also used by ``bench/fuzz.py`` for the long runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import aiohttp

from keys.certificates import Certificate
from schemas.encoding import b64encode

__all__ = ["RelayProcess", "free_port", "rss_kib"]

_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


class RelayProcess:
    """``exchange serve`` as a child process over ``db_path``, pinning ``root_public_key``."""

    def __init__(
        self,
        root_public_key: bytes,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 60.0,
        db_name: str = "relay.db",
    ) -> None:
        self.root_public_key = root_public_key
        self.workdir = workdir
        self.db_path = workdir / db_name
        self.log_path = workdir / "relay-stderr.log"
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        """Where the relay serves (the port may change across restarts)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running relay's process id."""
        assert self.process is not None
        return self.process.pid

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("EXCHANGE_") and key != "PYTHONPATH"
        }
        env.update(
            {
                "PYTHONPATH": str(_ROOT),
                "EXCHANGE_ROOT_PUBLIC_KEY": b64encode(self.root_public_key),
                "EXCHANGE_DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
                "EXCHANGE_HOST": "127.0.0.1",
                "EXCHANGE_PORT": str(self.port),
                "EXCHANGE_RELAY_ID": "reliability-relay",
                "EXCHANGE_LOG_FORMAT": "json",
                "EXCHANGE_LOG_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "exchange", "serve"],
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    async def start(self) -> str:
        """Start the relay (same database) and wait until ``/health`` answers; return its URL."""
        assert self.process is None or self.process.poll() is not None, "already running"
        for attempt in range(3):
            self.process = self._spawn()
            if await self._wait_healthy():
                self.starts += 1
                return self.url
            # It exited: most likely the port was taken while the relay was down.
            if attempt < 2 and "address already in use" in self.log_tail().lower():
                self.port = free_port()
                continue
            break
        raise RuntimeError(f"the relay did not start; log tail:\n{self.log_tail()}")

    async def _wait_healthy(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                    async with session.get(self.url + "/health") as resp:
                        if resp.status == 200:
                            return True
                await asyncio.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"the relay did not answer /health within {self.ready_timeout} s; "
            f"log tail:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the relay (no shutdown code runs) and reap it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        self.kills += 1

    def terminate(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful stop), SIGKILL after ``timeout``; return the exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return process.returncode

    def rss_kib(self) -> int:
        """The running relay's resident memory, KiB."""
        return rss_kib(self.pid)

    def log_text(self) -> str:
        """Everything the relay wrote to standard error so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the relay's log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def publish(self, certificates: Iterable[Certificate]) -> None:
        """Publish certificates through the public endpoint."""
        async with aiohttp.ClientSession() as session:
            for certificate in certificates:
                document = certificate.to_json()
                async with session.post(
                    self.url + "/v1/directory/certificates", json=document
                ) as resp:
                    if resp.status not in (200, 201):
                        raise RuntimeError(f"publishing failed: {resp.status}")

    async def __aenter__(self) -> RelayProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.terminate()
