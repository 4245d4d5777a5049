"""cryptopulse: a self-hosted crypto market-data and signals API."""

__version__ = "0.1.0"
__all__ = ["__version__"]
