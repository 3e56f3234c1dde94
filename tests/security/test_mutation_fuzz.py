"""Mutation fuzzing of envelopes and receipts: nothing mutated is accepted, nothing crashes.

The pure core's verify/open paths (relay, recipients, auditor) get ``SGX_FUZZ_CORE_CASES``
mutants (default 24,000) and the real relay gets ``SGX_FUZZ_HTTP_CASES`` (default 2,500)
through HTTP, signed by a real agency; ``SGX_FUZZ_SEED`` fixes the draw (default: a
fresh seed, printed). ``bench/fuzz.py mutate`` runs 100,000+. The mutators and oracles
are in ``tests/security/mutations.py``.
"""

from __future__ import annotations

import os
import random
from typing import Any

from tests.security.fuzzing import run_core, run_http
from tests.security.mutations import Mutator

CORE_CASES = int(os.environ.get("SGX_FUZZ_CORE_CASES", "24000"))
HTTP_CASES = int(os.environ.get("SGX_FUZZ_HTTP_CASES", "2500"))
SEED = int(os.environ.get("SGX_FUZZ_SEED", str(random.SystemRandom().randrange(2**31))))


def test_core_refuses_every_mutant_with_a_typed_error() -> None:
    stats = run_core(CORE_CASES, SEED)
    print(f"core (seed {SEED}): {stats.summary()}")
    context = f"seed {SEED}: {stats.summary()}"
    assert stats.total >= CORE_CASES, context
    assert stats.crashes == [], context + "\n" + "\n".join(stats.crashes[:20])
    assert stats.accepted == [], context + "\n" + "\n".join(stats.accepted[:20])
    operators = {op.split(":")[0] for op in stats.counts}
    assert set(Mutator.ENVELOPE_OPERATORS) | set(Mutator.RECEIPT_OPERATORS) <= operators


async def test_relay_refuses_every_mutant_over_http(relay_factory: Any) -> None:
    async with relay_factory(rate_limit_per_second=1e6, rate_limit_burst=10**6) as scene:
        print(await run_http(scene, HTTP_CASES, SEED))
