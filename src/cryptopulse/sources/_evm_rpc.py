"""JSON-RPC to an EVM node over web3.py's async HTTP provider: rate limit, retries, batches.

Every call waits its turn in a token bucket (`rate_limit_rps`; a batch of n calls costs n,
as hosted endpoints bill per call) and retries transient failures (connection errors,
timeouts, HTTP 429 and 5xx, JSON-RPC "limit exceeded") with jittered exponential backoff.
Other JSON-RPC errors are the caller's: `RpcError` carries the node's code and message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cryptopulse.sources.base import Backoff

log = logging.getLogger(__name__)

__all__ = ["EvmRpc", "RateLimiter", "RpcError", "RpcUnavailable"]

# JSON-RPC error codes nodes and providers use for "slow down" (EIP-1474: -32005).
_TRANSIENT_CODES = frozenset({-32005, 429})
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class RpcError(Exception):
    """The node answered with a JSON-RPC error that retrying will not fix."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.code = code


class RpcUnavailable(Exception):
    """The endpoint kept failing after every retry."""


@dataclass(slots=True)
class RateLimiter:
    """Token bucket: `rate` calls per second on average, bursts up to `burst`."""

    rate: float
    burst: float = 1.0
    _tokens: float = field(default=0.0, init=False)
    _stamp: float = field(default_factory=time.monotonic, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        self._tokens = self.burst

    async def acquire(self, cost: float = 1.0) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= min(cost, self.burst):
                    self._tokens -= cost  # may go negative: a big batch pays it off later
                    return
                await asyncio.sleep((min(cost, self.burst) - self._tokens) / self.rate)


class _Transient(Exception):
    pass


class EvmRpc:
    """A JSON-RPC client of one endpoint (raw hex results; parsing is the caller's)."""

    def __init__(
        self,
        url: str,
        *,
        rate_limit_rps: float = 10.0,
        max_retries: int = 5,
        timeout_s: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        from web3 import AsyncHTTPProvider  # noqa: PLC0415  (web3 is slow to import)

        self.url = url
        # Our own retries (with the rate limit in the loop) replace web3's.
        self._provider = AsyncHTTPProvider(
            url,
            request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout_s)},
            exception_retry_configuration=None,
        )
        self.limiter = RateLimiter(rate_limit_rps, burst=max(1.0, rate_limit_rps))
        self.max_retries = max_retries
        self.backoff = backoff or Backoff(base=0.2, cap=10.0)
        self.calls = 0
        self.retries = 0

    async def close(self) -> None:
        await self._provider.disconnect()

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One call; the `result` of the response."""
        results = await self._with_retries(method, [(method, list(params))])
        return results[0]

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; results in the order of `calls`."""
        if not calls:
            return []
        return await self._with_retries(calls[0][0], [(m, list(p)) for m, p in calls])

    async def _with_retries(self, method: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        self.backoff.reset()
        for attempt in range(self.max_retries + 1):
            await self.limiter.acquire(len(calls))
            self.calls += len(calls)
            try:
                return await self._send(calls)
            except _Transient as exc:
                if attempt == self.max_retries:
                    raise RpcUnavailable(f"{method} on {self.url}: {exc}") from None
                self.retries += 1
                delay = self.backoff.next_delay()
                log.debug("rpc %s failed (%s); retry in %.2fs", method, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _send(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        try:
            if len(calls) == 1:
                responses: Any = [await self._provider.make_request(*calls[0])]
            else:
                responses = await self._provider.make_batch_request(calls)  # type: ignore[arg-type]
        except aiohttp.ClientResponseError as exc:
            if exc.status in _TRANSIENT_HTTP:
                raise _Transient(f"HTTP {exc.status}") from None
            raise RpcError(calls[0][0], exc.status, exc.message) from None
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise _Transient(type(exc).__name__) from None
        if isinstance(responses, dict):  # a batch refused as a whole
            responses = [responses] * len(calls)
        return [self._result(method, r) for (method, _), r in zip(calls, responses, strict=True)]

    @staticmethod
    def _result(method: str, response: Any) -> Any:
        error = response.get("error") if isinstance(response, dict) else None
        if error:
            code = int(error.get("code", 0)) if isinstance(error, dict) else 0
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if code in _TRANSIENT_CODES or "rate limit" in message.lower():
                raise _Transient(f"{code} {message}")
            raise RpcError(method, code, message)
        return response.get("result") if isinstance(response, dict) else None
