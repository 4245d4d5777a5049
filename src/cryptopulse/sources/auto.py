"""Choosing sources from settings, and the `auto` mode: live feeds, else the simulator."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from cryptopulse.domain.instruments import parse_instrument
from cryptopulse.runtime import Services
from cryptopulse.settings import Settings
from cryptopulse.sources.base import Source

log = logging.getLogger(__name__)

Supervisor = Callable[[Services], Coroutine[Any, Any, None]]


def live_sources(settings: Settings, instruments: Sequence[str]) -> list[Source]:
    """One source per exchange named in `instruments` (unknown exchanges are an error)."""
    from cryptopulse.sources.binance import BinanceSource
    from cryptopulse.sources.coinbase import CoinbaseSource
    from cryptopulse.sources.kraken import KrakenSource

    by_exchange: dict[str, list[str]] = defaultdict(list)
    for name in instruments:
        inst = parse_instrument(name)
        if inst.exchange is None:
            raise ValueError(f"{name}: live sources need exchange:BASE-QUOTE")
        by_exchange[inst.exchange].append(str(inst))
    sources: list[Source] = []
    for exchange, names in sorted(by_exchange.items()):
        if exchange == "coinbase":
            sources.append(
                CoinbaseSource(
                    names,
                    ws_url=settings.coinbase_ws_url,
                    rest_url=settings.coinbase_rest_url,
                    rest_timeout_s=settings.outbound_timeout_s,
                )
            )
        elif exchange == "binance":
            sources.append(
                BinanceSource(
                    names,
                    ws_url=settings.binance_ws_url,
                    rest_url=settings.binance_rest_url,
                    rest_timeout_s=settings.outbound_timeout_s,
                )
            )
        elif exchange == "kraken":
            sources.append(KrakenSource(names, ws_url=settings.kraken_ws_url))
        else:
            raise ValueError(f"no live adapter for exchange {exchange!r}")
    return sources


def simulated_instruments(instruments: Sequence[str]) -> list[str]:
    """`sim:PAIR` for each distinct pair: simulated data never wears a real venue's name."""
    pairs = dict.fromkeys(parse_instrument(name).pair for name in instruments)
    return [f"sim:{pair}" for pair in pairs]


def simulator(instruments: Sequence[str], seed: int | None = None) -> Source:
    from cryptopulse.sources.simulator import SimulatorSource

    return SimulatorSource(simulated_instruments(instruments), seed=seed)


def build_sources(settings: Settings) -> tuple[list[Source], list[Supervisor]]:
    """Sources and supervisors for `settings.source` (auto, live, sim or replay:PATH)."""
    mode = settings.source
    if mode == "sim":
        return [simulator(settings.instruments, settings.sim_seed)], []
    if mode.startswith("replay:"):
        from cryptopulse.sources.replay import ReplaySource

        return [ReplaySource([Path(mode.removeprefix("replay:"))], speed=1.0)], []
    live = live_sources(settings, settings.instruments)
    if mode == "live":
        return live, []
    return live, [AutoFallback(live, settings).run]


class AutoFallback:
    """Runs the simulator while no live feed is connected; stops it when one connects.

    The live sources keep reconnecting with backoff the whole time, so a laptop that comes
    online switches to live data by itself.
    """

    def __init__(self, live: Sequence[Source], settings: Settings, poll_s: float = 1.0) -> None:
        self.live = list(live)
        self.settings = settings
        self.poll_s = poll_s
        self.simulator: Source | None = None

    def _any_live(self) -> bool:
        return any(source.status.connected for source in self.live)

    async def run(self, services: Services) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.live_connect_timeout_s
        # Polling the feeds' status objects: they have no events, and this runs 10×/s at most.
        while not self._any_live() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        while True:
            if self._any_live() and self.simulator is not None:
                log.warning("a live exchange feed connected: stopping the simulator")
                await services.remove_source(self.simulator)
                self.simulator = None
            elif not self._any_live() and self.simulator is None:
                self.simulator = simulator(self.settings.instruments, self.settings.sim_seed)
                log.warning(
                    "no exchange reachable after %.0f s: serving SIMULATED data from the "
                    'built-in simulator (instruments sim:*, source="simulated"); still '
                    "retrying the live feeds",
                    self.settings.live_connect_timeout_s,
                )
                services.add_source(self.simulator)
            await asyncio.sleep(self.poll_s)
