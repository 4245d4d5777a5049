"""A simulated market for demos and tests: correlated random walks with volatility clustering.

Model (all in log prices, one step = `step_ms` of market time):

- Each asset's USD log price moves by ``r = sqrt(h) * e``; ``e = b * z_m + sqrt(1 - b^2) * z_i``
  mixes a common market shock ``z_m`` (BTC is the market, b = 1) with the asset's own
  ``z_i``, so two assets' returns correlate by about ``b_1 * b_2``.
- ``h`` follows GARCH(1,1): ``h' = w + a * r^2 + g * h`` with ``w = H * (1 - a - g)``, so
  calm and wild stretches alternate around the long-run variance ``H`` (set from an
  annualized volatility per asset).
- An instrument's mid is ``base_usd / quote_usd``; stablecoin quotes are pinned at 1.
- Trades arrive as a Poisson process whose rate rises with volatility; sizes are log-normal
  around a notional per trade; buys print at the ask and sells at the bid (bid-ask bounce).

`SimMarket.step` is pure given its seed and the clock values passed in; `SimulatorSource`
runs it on a timer into an event sink.
"""

from __future__ import annotations

import asyncio
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.domain.models import Side, Ticker, Trade
from cryptopulse.sources.base import EventSink, FeedStatus, SourceKind, now_ms

__all__ = ["SimMarket", "SimStep", "SimulatorSource", "start_price"]

# Rough USD prices to start from, so the demo looks like the market it imitates.
_START_USD: dict[str, float] = {
    "BTC": 90_000.0,
    "ETH": 3_000.0,
    "SOL": 150.0,
    "BNB": 650.0,
    "XRP": 2.2,
    "DOGE": 0.3,
    "ADA": 0.7,
    "AVAX": 30.0,
    "LINK": 20.0,
    "LTC": 90.0,
    "DOT": 6.0,
    "MATIC": 0.5,
    "TRX": 0.25,
    "EUR": 1.08,
    "GBP": 1.27,
}
_STABLE = frozenset({"USD", "USDT", "USDC", "DAI", "BUSD", "FDUSD"})
# (beta to BTC, annualized volatility, trades per second at calm)
_PROFILE: dict[str, tuple[float, float, float]] = {
    "BTC": (1.0, 0.55, 12.0),
    "ETH": (0.85, 0.70, 8.0),
    "SOL": (0.75, 0.90, 5.0),
    "BNB": (0.70, 0.60, 3.0),
    "XRP": (0.65, 0.90, 4.0),
    "DOGE": (0.65, 1.00, 4.0),
    "EUR": (0.0, 0.08, 1.0),
    "GBP": (0.0, 0.08, 1.0),
}
_DEFAULT_PROFILE = (0.65, 0.85, 2.0)
_YEAR_MS = 365 * 86_400_000
_GARCH_A = 0.02  # reaction to the last shock
_GARCH_G = 0.978  # persistence: a burst fades over a few hundred steps (minutes)
_NOTIONAL_USD = 800.0  # median trade size in USD
_DAY_MS = 86_400_000


def start_price(asset: str) -> float:
    """Plausible USD price of an asset; unknown ones get a stable pseudo-random price."""
    if asset in _STABLE:
        return 1.0
    known = _START_USD.get(asset)
    if known is not None:
        return known
    # crc32, not hash(): the same name must start at the same price in every process.
    return round(10 ** (zlib.crc32(asset.encode()) % 4000 / 1000 - 1), 4)


@dataclass(slots=True)
class _Asset:
    name: str
    log_price: float
    beta: float
    mean_var: float  # long-run variance per step
    var: float  # current GARCH variance per step
    rate: float  # trades per second at the long-run variance
    last_return: float = 0.0


@dataclass(slots=True)
class _Book:
    instrument: str
    base: _Asset | None  # None: a stablecoin, pinned at 1 USD
    quote: _Asset | None
    half_spread: float
    next_id: int
    last: float | None = None
    volume_24h: float = 0.0


@dataclass(frozen=True, slots=True)
class SimStep:
    """What one step produced: trades in time order, and one ticker per instrument."""

    trades: list[Trade] = field(default_factory=list)
    tickers: list[Ticker] = field(default_factory=list)


def _tick(price: float) -> float:
    """Round to about seven significant digits, like an exchange's tick size."""
    if price <= 0:
        return price
    return round(price, max(0, 6 - math.floor(math.log10(price))))


class SimMarket:
    """The pure model. `step(now)` advances one step and returns the events it made."""

    def __init__(
        self,
        instruments: Sequence[str],
        *,
        seed: int | None = None,
        step_ms: int = 250,
        start_ms: int = 0,
    ) -> None:
        self.step_ms = step_ms
        # A simulation, not a secret: a seedable PRNG is what we want.
        self._rng = random.Random(seed)  # noqa: S311
        self._assets: dict[str, _Asset] = {}
        self._books: list[_Book] = []
        self._last_now: int | None = None
        # Ids start from the clock so a restarted simulator never reuses a stored trade id.
        first_id = start_ms * 1000
        for name in instruments:
            inst = parse_instrument(name)
            spread = 0.00001 if inst.base in ("BTC", "ETH") else 0.0001
            self._books.append(
                _Book(
                    name,
                    self._asset(inst.base),
                    self._asset(inst.quote),
                    spread,
                    first_id,
                )
            )
        self._assets_in_order = list(self._assets.values())

    @property
    def instruments(self) -> list[str]:
        return [b.instrument for b in self._books]

    def _asset(self, name: str) -> _Asset | None:
        if name in _STABLE:
            return None
        asset = self._assets.get(name)
        if asset is None:
            beta, vol, rate = _PROFILE.get(name, _DEFAULT_PROFILE)
            mean_var = vol**2 * self.step_ms / _YEAR_MS
            asset = _Asset(name, math.log(start_price(name)), beta, mean_var, mean_var, rate)
            self._assets[name] = asset
        return asset

    def mid(self, instrument: str) -> float:
        """The current mid price of one of our instruments."""
        for book in self._books:
            if book.instrument == instrument:
                return self._mid(book)
        raise KeyError(instrument)

    @staticmethod
    def _mid(book: _Book) -> float:
        base = book.base.log_price if book.base else 0.0
        quote = book.quote.log_price if book.quote else 0.0
        return math.exp(base - quote)

    def _move_assets(self) -> None:
        """One GARCH step for every asset, with shocks sharing the market factor."""
        gauss = self._rng.gauss
        z_market = gauss(0.0, 1.0)
        for asset in self._assets_in_order:
            e = asset.beta * z_market + math.sqrt(1.0 - asset.beta**2) * gauss(0.0, 1.0)
            r = math.sqrt(asset.var) * e
            asset.log_price += r
            asset.last_return = r
            w = asset.mean_var * (1.0 - _GARCH_A - _GARCH_G)
            asset.var = w + _GARCH_A * r * r + _GARCH_G * asset.var

    def step(self, now: int) -> SimStep:
        """Advance one step ending at `now` (ms); trades get times in (previous now, now]."""
        # A clock that steps back must not make trade times go backwards.
        start = self._last_now if self._last_now is not None else now - self.step_ms
        now = max(now, start)
        self._last_now = now
        before = [self._mid(book) for book in self._books]
        self._move_assets()
        out = SimStep()
        for book, mid0 in zip(self._books, before, strict=True):
            out.trades.extend(self._trades(book, mid0, start, now))
            out.tickers.append(self._ticker(book, now))
        out.trades.sort(key=lambda t: t.time)
        return out

    def _activity(self, book: _Book) -> float:
        """Expected trades this step: the base rate, scaled up by sqrt of the variance ratio."""
        asset = book.base or book.quote
        if asset is None:
            return 1.0 * self.step_ms / 1000
        ratio = math.sqrt(asset.var / asset.mean_var)
        return asset.rate * min(max(ratio, 0.3), 8.0) * self.step_ms / 1000

    def _poisson(self, lam: float) -> int:
        # Knuth's method: lam per step is small (under ~50), so this stays cheap.
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1

    def _trades(self, book: _Book, mid0: float, start: int, now: int) -> list[Trade]:
        count = self._poisson(self._activity(book))
        if not count:
            return []
        rng = self._rng
        mid1 = self._mid(book)
        drift = math.log(mid1 / mid0)
        # Where in the step each trade falls, as a fraction: drawn from the seeded generator
        # alone, so prices and sizes never depend on the wall clock, only the times do.
        fractions = sorted(rng.random() for _ in range(count))
        out = []
        for u in fractions:
            time = start + max(1, math.ceil(u * (now - start))) if now > start else now
            mid = mid0 * math.exp(drift * u)
            # Takers lean with the move: more buys on the way up.
            side: Side = "buy" if rng.random() < 0.5 + (0.15 if drift > 0 else -0.15) else "sell"
            price = _tick(mid * (1 + book.half_spread if side == "buy" else 1 - book.half_spread))
            size = round(
                math.exp(rng.gauss(math.log(_NOTIONAL_USD / self._usd(book, mid)), 1.2)), 8
            )
            book.next_id += 1
            book.last = price
            book.volume_24h += max(size, 1e-8)
            out.append(
                Trade(book.instrument, str(book.next_id), price, max(size, 1e-8), side, time, now)
            )
        return out

    @staticmethod
    def _usd(book: _Book, mid: float) -> float:
        """USD value of one unit of the base asset (the quote may itself be priced in USD)."""
        quote = math.exp(book.quote.log_price) if book.quote else 1.0
        return mid * quote

    def _ticker(self, book: _Book, now: int) -> Ticker:
        mid = self._mid(book)
        # Age the 24h volume so it settles near rate * 24h * size instead of growing forever.
        book.volume_24h *= math.exp(-self.step_ms / _DAY_MS)
        depth = _NOTIONAL_USD * 20 / self._usd(book, mid)
        rng = self._rng
        return Ticker(
            book.instrument,
            _tick(mid * (1 - book.half_spread)),
            _tick(mid * (1 + book.half_spread)),
            book.last,
            round(depth * rng.lognormvariate(0, 0.5), 8),
            round(depth * rng.lognormvariate(0, 0.5), 8),
            book.volume_24h,
            now,
            now,
        )


class SimulatorSource:
    """The simulator as a feed: steps `SimMarket` on a timer, stamping events with the clock.

    `speed` multiplies market activity per wall-clock second (10: ten steps' worth of
    movement and trades every `step_ms`). Steps are batched so the loop sleeps at least
    `_MIN_SLEEP_S` between batches, which bounds its CPU whatever the speed.
    """

    name = "simulator"
    kind: SourceKind = "simulated"

    _MIN_SLEEP_S = 0.05

    def __init__(
        self, instruments: Sequence[str], *, seed: int | None = None, speed: float = 1.0
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        names = [_sim_name(i) for i in instruments]
        self.instruments = names
        self.seed = seed
        self.speed = speed
        self.status = FeedStatus(self.name, self.kind, list(names))
        self.market: SimMarket | None = None

    async def run(self, sink: EventSink) -> None:
        """Emit events until cancelled."""
        start = now_ms()
        market = self.market = SimMarket(self.instruments, seed=self.seed, start_ms=start)
        pause = market.step_ms / 1000 / self.speed
        batch = max(1, math.ceil(self._MIN_SLEEP_S / pause))
        self.status.connected = True
        try:
            while True:
                for k in range(batch):
                    # Spread the batch's steps over the time since the last one.
                    now = now_ms()
                    stamp = now - round((batch - 1 - k) * pause * 1000)
                    await self._emit(sink, market.step(stamp), now)
                await asyncio.sleep(pause * batch)
        finally:
            self.status.connected = False

    async def _emit(self, sink: EventSink, step: SimStep, now: int) -> None:
        for trade in step.trades:
            await sink.on_trade(trade)
        for ticker in step.tickers:
            await sink.on_ticker(ticker)
        self.status.messages += len(step.trades) + len(step.tickers)
        self.status.last_message = now


def _sim_name(name: str) -> str:
    """`BTC-USD` becomes `sim:BTC-USD`; a name with a venue keeps it (checked either way)."""
    inst = parse_instrument(name)
    if inst.exchange is None:
        return f"sim:{inst.pair}"
    return str(inst)
