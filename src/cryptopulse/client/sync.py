"""`Client`: the blocking twin of `AsyncClient`, method for method (the stream is async only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
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
from cryptopulse.client._alerts_sync import AlertsApi
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

__all__ = ["Client"]

T = TypeVar("T")


class Client(AlertsApi):
    """The cryptopulse API over HTTP, blocking. Same methods, errors and retries as
    `AsyncClient` (see there); use `AsyncClient.stream` for live data."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        use_jwt: bool = False,
        scope: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = Credentials(api_key=api_key, use_jwt=use_jwt)
        self.scope = scope
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )
        self._token_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def credential(self, *, renew: bool = False) -> str | None:
        """The bearer credential to send now (a fresh JWT when one is due)."""
        creds = self.credentials
        if creds.use_jwt and (renew or creds.needs_token()):
            with self._token_lock:
                if renew or creds.needs_token():
                    token = self.oauth_token(self.scope)
                    creds.set_token(token.access_token, token.expires_in)
        return creds.bearer()

    def request(
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
            headers = headers_for(self.credential() if auth else self.credentials.api_key)
            response = self._http.request(
                method, path, params=query(params), json=json, data=data, headers=headers
            )
            if response.status_code == 401 and self.credentials.use_jwt and auth and not renewed:
                renewed = True  # the token may have expired in flight: renew once
                self.credential(renew=True)
                continue
            wait = self.retry.wait_s(attempt, response)
            if wait is None:
                return checked(response)
            attempt += 1
            time.sleep(wait)

    def _get(self, model: type[M], path: str, params: Mapping[str, Any] | None = None) -> M:
        return decode(model, self.request("GET", path, params))

    def paginate(self, fetch: Callable[..., Page[T]], *args: Any, **kwargs: Any) -> Iterator[T]:
        """Every row of every page, following `next_cursor` (see `AsyncClient.paginate`)."""
        cursor = kwargs.pop("cursor", None)
        while True:
            page = fetch(*args, **kwargs, cursor=cursor)
            yield from page.data
            cursor = page.next_cursor
            if not cursor:
                return

    # -- health ------------------------------------------------------------------------

    def healthz(self) -> Health:
        return self._get(Health, r.path_of("healthz"))

    def readyz(self) -> Readiness:
        """Readiness; a 503 (not ready) still returns the body rather than raising."""
        response = self._http.get(r.path_of("readyz"))
        if response.status_code not in (200, 503):
            checked(response)
        return Readiness.model_validate_json(response.content)

    def metrics_text(self) -> str:
        """The Prometheus exposition text of `/metrics`."""
        return (self.request("GET", r.path_of("metrics_text"))).text

    # -- market data ---------------------------------------------------------------------

    def instruments(self) -> InstrumentList:
        return self._get(InstrumentList, r.path_of("instruments"))

    def tickers(self) -> TickerList:
        return self._get(TickerList, r.path_of("tickers"))

    def ticker(self, instrument: str) -> TickerOut:
        return self._get(TickerOut, r.path_of("ticker", instrument=instrument))

    def candles(self, instrument: str, **q: Unpack[r.CandleQuery]) -> CandlePage:
        return self._get(CandlePage, r.path_of("candles", instrument=instrument), q)

    def trades(self, instrument: str, **q: Unpack[r.Paged]) -> TradePage:
        return self._get(TradePage, r.path_of("trades", instrument=instrument), q)

    # -- on-chain ----------------------------------------------------------------------

    def chains(self) -> ChainList:
        return self._get(ChainList, r.path_of("chains"))

    def chain_metrics(self, chain: str, **q: Unpack[r.ChainQuery]) -> ChainMetricsPage:
        return self._get(ChainMetricsPage, r.path_of("chain_metrics", chain=chain), q)

    def token_metrics(self, chain: str, token: str, **q: Unpack[r.ChainQuery]) -> OnchainTokenPage:
        path = r.path_of("token_metrics", chain=chain, token=token)
        return self._get(OnchainTokenPage, path, q)

    def token_transfers(
        self, chain: str, token: str, **q: Unpack[r.TransferQuery]
    ) -> TokenTransferPage:
        path = r.path_of("token_transfers", chain=chain, token=token)
        return self._get(TokenTransferPage, path, q)

    # -- analytics ---------------------------------------------------------------------

    def indicators(self, instrument: str, **q: Unpack[r.IndicatorQuery]) -> IndicatorPage:
        return self._get(IndicatorPage, r.path_of("indicators", instrument=instrument), q)

    def levels(self, instrument: str, **q: Unpack[r.LevelQuery]) -> LevelList:
        return self._get(LevelList, r.path_of("levels", instrument=instrument), q)

    def quant_metrics(self, instrument: str, **q: Unpack[r.QuantQuery]) -> QuantMetricsOut:
        path = r.path_of("quant_metrics", instrument=instrument)
        return self._get(QuantMetricsOut, path, q)

    def signals(self, **q: Unpack[r.SignalsQuery]) -> SignalList:
        return self._get(SignalList, r.path_of("signals"), q)

    def signal_history(self, instrument: str, **q: Unpack[r.SignalHistoryQuery]) -> SignalHistory:
        path = r.path_of("signal_history", instrument=instrument)
        return self._get(SignalHistory, path, q)

    def signal_performance(
        self, instrument: str, **q: Unpack[r.PerformanceQuery]
    ) -> SignalPerformanceOut:
        path = r.path_of("signal_performance", instrument=instrument)
        return self._get(SignalPerformanceOut, path, q)

    def grades(self, **q: Unpack[r.GradesQuery]) -> GradeList:
        return self._get(GradeList, r.path_of("grades"), q)

    def grade(self, symbol: str) -> GradeOut:
        return self._get(GradeOut, r.path_of("grade", symbol=symbol))

    def grade_history(self, symbol: str, **q: Unpack[r.TimePaged]) -> GradeHistory:
        return self._get(GradeHistory, r.path_of("grade_history", symbol=symbol), q)

    def tokens(self, **q: Unpack[r.TokensQuery]) -> RegistryTokenList:
        return self._get(RegistryTokenList, r.path_of("tokens"), q)

    def token(self, symbol: str) -> RegistryToken:
        return self._get(RegistryToken, r.path_of("token", symbol=symbol))

    def sectors(self) -> SectorList:
        return self._get(SectorList, r.path_of("sectors"))

    def sector(self, sector_id: str) -> SectorDetail:
        return self._get(SectorDetail, r.path_of("sector", sector_id=sector_id))

    def sector_history(self, sector_id: str, **q: Unpack[r.TimePaged]) -> SectorHistory:
        path = r.path_of("sector_history", sector_id=sector_id)
        return self._get(SectorHistory, path, q)

    def correlations(self, instrument: str, **q: Unpack[r.CorrelationQuery]) -> CorrelationsOut:
        path = r.path_of("correlations", instrument=instrument)
        return self._get(CorrelationsOut, path, q)

    # -- access --------------------------------------------------------------------------

    def oauth_token(self, scope: str | None = None) -> TokenOut:
        """Exchange the API key for a JWT (`client_credentials`)."""
        if not self.credentials.api_key:
            raise Unauthorized(401, "Unauthorized", "a JWT needs an API key to exchange")
        response = self.request(
            "POST", r.path_of("oauth_token"), data=token_form(scope), auth=False
        )
        return TokenOut.model_validate_json(response.content)

    def me(self) -> MeOut:
        return self._get(MeOut, r.path_of("me"))

    def usage(self, days: int | None = None) -> UsageOut:
        return self._get(UsageOut, r.path_of("usage"), {"days": days})

    # -- admin -------------------------------------------------------------------------

    def list_keys(self, account: str | None = None) -> KeyList:
        return self._get(KeyList, r.path_of("list_keys"), {"account": account})

    def create_key(self, **body: Unpack[r.KeyCreate]) -> NewKeyOut:
        response = self.request("POST", r.path_of("create_key"), json=body)
        return NewKeyOut.model_validate_json(response.content)

    def get_key(self, key_id: str) -> KeyOut:
        return self._get(KeyOut, r.path_of("get_key", key_id=key_id))

    def revoke_key(self, key_id: str) -> KeyOut:
        response = self.request("DELETE", r.path_of("revoke_key", key_id=key_id))
        return KeyOut.model_validate_json(response.content)

    def rotate_key(self, key_id: str, grace_s: int | None = None) -> NewKeyOut:
        body = {"grace_s": grace_s} if grace_s is not None else None
        response = self.request("POST", r.path_of("rotate_key", key_id=key_id), json=body)
        return NewKeyOut.model_validate_json(response.content)

    def audit(self, limit: int | None = None) -> AuditList:
        return self._get(AuditList, r.path_of("audit"), {"limit": limit})
