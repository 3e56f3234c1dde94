"""Every error round-trips through problem+json to the same class."""

from __future__ import annotations

import pytest

from schemas import problems
from schemas.problems import ExchangeError, LawfulBasisRejected, from_problem

ALL = [
    cls
    for name in problems.__all__
    if isinstance(cls := getattr(problems, name), type)
    and issubclass(cls, ExchangeError)
    and "code" in cls.__dict__  # LocalError/RemoteError are categories, not wire types
]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_round_trip_to_same_class(cls: type[ExchangeError]) -> None:
    error = cls("something specific")
    back = from_problem(error.to_problem(instance="/v1/x"))
    assert type(back) is cls
    assert back.detail == "something specific"
    assert back.status == cls.status


def test_codes_are_unique() -> None:
    codes = [c.code for c in ALL]
    assert len(codes) == len(set(codes))


def test_findings_survive_the_round_trip() -> None:
    findings = [{"rule": "L002", "level": "REJECT_LAW", "message": "m", "cite": ["c"]}]
    error = LawfulBasisRejected("no", extensions={"findings": findings})
    back = from_problem(error.to_problem())
    assert isinstance(back, LawfulBasisRejected)
    assert back.findings == findings


def test_debug_context_is_never_serialised() -> None:
    error = problems.InvalidEnvelope("bad", debug_context={"secret": "Maya"})
    assert "Maya" not in str(error.to_problem())


def test_unknown_problem_becomes_plain_error() -> None:
    back = from_problem({"type": "about:blank", "title": "x", "status": 418, "detail": "teapot"})
    assert type(back) is ExchangeError
    assert back.detail == "teapot"
