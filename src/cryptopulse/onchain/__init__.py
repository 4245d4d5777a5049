"""On-chain insights: the service that follows EVM chains (see docs/onchain.md)."""

from cryptopulse.onchain.service import ChainFeed, OnchainService

__all__ = ["ChainFeed", "OnchainService"]
