"""How each server under test is started: the relay, the ceiling and mesh-sandbox.

Each gets a free loopback port, its own temporary directory (database, logs) and
its own process group; readiness is a bounded poll of its health endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench._proc import Server, free_port
from keys.testing import Partnership

__all__ = [
    "MESH_VENV",
    "RELAY_BENCH_ENV",
    "REPO",
    "mesh_available",
    "publish_certificates",
    "relay_url",
    "start_ceiling",
    "start_mesh",
    "start_relay",
    "write_ceiling_keys",
]

REPO = Path(__file__).resolve().parent.parent
MESH_VENV = REPO / "bench" / ".venv-mesh"

#: Settings the benchmark changes from the relay's defaults, and why.
RELAY_BENCH_ENV: dict[str, str] = {
    # All load comes from one sending agency; the default per-agency bucket (50/s,
    # burst 200) would refuse it, and the bucket is not what is being measured.
    "EXCHANGE_RATE_LIMIT_PER_SECOND": "1000000",
    "EXCHANGE_RATE_LIMIT_BURST": "1000000",
    # Same reason: a receiving agency runs 64 workers plus its inbox pager (65 at once).
    "EXCHANGE_MAX_CONCURRENT_REQUESTS_PER_AGENCY": "1024",
}


def relay_url(path: Path) -> str:
    """The relay's SQLAlchemy URL for a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def _relay_env(partnership: Partnership, db: Path, port: int,
               extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "EXCHANGE_ROOT_PUBLIC_KEY": base64.b64encode(partnership.root.public_key).decode(),
            "EXCHANGE_DATABASE_URL": relay_url(db),
            "EXCHANGE_HOST": "127.0.0.1",
            "EXCHANGE_PORT": str(port),
            "EXCHANGE_RELAY_ID": "bench-relay",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(RELAY_BENCH_ENV)
    env.update(extra)
    return env


def publish_certificates(partnership: Partnership, keys: Iterable[str], workdir: Path,
                         db: Path) -> None:
    """Publish certificates with the relay's own admin command (``exchange directory add``).

    Also creates and migrates the database. Runs before ``exchange serve`` starts.
    """
    certs_dir = workdir / "certificates"
    certs_dir.mkdir(exist_ok=True)
    files = []
    for key in keys:
        path = certs_dir / f"{key}.json"
        path.write_text(json.dumps(partnership[key].certificate.to_json()))
        files.append(str(path))
    env = _relay_env(partnership, db, 0, {})
    for start in range(0, len(files), 500):
        subprocess.run(
            [sys.executable, "-m", "exchange", "directory", "add", *files[start : start + 500]],
            env=env, cwd=REPO, check=True, capture_output=True, timeout=300,
        )


def start_relay(partnership: Partnership, workdir: Path, *, publish: Iterable[str],
                extra_env: Mapping[str, str] | None = None, db: Path | None = None,
                name: str = "relay") -> Server:
    """``exchange serve`` on a free port over a SQLite file in ``workdir``."""
    db = db or workdir / f"{name}.db"
    publish_certificates(partnership, publish, workdir, db)
    port = free_port()
    env = _relay_env(partnership, db, port, extra_env or {})
    server = Server(
        name,
        [sys.executable, "-m", "exchange", "serve"],
        port=port,
        env=env,
        log_path=workdir / f"{name}.log",
        cwd=str(REPO),
        ready_timeout=120,
    )
    return server.start()


def write_ceiling_keys(partnership: Partnership, path: Path) -> Path:
    """Certificate id -> Ed25519 public key, for the ceiling server."""
    keys = {
        m.certificate.id: base64.b64encode(m.certificate.body.signing_key).decode()
        for m in partnership.members.values()
    }
    path.write_text(json.dumps(keys))
    return path


def start_ceiling(partnership: Partnership, workdir: Path, *, db: Path | None = None,
                  name: str = "ceiling") -> Server:
    """``bench.ceiling_server`` on a free port over a SQLite file in ``workdir``."""
    keys = write_ceiling_keys(partnership, workdir / "ceiling-keys.json")
    db = db or workdir / f"{name}.db"
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    server = Server(
        name,
        [sys.executable, "-m", "bench.ceiling_server", "--port", str(port), "--db", str(db),
         "--keys", str(keys)],
        port=port,
        env=env,
        log_path=workdir / f"{name}.log",
        cwd=str(REPO),
    )
    return server.start()


def mesh_available() -> bool:
    """Whether mesh-sandbox is installed in ``bench/.venv-mesh``."""
    python = MESH_VENV / "bin" / "python"
    if not python.exists():
        return False
    result = subprocess.run(
        [str(python), "-c", "import mesh_sandbox, uvicorn"], capture_output=True, timeout=60
    )
    return result.returncode == 0


def start_mesh(workdir: Path, *, name: str = "mesh") -> Server:
    """NHS Digital's mesh-sandbox (uvicorn, one worker) with its file store and full auth."""
    store = workdir / "mesh-store"
    store.mkdir(exist_ok=True)
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "STORE_MODE": "file",
            "AUTH_MODE": "full",
            "SHARED_KEY": "BackBone",
            "MAILBOXES_DATA_DIR": str(store),
            "ENV": "local",
        }
    )
    server = Server(
        name,
        [str(MESH_VENV / "bin" / "python"), "-m", "uvicorn", "mesh_sandbox.api:app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--log-level", "warning", "--no-access-log"],
        port=port,
        env=env,
        log_path=workdir / f"{name}.log",
        cwd=str(workdir),
        ready_timeout=60,
    )
    return server.start()
