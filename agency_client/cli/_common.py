"""What every ``agency`` subcommand shares: options, the passphrase, output and the client."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from agency_client.client import AgencyClient
from agency_client.settings import (
    ClientSettings,
    Secret,
    passphrase_from_env,
    passphrase_from_file,
)
from schemas.problems import ConfigurationError

__all__ = ["Context", "add_common_options", "emit", "open_client"]


def add_common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before or after the subcommand name."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--home",
        type=Path,
        default=default,
        help="the agency's home directory (default: $AGENCY_HOME or ~/.safeguarding-agency)",
    )
    group.add_argument(
        "--relay", default=default, help="the relay's URL (default: as recorded by init)"
    )
    group.add_argument(
        "--passphrase-env",
        metavar="NAME",
        default=default,
        help="read the key passphrase from environment variable NAME",
    )
    group.add_argument(
        "--passphrase-file",
        metavar="FILE",
        type=Path,
        default=default,
        help="read the key passphrase from the first line of FILE",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print machine-readable JSON instead of text",
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show the full error (with traceback) when something fails",
    )


@dataclass
class Context:
    """One command invocation: parsed arguments, settings, environment and streams."""

    args: argparse.Namespace
    settings: ClientSettings
    environ: Mapping[str, str]
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)

    @property
    def json(self) -> bool:
        """Whether ``--json`` was given."""
        return bool(getattr(self.args, "json", False))

    def out(self, text: str = "") -> None:
        """Print a line of normal output (suppressed in ``--json`` mode)."""
        if not self.json:
            print(text, file=self.stdout)

    def progress(self, text: str) -> None:
        """Say what a long operation is doing (on standard error, so JSON stays clean)."""
        if not self.json:
            print(f"... {text}", file=self.stderr, flush=True)

    def passphrase(self, *, confirm: bool = False) -> Secret:
        """The key passphrase: ``--passphrase-env``, ``--passphrase-file``, settings or a prompt."""
        args = self.args
        if getattr(args, "passphrase_env", None):
            return passphrase_from_env(self.environ, args.passphrase_env)
        if getattr(args, "passphrase_file", None):
            return passphrase_from_file(args.passphrase_file)
        if self.settings.passphrase is not None:
            return self.settings.passphrase
        if self.settings.passphrase_file is not None:
            return passphrase_from_file(self.settings.passphrase_file)
        if not self.stdin.isatty():
            raise ConfigurationError(
                "no passphrase given: use --passphrase-env NAME or --passphrase-file FILE"
            )
        first = getpass.getpass("Key passphrase: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise ConfigurationError("the two passphrases differ")
        if not first:
            raise ConfigurationError("the passphrase must not be empty")
        return Secret(first)


def settings_for(args: argparse.Namespace, base: ClientSettings) -> ClientSettings:
    """Apply ``--home`` and ``--relay`` to the settings from the environment."""
    changes: dict[str, Any] = {}
    if getattr(args, "home", None):
        changes["home"] = Path(args.home)
    if getattr(args, "relay", None):
        changes["relay_url"] = str(args.relay).rstrip("/")
    return dataclasses.replace(base, **changes) if changes else base


@asynccontextmanager
async def open_client(ctx: Context) -> Any:
    """Unlock the keys and open the client for the duration of a command."""
    secret = ctx.passphrase()
    client = await AgencyClient.open(ctx.settings, secret.reveal())
    try:
        yield client
    finally:
        await client.close()


def emit(ctx: Context, data: Any) -> None:
    """Print ``data`` as JSON in ``--json`` mode."""
    if ctx.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str), file=ctx.stdout)


def short(identifier: str) -> str:
    """A message or thread id shortened for display (the full id is in ``--json``)."""
    return identifier[:12]
