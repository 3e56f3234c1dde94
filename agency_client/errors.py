"""Errors that only the agency client raises (the shared hierarchy is :mod:`schemas.problems`)."""

from __future__ import annotations

from schemas.problems import ConfigurationError, LocalError, ServiceUnavailable

__all__ = ["CertificateMismatch", "NotInitialised", "RelayUnreachable"]


class RelayUnreachable(ServiceUnavailable):
    """The relay could not be reached (connection refused, timed out or kept failing).

    Anything composed meanwhile is kept sealed in the outbox; ``agency outbox flush``
    sends it once the relay is back.
    """

    code = "relay-unreachable"
    title = "Relay unreachable"


class NotInitialised(ConfigurationError):
    """This agency home has no identity or certificate yet (run ``agency init``)."""

    code = "agency-not-initialised"
    title = "Agency not set up"


class CertificateMismatch(LocalError):
    """A certificate does not match this agency's keys or pinned root."""

    status = 400
    code = "certificate-mismatch"
    title = "Certificate does not match"
