"""The relay: a content-blind store-and-forward service for sealed safeguarding envelopes."""

from exchange.app import create_app
from exchange.settings import Settings

__all__ = ["Settings", "create_app"]
