"""The HTTP and WebSocket API."""

from cryptopulse.api.app import create_app

__all__ = ["create_app"]
