"""The relay, side by side with a ceiling and with NHS Digital's mesh-sandbox, in one run.

    .venv/bin/python -m bench.relay --quick     # about 3 minutes
    .venv/bin/python -m bench.relay             # full mode, about 25 minutes

Prints Markdown tables and writes them (and the raw figures as JSON) to
``bench/results/``; ``--update-doc`` also replaces the results block of
``docs/performance.md``. Every figure is a median over repeated runs; ratios are
taken per round (the runs being compared are interleaved within each round, so a
burst of load from elsewhere on this shared machine hits both sides) and their
median is shown.

Phases (``--only`` picks some):

* ``throughput``: closed-loop submit, then closed-loop receive-and-acknowledge, on the
  ceiling (``bench/ceiling_server.py``), the relay (``exchange serve``) and mesh-sandbox;
* ``latency``: open-loop submits at a fixed rate to the relay and the ceiling, with
  a push (server-sent events) listener on the recipient: submit latency and
  submit-to-push latency;
* ``scaling``: the relay over databases pre-filled with 1k / 100k / 1M stored
  messages (``bench/_prefill.py``), all running at once, measured in rotation;
* ``push``: the relay with 10 and then 1,000 connected push clients.

Servers and load generators are separate processes (see ``PROCESSES``); servers
start on free loopback ports, are polled on ``/health`` (bounded) and are always
torn down (process groups, ``try``/``finally``, ``atexit`` and signal handlers).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._pool import bench_at, bench_partnership, extra_key, template
from bench._prefill import prefill_relay
from bench._proc import LoadGen, LoadGenError, Server, install_cleanup
from bench._servers import (
    RELAY_BENCH_ENV,
    REPO,
    mesh_available,
    publish_certificates,
    start_ceiling,
    start_mesh,
    start_relay,
)

STANDARD = ["school", "second_school", "academy", "gp", "police", "nursery", "mash", "auditor",
            "clinic", "health_visiting", "charity", "unrelated"]
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "performance.md"
DOC_BEGIN = "<!-- bench:relay:begin -->"
DOC_END = "<!-- bench:relay:end -->"


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
    store_sizes: tuple[int, ...]
    scaling_rounds: int
    scaling_seconds: float
    push_clients: tuple[int, ...]
    push_rounds: int
    push_seconds: float
    push_latency_seconds: float
    #: How long an open-loop run waits for answers after its last send (then: unanswered).
    drain_seconds: float


QUICK = Mode("quick", rounds=3, seconds=2.5, concurrency=64, latency_rate=1000.0,
             latency_seconds=10.0, latency_rounds=1, store_sizes=(1_000, 20_000),
             scaling_rounds=2, scaling_seconds=2.0, push_clients=(10, 1000), push_rounds=1,
             push_seconds=2.0, push_latency_seconds=3.0, drain_seconds=10.0)
FULL = Mode("full", rounds=5, seconds=10.0, concurrency=64, latency_rate=1000.0,
            latency_seconds=30.0, latency_rounds=3, store_sizes=(1_000, 100_000, 1_000_000),
            scaling_rounds=3, scaling_seconds=5.0, push_clients=(10, 1000), push_rounds=3,
            push_seconds=5.0, push_latency_seconds=10.0, drain_seconds=60.0)

GOALS = {
    "relay_vs_ceiling": 0.5,
    "relay_vs_mesh": 10.0,
    "submit_p99_ms": 25.0,
    "push_p99_ms": 50.0,
}


# -- small helpers ---------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on standard error (the tables go to standard output)."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None, or None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    """A number with thousands separators, an en dash for none, ∞ for unanswered."""
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:,.{digits}f}{suffix}"


def ratio(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """A ratio, or an en dash."""
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def met(flag: bool | None) -> str:
    """Yes / no / unknown."""
    return "–" if flag is None else ("**yes**" if flag else "**no**")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     + " |")
    return "\n".join(lines)


def machine_busy() -> tuple[float, float]:
    """Busy and total CPU time of the whole machine so far (``/proc/stat``), in ticks."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def rotate(items: list[Any], r: int) -> list[Any]:
    """``items`` rotated by ``r`` (which target goes first changes every round)."""
    r %= len(items)
    return items[r:] + items[:r]


@dataclass
class Measure:
    """One timed run against one server."""

    rate: float
    ok: int
    elapsed: float
    server_cpu: float
    client_cpu: float
    statuses: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_per_message_us(self) -> float | None:
        """Server CPU (all threads) per successful message, in microseconds."""
        return self.server_cpu / self.ok * 1e6 if self.ok else None


def timed(server: Server, call: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """Run ``call`` and return its answer and the server's CPU seconds meanwhile."""
    before = server.stats().cpu
    answer = call()
    return answer, server.stats().cpu - before


def measure(server: Server, loadgen: LoadGen, cmd: str, timeout: float,
            **args: Any) -> Measure:
    """One closed-loop run (a failed run is recorded as zero, with its error)."""
    try:
        answer, cpu = timed(server, lambda: loadgen.call(cmd, timeout, **args))
    except LoadGenError as exc:
        log(f"run failed: {exc}")
        return Measure(rate=0.0, ok=0, elapsed=0.0, server_cpu=0.0, client_cpu=0.0,
                       statuses={"error": 1}, extra={"error": str(exc)})
    return Measure(rate=answer["rate"], ok=answer["ok"], elapsed=answer["elapsed"],
                   server_cpu=cpu, client_cpu=answer["client_cpu"],
                   statuses=answer["statuses"],
                   extra={k: v for k, v in answer.items()
                          if k in {"latency", "cursor", "exhausted"}})


# -- the run ---------------------------------------------------------------------------------


class Run:
    """State of one benchmark run: mode, partnership, temporary directory, results."""

    def __init__(self, mode: Mode, workdir: Path, with_mesh: bool) -> None:
        self.mode = mode
        self.workdir = workdir
        self.with_mesh = with_mesh
        self.at = bench_at()
        self.partnership = bench_partnership(self.at)
        self.results: dict[str, Any] = {"mode": mode.name, "cores": os.cpu_count(),
                                        "started": datetime.now(UTC).isoformat(),
                                        "settings": asdict(mode),
                                        "relay_env": RELAY_BENCH_ENV}
        self.sections: list[str] = []
        self.code = code_version()  # at the start: the relay's code may change during a run
        #: Per phase: how busy the whole machine was (others' work included) and its load.
        self.machine: dict[str, dict[str, float]] = {}
        self.results["machine"] = self.machine

    def loadgen(self, name: str, kind: str, port: int) -> LoadGen:
        """A load-generator process for one server."""
        return LoadGen(name, {"kind": kind, "port": port, "at": self.at.isoformat()},
                       log_path=self.workdir / f"{name}.log", cwd=str(REPO))

    def dir(self, name: str) -> Path:
        """A fresh sub-directory of the run's temporary directory."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def servers(self, *starters: tuple[str, Callable[[], Server]]) -> Iterator[dict[str, Server]]:
        """Start servers; always stop them."""
        started: dict[str, Server] = {}
        try:
            for name, start in starters:
                log(f"starting {name}")
                started[name] = start()
            yield started
        finally:
            for server in started.values():
                server.stop()

    # -- phase: throughput -------------------------------------------------------------------

    def throughput(self) -> None:
        mode = self.mode
        d = self.dir("throughput")
        starters: list[tuple[str, Callable[[], Server]]] = [
            ("ceiling", lambda: start_ceiling(self.partnership, d)),
            ("relay", lambda: start_relay(
                self.partnership, d, publish=[*STANDARD, *(extra_key(i) for i in range(10))])),
        ]
        if self.with_mesh:
            starters.append(("mesh", lambda: start_mesh(d)))
        with self.servers(*starters) as servers:
            targets = list(servers)
            gens = {t: self.loadgen(f"loadgen-{t}", t, servers[t].port) for t in targets}
            estimate = {"ceiling": 6000.0, "relay": 4000.0, "mesh": 600.0}
            cursor = dict.fromkeys(targets, 0)
            submit: dict[str, list[Measure]] = {t: [] for t in targets}
            receive: dict[str, list[Measure]] = {t: [] for t in targets}
            try:
                for r in range(mode.rounds):
                    for t in targets:  # untimed: derive this round's envelopes
                        need = int(estimate[t] * mode.seconds * 1.4) + 200
                        gens[t].send("clear")
                        gens[t].receive(30)
                        gens[t].send("prepare", sender="school", recipients=["mash"], count=need)
                    for t in targets:
                        gens[t].receive(600)
                    for t in rotate(targets, r):
                        m = measure(servers[t], gens[t], "submit_closed", mode.seconds + 120,
                                    duration=mode.seconds, concurrency=mode.concurrency,
                                    sender="school")
                        submit[t].append(m)
                        estimate[t] = max(m.rate, 50.0)
                        log(f"round {r + 1}/{mode.rounds} submit {t}: {m.rate:,.0f}/s "
                            f"({m.statuses}) server CPU {m.cpu_per_message_us or 0:,.0f} µs/msg")
                    for t in rotate(targets, r):
                        m = measure(servers[t], gens[t], "receive_closed", mode.seconds + 120,
                                    duration=mode.seconds, concurrency=mode.concurrency,
                                    agency="mash", since=cursor[t])
                        cursor[t] = m.extra.get("cursor", cursor[t])
                        receive[t].append(m)
                        log(f"round {r + 1}/{mode.rounds} receive+ack {t}: {m.rate:,.0f}/s "
                            f"({m.statuses})")
                rss = {t: servers[t].stats().rss_kib / 1024 for t in targets}
            finally:
                for gen in gens.values():
                    gen.stop()
        self.results["throughput"] = {
            "submit": {t: [asdict(m) for m in ms] for t, ms in submit.items()},
            "receive": {t: [asdict(m) for m in ms] for t, ms in receive.items()},
            "rss_mib": rss,
        }
        self.sections.append(self._throughput_table(targets, submit, receive, rss))

    def _throughput_table(self, targets: list[str], submit: dict[str, list[Measure]],
                          receive: dict[str, list[Measure]], rss: dict[str, float]) -> str:
        mode = self.mode
        has_mesh = "mesh" in targets
        rows = []
        verdicts: dict[str, Any] = {}
        for label, runs in (("submit", submit), ("receive + ack", receive)):
            rates = {t: median([m.rate for m in runs[t]]) for t in targets}
            per_round_ceiling = [
                rl.rate / c.rate for rl, c in zip(runs["relay"], runs["ceiling"], strict=True)
                if c.rate
            ]
            vs_ceiling = median(per_round_ceiling)
            vs_mesh = None
            if has_mesh:
                vs_mesh = median([rl.rate / m.rate for rl, m in
                                  zip(runs["relay"], runs["mesh"], strict=True) if m.rate])
            ok_c = None if vs_ceiling is None else vs_ceiling >= GOALS["relay_vs_ceiling"]
            ok_m = None if vs_mesh is None else vs_mesh >= GOALS["relay_vs_mesh"]
            verdicts[label] = (vs_ceiling, vs_mesh, ok_c, ok_m)
            rows.append([
                f"{label}, msgs/s",
                fmt(rates["ceiling"]), fmt(rates["relay"]),
                ratio(vs_ceiling, 2, "×") + f" (goal ≥ {GOALS['relay_vs_ceiling']}) "
                + met(ok_c),
                fmt(rates.get("mesh")) if has_mesh else "not run",
                ratio(vs_mesh, 1, "×") + f" (goal ≥ {GOALS['relay_vs_mesh']:.0f}) " + met(ok_m),
            ])
            cpu = {t: median([m.cpu_per_message_us for m in runs[t]]) for t in targets}
            implied_c = (None if not cpu["ceiling"] or not cpu["relay"]
                         else cpu["ceiling"] / cpu["relay"])
            mesh_cpu = cpu.get("mesh")
            implied_m = (None if not mesh_cpu or not cpu["relay"]
                         else mesh_cpu / cpu["relay"])
            verdicts[label + " (CPU)"] = (implied_c, implied_m)
            rows.append([
                f"{label}, server CPU µs/msg",
                fmt(cpu["ceiling"]), fmt(cpu["relay"]),
                ratio(implied_c, 2, "× by CPU per message"),
                fmt(cpu.get("mesh")) if has_mesh else "not run",
                ratio(implied_m, 1, "× by CPU per message"),
            ])
            client = {t: median([m.client_cpu / m.elapsed * 100 for m in runs[t] if m.elapsed])
                      for t in targets}
            server_busy = {t: median([m.server_cpu / m.elapsed * 100 for m in runs[t]
                                      if m.elapsed]) for t in targets}
            rows.append([
                f"{label}, server / load-generator CPU %",
                f"{fmt(server_busy['ceiling'])} / {fmt(client['ceiling'])}",
                f"{fmt(server_busy['relay'])} / {fmt(client['relay'])}", "",
                (f"{fmt(server_busy['mesh'])} / {fmt(client['mesh'])}" if has_mesh
                 else "not run"), "",
            ])
        lat = {t: (median([m.extra["latency"]["p50"] * 1e3 for m in submit[t]
                           if m.extra.get("latency", {}).get("p50") is not None]),
                   median([m.extra["latency"]["p99"] * 1e3 for m in submit[t]
                           if m.extra.get("latency", {}).get("p99") is not None]))
               for t in targets}
        rows.append([
            f"submit latency p50 / p99 ms ({mode.concurrency} in flight)",
            f"{fmt(lat['ceiling'][0], 1)} / {fmt(lat['ceiling'][1], 1)}",
            f"{fmt(lat['relay'][0], 1)} / {fmt(lat['relay'][1], 1)}", "",
            (f"{fmt(lat['mesh'][0], 1)} / {fmt(lat['mesh'][1], 1)}" if has_mesh else "not run"),
            "",
        ])
        rows.append(["server RSS after the phase, MiB", fmt(rss["ceiling"]), fmt(rss["relay"]),
                     "", fmt(rss.get("mesh")) if has_mesh else "not run", ""])
        errors = []
        for label, runs in (("submit", submit), ("receive", receive)):
            for t in targets:
                for m in runs[t]:
                    bad = {k: v for k, v in m.statuses.items()
                           if not k.endswith(("200", "201", "202"))}
                    if bad:
                        errors.append(f"{t} {label}: {bad}")
        self.results["verdicts_throughput"] = verdicts
        text = [
            f"#### Throughput, closed loop ({mode.concurrency} connections, "
            f"{mode.rounds} rounds of {mode.seconds:g} s per server and direction)",
            "",
            table(["", "ceiling", "relay", "relay ÷ ceiling", "mesh-sandbox", "relay ÷ mesh"],
                  rows),
        ]
        text += [
            "",
            "Rates are medians over the rounds; a ratio is the median of the per-round ratios "
            "(the servers compared take turns within each round). The ratio *by CPU per "
            "message* is the inverse ratio of server CPU spent per message: the capacity "
            "ratio if both sides were given the same CPU, which load from elsewhere on a "
            "shared machine disturbs much less than it disturbs rates.",
        ]
        if errors:
            text += ["", "Non-success answers: " + "; ".join(sorted(set(errors)))]
        return "\n".join(text)

    # -- phase: latency ----------------------------------------------------------------------

    def latency(self) -> None:
        mode = self.mode
        d = self.dir("latency")
        starters = [
            ("ceiling", lambda: start_ceiling(self.partnership, d)),
            ("relay", lambda: start_relay(
                self.partnership, d, publish=[*STANDARD, *(extra_key(i) for i in range(10))])),
        ]
        results: dict[str, list[dict[str, Any]]] = {"ceiling": [], "relay": []}
        with self.servers(*starters) as servers:
            targets = list(servers)
            senders = {t: self.loadgen(f"latency-sender-{t}", t, servers[t].port) for t in targets}
            listeners = {t: self.loadgen(f"latency-listener-{t}", t, servers[t].port)
                         for t in targets}
            try:
                count = int(mode.latency_rate * mode.latency_seconds)
                for r in range(mode.latency_rounds):
                    recipient = extra_key(r)  # a fresh inbox each round
                    for t in targets:
                        senders[t].send("clear")
                        senders[t].receive(30)
                        senders[t].send("prepare", sender="school", recipients=[recipient],
                                        count=count)
                    for t in targets:
                        senders[t].receive(600)
                    for t in rotate(targets, r):
                        results[t].append(self._open_loop(
                            servers[t], senders[t], listeners[t], [recipient], 1,
                            mode.latency_rate, mode.latency_seconds))
                        res = results[t][-1]
                        log(f"latency round {r + 1} {t}: submit p99 {res['submit_p99_ms']:.1f} ms,"
                            f" push p99 {fmt(res['push_p99_ms'], 1)} ms, ok {res['ok']}/"
                            f"{res['sent']}, missing pushes {res['missing']}")
            finally:
                for gen in (*senders.values(), *listeners.values()):
                    gen.stop()
        self.results["latency"] = results
        rows = []

        def col(t: str, key: str, digits: int = 1) -> str:
            return fmt(median([x[key] for x in results[t] if x[key] is not None]), digits)

        p99 = median([x["submit_p99_ms"] for x in results["relay"]])
        push99 = median([x["push_p99_ms"] for x in results["relay"] if x["push_p99_ms"]])
        rows.append(["submit p50, ms", col("ceiling", "submit_p50_ms"),
                     col("relay", "submit_p50_ms"), "", ""])
        rows.append(["submit p99, ms", col("ceiling", "submit_p99_ms"),
                     col("relay", "submit_p99_ms"), f"≤ {GOALS['submit_p99_ms']:.0f}",
                     met(None if p99 is None else p99 <= GOALS["submit_p99_ms"])])
        rows.append(["submit max, ms", col("ceiling", "submit_max_ms"),
                     col("relay", "submit_max_ms"), "", ""])
        rows.append(["submit-to-push p50, ms", col("ceiling", "push_p50_ms"),
                     col("relay", "push_p50_ms"), "", ""])
        rows.append(["submit-to-push p99, ms", col("ceiling", "push_p99_ms"),
                     col("relay", "push_p99_ms"), f"≤ {GOALS['push_p99_ms']:.0f}",
                     met(None if push99 is None else push99 <= GOALS["push_p99_ms"])])
        rows.append(["accepted / sent", *(
            f"{sum(x['ok'] for x in results[t]):,} / {sum(x['sent'] for x in results[t]):,}"
            for t in ("ceiling", "relay")), "", ""])
        rows.append(["sent but never pushed", *(f"{sum(x['missing'] for x in results[t]):,}"
                                         for t in ("ceiling", "relay")), "", ""])
        rows.append(["offered rate, msgs/s", col("ceiling", "offered_rate", 0),
                     col("relay", "offered_rate", 0), "", ""])
        rows.append(["server CPU busy, %", col("ceiling", "server_busy", 0),
                     col("relay", "server_busy", 0), "", ""])
        self.results["verdicts_latency"] = {"submit_p99_ms": p99, "push_p99_ms": push99}
        quick = (" (quick mode: 10 s, not the 30 s the goal names)"
                 if mode.latency_seconds < 30 else "")
        self.sections.append("\n".join([
            f"#### Latency, open loop at {mode.latency_rate:,.0f} msgs/s for "
            f"{mode.latency_seconds:.0f} s{quick}, {mode.latency_rounds} round(s)",
            "",
            "Latency is measured from each submission's *scheduled* instant (no coordinated "
            "omission); submit-to-push ends when the recipient's event stream delivers the item.",
            "",
            table(["", "ceiling", "relay", "goal", "met"], rows),
        ]))

    def _open_loop(self, server: Server, sender: LoadGen, listener: LoadGen,
                   recipients: list[str], per_agency: int, rate: float,
                   seconds: float) -> dict[str, Any]:
        """Listen on ``recipients``, submit open loop, stop listening; both latencies."""
        opened = listener.call("listen_start", 300, agencies=recipients, per_agency=per_agency)
        sent, cpu = self._send_open_loop(server, sender, rate, seconds)
        time.sleep(1.0)  # stragglers
        heard = listener.call("listen_stop", 120)
        return self._latencies(sent, heard, cpu, seconds, opened, server)

    def _send_open_loop(self, server: Server, sender: LoadGen, rate: float,
                        seconds: float) -> tuple[dict[str, Any], float]:
        before = server.stats().cpu
        sent = sender.call("latency_open", seconds + self.mode.drain_seconds + 120, rate=rate,
                           duration=seconds, sender="school",
                           drain_timeout=self.mode.drain_seconds)
        return sent, server.stats().cpu - before

    @staticmethod
    def _latencies(sent: dict[str, Any], heard: dict[str, Any], cpu: float, seconds: float,
                   opened: dict[str, Any], server: Server) -> dict[str, Any]:
        arrivals: dict[str, float] = heard["arrivals"]
        sent_at: dict[str, float] = sent["sent_at"]
        # Every message sent counts: one never pushed (refused, unanswered or lost) is
        # infinitely late, so a percentile is never flattered by what did not arrive.
        push = sorted(arrivals[m] - t if m in arrivals else math.inf for m, t in sent_at.items())
        ok = sent["ok"]
        lat = sent["latency"]

        def pct(values: list[float], q: float) -> float | None:
            return values[min(len(values) - 1, int(q * len(values)))] * 1e3 if values else None

        return {
            "sent": sent["sent"], "ok": ok, "statuses": sent["statuses"],
            "offered_rate": sent["offered_rate"], "connections": sent["connections"],
            "late_wakeups": sent["late_wakeups"], "client_cpu": sent["client_cpu"],
            "server_cpu": cpu, "server_busy": cpu / seconds * 100,
            "submit_p50_ms": (lat["p50"] or 0) * 1e3, "submit_p99_ms": (lat["p99"] or 0) * 1e3,
            "submit_max_ms": (lat["max"] or 0) * 1e3,
            "push_p50_ms": pct(push, 0.5), "push_p99_ms": pct(push, 0.99),
            "push_max_ms": push[-1] * 1e3 if push else None,
            "missing": sum(1 for m in sent_at if m not in arrivals), "streams": opened,
            "events_heard": len(arrivals),
            "rss_mib": server.stats().rss_kib / 1024,
        }

    # -- phase: scaling with stored messages -------------------------------------------------

    def scaling(self) -> None:
        mode = self.mode
        sizes = list(mode.store_sizes)
        base = template(self.partnership, "school", "mash", self.at)
        prefill: dict[int, dict[str, float]] = {}
        starters = []
        for size in sizes:
            d = self.dir(f"scaling-{size}")
            db = d / "relay.db"
            log(f"pre-filling a relay database with {size:,} messages")
            publish_certificates(self.partnership, STANDARD, d, db)
            prefill[size] = prefill_relay(db, self.partnership, base, size)
            log(f"  {prefill[size]['seconds']:.0f} s, {prefill[size]['db_bytes'] / 2**30:.2f} GiB")
            starters.append((f"relay-{size}", lambda d=d, db=db, size=size: start_relay(
                self.partnership, d, publish=STANDARD, db=db, name=f"relay-{size}")))
        submit: dict[int, list[Measure]] = {s: [] for s in sizes}
        receive: dict[int, list[Measure]] = {s: [] for s in sizes}
        probes: dict[int, dict[str, Any]] = {}
        with self.servers(*starters) as servers:
            by_size = {s: servers[f"relay-{s}"] for s in sizes}
            idle_rss = {s: by_size[s].stats().rss_kib / 1024 for s in sizes}
            gens = {s: self.loadgen(f"loadgen-scaling-{s}", "relay", by_size[s].port)
                    for s in sizes}
            cursor = {s: int(prefill[s]["inbox_cursor"]) for s in sizes}
            estimate = dict.fromkeys(sizes, 4000.0)
            try:
                for r in range(mode.scaling_rounds):
                    for s in sizes:
                        gens[s].send("clear")
                        gens[s].receive(30)
                        gens[s].send("prepare", sender="school", recipients=["mash"],
                                     count=int(estimate[s] * mode.scaling_seconds * 1.4) + 200)
                    for s in sizes:
                        gens[s].receive(600)
                    for s in rotate(sizes, r):
                        m = measure(by_size[s], gens[s], "submit_closed",
                                    mode.scaling_seconds + 120, duration=mode.scaling_seconds,
                                    concurrency=mode.concurrency, sender="school")
                        submit[s].append(m)
                        estimate[s] = max(m.rate, 50.0)
                        log(f"scaling round {r + 1} {s:,} stored: submit {m.rate:,.0f}/s")
                    for s in rotate(sizes, r):
                        m = measure(by_size[s], gens[s], "receive_closed",
                                    mode.scaling_seconds + 120, duration=mode.scaling_seconds,
                                    concurrency=mode.concurrency, agency="mash", since=cursor[s])
                        cursor[s] = m.extra.get("cursor", cursor[s])
                        receive[s].append(m)
                        log(f"scaling round {r + 1} {s:,} stored: receive+ack {m.rate:,.0f}/s")
                for s in sizes:
                    # A client that re-reads its inbox from the start (cursor 0) is allowed:
                    # delivered items must not make that slow.
                    probes[s] = gens[s].call("probe_inbox", 300, agency="mash", since=0, count=5)
                    log(f"inbox from cursor 0 with {s:,} stored: "
                        f"{probes[s]['median'] * 1e3:.1f} ms")
                rss = {s: by_size[s].stats().rss_kib / 1024 for s in sizes}
                hwm = {s: by_size[s].stats().hwm_kib / 1024 for s in sizes}
            finally:
                for gen in gens.values():
                    gen.stop()
        self.results["scaling"] = {
            "prefill": prefill, "probes": probes, "idle_rss_mib": idle_rss, "rss_mib": rss,
            "hwm_mib": hwm,
            "submit": {s: [asdict(m) for m in ms] for s, ms in submit.items()},
            "receive": {s: [asdict(m) for m in ms] for s, ms in receive.items()},
        }
        small = sizes[0]
        rows = []
        flat = True
        for s in sizes:
            sub = median([m.rate for m in submit[s]])
            rec = median([m.rate for m in receive[s]])
            sub_r = median([a.rate / b.rate for a, b in zip(submit[s], submit[small], strict=True)
                            if b.rate])
            rec_r = median([a.rate / b.rate for a, b in
                            zip(receive[s], receive[small], strict=True) if b.rate])
            cpu_s = median([m.cpu_per_message_us for m in submit[s]])
            cpu_r = median([m.cpu_per_message_us for m in receive[s]])
            cpu_s0 = median([m.cpu_per_message_us for m in submit[small]])
            cpu_r0 = median([m.cpu_per_message_us for m in receive[small]])
            if s != small and cpu_s and cpu_s0 and cpu_r and cpu_r0:
                flat = flat and cpu_s / cpu_s0 <= 1.25 and cpu_r / cpu_r0 <= 1.25
            rows.append([
                f"{s:,}", fmt(sub), ratio(sub_r), fmt(cpu_s), fmt(rec), ratio(rec_r), fmt(cpu_r),
                fmt(probes[s]["median"] * 1e3, 1),
                f"{fmt(idle_rss[s])} → {fmt(rss[s])}",
                fmt(prefill[s]["db_bytes"] / 2**30, 2),
            ])
        self.results["verdicts_scaling"] = {"flat_cpu_per_message": flat}
        self.sections.append("\n".join([
            f"#### Scaling with stored messages ({mode.scaling_rounds} rounds of "
            f"{mode.scaling_seconds:.0f} s per size and direction, {mode.concurrency} connections;"
            f" ratios against the {small:,} store in the same round)",
            "",
            table(["stored", "submit/s", "÷ smallest", "CPU µs/submit", "receive+ack/s",
                   "÷ smallest", "CPU µs/receive", "inbox from cursor 0, ms",
                   "relay RSS MiB (idle → after)", "DB GiB"], rows),
            "",
            f"Cost per message flat (server CPU per message within 25% of the smallest store): "
            f"{met(flat)}",
        ]))

    # -- phase: push clients -----------------------------------------------------------------

    def push(self) -> None:
        mode = self.mode
        counts = list(mode.push_clients)
        results: dict[int, dict[str, Any]] = {}
        for n in counts:
            # A fresh relay per client count: a disconnected stream keeps its slot until
            # the relay next writes to it (the heartbeat), which would skew the next count.
            d = self.dir(f"push-{n}")
            agencies = [extra_key(i) for i in range(n)]
            name = f"relay-push-{n}"
            starter = functools.partial(start_relay, self.partnership, d,
                                        publish=[*STANDARD, *agencies], name=name)
            with self.servers((name, starter)) as servers:
                server = servers[name]
                sender = self.loadgen(f"push-sender-{n}", "relay", server.port)
                listener = self.loadgen(f"push-listener-{n}", "relay", server.port)
                try:
                    base_rss = server.stats().rss_kib / 1024
                    log(f"connecting {n} push clients")
                    opened = listener.call("listen_start", 300, agencies=agencies)
                    time.sleep(1.0)
                    connected_rss = server.stats().rss_kib / 1024
                    runs: list[Measure] = []
                    for r in range(mode.push_rounds):
                        sender.send("clear")
                        sender.receive(30)
                        sender.call("prepare", 600, sender="school", recipients=agencies,
                                    count=int(3000 * mode.push_seconds) + 200)
                        m = measure(server, sender, "submit_closed", mode.push_seconds + 120,
                                    duration=mode.push_seconds, concurrency=mode.concurrency,
                                    sender="school")
                        runs.append(m)
                        log(f"push {n} clients round {r + 1}: submit {m.rate:,.0f}/s "
                            f"({m.statuses})")
                    # Then open loop at the latency rate, the same streams still connected.
                    sender.send("clear")
                    sender.receive(30)
                    sender.call("prepare", 600, sender="school", recipients=agencies,
                                count=int(mode.latency_rate * mode.push_latency_seconds))
                    sent, cpu = self._send_open_loop(server, sender, mode.latency_rate,
                                                     mode.push_latency_seconds)
                    time.sleep(1.0)
                    heard = listener.call("listen_stop", 120)
                    lat = self._latencies(sent, heard, cpu, mode.push_latency_seconds, opened,
                                          server)
                    accepted = sum(m.ok for m in runs) + sent["ok"]
                    results[n] = {
                        "opened": opened, "base_rss_mib": base_rss,
                        "connected_rss_mib": connected_rss,
                        "runs": [asdict(m) for m in runs], "accepted": accepted,
                        "pushed": len(heard["arrivals"]), "latency": lat,
                        "rss_after_mib": server.stats().rss_kib / 1024,
                    }
                    log(f"push {n} clients: connected {opened['connected']}, refused "
                        f"{opened['refused']}; open loop push p99 {fmt(lat['push_p99_ms'], 1)} ms")
                finally:
                    sender.stop()
                    listener.stop()
        self.results["push"] = results
        small = counts[0]
        rows = []
        for n in counts:
            res = results[n]
            push_rate = median([m["rate"] for m in res["runs"]])
            r0 = median([m["rate"] for m in results[small]["runs"]])
            cpu_us = median([m["server_cpu"] / m["ok"] * 1e6 for m in res["runs"] if m["ok"]])
            lat = res["latency"]
            refused = res["opened"]["refused"]
            rows.append([
                f"{n:,}",
                f"{res['opened']['connected']:,}" + (f" (refused {refused})" if refused else ""),
                fmt(res["base_rss_mib"]) + " → " + fmt(res["connected_rss_mib"]),
                fmt(push_rate),
                ratio(None if not r0 or push_rate is None else push_rate / r0), fmt(cpu_us),
                f"{res['pushed']:,} / {res['accepted']:,}",
                f"{fmt(lat['submit_p99_ms'], 1)} / {fmt(lat['push_p50_ms'], 1)} / "
                f"{fmt(lat['push_p99_ms'], 1)}",
                f"{lat['ok']:,} / {lat['sent']:,}",
                fmt(res["rss_after_mib"]),
            ])
        self.sections.append("\n".join([
            f"#### Push clients ({mode.push_rounds} closed-loop round(s) of "
            f"{mode.push_seconds:.0f} s"
            f" per client count, messages addressed round robin to the connected agencies, one "
            f"stream per agency, a fresh relay per count; then open loop at "
            f"{mode.latency_rate:,.0f} msgs/s for {mode.push_latency_seconds:.0f} s)",
            "",
            table(["push clients", "connected", "relay RSS MiB (before → connected)",
                   "submit/s", f"÷ {small} clients", "CPU µs/submit",
                   "pushed / accepted (all runs)",
                   "open loop: submit p99 / push p50 / push p99, ms", "accepted / sent",
                   "RSS after, MiB"], rows),
        ]))

    # -- report ------------------------------------------------------------------------------

    def report(self, command: str, duration: float) -> str:
        header = [
            f"Run of {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, mode **{self.mode.name}**,"
            f" {os.cpu_count()} cores, {duration / 60:.1f} minutes; command: `{command}`; "
            f"code at the start: {self.code}.",
            "",
            "Processes: each server under test is one process (the relay: `exchange serve`; "
            "the ceiling: `bench.ceiling_server`; mesh-sandbox: uvicorn with one worker); each "
            "timed run is driven by one load-generator process (`bench.loadgen`, "
            f"{self.mode.concurrency} keep-alive connections) and the latency and push runs by "
            "two (a sender and a push listener); the orchestrator only waits during timed "
            "windows. Server and load generators share the machine's 2 cores.",
            "",
            "Relay settings changed for the benchmark: "
            + ", ".join(f"`{k}={v}`" for k, v in RELAY_BENCH_ENV.items())
            + " (one sending agency carries all the load); everything else is the default "
            "(SQLite WAL, `synchronous=FULL`, JSON logs at INFO to a file).",
        ]
        if self.machine:
            header += [
                "",
                "How busy the whole machine was during each phase (all processes, this "
                "benchmark's included; 100% = both cores) and its 1-minute load average: "
                + "; ".join(
                    f"{phase} {m['busy_percent']:.0f}%, load {m['load_before']:.1f} → "
                    f"{m['load_after']:.1f}"
                    for phase, m in self.machine.items()
                )
                + ". A load above 2 means other work was competing for the cores.",
            ]
        return "\n".join([*header, "", *("\n\n".join(self.sections).split("\n"))])


def code_version() -> str:
    """The commit, and whether the relay's code differs from it (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "exchange"], cwd=REPO,
                               text=True, capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return f"`{head}`" + (" with uncommitted changes in exchange/" if dirty else "")


def update_doc(markdown: str) -> None:
    """Replace the results block of ``docs/performance.md`` (between the markers)."""
    text = DOC.read_text() if DOC.exists() else ""
    block = f"{DOC_BEGIN}\n{markdown}\n{DOC_END}"
    if DOC_BEGIN in text and DOC_END in text:
        before, rest = text.split(DOC_BEGIN, 1)
        _, after = rest.split(DOC_END, 1)
        text = before + block + after
    else:
        text = text + ("\n\n" if text else "") + block + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and save the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.relay",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 3 minutes")
    parser.add_argument("--only", action="append",
                        choices=["throughput", "latency", "scaling", "push"],
                        help="run only these phases (repeatable)")
    parser.add_argument("--no-mesh", action="store_true", help="skip mesh-sandbox")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--update-doc", action="store_true",
                        help="replace the results block of docs/performance.md")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    phases = args.only or ["throughput", "latency", "scaling", "push"]
    with_mesh = not args.no_mesh and "throughput" in phases
    if with_mesh and not mesh_available():
        log("mesh-sandbox is not installed: python3.11 -m venv bench/.venv-mesh && "
            "bench/.venv-mesh/bin/pip install mesh-sandbox; running without it")
        with_mesh = False
    install_cleanup()
    command = "python -m bench.relay " + " ".join(argv if argv is not None else sys.argv[1:])
    workdir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    started = time.monotonic()
    run = Run(mode, workdir, with_mesh)
    log(f"mode {mode.name}, phases {', '.join(phases)}, work directory {workdir}")
    try:
        for phase in phases:
            log(f"phase {phase}")
            busy0, total0 = machine_busy()
            load0 = os.getloadavg()[0]
            getattr(run, phase)()
            busy1, total1 = machine_busy()
            run.machine[phase] = {
                "busy_percent": (busy1 - busy0) / max(total1 - total0, 1.0) * 100,
                "load_before": load0,
                "load_after": os.getloadavg()[0],
            }
    finally:
        duration = time.monotonic() - started
        markdown = run.report(command.strip(), duration)
        print(markdown)
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        (RESULTS / f"relay-{mode.name}-{stamp}.md").write_text(markdown + "\n")
        run.results["duration_s"] = duration
        (RESULTS / f"relay-{mode.name}-{stamp}.json").write_text(
            json.dumps(run.results, indent=1, default=str))
        log(f"results in {RESULTS}/relay-{mode.name}-{stamp}.md (and .json)")
        if args.update_doc and run.sections:
            update_doc(markdown)
            log(f"updated {DOC}")
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
