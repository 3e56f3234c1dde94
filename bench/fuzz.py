"""The long reliability and security runs (issue 7): crash durability and mutation fuzzing.

The CI suite runs short versions of both (``tests/reliability/test_crash_durability.py``,
``tests/security/test_mutation_fuzz.py``); this runs them at length::

    python -m bench.fuzz crash  --kills 50 [--seed N]       # SIGKILL a real relay 50 times
    python -m bench.fuzz mutate --cases 100000 [--http-cases 5000] [--seed N]
    python -m bench.fuzz all                                # both, with those defaults

Every run prints its counts and seed and exits 0 only if nothing was lost, duplicated,
accepted or crashed. ``--out FILE`` also writes the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["main"]


async def _crash(kills: int, seed: int, submitters: int) -> dict[str, Any]:
    from tests.reliability.crash import run_campaign

    with tempfile.TemporaryDirectory(prefix="fuzz-crash-") as workdir:
        report = await run_campaign(
            Path(workdir),
            kills=kills,
            seed=seed,
            submitters=submitters,
            deadline_seconds=max(600.0, kills * 30.0),
        )
    print(report.summary())
    for failure in report.failures[:50]:
        print(f"  FAILURE: {failure}")
    return {
        "run": "crash",
        "seed": seed,
        "kills": report.kills,
        "accepted": report.accepted,
        "answers_lost_to_a_kill": report.lost_answers,
        "settled_by_retry": report.retried,
        "duplicates_200": report.duplicates_200,
        "receipts": report.receipts,
        "events": report.events,
        "log": report.log_checked,
        "seconds": round(report.seconds, 1),
        "failures": report.failures,
        "ok": not report.failures and report.kills >= kills,
    }


def _mutate_core(cases: int, seed: int) -> dict[str, Any]:
    from tests.security.fuzzing import run_core

    started = time.monotonic()
    stats = run_core(cases, seed)
    print(f"core (seed {seed}, {time.monotonic() - started:.0f}s): {stats.summary()}")
    for line in (stats.crashes + stats.accepted)[:50]:
        print(f"  FAILURE: {line}")
    return {
        "run": "mutate-core",
        "seed": seed,
        "mutated_inputs": stats.total,
        "equivalent_skipped": stats.equivalent,
        "attributed_to_attacker": stats.attributed_to_attacker,
        "by_operator": dict(sorted(stats.counts.items())),
        "rejected_as": dict(stats.rejections.most_common()),
        "crashes": stats.crashes,
        "accepted": stats.accepted,
        "ok": not stats.crashes and not stats.accepted and stats.total >= cases,
    }


async def _mutate_http(cases: int, seed: int) -> dict[str, Any]:
    import aiohttp

    from exchange.settings import Settings
    from exchange.testing import started_relay
    from keys.testing import Partnership
    from tests.relay.conftest import Scene, real_clock
    from tests.security.fuzzing import run_http

    p = Partnership.create(at=datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="fuzz-http-") as workdir:
        db = Path(workdir) / "relay.db"
        settings = Settings(
            relay_id="fuzz-relay",
            root_public_key=p.root.public_key,
            database_url=f"sqlite+aiosqlite:///{db}",
            run_sweeper=False,
            rate_limit_per_second=1e6,
            rate_limit_burst=10**6,
            log_level="WARNING",
        )
        started = time.monotonic()
        async with started_relay(settings) as relay, aiohttp.ClientSession() as session:
            scene = Scene(relay, p, session, real_clock, settings, db)
            for member in p.members.values():
                assert (await scene.publish(member.certificate)).status == 201
            try:
                summary = await run_http(scene, cases, seed)
                ok, failure = True, None
            except AssertionError as exc:
                summary, ok, failure = f"http (seed {seed}): FAILED", False, str(exc)[:2000]
    print(f"{summary} ({time.monotonic() - started:.0f}s)")
    if failure:
        print(f"  FAILURE: {failure}")
    return {"run": "mutate-http", "seed": seed, "cases": cases, "summary": summary, "ok": ok}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen long runs; exit status 0 only if every one passed."""
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("run", choices=["crash", "mutate", "all"])
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh one, printed")
    parser.add_argument("--kills", type=int, default=50, help="relay SIGKILLs (crash)")
    parser.add_argument("--submitters", type=int, default=4, help="concurrent submitters (crash)")
    parser.add_argument("--cases", type=int, default=100_000, help="core mutants (mutate)")
    parser.add_argument("--http-cases", type=int, default=5_000, help="HTTP mutants (mutate)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"seed {seed}")
    results: list[dict[str, Any]] = []
    if args.run in ("crash", "all"):
        results.append(asyncio.run(_crash(args.kills, seed, args.submitters)))
    if args.run in ("mutate", "all"):
        results.append(_mutate_core(args.cases, seed))
        if args.http_cases:
            results.append(asyncio.run(_mutate_http(args.http_cases, seed)))
    total = sum(r.get("mutated_inputs", 0) for r in results) + sum(
        r.get("cases", 0) for r in results if r["run"] == "mutate-http"
    )
    if total:
        print(f"mutated inputs in this run: {total}")
    if args.out:
        args.out.write_text(json.dumps({"seed": seed, "results": results}, indent=2) + "\n")
    ok = all(r["ok"] for r in results)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
