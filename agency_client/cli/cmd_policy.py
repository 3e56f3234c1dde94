"""``agency policy check FILE``: evaluate a lawful-basis request and print the verdict as JSON.

Exactly the interface of ``shared/policy/README.md``: the verdict JSON on standard
output; exit status 0 for ``accept`` or ``warn``, 1 for ``reject``, 2 when the request
cannot be read (with one line on standard error). ``FILE`` may be ``-`` for standard
input. Needs no keys, no passphrase and no relay.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agency_client.cli._common import Context
from schemas.policy import check_request_json
from schemas.problems import InvalidRequest

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy`` (with ``check``) to the subcommands."""
    parser = sub.add_parser(
        "policy",
        help="check a lawful basis against the partnership's rules",
        description="Lawful-basis rules: check a request before sharing.",
    )
    actions = parser.add_subparsers(dest="policy_command", metavar="ACTION")
    actions.required = True
    check = actions.add_parser(
        "check",
        help="evaluate a policy check request (JSON) and print the verdict",
        description=(
            "Evaluate a lawful-basis check request (the JSON format of the partnership's "
            "policy README: kind, sent_at, sender, recipient, forwarding, basis) and print "
            "the verdict as JSON. Exit status: 0 accept or warn, 1 reject, 2 unreadable "
            "request. FILE may be '-' for standard input."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the request file, or - for standard input")
    check.set_defaults(handler=run)


def _read(ctx: Context, source: str) -> object:
    name = "standard input" if source == "-" else source
    try:
        text = ctx.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequest(f"cannot read {name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {name}: {exc.__class__.__name__}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} is not valid JSON (line {getattr(exc, 'lineno', '?')})"
        ) from None


def run(ctx: Context) -> int:
    """Print the verdict; 0 accept/warn, 1 reject, 2 unreadable."""
    try:
        verdict = check_request_json(_read(ctx, ctx.args.file))
    except InvalidRequest as exc:
        detail = " ".join(str(exc.detail).split())
        print(f"agency policy check: {detail}", file=ctx.stderr)
        return 2
    print(json.dumps(verdict.to_json_dict(), indent=2, ensure_ascii=False), file=ctx.stdout)
    return 1 if verdict.decision == "reject" else 0
