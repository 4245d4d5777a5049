"""Market analytics served live: indicators, signals, grades, sectors, correlations."""

from cryptopulse.analytics.registry import load_registry
from cryptopulse.analytics.service import AnalyticsService

__all__ = ["AnalyticsService", "load_registry"]
