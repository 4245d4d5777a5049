"""Sources of market events: live exchanges, replay of captures, the simulator."""

from cryptopulse.sources.base import Backoff, EventSink, FeedStatus, Source, SourceKind, now_ms

__all__ = ["Backoff", "EventSink", "FeedStatus", "Source", "SourceKind", "now_ms"]
