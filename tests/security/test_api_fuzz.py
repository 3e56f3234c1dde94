"""API fuzzing with schemathesis against the relay's served ``/openapi.json``.

The relay runs for real (a background thread, SQLite). The document it serves is the
one ``exchange/openapi.py`` generates (checked first). Schemathesis then generates
requests for every operation, in positive mode (schema-valid) and negative mode
(schema-violating), with path parameters random *and* set to real objects (a stored
message, its thread, the signer's own agency), each signed as a real member (school,
front door, auditor, unrelated agency) by an RFC 9421 ``requests`` auth hook
(``keys/http_signatures.py::sign_request``) over the request exactly as it is sent.

For every response: no 5xx; every 4xx is ``application/problem+json`` naming a
registered problem type with its status; the status is one the document lists *for
that operation* (not just ``default``); the content type and body match the
document; and schema-violating requests are refused (schemathesis's
``negative_data_rejection``). Not used: ``positive_data_acceptance`` (a schema-valid
request is often semantically refused: a bad signature inside an envelope, a proof for
a tree larger than the log) and ``ignored_auth`` (the hook signs every request).

``SGX_API_FUZZ_EXAMPLES`` (default 20) is the number of examples per operation, mode
and parameter set.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.openapi import build_openapi
from exchange.settings import Settings
from keys.http_signatures import new_nonce, sign_request
from keys.testing import Member, Partnership
from schemas import problems
from tests.client.harness import RelayThread
from tests.reliability.traffic import seal_envelope

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

EXAMPLES = int(os.environ.get("SGX_API_FUZZ_EXAMPLES", "20"))
SIGNERS = ("school", "mash", "auditor", "unrelated")


class Rfc9421(requests.auth.AuthBase):
    """Sign each request as it will be sent (method, raw path, raw query, exact body)."""

    def __init__(self, member: Member) -> None:
        self.member = member

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url or "")
        raw = request.body or b""
        body = raw.encode() if isinstance(raw, str) else bytes(raw)  # type: ignore[arg-type]
        request.headers.update(
            sign_request(
                identity=self.member.identity,
                key_id=self.member.certificate.id,
                method=request.method or "GET",
                path=url.path,
                query=url.query,
                body=body,
                created=datetime.now(UTC),
                nonce=new_nonce(),
            )
        )
        return request


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Partnership, str]]:
    tmp: Path = tmp_path_factory.mktemp("api-fuzz")
    p = Partnership.create(at=datetime.now(UTC))
    settings = Settings(
        root_public_key=p.root.public_key,
        database_url=f"sqlite+aiosqlite:///{tmp}/relay.db",
        run_sweeper=False,
        log_level="WARNING",
        log_format="text",
        rate_limit_per_second=1e6,
        rate_limit_burst=10**6,
    )
    thread = RelayThread(settings)
    url = thread.start()
    try:
        for member in p.members.values():
            response = requests.post(
                url + "/v1/directory/certificates", json=member.certificate.to_json(), timeout=30
            )
            assert response.status_code == 201
        session = requests.Session()
        session.auth = Rfc9421(p["school"])
        envelope = seal_envelope(p, "school", ["mash"])
        reply = session.post(
            url + "/v1/envelopes",
            data=envelope.to_wire(),
            headers={"Content-Type": "application/vnd.safeguard.envelope.v1+json"},
            timeout=30,
        )
        assert reply.status_code == 201, reply.text
        yield url, p, reply.json()["message_id"]
    finally:
        thread.close()


def _documented(document: dict[str, Any]) -> dict[str, set[int]]:
    """Each operation's explicitly documented statuses (``default`` does not count)."""
    found: dict[str, set[int]] = {}
    for methods in document["paths"].values():
        for operation in methods.values():
            found[operation["operationId"]] = {
                int(s) for s in operation["responses"] if s != "default"
            }
    return found


def test_served_document_is_the_generated_one(relay: tuple[str, Partnership, str]) -> None:
    url, _, _ = relay
    served = requests.get(url + "/openapi.json", timeout=30).json()
    assert served == json.loads(json.dumps(build_openapi()))


def test_api_fuzz(relay: tuple[str, Partnership, str]) -> None:
    url, p, message_id = relay
    document = requests.get(url + "/openapi.json", timeout=30).json()
    documented = _documented(document)
    # The signature is applied by the auth hook, so the generator need not know about it.
    fuzzed = json.loads(json.dumps(document))
    fuzzed["components"].pop("securitySchemes")
    for methods in fuzzed["paths"].values():
        for operation in methods.values():
            operation.pop("security", None)
    schema = schemathesis.openapi.from_dict(fuzzed)
    sessions = {key: requests.Session() for key in SIGNERS}
    for key, session in sessions.items():
        session.auth = Rfc9421(p[key])
    statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    wrong: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.definition.raw["operationId"] for op in operations} == set(documented)

    for operation in operations:
        name = operation.definition.raw["operationId"]
        real = {"id": message_id, "thread": message_id, "agency": p["mash"].agency_id}
        path_sets: list[dict[str, Any] | None] = [None]
        if "{" in operation.path:
            path_sets.append({k: v for k, v in real.items() if "{" + k + "}" in operation.path})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in path_sets:
                try:
                    strategy = operation.as_strategy(
                        generation_mode=mode, path_parameters=path_parameters
                    )
                except Exception:  # an operation with nothing to negate
                    continue
                _fuzz(name, strategy, sessions, url, documented[name], statuses, wrong, mode)
    total = sum(sum(c.values()) for c in statuses.values())
    print(f"API fuzz: {total} requests over {len(statuses)} operations")
    for name in sorted(statuses):
        print(f"  {name}: {dict(sorted(statuses[name].items()))}")
    assert total >= len(documented) * EXAMPLES
    unique = sorted(set(wrong))
    assert unique == [], "\n".join(unique[:40])


def _fuzz(
    name: str,
    strategy: Any,
    sessions: dict[str, requests.Session],
    url: str,
    documented: set[int],
    statuses: dict[str, collections.Counter[int]],
    wrong: list[str],
    mode: Any,
) -> None:
    checks = [not_a_server_error, content_type_conformance, response_schema_conformance]
    if mode == GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, signer=st.sampled_from(SIGNERS))
    def run(case: Any, signer: str) -> None:
        session = sessions[signer]
        if name == "get_events":  # a push stream: look at the answer's head only
            response = session.get(
                url + case.formatted_path, params=case.query, stream=True, timeout=30
            )
            status = response.status_code
            kind = response.headers.get("Content-Type", "")
            response.close()
            statuses[name][status] += 1
            if status == 200 and not kind.startswith("text/event-stream"):
                wrong.append(f"{name}: 200 with {kind}")
        else:
            response = case.call(base_url=url, session=session, timeout=30)
            status = response.status_code
            statuses[name][status] += 1
            try:
                case.validate_response(response, checks=checks)
            except BaseException as exc:  # a schemathesis failure group: record, go on
                lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
                wrong.append(f"{name} [{mode.value}]: {' / '.join(lines[1:7])[:400]}")
        if status >= 500:
            wrong.append(f"{name}: {status}")
        if status not in documented:
            wrong.append(f"{name}: status {status} is not documented for this operation")
        if status >= 400 and name != "get_events":
            problem_error = _problem_error(response, status)
            if problem_error:
                wrong.append(f"{name}: {problem_error}")

    try:
        run()
    except BaseException as exc:  # hypothesis could not generate: note, do not hide
        if type(exc).__name__ != "Unsatisfiable":
            raise


def _header(response: Any, name: str) -> str:
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return ""


def _problem_error(response: Any, status: int) -> str | None:
    kind = _header(response, "Content-Type")
    if not kind.startswith("application/problem+json"):
        return f"{status} is {kind}, not problem+json"
    try:
        problem = json.loads(response.content)
        error = problems.from_problem(problem)
    except Exception as exc:
        return f"{status}: unreadable problem ({type(exc).__name__})"
    if problem.get("status") != status or problem.get("type") != error.type_uri():
        return f"{status}: problem says {problem.get('status')} {problem.get('type')}"
    if type(error).code != problem.get("code"):
        return f"{status}: unregistered problem code {problem.get('code')!r}"
    return None


def test_found_by_fuzzing_unicode_digits_and_repeated_parameters(
    relay: tuple[str, Partnership, str],
) -> None:
    """Regressions: these once answered 500, or were silently half-read."""
    url, p, _ = relay
    session = requests.Session()
    session.auth = Rfc9421(p["mash"])
    inbox = f"{url}/v1/agencies/{p['mash'].agency_id}/inbox"
    for query in ("since=%C2%B2", "limit=%C2%B2", "since=1&since=2", "since=", "open="):
        target = inbox if not query.startswith("open") else f"{url}/v1/threads"
        response = session.get(f"{target}?{query}", timeout=30)
        assert response.status_code == 400, (query, response.text)
        assert response.json()["code"] == "invalid-request"
    events = f"{url}/v1/agencies/{p['mash'].agency_id}/events"
    response = session.get(events, headers={"Last-Event-ID": "\u00b2"}, stream=True, timeout=30)
    try:
        assert response.status_code == 200  # an unusable Last-Event-ID is ignored, not a 500
    finally:
        response.close()
