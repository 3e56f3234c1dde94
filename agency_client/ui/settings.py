"""Settings of the practitioners' web page: one frozen object, built by ``agency ui``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from schemas.problems import ConfigurationError

__all__ = ["LOOPBACK_NAMES", "UISettings", "is_loopback"]

#: Host names that always mean "this machine".
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class UISettings:
    """How the web page is served and how long a sign-in lasts.

    :param host: the address to listen on; loopback only unless ``allow_remote``.
    :param port: the port (``0`` picks a free one).
    :param allow_remote: allow a non-loopback ``host`` (only behind TLS or a proxy that adds it).
    :param tls_cert: a PEM certificate chain to serve HTTPS with (needs ``tls_key``).
    :param tls_key: the PEM private key for ``tls_cert``.
    :param secure_cookies: mark cookies ``Secure`` (on by default with TLS; turn on behind an
        HTTPS proxy).
    :param allowed_hosts: extra ``Host`` header names accepted (loopback names always are);
        anything else is refused, which stops DNS-rebinding pages from reaching the server.
    :param idle_timeout: a sign-in ends after this long without a click or a form sent.
    :param absolute_timeout: a sign-in ends this long after it started, whatever happens.
    :param max_failed_sign_ins: failed passwords in a row before an account is locked.
    :param lockout: how long a locked account stays locked.
    :param live_updates: follow the relay's push stream and update open pages.
    :param keepalive: seconds between keep-alive comments on the page's event stream.
    :param users_file: the user accounts file (default ``<home>/ui-users.json``).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    allow_remote: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secure_cookies: bool | None = None
    allowed_hosts: tuple[str, ...] = ()
    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_timeout: timedelta = timedelta(hours=10)
    max_failed_sign_ins: int = 5
    lockout: timedelta = timedelta(minutes=15)
    live_updates: bool = True
    keepalive: float = 15.0
    users_file: Path | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.port <= 65535):
            raise ConfigurationError("the port must be between 0 and 65535")
        if not self.allow_remote and not is_loopback(self.host):
            raise ConfigurationError(
                f"refusing to listen on {self.host}: the web page serves this machine only "
                "(use --allow-remote only behind HTTPS)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigurationError("give both --tls-cert and --tls-key, or neither")
        if self.idle_timeout <= timedelta(0) or self.absolute_timeout <= timedelta(0):
            raise ConfigurationError("session timeouts must be positive")
        if self.max_failed_sign_ins < 1:
            raise ConfigurationError("max_failed_sign_ins must be at least 1")
        if self.keepalive <= 0:
            raise ConfigurationError("the keep-alive interval must be positive")

    @property
    def tls(self) -> bool:
        """Whether the server itself speaks HTTPS."""
        return self.tls_cert is not None

    @property
    def cookies_secure(self) -> bool:
        """Whether cookies carry the ``Secure`` attribute."""
        return self.tls if self.secure_cookies is None else self.secure_cookies

    def host_names(self) -> frozenset[str]:
        """``Host`` header names the server answers to (lower case, without the port)."""
        names = {n.strip("[]").lower() for n in LOOPBACK_NAMES}
        names.add(self.host.strip("[]").lower())
        names.update(h.strip("[]").lower() for h in self.allowed_hosts)
        return frozenset(names)

    def users_path(self, home: Path) -> Path:
        """Where the user accounts are kept."""
        return self.users_file or home / "ui-users.json"
