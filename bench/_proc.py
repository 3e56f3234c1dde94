"""Servers as subprocesses: free ports, readiness polling, CPU and memory, certain teardown.

Every server runs in its own process group (``start_new_session``), so stopping it
stops anything it started; :class:`Server` is a context manager and is also
remembered in a module-level registry that an ``atexit`` hook and the signal
handlers of :func:`install_cleanup` tear down, whatever path the benchmark leaves by.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "LoadGen",
    "LoadGenError",
    "ProcStats",
    "Server",
    "free_port",
    "install_cleanup",
    "proc_stats",
]

_LIVE: list[Server | LoadGen] = []
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (bound and released; good enough on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcStats:
    """CPU seconds (user+system, all threads) and resident memory of one process."""

    __slots__ = ("cpu", "hwm_kib", "rss_kib")

    def __init__(self, cpu: float, rss_kib: int, hwm_kib: int) -> None:
        self.cpu = cpu
        self.rss_kib = rss_kib
        self.hwm_kib = hwm_kib


def proc_stats(pid: int) -> ProcStats:
    """Read ``/proc/<pid>/stat`` and ``status``; zeros if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        rss = hwm = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        return ProcStats(cpu, rss, hwm)
    except (OSError, ValueError, IndexError):
        return ProcStats(0.0, 0, 0)


class Server:
    """A server subprocess, ready once ``health_url`` answers 200."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str] | None = None,
        health_path: str = "/health",
        log_path: Path,
        cwd: str | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.env = dict(os.environ if env is None else env)
        self.health_url = f"http://127.0.0.1:{port}{health_path}"
        self.log_path = log_path
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: object = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def stats(self) -> ProcStats:
        """CPU and memory of the server process now."""
        return proc_stats(self.pid)

    def start(self) -> Server:
        """Start the process and wait (bounded) until it answers its health check."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _LIVE.append(self)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} before it was ready; "
                    f"see {self.log_path}:\n{_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not answer {self.health_url} within "
                    f"{self.ready_timeout:.0f} s; see {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL after ``timeout`` seconds."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if process is not None:
            # Anything left in the group (a worker the server forked) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self in _LIVE:
            _LIVE.remove(self)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoadGenError(RuntimeError):
    """A load generator answered a command with an error (it is still running)."""


class LoadGen:
    """A ``bench.loadgen`` process: one JSON command in, one JSON answer out."""

    def __init__(self, name: str, config: dict[str, Any], *, log_path: Path, cwd: str) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", json.dumps(config)],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        _LIVE.append(self)
        self._buffer = b""

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def send(self, cmd: str, **args: Any) -> None:
        """Send one command (do not wait)."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        """Wait (bounded) for the answer to the last command."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(
                        f"{self.name} exited; see {self.log_path}:\n{_tail(self.log_path)}"
                    )
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        if answer.pop("_status", None) != "ok":
            raise LoadGenError(f"{self.name}: {answer.get('error')} (log: {self.log_path})")
        return answer

    def call(self, cmd: str, timeout: float, **args: Any) -> dict[str, Any]:
        """Send a command and wait for its answer."""
        self.send(cmd, **args)
        return self.receive(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask it to quit, then kill its process group."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send("quit")
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self in _LIVE:
            _LIVE.remove(self)
        if not self._log.closed:
            self._log.close()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=5)


def install_cleanup() -> None:
    """Stop every live server at exit and on SIGTERM/SIGINT/SIGHUP."""
    atexit.register(_stop_all)

    def handler(signum: int, _frame: object) -> None:
        _stop_all()
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
