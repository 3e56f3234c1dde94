"""The ``agency`` command: one testable :func:`main` and one error dispatch.

Each subcommand lives in its own module with ``register(subparsers)`` and a ``run(ctx)``
coroutine (or function) returning the exit status. :func:`main` parses, runs, and turns
any :class:`~schemas.problems.ExchangeError` into one line on standard error (its
``diagnostics()``) and a non-zero status; ``--verbose`` re-raises with the traceback.
Exit status: 0 success, 1 refused or failed, 2 unusable input or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from agency_client.cli import (
    cmd_ack,
    cmd_audit,
    cmd_decide,
    cmd_directory,
    cmd_inbox,
    cmd_init,
    cmd_install_certificate,
    cmd_outbox,
    cmd_policy,
    cmd_receipts,
    cmd_refer,
    cmd_respond,
    cmd_rfi,
    cmd_show,
    cmd_threads,
    cmd_ui,
    cmd_watch,
)
from agency_client.cli._common import Context, add_common_options, settings_for
from agency_client.settings import ClientSettings
from schemas.problems import ConfigurationError, ExchangeError, InvalidRequest, LawfulBasisRejected

__all__ = ["build_parser", "main"]

_COMMANDS = (
    cmd_init,
    cmd_install_certificate,
    cmd_directory,
    cmd_refer,
    cmd_inbox,
    cmd_watch,
    cmd_show,
    cmd_ack,
    cmd_decide,
    cmd_threads,
    cmd_rfi,
    cmd_respond,
    cmd_policy,
    cmd_receipts,
    cmd_outbox,
    cmd_audit,
    cmd_ui,
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print a one-line usage error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``agency`` argument parser."""
    parser = _Parser(
        prog="agency",
        description=(
            "Share child-safeguarding information securely with partner agencies: refer a "
            "child, read and answer what other agencies send you, follow what happened, and "
            "check the lawful basis of every share."
        ),
    )
    add_common_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in _COMMANDS:
        module.register(sub)
    return parser


def _print_error(ctx: Context | None, error: ExchangeError, stderr: object) -> None:
    stream = stderr if ctx is None else ctx.stderr
    print(f"agency: error: {error.diagnostics()}", file=stream)  # type: ignore[call-overload]
    if isinstance(error, LawfulBasisRejected):
        for finding in error.findings:
            print(
                f"  [{finding.get('rule')} {finding.get('level')}] {finding.get('message')}",
                file=stream,  # type: ignore[call-overload]
            )
    if ctx is not None and ctx.json:
        print(json.dumps({"error": error.to_problem()}, indent=2, sort_keys=True), file=ctx.stdout)


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    """Run ``agency`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx: Context | None = None
    try:
        settings = settings_for(args, ClientSettings.from_env(env))
        ctx = Context(args=args, settings=settings, environ=env)
        result = args.handler(ctx)
        if inspect.isawaitable(result):
            result = asyncio.run(result)  # type: ignore[arg-type]
        return int(result)
    except ExchangeError as exc:
        if verbose:
            raise
        _print_error(ctx, exc, sys.stderr)
        return 2 if isinstance(exc, InvalidRequest | ConfigurationError) else 1
    except KeyboardInterrupt:
        if verbose:
            raise
        print("agency: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if verbose:
            raise
        print(
            f"agency: error: unexpected {exc.__class__.__name__} (run with --verbose for details)",
            file=sys.stderr,
        )
        return 1
