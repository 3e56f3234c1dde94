"""The agency side of the safeguarding exchange: an async client library and the ``agency`` CLI.

Data flow, one module per step: a practitioner's form (:mod:`agency_client.forms`) is
checked against the lawful-basis rules and sealed (:mod:`keys.sealing`), recorded in the
local store (:mod:`agency_client.store`), submitted through the outbox by
:class:`AgencyClient` (:mod:`agency_client.client`) as requests built by
:mod:`agency_client.protocol` and signed and retried by :mod:`agency_client.transport`.
"""

from agency_client.client import AgencyClient, ReceiveResult, SendResult, ThreadView
from agency_client.errors import CertificateMismatch, NotInitialised, RelayUnreachable
from agency_client.settings import ClientSettings, Secret

__all__ = [
    "AgencyClient",
    "CertificateMismatch",
    "ClientSettings",
    "NotInitialised",
    "ReceiveResult",
    "RelayUnreachable",
    "Secret",
    "SendResult",
    "ThreadView",
]
