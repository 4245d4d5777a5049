"""`AsyncClient`: typed methods for every REST operation, retries, paging, the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar, Unpack

import httpx

from cryptopulse.api.analytics_schemas import (
    CorrelationsOut,
    GradeHistory,
    GradeList,
    GradeOut,
    IndicatorPage,
    LevelList,
    QuantMetricsOut,
    RegistryToken,
    RegistryTokenList,
    SectorDetail,
    SectorHistory,
    SectorList,
    SignalHistory,
    SignalList,
    SignalPerformanceOut,
)
from cryptopulse.api.onchain_schemas import (
    ChainList,
    ChainMetricsPage,
    OnchainTokenPage,
    TokenTransferPage,
)
from cryptopulse.api.routers.admin import AuditList, KeyList, KeyOut, NewKeyOut
from cryptopulse.api.routers.auth import MeOut, TokenOut, UsageOut
from cryptopulse.api.schemas import (
    CandlePage,
    Health,
    InstrumentList,
    Readiness,
    TickerList,
    TickerOut,
    TradePage,
)
from cryptopulse.client import _routes as r
from cryptopulse.client._alerts_aio import AlertsApi
from cryptopulse.client._core import (
    USER_AGENT,
    Credentials,
    M,
    Page,
    RetryPolicy,
    checked,
    decode,
    headers_for,
    query,
    token_form,
)
from cryptopulse.client.errors import Unauthorized
from cryptopulse.client.stream import Stream

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(AlertsApi):
    """The cryptopulse API over HTTP, for asyncio.

    `api_key` authenticates every call; with `use_jwt=True` the key is exchanged for
    short-lived JWTs (`POST /v1/oauth/token`) that are renewed before they expire.
    429 and 503 answers are retried as `retry` says; other errors raise a
    `ProblemError` subclass (`NotFound`, `Unauthorized`, `Forbidden`, `RateLimited`...).
    `transport` swaps the network for another httpx transport (e.g. `ASGITransport`).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        use_jwt: bool = False,
        scope: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = Credentials(api_key=api_key, use_jwt=use_jwt)
        self.scope = scope
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------

    async def credential(self, *, renew: bool = False) -> str | None:
        """The bearer credential to send now (a fresh JWT when one is due)."""
        creds = self.credentials
        if creds.use_jwt and (renew or creds.needs_token()):
            async with self._token_lock:
                if renew or creds.needs_token():
                    token = await self.oauth_token(self.scope)
                    creds.set_token(token.access_token, token.expires_in)
        return creds.bearer()

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """One call with retries on 429/503; raises the problem document on an error."""
        renewed = False
        attempt = 0
        while True:
            headers = headers_for(await self.credential() if auth else self.credentials.api_key)
            response = await self._http.request(
                method, path, params=query(params), json=json, data=data, headers=headers
            )
            if response.status_code == 401 and self.credentials.use_jwt and auth and not renewed:
                renewed = True  # the token may have expired in flight: renew once
                await self.credential(renew=True)
                continue
            wait = self.retry.wait_s(attempt, response)
            if wait is None:
                return checked(response)
            attempt += 1
            await asyncio.sleep(wait)

    async def _get(self, model: type[M], path: str, params: Mapping[str, Any] | None = None) -> M:
        return decode(model, await self.request("GET", path, params))

    async def paginate(
        self, fetch: Callable[..., Awaitable[Page[T]]], *args: Any, **kwargs: Any
    ) -> AsyncIterator[T]:
        """Every row of every page: calls `fetch(*args, **kwargs, cursor=...)` following
        `next_cursor` until there is none. Rows come in the order pages do (candles
        without `start` page back in time)."""
        cursor = kwargs.pop("cursor", None)
        while True:
            page = await fetch(*args, **kwargs, cursor=cursor)
            for row in page.data:
                yield row
            cursor = page.next_cursor
            if not cursor:
                return

    def stream(
        self,
        channels: Iterable[str],
        resume: Mapping[str, int] | None = None,
        *,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        idle_timeout_s: float = 40.0,
        refill_wait_s: float = 3.0,
    ) -> Stream:
        """A resumable live stream of `channels` (see `cryptopulse.client.stream.Stream`);
        `resume` maps channels to the last seq seen by an earlier stream."""
        return Stream(
            self,
            list(channels),
            dict(resume or {}),
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            idle_timeout_s=idle_timeout_s,
            refill_wait_s=refill_wait_s,
        )

    # -- health ------------------------------------------------------------------------

    async def healthz(self) -> Health:
        return await self._get(Health, r.path_of("healthz"))

    async def readyz(self) -> Readiness:
        """Readiness; a 503 (not ready) still returns the body rather than raising."""
        response = await self._http.get(r.path_of("readyz"))
        if response.status_code not in (200, 503):
            checked(response)
        return Readiness.model_validate_json(response.content)

    async def metrics_text(self) -> str:
        """The Prometheus exposition text of `/metrics`."""
        return (await self.request("GET", r.path_of("metrics_text"))).text

    # -- market data ---------------------------------------------------------------------

    async def instruments(self) -> InstrumentList:
        return await self._get(InstrumentList, r.path_of("instruments"))

    async def tickers(self) -> TickerList:
        return await self._get(TickerList, r.path_of("tickers"))

    async def ticker(self, instrument: str) -> TickerOut:
        return await self._get(TickerOut, r.path_of("ticker", instrument=instrument))

    async def candles(self, instrument: str, **q: Unpack[r.CandleQuery]) -> CandlePage:
        return await self._get(CandlePage, r.path_of("candles", instrument=instrument), q)

    async def trades(self, instrument: str, **q: Unpack[r.Paged]) -> TradePage:
        return await self._get(TradePage, r.path_of("trades", instrument=instrument), q)

    # -- on-chain ----------------------------------------------------------------------

    async def chains(self) -> ChainList:
        return await self._get(ChainList, r.path_of("chains"))

    async def chain_metrics(self, chain: str, **q: Unpack[r.ChainQuery]) -> ChainMetricsPage:
        return await self._get(ChainMetricsPage, r.path_of("chain_metrics", chain=chain), q)

    async def token_metrics(
        self, chain: str, token: str, **q: Unpack[r.ChainQuery]
    ) -> OnchainTokenPage:
        path = r.path_of("token_metrics", chain=chain, token=token)
        return await self._get(OnchainTokenPage, path, q)

    async def token_transfers(
        self, chain: str, token: str, **q: Unpack[r.TransferQuery]
    ) -> TokenTransferPage:
        path = r.path_of("token_transfers", chain=chain, token=token)
        return await self._get(TokenTransferPage, path, q)

    # -- analytics ---------------------------------------------------------------------

    async def indicators(self, instrument: str, **q: Unpack[r.IndicatorQuery]) -> IndicatorPage:
        return await self._get(IndicatorPage, r.path_of("indicators", instrument=instrument), q)

    async def levels(self, instrument: str, **q: Unpack[r.LevelQuery]) -> LevelList:
        return await self._get(LevelList, r.path_of("levels", instrument=instrument), q)

    async def quant_metrics(self, instrument: str, **q: Unpack[r.QuantQuery]) -> QuantMetricsOut:
        path = r.path_of("quant_metrics", instrument=instrument)
        return await self._get(QuantMetricsOut, path, q)

    async def signals(self, **q: Unpack[r.SignalsQuery]) -> SignalList:
        return await self._get(SignalList, r.path_of("signals"), q)

    async def signal_history(
        self, instrument: str, **q: Unpack[r.SignalHistoryQuery]
    ) -> SignalHistory:
        path = r.path_of("signal_history", instrument=instrument)
        return await self._get(SignalHistory, path, q)

    async def signal_performance(
        self, instrument: str, **q: Unpack[r.PerformanceQuery]
    ) -> SignalPerformanceOut:
        path = r.path_of("signal_performance", instrument=instrument)
        return await self._get(SignalPerformanceOut, path, q)

    async def grades(self, **q: Unpack[r.GradesQuery]) -> GradeList:
        return await self._get(GradeList, r.path_of("grades"), q)

    async def grade(self, symbol: str) -> GradeOut:
        return await self._get(GradeOut, r.path_of("grade", symbol=symbol))

    async def grade_history(self, symbol: str, **q: Unpack[r.TimePaged]) -> GradeHistory:
        return await self._get(GradeHistory, r.path_of("grade_history", symbol=symbol), q)

    async def tokens(self, **q: Unpack[r.TokensQuery]) -> RegistryTokenList:
        return await self._get(RegistryTokenList, r.path_of("tokens"), q)

    async def token(self, symbol: str) -> RegistryToken:
        return await self._get(RegistryToken, r.path_of("token", symbol=symbol))

    async def sectors(self) -> SectorList:
        return await self._get(SectorList, r.path_of("sectors"))

    async def sector(self, sector_id: str) -> SectorDetail:
        return await self._get(SectorDetail, r.path_of("sector", sector_id=sector_id))

    async def sector_history(self, sector_id: str, **q: Unpack[r.TimePaged]) -> SectorHistory:
        path = r.path_of("sector_history", sector_id=sector_id)
        return await self._get(SectorHistory, path, q)

    async def correlations(
        self, instrument: str, **q: Unpack[r.CorrelationQuery]
    ) -> CorrelationsOut:
        path = r.path_of("correlations", instrument=instrument)
        return await self._get(CorrelationsOut, path, q)

    # -- access --------------------------------------------------------------------------

    async def oauth_token(self, scope: str | None = None) -> TokenOut:
        """Exchange the API key for a JWT (`client_credentials`)."""
        if not self.credentials.api_key:
            raise Unauthorized(401, "Unauthorized", "a JWT needs an API key to exchange")
        response = await self.request(
            "POST", r.path_of("oauth_token"), data=token_form(scope), auth=False
        )
        return TokenOut.model_validate_json(response.content)

    async def me(self) -> MeOut:
        return await self._get(MeOut, r.path_of("me"))

    async def usage(self, days: int | None = None) -> UsageOut:
        return await self._get(UsageOut, r.path_of("usage"), {"days": days})

    # -- admin -------------------------------------------------------------------------

    async def list_keys(self, account: str | None = None) -> KeyList:
        return await self._get(KeyList, r.path_of("list_keys"), {"account": account})

    async def create_key(self, **body: Unpack[r.KeyCreate]) -> NewKeyOut:
        response = await self.request("POST", r.path_of("create_key"), json=body)
        return NewKeyOut.model_validate_json(response.content)

    async def get_key(self, key_id: str) -> KeyOut:
        return await self._get(KeyOut, r.path_of("get_key", key_id=key_id))

    async def revoke_key(self, key_id: str) -> KeyOut:
        response = await self.request("DELETE", r.path_of("revoke_key", key_id=key_id))
        return KeyOut.model_validate_json(response.content)

    async def rotate_key(self, key_id: str, grace_s: int | None = None) -> NewKeyOut:
        body = {"grace_s": grace_s} if grace_s is not None else None
        response = await self.request("POST", r.path_of("rotate_key", key_id=key_id), json=body)
        return NewKeyOut.model_validate_json(response.content)

    async def audit(self, limit: int | None = None) -> AuditList:
        return await self._get(AuditList, r.path_of("audit"), {"limit": limit})
