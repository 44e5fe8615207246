"""The mock venue dita trades against in the demo and the tests.

It answers synchronously: ACK, fills (whole or in parts), rejects, expiries
and rate limits, decided by a script (one answer per submitted order) or by
seeded random rates. Orders can also be left resting (`auto_fill=False`) and
worked later by hand (`fill`, `partial_fill`, `expire`, `reject`). It never
fills beyond an order's intended size.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dita.contracts import KernelIntent, TradeSlot, VenueEvent, VenueOrder

#: A script step: "ack", "fill", "partial:N", "reject", "expire", "rate_limit",
#: "silent", or a callable (venue, intent, order) -> events.
ScriptStep = str | Callable[["MockVenueAdapter", KernelIntent, VenueOrder], Sequence[VenueEvent]]


@dataclass
class RestingOrder:
    client_id: str
    venue_order_id: str
    trade_id: str
    slot_id: int
    side: str
    asset: str
    intended: float
    price: float
    filled: float = 0.0
    done: bool = False

    @property
    def remaining(self) -> float:
        return max(self.intended - self.filled, 0.0)


class MockVenueAdapter:
    """A venue in this process.

    Keyword arguments (all optional):
        script: answers for the next submitted orders, in order; when it runs
            out, the rates below decide (default: none).
        partial_fills: parts a fill is split into (default 1).
        reject_rate, expire_rate, rate_limit_rate: chance an order is rejected,
            expires unfilled, or is rate-limited (default 0 each).
        retry_after_ms: what a rate limit tells the caller to wait (default 250).
        duplicate_rate: chance an event is sent twice, as venues do on
            reconnects (default 0).
        slippage_bps: fill price moved against the order, in basis points (default 0).
        auto_ack: answer with an ACK (default True).
        auto_fill: fill at once; when False orders rest until worked by hand (default True).
        seed: seed of the random rates, for repeatable runs (default 0).
        clock: returns event timestamps, epoch seconds (default `time.time`).
        history: events and finished orders it remembers, newest kept, so a
            run of any length holds bounded memory (default 10,000 each; the
            asset of a trade, for exits that name none, is kept for the
            newest 10 * history trades).
        session: put into every order and event id it mints, so a venue started
            again (a restarted run) never reuses an id of an earlier life
            (default "": ids as `V-000001` and `mock-00000001`).
    """

    def __init__(
        self,
        *,
        script: Sequence[ScriptStep] = (),
        partial_fills: int = 1,
        reject_rate: float = 0.0,
        expire_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        retry_after_ms: int = 250,
        duplicate_rate: float = 0.0,
        slippage_bps: float = 0.0,
        auto_ack: bool = True,
        auto_fill: bool = True,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        session: str = "",
        history: int = 10_000,
    ) -> None:
        if partial_fills < 1:
            raise ValueError(f"partial_fills = {partial_fills}: must be at least 1")
        for name, rate in (
            ("reject_rate", reject_rate),
            ("expire_rate", expire_rate),
            ("rate_limit_rate", rate_limit_rate),
            ("duplicate_rate", duplicate_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} = {rate}: must be between 0 and 1")
        self.script: list[ScriptStep] = list(script)
        self.partial_fills = partial_fills
        self.reject_rate = reject_rate
        self.expire_rate = expire_rate
        self.rate_limit_rate = rate_limit_rate
        self.retry_after_ms = retry_after_ms
        self.duplicate_rate = duplicate_rate
        self.slippage_bps = slippage_bps
        self.auto_ack = auto_ack
        self.auto_fill = auto_fill
        self.clock = clock
        self.rng = random.Random(seed)
        if history < 1:
            raise ValueError(f"history = {history}: must be at least 1")
        self.history = history
        #: Working orders, and the newest `history` finished ones (oldest first).
        self.orders: dict[str, RestingOrder] = {}
        self._finished: deque[str] = deque()
        self._finished_set: set[str] = set()
        self.events: deque[VenueEvent] = deque(maxlen=history)
        self.cancel_rejects: deque[str] = deque(maxlen=history)
        self._order_seq = 0
        self._event_seq = 0
        self.last_price: dict[str, float] = {}
        self._asset_by_trade: dict[str, str] = {}
        self._id_tag = f"{session}-" if session else ""

    # ----- VenueAdapter ----------------------------------------------------------------

    def submit(self, intent: KernelIntent, order: VenueOrder) -> list[VenueEvent]:
        self._order_seq += 1
        # An order without a price of its own (an EXIT usually names none) fills
        # at the last price seen for its asset; inventing one would book false PnL.
        asset = intent.asset or self._asset_by_trade.get(order.internal_trade_id, "")
        price = (
            (order.order_type == "LIMIT" and intent.limit_price)
            or intent.reference_price
            or self.last_price.get(asset, 0.0)
        )
        slip = self.slippage_bps / 1e4 * (1 if order.side == "LONG" else -1)
        resting = RestingOrder(
            client_id=order.venue_client_id,
            venue_order_id=f"V-{self._id_tag}{self._order_seq:06d}",
            trade_id=order.internal_trade_id,
            slot_id=intent.slot_id,
            side=order.side.value,
            asset=asset,
            intended=order.intended_size,
            price=price * (1 + slip),
        )
        self.orders[resting.client_id] = resting
        if asset:
            # Newest last, so the trades forgotten first are the longest unseen.
            self._asset_by_trade.pop(order.internal_trade_id, None)
            self._asset_by_trade[order.internal_trade_id] = asset
            while len(self._asset_by_trade) > 10 * self.history:
                del self._asset_by_trade[next(iter(self._asset_by_trade))]
        step = self.script.pop(0) if self.script else self._draw()
        if price <= 0 and not callable(step) and step not in ("silent", "ack", "rate_limit", "reject"):
            step = "no_price"
        if callable(step):
            return self._emit(list(step(self, intent, order)))
        return self._emit(self._answer(resting, step))

    def cancel(self, order: VenueOrder, reason: str = "") -> list[VenueEvent]:
        resting = self.orders.get(order.venue_client_id)
        if resting is None or resting.done:
            self.cancel_rejects.append(order.venue_client_id)
            return []
        resting.done = True
        return self._emit([self._event(resting, "CANCELLED", reason=reason or "cancelled on request")])

    def adopt_working_orders(self, slots: Iterable[TradeSlot]) -> int:
        """Rests every working order of `slots` here, as a venue that outlived a
        restarted kernel still holds them; returns how many."""
        adopted = 0
        for slot in slots:
            for order in (slot.active_entry_order, slot.active_exit_order):
                if order is None or not order.is_working() or order.venue_client_id in self.orders:
                    continue
                self.orders[order.venue_client_id] = RestingOrder(
                    client_id=order.venue_client_id,
                    venue_order_id=order.venue_order_id,
                    trade_id=order.internal_trade_id,
                    slot_id=slot.slot_id,
                    side=order.side.value,
                    asset=slot.asset,
                    intended=order.intended_size,
                    price=order.average_fill_price or slot.last_mark_price or slot.entry_price,
                    filled=order.filled_size,
                )
                adopted += 1
        return adopted

    # ----- working resting orders by hand ------------------------------------------------

    def fill(self, client_id: str, qty: float | None = None, price: float | None = None) -> list[VenueEvent]:
        """Fills the rest of an order (or `qty` of it, as a final FILL)."""
        resting = self._working(client_id)
        qty = resting.remaining if qty is None else min(qty, resting.remaining)
        resting.filled += qty
        resting.done = True
        return self._emit([self._event(resting, "FILL", price=price or resting.price, size=qty)])

    def partial_fill(self, client_id: str, qty: float, price: float | None = None) -> list[VenueEvent]:
        resting = self._working(client_id)
        qty = min(qty, resting.remaining)
        resting.filled += qty
        return self._emit([self._event(resting, "PARTIAL_FILL", price=price or resting.price, size=qty)])

    def expire(self, client_id: str) -> list[VenueEvent]:
        resting = self._working(client_id)
        resting.done = True
        return self._emit([self._event(resting, "EXPIRED", reason="time in force elapsed")])

    def reject(self, client_id: str, reason: str = "rejected by venue") -> list[VenueEvent]:
        resting = self._working(client_id)
        resting.done = True
        return self._emit([self._event(resting, "REJECTED", reason=reason)])

    # ----- internals -----------------------------------------------------------------------

    def _working(self, client_id: str) -> RestingOrder:
        resting = self.orders.get(client_id)
        if resting is None or resting.done:
            raise KeyError(f"no working order with client id {client_id!r}")
        return resting

    def _draw(self) -> str:
        roll = self.rng.random()
        for step, rate in (
            ("rate_limit", self.rate_limit_rate),
            ("reject", self.reject_rate),
            ("expire", self.expire_rate),
        ):
            if roll < rate:
                return step
            roll -= rate
        if not self.auto_fill:
            return "ack" if self.auto_ack else "silent"
        return f"partial:{self.partial_fills}" if self.partial_fills > 1 else "fill"

    def _answer(self, o: RestingOrder, step: str) -> list[VenueEvent]:
        if step == "silent":
            return []
        if step == "rate_limit":
            o.done = True
            return [
                self._event(o, "RATE_LIMITED", reason="too many requests", retry_after_ms=self.retry_after_ms)
            ]
        events = [self._event(o, "ORDER_ACK")] if self.auto_ack or step == "ack" else []
        if step == "ack":
            return events
        if step == "reject":
            o.done = True
            return [self._event(o, "REJECTED", reason="insufficient margin")]
        if step == "no_price":
            o.done = True
            why = f"NO_PRICE: no reference price and none known for {o.asset!r}"
            return [self._event(o, "REJECTED", reason=why)]
        if step == "expire":
            o.done = True
            return [*events, self._event(o, "EXPIRED", reason="time in force elapsed")]
        parts = int(step.split(":", 1)[1]) if step.startswith("partial:") else 1
        if step != "fill" and not step.startswith("partial:"):
            raise ValueError(f"unknown script step {step!r}")
        for k in range(parts):
            last = k == parts - 1
            qty = o.remaining if last else o.intended / parts
            o.filled += qty
            events.append(self._event(o, "FILL" if last else "PARTIAL_FILL", price=o.price, size=qty))
        o.done = True
        return events

    def _event(self, o: RestingOrder, kind: str, **fields: Any) -> VenueEvent:
        self._event_seq += 1
        if fields.get("price") and o.asset:
            self.last_price[o.asset] = fields["price"]
        return VenueEvent(
            event_id=f"mock-{self._id_tag}{self._event_seq:08d}",
            kind=kind,
            venue_client_id=o.client_id,
            venue_order_id=o.venue_order_id,
            trade_id=o.trade_id,
            slot_id=o.slot_id,
            side=o.side,
            asset=o.asset,
            filled_size=o.filled,
            remaining_size=o.remaining,
            timestamp=self.clock(),
            **fields,
        )

    def _emit(self, events: list[VenueEvent]) -> list[VenueEvent]:
        # Every order finishes with an event, so the events say which to retire.
        for event in events:
            order = self.orders.get(event.venue_client_id)
            if order is not None and order.done and event.venue_client_id not in self._finished_set:
                self._finished.append(event.venue_client_id)
                self._finished_set.add(event.venue_client_id)
        self._forget_finished()
        out: list[VenueEvent] = []
        for event in events:
            out.append(event)
            if self.duplicate_rate and self.rng.random() < self.duplicate_rate:
                out.append(event)
        self.events.extend(out)
        return out

    def _forget_finished(self) -> None:
        while len(self._finished) > self.history:
            old = self._finished.popleft()
            self._finished_set.discard(old)
            order = self.orders.get(old)
            if order is not None and order.done:
                del self.orders[old]
