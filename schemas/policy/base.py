"""Composable policy objects: single rules and the combinators that join them.

A *policy* is anything with ``check(ctx) -> Iterable[Finding]``: no findings means
"nothing to say". A *rule* is a policy with a stable id, a level, a default
plain-English message and citations. Rules are written as small functions and
turned into :class:`FunctionRule` objects with :func:`rule`; policies are combined
with :class:`AllOf`, :class:`AnyOf` and :class:`When`. :data:`AllowAnything` is the
explicitly named policy that never objects (for tests and tooling only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from schemas.policy.context import RuleContext
from schemas.policy.findings import Finding, Level

__all__ = [
    "AllOf",
    "AllowAnything",
    "AnyOf",
    "FunctionRule",
    "Policy",
    "Rule",
    "When",
    "rule",
]


@runtime_checkable
class Policy(Protocol):
    """Anything that can look at a request and report findings."""

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        """Findings for this request (none means no objection)."""
        ...


@runtime_checkable
class Rule(Policy, Protocol):
    """A single rule with a stable identity."""

    @property
    def rule(self) -> str:
        """Stable id (``L002``; the policy model's ids, ``X...`` for this engine's own)."""
        ...

    @property
    def level(self) -> Level:
        """How strongly the rule binds."""
        ...

    @property
    def message(self) -> str:
        """The default plain-English message."""
        ...

    @property
    def cite(self) -> tuple[str, ...]:
        """Where the rule comes from."""
        ...


Test = Callable[[RuleContext], Iterable[str]]
"""A rule body: yields one message per problem found (``""`` means the default message)."""


@dataclass(frozen=True)
class FunctionRule:
    """A rule whose body is a function yielding problem messages.

    ``reads_justification`` and ``reads_facts`` are documentation for readers and
    tests: the parts of the rule that need justification text or content facts are
    skipped when those are not available.
    """

    rule: str
    level: Level
    message: str
    cite: tuple[str, ...]
    test: Test = field(repr=False)
    reads_justification: bool = False
    reads_facts: bool = False
    summary: str = ""
    """One line on what the rule checks (the rule body's docstring)."""

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        """One finding per distinct problem the body reports."""
        seen: set[str] = set()
        for text in self.test(ctx):
            message = text or self.message
            if message in seen:
                continue
            seen.add(message)
            yield Finding(rule=self.rule, level=self.level, message=message, cite=list(self.cite))


def rule(
    rule_id: str,
    level: Level,
    message: str,
    cite: Iterable[str],
    *,
    reads_justification: bool = False,
    reads_facts: bool = False,
) -> Callable[[Test], FunctionRule]:
    """Decorator: turn a rule body into a :class:`FunctionRule`."""

    def wrap(test: Test) -> FunctionRule:
        return FunctionRule(
            rule=rule_id,
            level=level,
            message=message,
            cite=tuple(cite),
            test=test,
            reads_justification=reads_justification,
            reads_facts=reads_facts,
            summary=(test.__doc__ or "").strip(),
        )

    return wrap


@dataclass(frozen=True)
class AllOf:
    """Every policy applies: the findings of all of them, in order."""

    policies: tuple[Policy, ...]

    def __init__(self, *policies: Policy) -> None:
        object.__setattr__(self, "policies", tuple(policies))

    def check(self, ctx: RuleContext) -> Iterator[Finding]:
        """All findings of all policies."""
        for policy in self.policies:
            yield from policy.check(ctx)


@dataclass(frozen=True)
class AnyOf:
    """One satisfied alternative is enough; if none is, report what each one found."""

    policies: tuple[Policy, ...]

    def __init__(self, *policies: Policy) -> None:
        object.__setattr__(self, "policies", tuple(policies))

    def check(self, ctx: RuleContext) -> list[Finding]:
        """No findings if any alternative has none, else all of their findings."""
        collected: list[Finding] = []
        for policy in self.policies:
            findings = list(policy.check(ctx))
            if not findings:
                return []
            collected.extend(findings)
        return collected


@dataclass(frozen=True)
class When:
    """Apply ``policy`` only to requests that satisfy ``predicate``."""

    predicate: Callable[[RuleContext], bool]
    policy: Policy

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        """The policy's findings when the predicate holds, else none."""
        return self.policy.check(ctx) if self.predicate(ctx) else ()


@dataclass(frozen=True)
class _AllowAnything:
    """Never objects. Named loudly so that it is never used by accident."""

    def check(self, ctx: RuleContext) -> tuple[Finding, ...]:
        """No findings, ever."""
        return ()


#: The policy that allows anything (tests and tooling only; never in a deployment).
AllowAnything: Policy = _AllowAnything()
