"""The sans-I/O protocol layer: requests, problem mapping, retries and the event-stream parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agency_client import protocol
from agency_client.protocol import Response, SSEDecoder
from schemas.problems import ExchangeError, LawfulBasisRejected, NotFound, RateLimited


def _problem(status: int, code: str, **extra: object) -> Response:
    body = {
        "type": f"https://safeguarding-exchange.example/problems/{code}",
        "title": "t",
        "status": status,
        "detail": "d",
        "code": code,
        **extra,
    }
    return Response(status, {"content-type": "application/problem+json"}, json.dumps(body).encode())


def test_problems_map_back_to_the_same_class() -> None:
    findings = [{"rule": "L002", "level": "REJECT_LAW", "message": "m", "cite": ["c"]}]
    with pytest.raises(LawfulBasisRejected) as caught:
        protocol.parse(
            _problem(422, "lawful-basis-rejected", findings=findings), protocol.parse_json
        )
    assert caught.value.findings == findings
    with pytest.raises(NotFound):
        protocol.parse(_problem(404, "not-found"), protocol.parse_json)
    with pytest.raises(RateLimited):
        protocol.parse(_problem(429, "rate-limited"), protocol.parse_json)


def test_unknown_problem_and_non_json_errors_keep_the_status() -> None:
    with pytest.raises(ExchangeError) as caught:
        protocol.parse(_problem(418, "teapot"), protocol.parse_json)
    assert caught.value.status == 418
    with pytest.raises(ExchangeError) as caught:
        protocol.parse(Response(502, {}, b"<html>bad gateway</html>"), protocol.parse_json)
    assert caught.value.status == 502
    assert "502" in caught.value.detail


def test_malformed_success_is_a_protocol_violation() -> None:
    with pytest.raises(protocol.ProtocolViolation):
        protocol.parse(Response(201, {}, b"{}"), protocol.parse_submit_receipt)
    with pytest.raises(protocol.ProtocolViolation):
        protocol.parse(Response(200, {}, b"[1]"), protocol.parse_inbox_page)


def test_builders_encode_paths_and_queries() -> None:
    request = protocol.get_inbox("oakfield-primary", since=7, limit=50, mailbox="dsl")
    assert (request.method, request.path) == ("GET", "/v1/agencies/oakfield-primary/inbox")
    assert request.query == "since=7&limit=50&mailbox=dsl"
    assert request.target == "/v1/agencies/oakfield-primary/inbox?since=7&limit=50&mailbox=dsl"
    assert protocol.get_threads(open_only=True).query == "open=true"
    assert not protocol.get_directory().signed
    assert protocol.submit_envelope(b"x").signed
    with pytest.raises(ExchangeError):
        protocol.get_envelope("../../etc/passwd")


def test_inbox_items_parse() -> None:
    page = {
        "items": [
            {
                "cursor": 3,
                "type": "envelope",
                "message_id": "a" * 32,
                "kind": "REFERRAL",
                "thread": "a" * 32,
                "sender": {"agency": "oakfield-primary", "mailbox": "dsl"},
                "mailbox": "front-door",
                "header": "e30=",
                "signature": "AA==",
                "stored_at": "2026-11-24T09:30:00Z",
            },
            {
                "cursor": 4,
                "type": "notice",
                "notice": "OVERDUE",
                "thread": "a" * 32,
                "message_id": None,
                "detail": {"clock": "T_ACK_REFERRAL"},
            },
        ],
        "next_since": 4,
    }
    parsed = protocol.parse_inbox_page(Response(200, {}, json.dumps(page).encode()))
    envelope, notice = parsed.items
    assert isinstance(envelope, protocol.EnvelopeItem)
    assert (envelope.sender, envelope.sender_mailbox, envelope.header_bytes) == (
        "oakfield-primary",
        "dsl",
        b"{}",
    )
    assert isinstance(notice, protocol.NoticeItem)
    assert notice.notice == "OVERDUE"
    assert parsed.next_since == 4


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    assert protocol.backoff_delay(1, base=0.5, cap=4, rng=lambda: 1.0) == 0.5
    assert protocol.backoff_delay(3, base=0.5, cap=4, rng=lambda: 1.0) == 2.0
    assert protocol.backoff_delay(10, base=0.5, cap=4, rng=lambda: 1.0) == 4.0
    assert protocol.backoff_delay(10, base=0.5, cap=4, rng=lambda: 0.0) == 0.0
    assert protocol.backoff_delay(1, base=0.5, cap=4, retry_after=3, rng=lambda: 0.0) == 3.0
    assert protocol.backoff_delay(1, base=0.5, cap=4, retry_after=60, rng=lambda: 0.0) == 4.0
    assert protocol.is_retryable(503)
    assert protocol.is_retryable(429)
    assert not protocol.is_retryable(422)
    assert not protocol.is_retryable(500)


STREAM = (
    b": connected\n\n"
    b'id: 5\nevent: envelope\ndata: {"cursor": 5}\n\n'
    b": keepalive\n\n"
    b"id: 6\r\nevent: notice\r\ndata: line one\r\ndata: line two \xc3\xa9\r\n\r\n"
)


def test_event_stream_parses() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(STREAM)
    assert [(e.id, e.event, e.data) for e in events] == [
        ("5", "envelope", '{"cursor": 5}'),
        ("6", "notice", "line one\nline two \u00e9"),
    ]
    assert decoder.last_event_id == "6"


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_event_stream_parses_whatever_the_chunking(cuts: list[int]) -> None:
    decoder = SSEDecoder()
    events = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(STREAM[start:cut])
        start = cut
    events += decoder.feed(STREAM[start:])
    assert [(e.id, e.data) for e in events] == [
        ("5", '{"cursor": 5}'),
        ("6", "line one\nline two \u00e9"),
    ]
