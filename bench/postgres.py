"""The relay on PostgreSQL with one and two processes, beside SQLite, in one run.

    .venv/bin/python -m bench.postgres --quick      # about 3 minutes
    .venv/bin/python -m bench.postgres              # about 8 minutes
    .venv/bin/python -m bench.postgres --quick --update-doc

Three targets, each a fresh database with the same partnership published:

* ``sqlite``: one ``exchange serve`` on a SQLite file (the embedded default);
* ``pg-1``: one ``exchange serve`` on PostgreSQL;
* ``pg-2``: two ``exchange serve`` processes on one PostgreSQL database (what a load
  balancer in front of two relays sees; pushes cross processes by ``LISTEN/NOTIFY``).

Each target is driven by the same two load-generator processes (``bench.loadgen``),
each with half the connections: for ``pg-2`` each talks to its own relay, for the
others both talk to the one relay, so the client side is identical. Phases:

* ``throughput``: closed-loop submit, then closed-loop receive-and-acknowledge;
* ``latency``: open-loop submits at a fixed rate with a push listener on relay 1: submit
  latency and submit-to-push latency (for ``pg-2`` half the pushes cross processes,
  reported separately).

Every figure is a median over rounds; targets are interleaved within each round
(rotating which goes first) and ratios to SQLite are taken per round, then their
median shown, so a burst of load from elsewhere on this shared machine hits all of
them. PostgreSQL (the server this machine runs) shares the 2 cores with the relays
and the load generators. The run ends by checking that every accepted submission is
in the database exactly once. Writes ``bench/results/postgres-*.md`` and ``.json``;
``--update-doc`` replaces the PostgreSQL block of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._pool import bench_at, bench_partnership, extra_key
from bench._proc import LoadGen, Server, free_port, install_cleanup
from bench._servers import RELAY_BENCH_ENV, REPO, relay_url
from keys.testing import Partnership

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "performance.md"
DOC_BEGIN = "<!-- bench:postgres:begin -->"
DOC_END = "<!-- bench:postgres:end -->"
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
#: Partnership members published on every target.
MEMBERS = ["school", "mash", "police", "auditor", *(extra_key(i) for i in range(8))]
TARGETS = ("sqlite", "pg-1", "pg-2")
LABELS = {
    "sqlite": "SQLite, 1 relay",
    "pg-1": "PostgreSQL, 1 relay",
    "pg-2": "PostgreSQL, 2 relays",
}


@dataclass(frozen=True)
class Mode:
    """How long and how often each phase runs."""

    name: str
    rounds: int
    seconds: float
    concurrency: int
    latency_rate: float
    latency_seconds: float
    latency_rounds: int


QUICK = Mode(
    "quick",
    rounds=3,
    seconds=3.0,
    concurrency=64,
    latency_rate=100.0,
    latency_seconds=5.0,
    latency_rounds=1,
)
FULL = Mode(
    "full",
    rounds=5,
    seconds=8.0,
    concurrency=64,
    latency_rate=100.0,
    latency_seconds=15.0,
    latency_rounds=3,
)


def log(message: str) -> None:
    """Progress on standard error (the tables go to standard output)."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or an en dash."""
    return "–" if value is None else f"{value:,.{digits}f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- databases and servers ----------------------------------------------------------------------


def _psql_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _admin(url: str, sql: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        connection = await asyncpg.connect(_psql_dsn(url), timeout=10)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    return asyncio.run(run())


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server; its relay URL; dropped afterwards."""
    from sqlalchemy.engine import make_url

    name = f"bench_pg_{secrets.token_hex(4)}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(
    partnership: Partnership,
    database_url: str,
    port: int,
    name: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    import base64

    env = dict(os.environ)
    env.update(
        {
            "EXCHANGE_ROOT_PUBLIC_KEY": base64.b64encode(partnership.root.public_key).decode(),
            "EXCHANGE_DATABASE_URL": database_url,
            "EXCHANGE_HOST": "127.0.0.1",
            "EXCHANGE_PORT": str(port),
            "EXCHANGE_RELAY_ID": name,
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(RELAY_BENCH_ENV)
    env.update(extra or {})
    return env


def publish(partnership: Partnership, database_url: str, workdir: Path) -> None:
    """Create and migrate the database and publish the members (``exchange directory add``)."""
    files = []
    for key in MEMBERS:
        path = workdir / f"{key}.json"
        path.write_text(json.dumps(partnership[key].certificate.to_json()))
        files.append(str(path))
    subprocess.run(
        [sys.executable, "-m", "exchange", "directory", "add", *files],
        env=_env(partnership, database_url, 0, "publish"),
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )


def start_relays(
    partnership: Partnership,
    database_url: str,
    count: int,
    workdir: Path,
    prefix: str,
    extra: dict[str, str] | None = None,
) -> list[Server]:
    """``count`` relays on ``database_url``, each on a free port, each polled until healthy."""
    servers = []
    for i in range(count):
        name = f"{prefix}-relay-{i + 1}"
        port = free_port()
        server = Server(
            name,
            [sys.executable, "-m", "exchange", "serve"],
            port=port,
            env=_env(partnership, database_url, port, name, extra),
            log_path=workdir / f"{name}.log",
            cwd=str(REPO),
            ready_timeout=120,
        )
        servers.append(server.start())
    return servers


@dataclass
class Target:
    """One configuration under test: its relays and the two load generators driving it."""

    name: str
    database_url: str
    servers: list[Server]
    gens: list[LoadGen] = field(default_factory=list)
    listener: LoadGen | None = None
    cursors: list[int] = field(default_factory=lambda: [0, 0])

    def cpu(self) -> float:
        """CPU seconds of every relay process of this target."""
        return sum(s.stats().cpu for s in self.servers)


def call_all(
    gens: list[LoadGen], cmd: str, timeout: float, args: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send one command to every load generator, then collect every answer."""
    for gen, arg in zip(gens, args, strict=True):
        gen.send(cmd, **arg)
    return [gen.receive(timeout) for gen in gens]


# -- the run ------------------------------------------------------------------------------------


class Run:
    """One benchmark run over the three targets."""

    def __init__(
        self, mode: Mode, workdir: Path, server_url: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.mode = mode
        self.extra_env = dict(extra_env or {})
        self.workdir = workdir
        self.server_url = server_url
        self.at = bench_at()
        self.partnership = bench_partnership(self.at)
        self.targets: dict[str, Target] = {}
        self.results: dict[str, Any] = {
            "mode": asdict(mode),
            "cores": os.cpu_count(),
            "started": datetime.now(UTC).isoformat(),
            "relay_env": {**RELAY_BENCH_ENV, **self.extra_env},
        }
        self.sections: list[str] = []

    def loadgen(self, name: str, port: int) -> LoadGen:
        """A load-generator process for one relay."""
        return LoadGen(
            name,
            {"kind": "relay", "port": port, "at": self.at.isoformat()},
            log_path=self.workdir / f"{name}.log",
            cwd=str(REPO),
        )

    def start(self, name: str, database_url: str, relays: int) -> None:
        """Publish, start the relays and the load generators of one target."""
        d = self.workdir / name
        d.mkdir()
        log(f"starting {name}")
        publish(self.partnership, database_url, d)
        servers = start_relays(self.partnership, database_url, relays, d, name, self.extra_env)
        target = Target(name, database_url, servers)
        target.gens = [
            self.loadgen(f"{name}-gen-{i + 1}", servers[i % relays].port) for i in range(2)
        ]
        target.listener = self.loadgen(f"{name}-listener", servers[0].port)
        self.targets[name] = target

    def stop(self) -> None:
        """Stop every load generator and relay."""
        for target in self.targets.values():
            for gen in [*target.gens, *([target.listener] if target.listener else [])]:
                gen.stop()
            for server in target.servers:
                server.stop()

    def order(self, r: int) -> list[Target]:
        """The targets, rotated so a different one goes first each round."""
        names = list(self.targets)
        r %= len(names)
        return [self.targets[n] for n in names[r:] + names[:r]]

    # -- throughput ----------------------------------------------------------------------------

    def throughput(self) -> None:
        mode = self.mode
        half = mode.concurrency // 2
        recipients = ["mash", "police"]
        estimate = dict.fromkeys(self.targets, 1500.0)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            t: {"submit": [], "receive": []} for t in self.targets
        }
        for r in range(mode.rounds):
            for target in self.targets.values():  # untimed: this round's envelopes
                need = int(estimate[target.name] * mode.seconds * 1.5 / 2) + 200
                call_all(target.gens, "clear", 30, [{}, {}])
                for gen, recipient in zip(target.gens, recipients, strict=True):
                    gen.send("prepare", sender="school", recipients=[recipient], count=need)
            for target in self.targets.values():
                for gen in target.gens:
                    gen.receive(900)
            for target in self.order(r):
                before = target.cpu()
                answers = call_all(
                    target.gens,
                    "submit_closed",
                    mode.seconds + 120,
                    [{"duration": mode.seconds, "concurrency": half, "sender": "school"}] * 2,
                )
                cpu = target.cpu() - before
                rate = sum(a["rate"] for a in answers)
                ok = sum(a["ok"] for a in answers)
                estimate[target.name] = max(rate, 100.0)
                p50 = median([a["latency"]["p50"] for a in answers])
                runs[target.name]["submit"].append(
                    {
                        "rate": rate,
                        "ok": ok,
                        "cpu_us": cpu / ok * 1e6 if ok else None,
                        "p50_ms": None if p50 is None else p50 * 1e3,
                        "statuses": [a["statuses"] for a in answers],
                    }
                )
                log(
                    f"round {r + 1}/{mode.rounds} submit {target.name}: {rate:,.0f}/s "
                    f"{[a['statuses'] for a in answers]}"
                )
            for target in self.order(r):
                answers = call_all(
                    target.gens,
                    "receive_closed",
                    mode.seconds + 120,
                    [
                        {
                            "duration": mode.seconds,
                            "concurrency": half,
                            "agency": recipient,
                            "since": target.cursors[i],
                        }
                        for i, recipient in enumerate(recipients)
                    ],
                )
                for i, answer in enumerate(answers):
                    target.cursors[i] = answer.get("cursor", target.cursors[i])
                rate = sum(a["rate"] for a in answers)
                runs[target.name]["receive"].append(
                    {"rate": rate, "statuses": [a["statuses"] for a in answers]}
                )
                log(f"round {r + 1}/{mode.rounds} receive+ack {target.name}: {rate:,.0f}/s")
        self.results["throughput"] = runs
        self.sections.append(self._throughput_table(runs))

    def _throughput_table(self, runs: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
        rows = []
        for phase, label in (("submit", "submit, msgs/s"), ("receive", "receive + ack, msgs/s")):
            row = [label]
            for name in self.targets:
                rate = median(x["rate"] for x in runs[name][phase])
                row.append(fmt(rate))
            for name in ("pg-1", "pg-2"):
                ratios = [
                    x["rate"] / s["rate"]
                    for x, s in zip(runs[name][phase], runs["sqlite"][phase], strict=True)
                    if s["rate"]
                ]
                row.append(fmt(median(ratios), 2))
            rows.append(row)
        rows.append(
            [
                "submit p50 (closed loop), ms",
                *(fmt(median(x["p50_ms"] for x in runs[n]["submit"]), 1) for n in self.targets),
                "",
                "",
            ]
        )
        rows.append(
            [
                "relay CPU per submit, µs",
                *(fmt(median(x["cpu_us"] for x in runs[n]["submit"])) for n in self.targets),
                "",
                "",
            ]
        )
        mode = self.mode
        return "\n".join(
            [
                f"### Throughput, closed loop, {mode.concurrency} connections, "
                f"{mode.seconds:.0f} s per run, {mode.rounds} rounds (medians)",
                "",
                table(
                    ["", *(LABELS[n] for n in self.targets), "PG 1 / SQLite", "PG 2 / SQLite"], rows
                ),
            ]
        )

    # -- latency -------------------------------------------------------------------------------

    def latency(self) -> None:
        mode = self.mode
        per_sender = mode.latency_rate / 2
        count = int(per_sender * mode.latency_seconds)
        results: dict[str, list[dict[str, Any]]] = {t: [] for t in self.targets}
        for r in range(mode.latency_rounds):
            recipients = [extra_key(2 * r), extra_key(2 * r + 1)]  # fresh inboxes each round
            for target in self.targets.values():
                call_all(target.gens, "clear", 30, [{}, {}])
                for gen, recipient in zip(target.gens, recipients, strict=True):
                    gen.send("prepare", sender="school", recipients=[recipient], count=count)
            for target in self.targets.values():
                for gen in target.gens:
                    gen.receive(900)
            for target in self.order(r):
                assert target.listener is not None
                target.listener.call("listen_start", 300, agencies=recipients, per_agency=1)
                before = target.cpu()
                sent = call_all(
                    target.gens,
                    "latency_open",
                    mode.latency_seconds + 180,
                    [{"rate": per_sender, "duration": mode.latency_seconds, "sender": "school"}]
                    * 2,
                )
                cpu = target.cpu() - before
                # Stragglers: collect (bounded) until every accepted submission was pushed;
                # a restarted listener resumes from its last cursor, so nothing is missed.
                expected = sum(s["ok"] for s in sent)
                deadline = time.monotonic() + 10
                arrivals: dict[str, float] = {}
                while True:
                    heard = target.listener.call("listen_stop", 120)
                    for mid, at in heard["arrivals"].items():
                        arrivals.setdefault(mid, at)
                    if len(arrivals) >= expected or time.monotonic() > deadline:
                        break
                    target.listener.call("listen_start", 300, agencies=recipients, per_agency=1)
                    time.sleep(0.2)
                results[target.name].append(self._latencies(sent, arrivals, cpu))
                res = results[target.name][-1]
                log(
                    f"latency round {r + 1} {target.name}: submit p99 "
                    f"{fmt(res['submit_p99_ms'], 1)} ms, push p99 {fmt(res['push_p99_ms'], 1)} ms"
                    f" (cross-process {fmt(res['cross_p99_ms'], 1)}), ok {res['ok']}/"
                    f"{res['sent']}, missing pushes {res['missing']}"
                )
        self.results["latency"] = results
        rows = []

        def col(key: str, digits: int = 1) -> list[str]:
            return [fmt(median(x[key] for x in results[n]), digits) for n in self.targets]

        rows.append(["submit p50, ms", *col("submit_p50_ms")])
        rows.append(["submit p99, ms", *col("submit_p99_ms")])
        rows.append(["submit-to-push p50, ms", *col("push_p50_ms")])
        rows.append(["submit-to-push p99, ms", *col("push_p99_ms")])
        rows.append(
            [
                "… pushes crossing processes, p50 / p99, ms",
                "–",
                "–",
                f"{fmt(median(x['cross_p50_ms'] for x in results['pg-2']), 1)} / "
                f"{fmt(median(x['cross_p99_ms'] for x in results['pg-2']), 1)}",
            ]
        )
        rows.append(
            [
                "accepted / sent",
                *(
                    f"{sum(x['ok'] for x in results[n]):,} / {sum(x['sent'] for x in results[n]):,}"
                    for n in self.targets
                ),
            ]
        )
        rows.append(
            [
                "pushes missing",
                *(f"{sum(x['missing'] for x in results[n]):,}" for n in self.targets),
            ]
        )
        rows.append(["relay CPU busy, % of one core", *col("busy", 0)])
        self.sections.append(
            "\n".join(
                [
                    f"### Latency, open loop at {mode.latency_rate:,.0f} msgs/s for "
                    f"{mode.latency_seconds:.0f} s, {mode.latency_rounds} round(s) (medians)",
                    "",
                    "Two senders at half the rate each (for PostgreSQL, 2 relays: one per "
                    "relay) and a push listener on relay 1 for both recipients; latency from "
                    "each submission's scheduled instant.",
                    "",
                    table(["", *(LABELS[n] for n in self.targets)], rows),
                ]
            )
        )

    def _latencies(
        self, sent: list[dict[str, Any]], arrivals: dict[str, float], cpu: float
    ) -> dict[str, Any]:
        # Sender 2's submissions reach the listener from the other relay (pg-2 only).
        local = {m: t for m, t in sent[0]["sent_at"].items() if m in arrivals}
        other = {m: t for m, t in sent[1]["sent_at"].items() if m in arrivals}
        push = sorted(arrivals[m] - t for m, t in {**local, **other}.items())
        cross = sorted(arrivals[m] - t for m, t in other.items())

        def pct(values: list[float], q: float) -> float | None:
            return values[min(len(values) - 1, int(q * len(values)))] * 1e3 if values else None

        ok = sum(s["ok"] for s in sent)
        submit_p50 = median(s["latency"]["p50"] for s in sent)
        submit_p99 = max((s["latency"]["p99"] or 0) for s in sent)
        return {
            "sent": sum(s["sent"] for s in sent),
            "ok": ok,
            "statuses": [s["statuses"] for s in sent],
            "submit_p50_ms": None if submit_p50 is None else submit_p50 * 1e3,
            "submit_p99_ms": submit_p99 * 1e3,
            "push_p50_ms": pct(push, 0.5),
            "push_p99_ms": pct(push, 0.99),
            "cross_p50_ms": pct(cross, 0.5),
            "cross_p99_ms": pct(cross, 0.99),
            "missing": ok - len(push),
            "busy": cpu / self.mode.latency_seconds * 100,
        }

    # -- checks and report ---------------------------------------------------------------------

    def check(self) -> None:
        """Every accepted submission is stored once on each PostgreSQL target."""
        lines = []
        for name in ("pg-1", "pg-2"):
            target = self.targets[name]
            [row] = _admin(
                target.database_url,
                "SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM messages",
            )
            [events] = _admin(
                target.database_url,
                "SELECT count(*) AS n, max(sequence) AS m, min(sequence) AS lo FROM events",
            )
            gapless = events["n"] == events["m"] - events["lo"] + 1
            lines.append(
                f"{LABELS[name]}: {row['n']:,} messages stored, {row['d']:,} distinct; "
                f"event log {events['n']:,} entries, gapless: {gapless}"
            )
            self.results.setdefault("check", {})[name] = {
                "messages": row["n"],
                "distinct": row["d"],
                "events": events["n"],
                "gapless": gapless,
            }
        self.sections.append("Afterwards: " + "; ".join(lines) + ".")

    def report(self, command: str, duration: float) -> str:
        header = [
            f"Run of {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, mode "
            f"**{self.mode.name}**, {os.cpu_count()} cores, {duration / 60:.1f} minutes; "
            f"command: `{command}`.",
            "",
            "The relay (`exchange serve`) on a SQLite file, on PostgreSQL 15 (this machine's "
            "server, default configuration, `synchronous_commit=on`), and as two processes on "
            "one PostgreSQL database. Relay settings changed: "
            + ", ".join(f"`{k}={v}`" for k, v in {**RELAY_BENCH_ENV, **self.extra_env}.items())
            + "; everything else is the default (pool 10 + 5 per process). Relays, PostgreSQL "
            "and the load generators share the 2 cores, so a second relay process adds no "
            "CPU: these figures show the cost of the PostgreSQL path and that two processes "
            "share one database correctly, not the scaling a second machine would give.",
        ]
        return "\n".join([*header, "", *("\n\n".join(self.sections).split("\n"))])


def update_doc(markdown: str) -> None:
    """Replace the figures of the PostgreSQL section of ``docs/performance.md``.

    Only the block between the markers changes; the section's heading and any text
    after the block are kept. Without the markers, a new "PostgreSQL" section is
    appended.
    """
    text = DOC.read_text() if DOC.exists() else ""
    block = f"{DOC_BEGIN}\n{markdown}\n{DOC_END}"
    if DOC_BEGIN in text and DOC_END in text:
        before, rest = text.split(DOC_BEGIN, 1)
        _, after = rest.split(DOC_END, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + "## PostgreSQL\n\n" + block + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and save the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.postgres", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="about 3 minutes")
    parser.add_argument(
        "--only",
        action="append",
        choices=["throughput", "latency"],
        help="run only these phases (repeatable)",
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("EXCHANGE_BENCH_POSTGRES", DEFAULT_SERVER),
        help="PostgreSQL server URL; a fresh database is created per target "
        f"(default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--relay-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for every relay (repeatable), e.g. "
        "EXCHANGE_DATABASE_POOL_PRE_PING=false",
    )
    parser.add_argument(
        "--update-doc",
        action="store_true",
        help="replace the PostgreSQL block of docs/performance.md",
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    phases = args.only or ["throughput", "latency"]
    install_cleanup()
    command = "python -m bench.postgres " + " ".join(argv if argv is not None else sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    started = time.monotonic()
    extra_env = dict(item.split("=", 1) for item in args.relay_env)
    run = Run(mode, workdir, args.server, extra_env)
    log(f"mode {mode.name}, phases {', '.join(phases)}, work directory {workdir}")
    with postgres_database(args.server) as pg_1, postgres_database(args.server) as pg_2:
        try:
            run.start("sqlite", relay_url(workdir / "sqlite.db"), 1)
            run.start("pg-1", pg_1, 1)
            run.start("pg-2", pg_2, 2)
            for phase in phases:
                log(f"phase {phase}")
                getattr(run, phase)()
            run.check()
        finally:
            run.stop()
    duration = time.monotonic() - started
    markdown = run.report(command.strip(), duration)
    print(markdown)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"postgres-{mode.name}-{stamp}.md").write_text(markdown + "\n")
    run.results["duration_s"] = duration
    (RESULTS / f"postgres-{mode.name}-{stamp}.json").write_text(
        json.dumps(run.results, indent=1, default=str)
    )
    log(f"results in {RESULTS}/postgres-{mode.name}-{stamp}.md (and .json)")
    if args.update_doc:
        update_doc(markdown)
        log(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
