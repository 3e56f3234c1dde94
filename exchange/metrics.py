"""Prometheus metrics: one registry per app, never the process-global default."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "RelayMetrics"]

#: The text exposition format served at ``/metrics``.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RelayMetrics:
    """The relay's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "exchange_http_requests",
            "HTTP requests handled, by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "exchange_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.accepted = Counter(
            "exchange_envelopes_accepted", "Envelopes accepted and stored.", registry=r
        )
        self.duplicates = Counter(
            "exchange_envelopes_duplicate",
            "Idempotent resubmissions of stored envelopes.",
            registry=r,
        )
        self.rejected = Counter(
            "exchange_envelopes_rejected",
            "Envelope submissions refused, by problem code.",
            ["reason"],
            registry=r,
        )
        self.receipts = Counter("exchange_receipts", "Delivery receipts recorded.", registry=r)
        self.auth_failures = Counter(
            "exchange_auth_failures",
            "Requests refused before reaching a handler, by problem code.",
            ["reason"],
            registry=r,
        )
        self.notices = Counter(
            "exchange_notices",
            "Relay notices put in inboxes, by notice type.",
            ["notice"],
            registry=r,
        )
        self.deleted = Counter(
            "exchange_ciphertext_deleted", "Envelope contents deleted by retention.", registry=r
        )
        self.pending = Gauge(
            "exchange_pending_deliveries", "Deliveries waiting for a receipt.", registry=r
        )
        self.stored = Gauge(
            "exchange_stored_envelopes", "Envelopes whose ciphertext is still held.", registry=r
        )
        self.overdue = Gauge(
            "exchange_overdue_threads", "Open threads with an overdue deadline.", registry=r
        )
        self.streams = Gauge("exchange_push_streams", "Open push streams.", registry=r)
        self.write_queue = Gauge(
            "exchange_write_queue_depth",
            "Write jobs waiting for the next group commit.",
            registry=r,
        )
        self.in_flight = Gauge("exchange_requests_in_flight", "Requests being handled.", registry=r)

    def track_queue(self, depth: Callable[[], float]) -> None:
        """Read the write queue depth at scrape time."""
        self.write_queue.set_function(depth)

    def track_streams(self, count: Callable[[], float]) -> None:
        """Read the number of open push streams at scrape time."""
        self.streams.set_function(count)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
