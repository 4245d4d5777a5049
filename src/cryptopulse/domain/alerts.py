"""Incremental alert-rule evaluation (pure): an `AlertBook` holds every active rule, indexed
so that one update checks only the rules it can trigger.

- Price crosses: per instrument, the levels sorted; a price move from `last` to `price`
  bisects to the levels in between (`last < level <= price` up, `price <= level < last`
  down), so a trade that crosses nothing costs two bisections.
- Closed-candle rules (% move, volume spike, level break): per (instrument, interval).
- Signal changes per (instrument, interval); grades per symbol; sector and correlation
  rules and large on-chain transfers by sector / chain.

Firings collect in `fired` (the caller drains it). Cooldowns use market time (the event's
own timestamp), so evaluation is deterministic and replayable.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

from cryptopulse.domain._alerts_rules import (
    CANDLE_KINDS,
    KINDS,
    Firing,
    Rule,
    RuleError,
    check_params,
)
from cryptopulse.domain._alerts_series import CandleSeries
from cryptopulse.domain.grades import Grade, band
from cryptopulse.domain.models import Candle
from cryptopulse.domain.onchain import WhaleTransfer
from cryptopulse.domain.sectors import SectorSnapshot

__all__ = ["KINDS", "AlertBook", "Firing", "Rule", "RuleError", "check_params"]


class _Levels:
    """The price-cross rules of one instrument, sorted by level, and its last price."""

    __slots__ = ("last", "levels", "rules")

    def __init__(self) -> None:
        self.levels: list[float] = []
        self.rules: list[Rule] = []
        self.last: float | None = None

    def add(self, rule: Rule) -> None:
        level = float(rule.params["level"])
        i = bisect_right(self.levels, level)
        self.levels.insert(i, level)
        self.rules.insert(i, rule)

    def remove(self, rule_id: str) -> None:
        for i, rule in enumerate(self.rules):
            if rule.id == rule_id:
                del self.levels[i], self.rules[i]
                return


def _key(rule: Rule) -> str:
    """The index key of a rule that is not a price cross or a candle rule."""
    kind, p = rule.kind, rule.params
    if kind == "signal_change":
        return f"{p['instrument']}|{p.get('interval', '5m')}"
    if kind in ("grade_band", "grade_move"):
        return str(p["symbol"]).upper()
    if kind == "large_transfer":
        return str(p["chain"])
    return ""  # sector rotation and correlation breakdown: few rules, all checked


class AlertBook:
    """Every active rule, indexed; `fired` collects what the updates triggered."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.fired: list[Firing] = []
        self._prices: dict[str, _Levels] = {}
        self._series: dict[tuple[str, str], CandleSeries] = {}
        self._other: dict[str, dict[str, dict[str, Rule]]] = {k: {} for k in KINDS}

    # --- rules ---------------------------------------------------------------------------

    def add(self, rule: Rule) -> None:
        """Add or replace a rule (inactive rules are kept but not indexed)."""
        check_params(rule.kind, rule.params)
        self.remove(rule.id)
        self.rules[rule.id] = rule
        if rule.active:
            self._index(rule)

    def remove(self, rule_id: str) -> Rule | None:
        rule = self.rules.pop(rule_id, None)
        if rule is not None:
            self._unindex(rule)
        return rule

    def set_active(self, rule_id: str, active: bool) -> None:
        rule = self.rules.get(rule_id)
        if rule is None or rule.active == active:
            return
        rule.active = active
        rule.state.clear()
        (self._index if active else self._unindex)(rule)

    def _index(self, rule: Rule) -> None:
        p = rule.params
        if rule.kind == "price_cross":
            self._prices.setdefault(str(p["instrument"]), _Levels()).add(rule)
        elif rule.kind in CANDLE_KINDS:
            key = (str(p["instrument"]), str(p.get("interval", "1m")))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = CandleSeries(*key)
            series.add_rule(rule)
        else:
            self._other[rule.kind].setdefault(_key(rule), {})[rule.id] = rule

    def _unindex(self, rule: Rule) -> None:
        p = rule.params
        if rule.kind == "price_cross":
            levels = self._prices.get(str(p["instrument"]))
            if levels is not None:
                levels.remove(rule.id)
        elif rule.kind in CANDLE_KINDS:
            series = self._series.get((str(p["instrument"]), str(p.get("interval", "1m"))))
            if series is not None:
                series.remove_rule(rule.id)
        else:
            self._other[rule.kind].get(_key(rule), {}).pop(rule.id, None)

    def _fire(self, rule: Rule, time: int, data: dict[str, Any]) -> None:
        if not rule.ready(time):
            return
        rule.last_fired = time
        self.fired.append(Firing(rule.id, rule.account, rule.kind, time, data))
        if rule.one_shot:
            self.set_active(rule.id, False)

    def drain(self) -> list[Firing]:
        fired, self.fired = self.fired, []
        return fired

    # --- updates -------------------------------------------------------------------------

    def on_price(self, instrument: str, price: float, time: int) -> None:
        """A new last price of a venue instrument or composite (trades, tickers)."""
        index = self._prices.get(instrument)
        if index is None:
            return
        last = index.last
        index.last = price
        if last is None or price == last:
            return
        levels = index.levels
        if price > last:
            lo, hi = bisect_right(levels, last), bisect_right(levels, price)
            wanted = "down"  # rules of this direction do not fire on a rise
        else:
            lo, hi = bisect_left(levels, price), bisect_left(levels, last)
            wanted = "up"
        if lo == hi:
            return
        for rule in index.rules[lo:hi]:  # a copy: one-shot rules leave the index
            if rule.params.get("direction", "either") != wanted:
                data = {"instrument": instrument, "level": rule.params["level"]}
                data |= {"price": price, "previous": last, "direction": _opposite(wanted)}
                self._fire(rule, time, data)

    def on_candle(self, candle: Candle) -> None:
        """A closed candle (venue or composite)."""
        if not candle.closed:
            return
        series = self._series.get((candle.instrument, candle.interval))
        if series is not None and series.rules:
            series.on_candle(candle, self._fire)

    def on_signal(
        self, instrument: str, interval: str, state: str, previous: str | None, time: int
    ) -> None:
        """The signal of (instrument, interval) changed from `previous` to `state`."""
        rules = self._other["signal_change"].get(f"{instrument}|{interval}")
        if not rules or state == previous:
            return
        for rule in list(rules.values()):
            if rule.params.get("to", "any") in ("any", state):
                data = {"instrument": instrument, "interval": interval}
                self._fire(rule, time, data | {"state": state, "previous": previous})

    def on_grades(self, previous: Mapping[str, Grade], current: Mapping[str, Grade]) -> None:
        """Grades recomputed: band changes and moves of N points since the reference."""
        for symbol, grade in current.items():
            band_rules = self._other["grade_band"].get(symbol)
            if band_rules:
                self._grade_bands(band_rules.values(), previous.get(symbol), grade)
            move_rules = self._other["grade_move"].get(symbol)
            if move_rules:
                self._grade_moves(move_rules.values(), grade)

    def _grade_bands(self, rules: Iterable[Rule], before: Grade | None, now: Grade) -> None:
        if before is None:
            return
        for rule in list(rules):
            kind = rule.params.get("grade", "trader")
            old, new = getattr(before, kind), getattr(now, kind)
            if old is None or new is None or band(old) == band(new):
                continue
            direction = "up" if band(new) > band(old) else "down"
            if rule.params.get("direction", "either") in ("either", direction):
                data = {"symbol": now.symbol, "grade": kind, "previous": old, "value": new}
                data |= {"from_band": band(old), "to_band": band(new), "direction": direction}
                self._fire(rule, now.time, data)

    def _grade_moves(self, rules: Iterable[Rule], now: Grade) -> None:
        for rule in list(rules):
            kind = rule.params.get("grade", "trader")
            value = getattr(now, kind)
            if value is None:
                continue
            reference = rule.state.setdefault("reference", value)
            if abs(value - reference) >= float(rule.params["points"]) and rule.ready(now.time):
                rule.state["reference"] = value
                data = {"symbol": now.symbol, "grade": kind, "previous": reference}
                self._fire(rule, now.time, data | {"value": value, "change": value - reference})

    def on_sectors(
        self,
        previous: Mapping[str, SectorSnapshot],
        current: Mapping[str, SectorSnapshot],
        time: int,
    ) -> None:
        """Sectors recomputed: top-N entries and exits, new correlation breakdowns."""
        for rule in list(self._other["sector_rotation"].get("", {}).values()):
            sector = str(rule.params["sector"])
            old, new = previous.get(sector), current.get(sector)
            if old is None or new is None:
                continue
            top = int(rule.params["top"])
            was = old.rank is not None and old.rank <= top
            now = new.rank is not None and new.rank <= top
            move = "enters" if now and not was else "leaves" if was and not now else None
            if move is not None and rule.params.get("direction", "either") in ("either", move):
                data = {"sector": sector, "top": top, "direction": move}
                self._fire(rule, time, data | {"rank": new.rank, "previous_rank": old.rank})
        for sector, snap in current.items():
            old = previous.get(sector)
            fresh = set(snap.breakdowns) - set(old.breakdowns if old is not None else ())
            for symbol in sorted(fresh):
                self._breakdown(sector, symbol, snap.member_correlation.get(symbol), time)

    def _breakdown(self, sector: str, symbol: str, correlation: float | None, time: int) -> None:
        for rule in list(self._other["correlation_breakdown"].get("", {}).values()):
            want_sector, want_symbol = rule.params.get("sector"), rule.params.get("symbol")
            if want_sector not in (None, sector):
                continue
            if want_symbol is not None and str(want_symbol).upper() != symbol:
                continue
            data = {"sector": sector, "symbol": symbol, "correlation": correlation}
            self._fire(rule, time, data)

    def on_transfer(self, whale: WhaleTransfer) -> None:
        """A large on-chain transfer (at or above its token's whale threshold)."""
        rules = self._other["large_transfer"].get(whale.chain)
        if not rules:
            return
        for rule in list(rules.values()):
            if _transfer_matches(rule.params, whale):
                self._fire(rule, whale.time, _transfer_data(whale))


def _opposite(wanted: str) -> str:
    return "up" if wanted == "down" else "down"


def _transfer_matches(p: Mapping[str, Any], whale: WhaleTransfer) -> bool:
    token = p.get("token")
    if token is not None and str(token).lower() not in (whale.token, whale.symbol.lower()):
        return False
    minimum = p.get("min_amount")
    if minimum is not None and whale.amount < float(minimum):
        return False
    direction = p.get("direction", "either")
    if direction == "to_exchange":
        return whale.exchange_in is not None
    if direction == "from_exchange":
        return whale.exchange_out is not None
    return True


def _transfer_data(whale: WhaleTransfer) -> dict[str, Any]:
    return {
        "chain": whale.chain,
        "token": whale.token,
        "symbol": whale.symbol,
        "amount": whale.amount,
        "from": whale.sender,
        "to": whale.receiver,
        "tx_hash": whale.tx_hash,
        "block_number": whale.block_number,
        "exchange_in": whale.exchange_in,
        "exchange_out": whale.exchange_out,
    }
