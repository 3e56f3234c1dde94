"""The agency client's settings: one frozen object per process, built from an explicit mapping.

Nothing else in the client reads the environment. ``ClientSettings.from_env(os.environ)``
is called once by the CLI; tests build ``ClientSettings(...)`` directly or with
:func:`dataclasses.replace`.

The passphrase that unlocks the agency's key file comes from one *source*: the value
of an environment variable named by ``AGENCY_PASSPHRASE_ENV`` (read from the same
mapping, so it is captured here and nowhere else), a file named by
``AGENCY_PASSPHRASE_FILE``, or an interactive prompt. It prints as ``<SECRET>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from schemas.problems import ConfigurationError

__all__ = [
    "DEFAULT_HOME_NAME",
    "ClientSettings",
    "KdfLimits",
    "Secret",
    "passphrase_from_env",
    "passphrase_from_file",
]

#: Directory under the user's home used when ``AGENCY_HOME`` is not set.
DEFAULT_HOME_NAME = ".safeguarding-agency"

#: Argon2id cost presets for the key file (see :mod:`keys.keystore`).
KdfLimits = Literal["interactive", "moderate", "sensitive"]
_LIMITS = ("interactive", "moderate", "sensitive")


@dataclass(frozen=True, eq=False)
class Secret:
    """A secret string that never shows itself in ``repr`` or ``str``."""

    _value: str = field(repr=False)

    def reveal(self) -> bytes:
        """The secret as UTF-8 bytes (pass straight to the key store)."""
        return self._value.encode("utf-8")

    def __repr__(self) -> str:
        return "<SECRET>"

    __str__ = __repr__


@dataclass(frozen=True)
class ClientSettings:
    """Everything an agency client needs to run.

    :param home: the agency's home directory (key file, certificate, local store).
    :param relay_url: the relay's base URL; ``None`` means "as recorded by ``agency init``".
    :param passphrase: the key-file passphrase when it came from the environment.
    :param passphrase_file: a file whose first line is the passphrase.
    :param request_timeout: seconds before one HTTP attempt is abandoned.
    :param max_attempts: attempts per request on connection errors, 429, 502, 503 and 504.
    :param backoff_base: first retry delay, in seconds (doubles each attempt, full jitter).
    :param backoff_max: the longest single retry delay, in seconds.
    :param kdf_limits: Argon2id cost for a *new* key file (``agency init``).
    """

    home: Path = field(default_factory=lambda: Path.home() / DEFAULT_HOME_NAME)
    relay_url: str | None = None
    passphrase: Secret | None = None
    passphrase_file: Path | None = None
    request_timeout: float = 30.0
    max_attempts: int = 6
    backoff_base: float = 0.2
    backoff_max: float = 5.0
    kdf_limits: KdfLimits = "moderate"

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.request_timeout <= 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ConfigurationError("timeouts and delays must be positive")
        if self.kdf_limits not in _LIMITS:
            raise ConfigurationError(f"kdf limits must be one of {', '.join(_LIMITS)}")
        if self.relay_url is not None and not self.relay_url.startswith(("http://", "https://")):
            raise ConfigurationError("the relay URL must start with http:// or https://")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """Build settings from ``AGENCY_*`` variables in ``environ`` (default ``os.environ``).

        ``AGENCY_HOME``, ``AGENCY_RELAY_URL``, ``AGENCY_PASSPHRASE_ENV`` (the *name* of the
        variable holding the passphrase), ``AGENCY_PASSPHRASE_FILE``,
        ``AGENCY_REQUEST_TIMEOUT``, ``AGENCY_MAX_ATTEMPTS``, ``AGENCY_BACKOFF_BASE``,
        ``AGENCY_BACKOFF_MAX``, ``AGENCY_KDF_LIMITS``.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        if env.get("AGENCY_HOME"):
            kwargs["home"] = Path(env["AGENCY_HOME"]).expanduser()
        elif env.get("HOME"):
            kwargs["home"] = Path(env["HOME"]) / DEFAULT_HOME_NAME
        if env.get("AGENCY_RELAY_URL"):
            kwargs["relay_url"] = env["AGENCY_RELAY_URL"].rstrip("/")
        name = env.get("AGENCY_PASSPHRASE_ENV")
        if name:
            kwargs["passphrase"] = passphrase_from_env(env, name)
        if env.get("AGENCY_PASSPHRASE_FILE"):
            kwargs["passphrase_file"] = Path(env["AGENCY_PASSPHRASE_FILE"])
        for var, attr, kind in (
            ("AGENCY_REQUEST_TIMEOUT", "request_timeout", float),
            ("AGENCY_MAX_ATTEMPTS", "max_attempts", int),
            ("AGENCY_BACKOFF_BASE", "backoff_base", float),
            ("AGENCY_BACKOFF_MAX", "backoff_max", float),
        ):
            if var in env:
                try:
                    kwargs[attr] = kind(env[var])
                except ValueError:
                    raise ConfigurationError(f"{var} must be a number") from None
        if env.get("AGENCY_KDF_LIMITS"):
            kwargs["kdf_limits"] = env["AGENCY_KDF_LIMITS"]
        return cls(**kwargs)


def passphrase_from_env(environ: Mapping[str, str], name: str) -> Secret:
    """The passphrase held in variable ``name`` of ``environ``.

    :raises ConfigurationError: when the variable is missing or empty.
    """
    value = environ.get(name)
    if not value:
        raise ConfigurationError(f"environment variable {name} (the passphrase) is not set")
    return Secret(value)


def passphrase_from_file(path: Path) -> Secret:
    """The first line of ``path`` as the passphrase.

    :raises ConfigurationError: when the file cannot be read or is empty.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the passphrase file {path}: {exc.__class__.__name__}"
        ) from None
    lines = text.splitlines()
    line = lines[0] if lines else ""
    if not line:
        raise ConfigurationError(f"the passphrase file {path} is empty")
    return Secret(line)
