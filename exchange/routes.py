"""The whole HTTP API in one table. ``/openapi.json`` is generated from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from exchange import views

__all__ = ["ROUTES", "Query", "Route", "public_route_names", "setup_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON = "application/json"
ENVELOPE = "application/vnd.safeguard.envelope.v1+json"


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter (with the bounds the handler enforces, so the document says them)."""

    name: str
    type: str
    description: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: how it is served and how it is documented."""

    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    tag: str
    public: bool = False
    query: tuple[Query, ...] = ()
    request_type: str | None = None
    responses: dict[int, str] = field(default_factory=dict)
    response_type: str = JSON


#: Integer query values are at most 18 digits (views._int).
_MAX_INT = 10**18 - 1
_SINCE = Query(
    "since", "integer", "Cursor: only items after this one.", minimum=0, maximum=_MAX_INT
)
_LIMIT = Query(
    "limit", "integer", "Largest page (default 100, at most 500).", minimum=1, maximum=500
)
_LIMIT_LOG = Query(
    "limit", "integer", "Largest page (default 100, at most 1000).", minimum=1, maximum=1000
)

ROUTES: tuple[Route, ...] = (
    # -- public --------------------------------------------------------------------------------
    Route("GET", "/health", views.health, "health", "Liveness", "ops", public=True,
          responses={200: "The process answers."}),
    Route("GET", "/ready", views.ready, "ready", "Readiness (database reachable)", "ops",
          public=True, responses={200: "Ready.", 503: "The database is unavailable."}),
    Route("GET", "/metrics", views.metrics, "metrics", "Prometheus metrics", "ops", public=True,
          responses={200: "Metrics in the Prometheus text format."},
          response_type="text/plain"),
    Route("GET", "/openapi.json", views.openapi, "openapi", "This OpenAPI document", "ops",
          public=True, responses={200: "OpenAPI 3.1 document."}),
    Route("GET", "/.well-known/safeguarding-exchange", views.well_known, "well_known",
          "Relay discovery: id, root fingerprint, limits", "ops", public=True,
          responses={200: "Discovery document."}),
    Route("GET", "/v1/directory", views.directory, "directory",
          "The partnership directory (verify it against your pinned root)", "directory",
          public=True, responses={200: "Root fingerprint, certificates, revocation list."}),
    Route("POST", "/v1/directory/certificates", views.publish_certificate,
          "publish_certificate", "Publish a root-signed certificate", "directory",
          public=True, request_type=JSON,
          responses={201: "Published.", 200: "Already published.",
                     403: "Not issued by the pinned root."}),
    Route("POST", "/v1/directory/revocations", views.publish_revocations,
          "publish_revocations", "Publish a root-signed revocation list", "directory",
          public=True, request_type=JSON,
          responses={201: "Published; applies from the next request.",
                     200: "Already current.", 409: "Older than the current list."}),
    # -- envelopes -----------------------------------------------------------------------------
    Route("POST", "/v1/envelopes", views.submit, "submit_envelope",
          "Submit an envelope (201 after a durable commit)", "envelopes",
          request_type=ENVELOPE,
          responses={201: "Stored; the receipt says when and where.",
                     200: "The same bytes were already stored; the same receipt.",
                     400: "Malformed envelope or bad header signature.",
                     403: "Sender certificate unknown, expired or revoked; not the caller.",
                     409: "Another envelope has this id, or the thread does not allow it.",
                     413: "Envelope too large.",
                     422: "Unknown recipient, or the basis codes are rejected (findings)."}),
    Route("GET", "/v1/envelopes/{id}", views.envelope, "get_envelope",
          "The envelope exactly as submitted (sender and recipients)", "envelopes",
          responses={200: "The envelope.", 403: "Not a party (the auditor never reads bodies).",
                     404: "Unknown id.", 410: "Deleted under retention, or expired."},
          response_type=ENVELOPE),
    Route("GET", "/v1/envelopes/{id}/header", views.envelope_header, "get_envelope_header",
          "Signed header and delivery state, no body (parties and auditor)", "envelopes",
          responses={200: "The header.", 403: "Not a party.", 404: "Unknown id."}),
    Route("POST", "/v1/envelopes/{id}/receipts", views.post_receipt, "post_receipt",
          "A recipient's signed delivery receipt", "envelopes", request_type=JSON,
          responses={201: "Recorded; the message is no longer redelivered.",
                     200: "Already recorded.", 400: "Invalid receipt.",
                     403: "Not a recipient.", 404: "Unknown id.",
                     410: "The delivery expired."}),
    Route("GET", "/v1/envelopes/{id}/status", views.envelope_status, "get_envelope_status",
          "Delivery state per recipient, with receipts (sender and auditor)", "envelopes",
          responses={200: "Delivery state.", 403: "Not the sender.", 404: "Unknown id."}),
    Route("GET", "/v1/envelopes/{id}/log", views.message_log, "get_envelope_log",
          "The message's log entries with inclusion proofs (parties and auditor)", "log",
          responses={200: "Entries, each proved against the newest tree head.",
                     403: "Not a party.", 404: "Unknown id."}),
    # -- delivery ------------------------------------------------------------------------------
    Route("GET", "/v1/agencies/{agency}/inbox", views.inbox, "get_inbox",
          "Inbox items after a cursor (envelopes stay until receipted)", "delivery",
          query=(_SINCE, _LIMIT, Query("mailbox", "string", "Only this mailbox.")),
          responses={200: "Items and next_since.", 403: "Not this agency.",
                     404: "The agency has no such mailbox."}),
    Route("GET", "/v1/agencies/{agency}/events", views.events, "get_events",
          "Push: server-sent events from a cursor (Last-Event-ID or since)", "delivery",
          query=(_SINCE,),
          responses={200: "An event stream; id is the cursor.", 403: "Not this agency.",
                     429: "Too many streams open."},
          response_type="text/event-stream"),
    Route("GET", "/v1/agencies/{agency}/overdue", views.overdue, "get_overdue",
          "What is overdue for this agency's mailboxes", "threads",
          responses={200: "Overdue threads.", 403: "Not this agency."}),
    # -- threads -------------------------------------------------------------------------------
    Route("GET", "/v1/threads", views.threads, "list_threads",
          "Threads with state and deadlines", "threads",
          query=(Query("role", "string", "sent or received.", enum=("sent", "received")),
                 Query("open", "boolean", "Only open (true) or finished (false) threads."),
                 Query("overdue", "boolean", "Only overdue (true) or on-time (false).")),
          responses={200: "Threads."}),
    Route("GET", "/v1/threads/{thread}", views.thread, "get_thread",
          "What happened to this referral: state, deadlines, chronology", "threads",
          responses={200: "The thread.", 403: "Not a participant.", 404: "Unknown thread."}),
    # -- audit ---------------------------------------------------------------------------------
    Route("GET", "/v1/audit/headers", views.audit_headers, "audit_headers",
          "Every accepted header in order (auditor)", "audit", query=(_SINCE, _LIMIT),
          responses={200: "Headers and next_since.", 403: "Not the auditor."}),
    Route("GET", "/v1/audit/events", views.audit_events, "audit_events",
          "The relay's event log in order (auditor)", "audit", query=(_SINCE, _LIMIT),
          responses={200: "Events and next_since.", 403: "Not the auditor."}),
    # -- transparency log ----------------------------------------------------------------------
    Route("GET", "/v1/log/head", views.log_head, "get_tree_head",
          "The newest signed tree head (signed on demand)", "log",
          responses={200: "The signed tree head.", 404: "No signed tree head yet."}),
    Route("GET", "/v1/log/heads", views.log_heads, "list_tree_heads",
          "Signed tree heads, oldest first", "log",
          query=(Query("since", "integer", "Only heads larger than this tree size.", minimum=0,
                       maximum=_MAX_INT), _LIMIT_LOG,
                 Query("from", "string", "Only heads signed at or after this time."),
                 Query("to", "string", "Only heads signed at or before this time.")),
          responses={200: "Heads and next_since.", 400: "Bad parameter."}),
    Route("GET", "/v1/log/leaves", views.log_leaves, "get_log_leaves",
          "Log leaves from an index (auditor: all; agency: its own entries)", "log",
          query=(Query("start", "integer", "First leaf index.", minimum=0, maximum=_MAX_INT),
                 _LIMIT_LOG),
          responses={200: "Leaves with index, type and bytes.", 400: "Bad parameter."}),
    Route("GET", "/v1/log/proof/inclusion", views.log_inclusion, "get_inclusion_proof",
          "Inclusion proof of a leaf in a tree size (auditor; agency: own entries)", "log",
          query=(Query("index", "integer", "Leaf index.", True, 0, _MAX_INT),
                 Query("size", "integer", "Tree size.", True, 0, _MAX_INT)),
          responses={200: "The audit path.", 400: "Bad index or size.",
                     403: "Not an entry of this agency."}),
    Route("GET", "/v1/log/proof/consistency", views.log_consistency, "get_consistency_proof",
          "Consistency proof between two tree sizes", "log",
          query=(Query("first", "integer", "Older tree size.", True, 0, _MAX_INT),
                 Query("second", "integer", "Newer tree size.", True, 0, _MAX_INT)),
          responses={200: "The consistency proof.", 400: "Bad sizes."}),
    Route("GET", "/v1/log/frontier", views.log_frontier, "get_log_frontier",
          "The perfect subtrees that decompose a tree size (to audit from there)", "log",
          query=(Query("size", "integer", "Tree size.", True, 0, _MAX_INT),),
          responses={200: "Nodes (level, index, hash).", 400: "Bad size."}),
)  # fmt: skip


def public_route_names() -> frozenset[str]:
    """Routes served without a request signature."""
    return frozenset(route.name for route in ROUTES if route.public)


def setup_routes(app: web.Application) -> None:
    """Register every route of :data:`ROUTES`."""
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
