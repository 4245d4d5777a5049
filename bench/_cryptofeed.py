"""The typical peer for ingestion: the `cryptofeed` package's own parsers on the same frames.

cryptofeed's feeds fetch their symbol tables over REST when built; here the tables are
set by hand to the symbols the captures name, so nothing touches the network. Frames go to
each feed's ``message_handler`` (its playback path); trades reach an async callback, as they reach a
cryptofeed user. cryptofeed 2.4 speaks Coinbase's Advanced Trade feed, not the Exchange
``ws-feed`` of the capture, so a Coinbase frame goes through the same decode that
`message_handler` uses (yapic json, floats as Decimal) and then its trade parser
(``_trade_update``), whose field names match the ``match`` message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Binance, Coinbase, Kraken
from cryptofeed.symbols import Symbols
from yapic import json as yapic_json

from bench._captures import Frame

_COINBASE = ("SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC")
_COINBASE += ("NU-GBP", "CRV-EUR", "SKL-GBP")
_KRAKEN = ("ADA/XBT", "ETH/CHF", "GRT/ETH", "KSM/XBT", "OCEAN/XBT", "OMG/USD", "SC/EUR")
_KRAKEN += ("WAVES/EUR", "XBT/CHF", "XMR/USD")


_BINANCE = (("NKN-USDT", "NKNUSDT"), ("BLZ-ETH", "BLZETH"), ("LRC-BTC", "LRCBTC"))
_BINANCE += (("RUNE-EUR", "RUNEEUR"),)


def _kraken_normalized(pair: str) -> str:
    return pair.replace("XBT", "BTC").replace("/", "-")


def _seed_symbols() -> None:
    Symbols.set(Coinbase.id, {p: p for p in _COINBASE}, {})
    Symbols.set(Kraken.id, {_kraken_normalized(p): p for p in _KRAKEN}, {})
    Symbols.set(Binance.id, dict(_BINANCE), {})


Handler = Callable[[bytes, float], Awaitable[None]]


def handlers(on_trade: Callable[[Any, float], Awaitable[None]]) -> dict[str, Handler]:
    """One frame handler per venue, each a cryptofeed feed with `on_trade` as callback."""
    _seed_symbols()
    callbacks = {TRADES: on_trade}
    coinbase = Coinbase(symbols=[], channels=[], callbacks=callbacks)
    binance = Binance(symbols=[], channels=[], callbacks=callbacks)
    kraken = Kraken(symbols=[], channels=[], callbacks=callbacks)
    coinbase.callbacks = {TRADES: [on_trade]}
    binance.callbacks = {TRADES: [on_trade]}
    kraken.callbacks = {TRADES: [on_trade]}

    async def on_coinbase(raw: bytes, ts: float) -> None:
        msg = yapic_json.loads(raw, parse_float=Decimal)
        await coinbase._trade_update(msg, ts)

    async def on_binance(raw: bytes, ts: float) -> None:
        await binance.message_handler(raw, None, ts)

    async def on_kraken(raw: bytes, ts: float) -> None:
        await kraken.message_handler(raw, None, ts)

    return {"coinbase": on_coinbase, "binance": on_binance, "kraken": on_kraken}


async def run(frames: list[Frame], on_trade_count: list[int]) -> None:
    """Feed every frame to cryptofeed; `on_trade_count[0]` counts the trades delivered."""

    async def on_trade(trade: Any, ts: float) -> None:
        on_trade_count[0] += 1

    table = handlers(on_trade)
    for frame in frames:
        await table[frame.exchange](frame.raw, frame.received_ms / 1000)
