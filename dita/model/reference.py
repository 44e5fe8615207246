"""A reference model of the dita kernel, written to be read next to
docs/ARCHITECTURE.md ("Slot lifecycle", "Account and fee model").

It is the oracle of the property tests in ``tests/property``: the same calls
as ``dita._native.Kernel`` (same contract objects in), plain dicts out.
Everything is recomputed by scanning the slots (indices, open figures): slow
and obviously right is the point.

The model was written from the original specification, which
docs/ARCHITECTURE.md replaces. Where that specification was silent the model
follows the Rust kernel. Where the two disagreed the model followed the
specification, and the place is marked ``CONTRACT:``: each is a rule the kernel
was fixed to keep (docs/ARCHITECTURE.md, "Discrepancies from the earlier
kernel", D5-D12). Where the specification's own rows contradicted each other,
the model follows the kernel and the place is marked ``KERNEL:``; those rows
are the kernel's lifecycle table in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dita.contracts import KernelIntent, VenueEvent

# ----- constants of the kernel ----------------------------------------------------

#: The largest magnitude any number may have (a unit or parsing mistake beyond).
MAX_MAGNITUDE = 1e15
#: Sizes within SIZE_EPSILON * max(initial_size, 1) count as equal.
SIZE_EPSILON = 1e-9
#: Exit leg ratios must sum to 1 within this.
RATIO_SUM_TOLERANCE = 1e-6
#: A lot step or tick size is 0 (no rounding) or at least this.
MIN_STEP = 1e-12
#: A calibration further than this many times the expected fee is refused.
MAX_CALIBRATION_RATIO = 1e6
MAX_EXIT_LEGS = 64
#: Account event ids remembered for idempotency.
SEEN_ACCOUNT_EVENTS = 4096
#: Weight of the newest sample in the fee calibration's moving average.
CALIBRATION_ALPHA = 0.2

# ----- the slot lifecycle -----------------------------------------------------------

# Where a row leads when the answer depends on the slot:
OPEN_IF_FILLED = "<POSITION_OPEN if anything filled, else CLOSED>"
CLOSED_IF_FLAT = "<CLOSED once the position is gone, else POSITION_OPEN>"
ROLL_BACK = "<the slot as it was before the ENTER or EXIT>"
STAY = "<allowed, the stage stays>"

ENTRY_STAGES = ("ORDER_REQUESTED", "ORDER_SENT", "ENTRY_WORKING")
EXIT_STAGES = ("EXIT_REQUESTED", "EXIT_WORKING")

#: (stage, trigger) -> next stage. Triggers are the intents ENTER, EXIT,
#: CANCEL, the adapter's SUBMITTED and the venue event kinds. A venue event
#: only counts if it is about the order the stage works: the entry order in
#: ENTRY_STAGES, the exit order in EXIT_STAGES. Any pair not here is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    # IDLE/CLOSED --ENTER--> ORDER_REQUESTED --submitted--> ORDER_SENT --ACK--> ENTRY_WORKING
    ("IDLE", "ENTER"): "ORDER_REQUESTED",
    ("CLOSED", "ENTER"): "ORDER_REQUESTED",
    ("ORDER_REQUESTED", "SUBMITTED"): "ORDER_SENT",
    ("ORDER_SENT", "ORDER_ACK"): "ENTRY_WORKING",
    # ENTRY_WORKING --PARTIAL_FILL--> ENTRY_WORKING --FILL--> POSITION_OPEN
    ("ENTRY_WORKING", "PARTIAL_FILL"): "ENTRY_WORKING",
    ("ENTRY_WORKING", "FILL"): "POSITION_OPEN",
    # KERNEL: a fill may overtake its ACK on the wire (not in the original specification's diagram).
    ("ORDER_SENT", "PARTIAL_FILL"): "ENTRY_WORKING",
    ("ORDER_SENT", "FILL"): "POSITION_OPEN",
    # ENTRY_WORKING/ORDER_SENT --CANCELLED|EXPIRED--> POSITION_OPEN if anything filled, else CLOSED.
    # KERNEL: also from ORDER_REQUESTED (a cancel the adapter answers before `submitted`).
    ("ORDER_REQUESTED", "CANCELLED"): OPEN_IF_FILLED,
    ("ORDER_SENT", "CANCELLED"): OPEN_IF_FILLED,
    ("ENTRY_WORKING", "CANCELLED"): OPEN_IF_FILLED,
    ("ORDER_REQUESTED", "EXPIRED"): OPEN_IF_FILLED,
    ("ORDER_SENT", "EXPIRED"): OPEN_IF_FILLED,
    ("ENTRY_WORKING", "EXPIRED"): OPEN_IF_FILLED,
    # ORDER_SENT/ENTRY_WORKING --REJECTED--> CLOSED (close_reason REJECTED).
    # KERNEL: POSITION_OPEN instead when part of the order had filled (a CLOSED
    # slot is free, and the next ENTER would drop the position), and also
    # from ORDER_REQUESTED.
    ("ORDER_REQUESTED", "REJECTED"): OPEN_IF_FILLED,
    ("ORDER_SENT", "REJECTED"): OPEN_IF_FILLED,
    ("ENTRY_WORKING", "REJECTED"): OPEN_IF_FILLED,
    # any entry/exit request --RATE_LIMITED--> the state before the intent
    ("ORDER_REQUESTED", "RATE_LIMITED"): ROLL_BACK,
    ("ORDER_SENT", "RATE_LIMITED"): ROLL_BACK,
    ("EXIT_REQUESTED", "RATE_LIMITED"): ROLL_BACK,
    # POSITION_OPEN --EXIT--> EXIT_REQUESTED --ACK--> EXIT_WORKING
    ("POSITION_OPEN", "EXIT"): "EXIT_REQUESTED",
    ("EXIT_REQUESTED", "SUBMITTED"): STAY,
    ("EXIT_REQUESTED", "ORDER_ACK"): "EXIT_WORKING",
    # EXIT_WORKING --PARTIAL_FILL--> EXIT_WORKING --FILL--> POSITION_OPEN (legs remain) or CLOSED
    # KERNEL: fills may overtake the exit's ACK too.
    ("EXIT_REQUESTED", "PARTIAL_FILL"): "EXIT_WORKING",
    ("EXIT_WORKING", "PARTIAL_FILL"): "EXIT_WORKING",
    ("EXIT_REQUESTED", "FILL"): CLOSED_IF_FLAT,
    ("EXIT_WORKING", "FILL"): CLOSED_IF_FLAT,
    # EXIT_* --CANCELLED|EXPIRED|REJECTED--> POSITION_OPEN.
    # KERNEL: CLOSED when partial fills already took the whole position
    # (a POSITION_OPEN slot of size 0 is not a position).
    ("EXIT_REQUESTED", "CANCELLED"): CLOSED_IF_FLAT,
    ("EXIT_WORKING", "CANCELLED"): CLOSED_IF_FLAT,
    ("EXIT_REQUESTED", "EXPIRED"): CLOSED_IF_FLAT,
    ("EXIT_WORKING", "EXPIRED"): CLOSED_IF_FLAT,
    ("EXIT_REQUESTED", "REJECTED"): CLOSED_IF_FLAT,
    ("EXIT_WORKING", "REJECTED"): CLOSED_IF_FLAT,
    # A cancel request is allowed while an order works; the venue's answer moves the slot.
    ("ORDER_REQUESTED", "CANCEL"): STAY,
    ("ORDER_SENT", "CANCEL"): STAY,
    ("ENTRY_WORKING", "CANCEL"): STAY,
    ("EXIT_REQUESTED", "CANCEL"): STAY,
    ("EXIT_WORKING", "CANCEL"): STAY,
}

#: The order status a venue event leaves its order in.
ORDER_STATUS_AFTER = {
    "ORDER_ACK": "ACKED",
    "PARTIAL_FILL": "PARTIALLY_FILLED",
    "FILL": "FILLED",
    "CANCELLED": "CANCELLED",
    "EXPIRED": "EXPIRED",
    "REJECTED": "REJECTED",
}

FILL_KINDS = ("FILL", "PARTIAL_FILL")
MODES = ("ACTIVE", "REDUCE_ONLY", "HALTED")
VERBOSITIES = ("QUIET", "NORMAL", "VERBOSE", "TRACE")


# ----- numbers ------------------------------------------------------------------------


def number_ok(value: float, minimum: float, strict: bool) -> bool:
    """Finite, within MAX_MAGNITUDE, and at least (strict: above) `minimum`."""
    if math.isnan(value) or abs(value) > MAX_MAGNITUDE:
        return False
    return value > minimum if strict else value >= minimum


def plain_sum(values: Iterable[float]) -> float:
    """Left-to-right addition, as the kernel adds (Python's sum() compensates)."""
    total = 0.0
    for v in values:
        total += v
    return total


def round_half_away(x: float) -> float:
    """Rounds to the nearest integer, halves away from zero."""
    if not math.isfinite(x):
        return x
    a = abs(x)
    whole = float(math.floor(a))
    if a - whole >= 0.5:
        whole += 1.0
    return math.copysign(whole, x)


def round_to_step(value: float, step: float) -> float:
    return round_half_away(value / step) * step if step > 0.0 else value


def side_sign(side: str) -> float:
    return {"LONG": 1.0, "SHORT": -1.0}.get(side, 0.0)


def opposite(side: str) -> str:
    return {"LONG": "SHORT", "SHORT": "LONG"}.get(side, "FLAT")


def exit_leg_ratios_ok(ratios: list[float]) -> bool:
    if not 1 <= len(ratios) <= MAX_EXIT_LEGS:
        return False
    if any(not math.isfinite(r) or r <= 0.0 for r in ratios):
        return False
    return abs(plain_sum(ratios) - 1.0) <= RATIO_SUM_TOLERANCE


# ----- what the kernel holds ------------------------------------------------------


@dataclass
class Order:
    internal_trade_id: str
    venue_client_id: str
    side: str
    order_type: str
    intended_size: float
    reason: str = ""
    venue_order_id: str = ""
    filled_size: float = 0.0
    average_fill_price: float = 0.0
    status: str = "NEW"

    def remaining(self) -> float:
        return max(self.intended_size - self.filled_size, 0.0)

    def tolerance(self) -> float:
        # A fill rounding just past its order completes it; the allowance is
        # the order's, so a small exit leg of a big slot gets a small one.
        return SIZE_EPSILON * max(self.intended_size, 1.0)


@dataclass
class Slot:
    slot_id: int
    trade_id: str = ""
    asset: str = ""
    side: str = "FLAT"
    entry_price: float = 0.0
    size: float = 0.0
    initial_size: float = 0.0
    leverage: float = 0.0
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
    closed: bool = False
    exit_leg_ratios: list[float] = field(default_factory=lambda: [1.0])
    active_leg_index: int = 0
    active_entry_order: Order | None = None
    active_exit_order: Order | None = None
    fsm_state: str = "IDLE"
    close_reason: str = ""
    seen_event_ids: list[str] = field(default_factory=list)
    last_mark_price: float = 0.0

    def is_free(self) -> bool:
        return self.fsm_state in ("IDLE", "CLOSED")

    def is_open(self) -> bool:
        """Holds a position (or part of one) that price moves change."""
        return not self.is_free() and self.size > 0.0

    def orders(self) -> list[Order]:
        return [o for o in (self.active_entry_order, self.active_exit_order) if o is not None]

    def tolerance(self) -> float:
        return SIZE_EPSILON * max(self.initial_size, 1.0)

    def size_after_leg(self, leg: int) -> float:
        """What is left of the position once exit leg `leg` is done."""
        if leg + 1 >= len(self.exit_leg_ratios):
            return 0.0
        done = plain_sum(self.exit_leg_ratios[: leg + 1])
        return max(self.initial_size * (1.0 - done), 0.0)

    def next_exit_size(self) -> float:
        return max(self.size - self.size_after_leg(self.active_leg_index), 0.0)

    def advance_legs(self) -> None:
        """Moves past every leg the position is already down to."""
        last = len(self.exit_leg_ratios) - 1
        while (
            self.active_leg_index < last
            and self.size <= self.size_after_leg(self.active_leg_index) + self.tolerance()
        ):
            self.active_leg_index += 1

    def refresh_unrealized(self) -> None:
        if self.size > 0.0 and self.last_mark_price > 0.0:
            self.unrealized_pnl = side_sign(self.side) * (self.last_mark_price - self.entry_price) * self.size
        else:
            self.unrealized_pnl = 0.0

    def remember(self, event_id: str, capacity: int) -> None:
        self.seen_event_ids.append(event_id)
        del self.seen_event_ids[: max(len(self.seen_event_ids) - capacity, 0)]


@dataclass
class ExchangeConfig:
    taker_rate: float = 0.0
    maker_rate: float = 0.0
    lot_step: float = 0.0
    tick_size: float = 0.0
    funding_interval_secs: int = 28_800

    def fee(self, price: float, qty: float, order_type: str) -> float:
        """What the exchange's schedule charges one execution, before calibration."""
        rate = self.taker_rate if order_type == "MARKET" else self.maker_rate
        return round_to_step(abs(qty), self.lot_step) * round_to_step(abs(price), self.tick_size) * rate


@dataclass
class ExchangeFigures:
    wallet_balance: float
    available_margin: float
    used_margin: float
    maint_margin: float


@dataclass
class Account:
    seed_capital: float = 0.0
    k_realized_pnl: float = 0.0
    k_fees_paid: float = 0.0
    k_funding_net: float = 0.0
    exchange: ExchangeFigures | None = None
    event_seq: int = 0
    config: ExchangeConfig = field(default_factory=ExchangeConfig)
    calibration_ratio: float = 1.0
    calibration_samples: int = 0
    #: (fill id, predicted fee) of every fill whose actual fee is still to come, oldest first.
    pending_fees: list[tuple[str, float]] = field(default_factory=list)
    seen_event_ids: list[str] = field(default_factory=list)

    def k_capital(self) -> float:
        """K: seed capital + realized PnL - fees + funding."""
        return self.seed_capital + self.k_realized_pnl - self.k_fees_paid + self.k_funding_net


@dataclass
class Rollback:
    """What a pending ENTER or EXIT replaced, for RATE_LIMITED."""

    action: str  # "ENTER": `slot` is the slot before; "EXIT": `exit_order` is the exit order before
    slot: Slot | None = None
    exit_order: Order | None = None


Outcome = dict[str, Any]


class ModelError(ValueError):
    """Bad input: what the native kernel answers with ValueError."""


# ----- the model -------------------------------------------------------------------------


class ReferenceKernel:
    def __init__(self, max_slots: int = 10, seen_event_capacity: int = 64) -> None:
        self.slots = [Slot(i) for i in range(max_slots)]
        self.rollbacks: list[Rollback | None] = [None] * max_slots
        self.mode = "ACTIVE"
        self.verbosity = "NORMAL"
        self.journal = False
        self.account = Account()
        self.order_seq = 0
        self.seen_capacity = seen_event_capacity

    # ----- indices, by scanning -----------------------------------------------------

    def trade_index(self) -> dict[str, int]:
        """A slot holds its trade from ENTER until the next ENTER replaces it (CLOSED included)."""
        return {s.trade_id: s.slot_id for s in self.slots if s.fsm_state != "IDLE" and s.trade_id}

    def client_order_index(self) -> dict[str, int]:
        return {o.venue_client_id: s.slot_id for s in self.slots for o in s.orders() if o.venue_client_id}

    def venue_order_index(self) -> dict[str, int]:
        return {o.venue_order_id: s.slot_id for s in self.slots for o in s.orders() if o.venue_order_id}

    def reserved_trade_ids(self) -> set[str]:
        """Trade ids a RATE_LIMITED answer to a pending ENTER would bring back."""
        return {
            r.slot.trade_id
            for r in self.rollbacks
            if r is not None and r.slot is not None and r.slot.fsm_state != "IDLE" and r.slot.trade_id
        }

    def find_order(self, client_id: str, venue_order_id: str) -> int | None:
        """The slot holding the order: by client order id first, then by venue order id."""
        for s in self.slots:
            if client_id and any(o.venue_client_id == client_id for o in s.orders()):
                return s.slot_id
        for s in self.slots:
            if venue_order_id and any(o.venue_order_id == venue_order_id for o in s.orders()):
                return s.slot_id
        return None

    # ----- outcomes -------------------------------------------------------------------

    def _refused(self, code: str, slot_id: int, trade_id: str) -> Outcome:
        """A refusal about `slot_id` (maybe out of range); an empty trade id names the slot's trade."""
        slot = self.slots[slot_id] if 0 <= slot_id < len(self.slots) else None
        return {
            "accepted": False,
            "slot_id": slot_id,
            "trade_id": trade_id if trade_id or slot is None else slot.trade_id,
            "state": slot.fsm_state if slot is not None else "IDLE",
            "diagnostic_code": code,
            "transitions": [],
        }

    def _accepted(self, i: int, transitions: list[tuple[str, str, str]], code: str = "OK") -> Outcome:
        slot = self.slots[i]
        return {
            "accepted": True,
            "slot_id": i,
            "trade_id": slot.trade_id,
            "state": slot.fsm_state,
            "diagnostic_code": code,
            "transitions": transitions,
        }

    # ----- control and account --------------------------------------------------------

    def set_control(self, mode: str, verbosity: str, journal: bool = False) -> None:
        if mode not in MODES:
            raise ModelError(f"mode = {mode!r}")
        if verbosity not in VERBOSITIES:
            raise ModelError(f"verbosity = {verbosity!r}")
        self.mode, self.verbosity, self.journal = mode, verbosity, journal

    def set_seed_capital(self, seed: float) -> None:
        if not number_ok(seed, 0.0, strict=False):
            raise ModelError(f"seed_capital = {seed}")
        self.account.seed_capital = seed

    def set_exchange_config(self, update: Mapping[str, Any]) -> None:
        """A partial update; a bad value changes nothing."""
        known = ("taker_rate", "maker_rate", "lot_step", "tick_size", "funding_interval_secs")
        for key in update:
            if key not in known:
                raise TypeError(f"exchange_config.{key}: unknown field")
        new = copy.copy(self.account.config)
        for key in ("taker_rate", "maker_rate"):
            if update.get(key) is not None:
                rate = float(update[key])
                if not number_ok(rate, 0.0, strict=False) or rate >= 1.0:
                    raise ModelError(f"{key} = {rate}")
                setattr(new, key, rate)
        for key in ("lot_step", "tick_size"):
            if update.get(key) is not None:
                step = float(update[key])
                if not number_ok(step, 0.0, strict=False) or 0.0 < step < MIN_STEP:
                    raise ModelError(f"{key} = {step}")
                setattr(new, key, step)
        if update.get("funding_interval_secs") is not None:
            new.funding_interval_secs = int(update["funding_interval_secs"])
        self.account.config = new

    def calibrate_fee(self, fill_price: float, fill_qty: float, actual_fee: float) -> dict[str, Any]:
        a = self.account
        if not number_ok(fill_price, 0.0, strict=True) or not number_ok(fill_qty, 0.0, strict=True):
            raise ModelError("fill_price and fill_qty must be positive")
        if not number_ok(actual_fee, -MAX_MAGNITUDE, strict=False):
            raise ModelError(f"actual_fee = {actual_fee}")
        expected = a.config.fee(fill_price, fill_qty, "MARKET")
        if expected == 0.0:
            raise ModelError("the fee model predicts no fee")
        ratio = actual_fee / expected
        if abs(ratio) > MAX_CALIBRATION_RATIO:
            raise ModelError(f"ratio = {ratio}")
        deviation_pct = abs(ratio - 1.0) * 100.0
        status = "OK" if deviation_pct < 1.0 else "WARN" if deviation_pct < 5.0 else "ERROR"
        if a.calibration_samples == 0:
            a.calibration_ratio = ratio
        else:
            a.calibration_ratio = CALIBRATION_ALPHA * ratio + (1.0 - CALIBRATION_ALPHA) * a.calibration_ratio
        a.calibration_samples += 1
        return {
            "expected_fee": expected,
            "actual_fee": actual_fee,
            "ratio": ratio,
            "deviation_pct": deviation_pct,
            "calibration_status": status,
            "calibration_ratio": a.calibration_ratio,
            "calibration_samples": a.calibration_samples,
        }

    def on_account_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """FILL_SETTLED, ACCOUNT_UPDATE or FUNDING_FEE, each applied once per event id."""
        a = self.account
        kind = event["kind"]
        event_id = event["event_id"]

        def given(name: str) -> float | None:
            value = event.get(name)
            return None if value is None else float(value)

        figures = ("fee", "wallet_balance", "available_margin", "used_margin", "maint_margin", "amount")
        required = {"FILL_SETTLED": "fee", "ACCOUNT_UPDATE": "wallet_balance", "FUNDING_FEE": "amount"}[kind]
        numbers = [v for v in map(given, figures) if v is not None]
        invalid = (
            not event_id
            or not all(number_ok(v, -MAX_MAGNITUDE, strict=False) for v in numbers)
            or given(required) is None
            or (kind == "FILL_SETTLED" and not event.get("fill_id"))
        )
        if invalid:
            return {**self.account_view(), "applied": False, "diagnostic_code": "INVALID_EVENT"}
        if event_id in a.seen_event_ids:
            return {**self.account_view(), "applied": False, "diagnostic_code": "DUPLICATE_EVENT"}
        if kind == "FILL_SETTLED":
            # The actual fee replaces the fee predicted for that fill (none known: nothing to replace).
            # CONTRACT: one settlement per fill, so of two fills with one id the oldest is settled first.
            actual = given("fee") or 0.0
            predicted = 0.0
            for n, (fill_id, fee) in enumerate(a.pending_fees):
                if fill_id == event["fill_id"]:
                    predicted = fee
                    del a.pending_fees[n]
                    break
            a.k_fees_paid += actual - predicted
        elif kind == "ACCOUNT_UPDATE":
            # Figures not given keep their last value (0 before the first update).
            old = a.exchange or ExchangeFigures(0.0, 0.0, 0.0, 0.0)
            available, used, maint = given("available_margin"), given("used_margin"), given("maint_margin")
            a.exchange = ExchangeFigures(
                wallet_balance=given("wallet_balance") or 0.0,
                available_margin=old.available_margin if available is None else available,
                used_margin=old.used_margin if used is None else used,
                maint_margin=old.maint_margin if maint is None else maint,
            )
        else:
            a.k_funding_net += given("amount") or 0.0
        a.seen_event_ids.append(event_id)
        del a.seen_event_ids[: max(len(a.seen_event_ids) - SEEN_ACCOUNT_EVENTS, 0)]
        a.event_seq += 1
        return {**self.account_view(), "applied": True, "diagnostic_code": "OK"}

    def account_view(self) -> dict[str, Any]:
        a = self.account
        k = a.k_capital()
        unsettled_fees = plain_sum(fee for _, fee in a.pending_fees)
        open_slots = [s for s in self.slots if s.is_open()]
        unrealized = plain_sum(s.unrealized_pnl for s in open_slots)
        notional = plain_sum(abs(s.size * s.entry_price) for s in open_slots)
        e = a.exchange
        if e is None:
            status, delta = "UNKNOWN", 0.0
        else:
            delta = k - e.wallet_balance
            tolerance = 0.01 + 1e-6 * abs(e.wallet_balance)
            if abs(delta) <= tolerance:
                status = "OK"
            elif abs(delta) <= unsettled_fees + tolerance:
                status = "WARN"  # fills still await FILL_SETTLED
            elif abs(delta) <= 0.01 * abs(e.wallet_balance):
                status = "WARN"  # within 1 % of the wallet
            else:
                status = "ERROR"
        equity = k + unrealized
        return {
            "seed_capital": a.seed_capital,
            "k_capital": k,
            "k_realized_pnl": a.k_realized_pnl,
            "k_fees_paid": a.k_fees_paid,
            "k_funding_net": a.k_funding_net,
            "e_known": e is not None,
            "e_wallet_balance": e.wallet_balance if e else 0.0,
            "e_available_margin": e.available_margin if e else 0.0,
            "e_used_margin": e.used_margin if e else 0.0,
            "e_maint_margin": e.maint_margin if e else 0.0,
            "available_capital": e.available_margin if e else k,
            "reconcile_status": status,
            "reconcile_delta": delta,
            "unsettled_fills": len(a.pending_fees),
            "unsettled_fees": unsettled_fees,
            "event_seq": a.event_seq,
            "calibration_ratio": a.calibration_ratio,
            "calibration_samples": a.calibration_samples,
            "exchange_config": {
                "taker_rate": a.config.taker_rate,
                "maker_rate": a.config.maker_rate,
                "lot_step": a.config.lot_step,
                "tick_size": a.config.tick_size,
                "funding_interval_secs": a.config.funding_interval_secs,
            },
            "capital": k,
            "equity": equity,
            "realized_pnl": a.k_realized_pnl,
            "unrealized_pnl": unrealized,
            "open_positions": len(open_slots),
            "open_notional": notional,
            "leverage": notional / equity if equity > 0.0 else 0.0,
        }

    # ----- intents ----------------------------------------------------------------------

    def process_intent(self, intent: KernelIntent) -> Outcome:
        n, i, action = len(self.slots), intent.slot_id, str(intent.action)
        if not 0 <= i < n:
            return self._refused("INVALID_SLOT_ID", i, intent.trade_id)
        if not self._intent_ok(intent):
            return self._refused("INVALID_INTENT", i, intent.trade_id)
        blocked = (action == "ENTER" and self.mode != "ACTIVE") or (
            action == "EXIT" and self.mode == "HALTED"
        )
        if blocked:
            return self._refused("MODE_BLOCKED", i, intent.trade_id)
        slot = self.slots[i]
        if action != "ENTER" and intent.trade_id and intent.trade_id != slot.trade_id:
            return self._refused("INVALID_INTENT", i, intent.trade_id)
        next_stage = TRANSITIONS.get((slot.fsm_state, action))
        if next_stage is None:
            busy = action == "ENTER" or (action == "EXIT" and not slot.is_free())
            return self._refused("SLOT_BUSY" if busy else "INVALID_TRANSITION", i, intent.trade_id)
        if action == "ENTER":
            return self._enter(i, intent, next_stage)
        if action == "EXIT":
            return self._exit(i, intent, next_stage)
        return self._cancel(i, intent)

    @staticmethod
    def _intent_ok(intent: KernelIntent) -> bool:
        numbers = (intent.reference_price, intent.target_size, intent.limit_price, intent.leverage)
        if not all(number_ok(v, 0.0, strict=False) for v in numbers):
            return False
        if intent.action != "ENTER":
            return True
        if not intent.trade_id or not intent.asset or intent.side == "FLAT":
            return False
        if not number_ok(intent.target_size, 0.0, strict=True) or not number_ok(
            intent.leverage, 0.0, strict=True
        ):
            return False
        if intent.order_type == "LIMIT" and not number_ok(intent.limit_price, 0.0, strict=True):
            return False
        return exit_leg_ratios_ok(list(intent.exit_leg_ratios))

    def _enter(self, i: int, intent: KernelIntent, next_stage: str) -> Outcome:
        # CONTRACT: a trade id maps to one slot. A trade a pending ENTER replaced
        # comes back on RATE_LIMITED, so its id is not free yet either.
        if intent.trade_id in self.trade_index() or intent.trade_id in self.reserved_trade_ids():
            return self._refused("INVALID_INTENT", i, intent.trade_id)
        self.order_seq += 1
        order = Order(
            internal_trade_id=intent.trade_id,
            venue_client_id=f"{intent.trade_id}-E{self.order_seq}",
            side=str(intent.side),
            order_type=str(intent.order_type),
            intended_size=intent.target_size,
            reason=intent.reason,
        )
        prev = self.slots[i].fsm_state
        self.rollbacks[i] = Rollback("ENTER", slot=copy.deepcopy(self.slots[i]))
        self.slots[i] = Slot(
            slot_id=i,
            trade_id=intent.trade_id,
            asset=intent.asset,
            side=str(intent.side),
            initial_size=intent.target_size,
            leverage=intent.leverage,
            exit_leg_ratios=list(intent.exit_leg_ratios),
            active_entry_order=order,
            fsm_state=next_stage,
        )
        return self._accepted(i, [(prev, "ENTER", next_stage)])

    def _exit(self, i: int, intent: KernelIntent, next_stage: str) -> Outcome:
        slot = self.slots[i]
        qty = intent.target_size if intent.target_size > 0.0 else slot.next_exit_size()
        if qty > slot.size + slot.tolerance():
            return self._refused("INVALID_INTENT", i, intent.trade_id)
        self.order_seq += 1
        order = Order(
            internal_trade_id=slot.trade_id,
            venue_client_id=f"{slot.trade_id}-X{self.order_seq}",
            side=opposite(slot.side),
            order_type=str(intent.order_type),
            intended_size=min(qty, slot.size),
            reason=intent.reason,
        )
        self.rollbacks[i] = Rollback("EXIT", exit_order=copy.deepcopy(slot.active_exit_order))
        prev = slot.fsm_state
        slot.active_exit_order = order
        slot.fsm_state = next_stage
        return self._accepted(i, [(prev, "EXIT", next_stage)])

    def _cancel(self, i: int, intent: KernelIntent) -> Outcome:
        slot = self.slots[i]
        order = slot.active_exit_order if slot.fsm_state in EXIT_STAGES else slot.active_entry_order
        if order is None:
            return self._refused("INVALID_TRANSITION", i, intent.trade_id)
        order.status = "CANCEL_REQUESTED"
        return self._accepted(i, [])

    def submitted(self, slot_id: int, timestamp: Any = None) -> Outcome:
        """The venue adapter handed the slot's order to the venue."""
        if not 0 <= slot_id < len(self.slots):
            return self._refused("INVALID_SLOT_ID", slot_id, "")
        slot = self.slots[slot_id]
        prev = slot.fsm_state
        next_stage = TRANSITIONS.get((prev, "SUBMITTED"))
        order = slot.active_exit_order if prev == "EXIT_REQUESTED" else slot.active_entry_order
        if next_stage is None or order is None:
            return self._refused("INVALID_TRANSITION", slot_id, "")
        if order.status == "NEW":
            order.status = "SENT"
        if next_stage != STAY:
            slot.fsm_state = next_stage
        moved = [(prev, "SUBMITTED", slot.fsm_state)] if slot.fsm_state != prev else []
        return self._accepted(slot_id, moved)

    # ----- venue events -----------------------------------------------------------------

    @staticmethod
    def _event_ok(ev: VenueEvent) -> bool:
        if not ev.event_id or not (ev.venue_client_id or ev.venue_order_id):
            return False
        if not all(
            number_ok(v, 0.0, strict=False) for v in (ev.price, ev.size, ev.filled_size, ev.remaining_size)
        ):
            return False
        if ev.kind in FILL_KINDS:
            return number_ok(ev.price, 0.0, strict=True) and number_ok(ev.size, 0.0, strict=True)
        return True

    def on_venue_event(self, ev: VenueEvent) -> Outcome:
        kind = str(ev.kind)
        if not self._event_ok(ev):
            return self._refused("INVALID_EVENT", ev.slot_id, ev.trade_id)
        i = self.find_order(ev.venue_client_id, ev.venue_order_id)
        if i is None:
            return self._refused("UNKNOWN_ORDER", ev.slot_id, ev.trade_id)
        if ev.slot_id >= 0 and ev.slot_id != i:
            return self._refused("INVALID_EVENT", ev.slot_id, ev.trade_id)
        slot = self.slots[i]
        if ev.trade_id and ev.trade_id != slot.trade_id:
            return self._refused("INVALID_EVENT", i, ev.trade_id)
        if ev.event_id in slot.seen_event_ids:
            return self._refused("DUPLICATE_EVENT", i, "")

        def is_this(o: Order | None) -> bool:
            return o is not None and (
                (bool(ev.venue_client_id) and o.venue_client_id == ev.venue_client_id)
                or (bool(ev.venue_order_id) and o.venue_order_id == ev.venue_order_id)
            )

        role = "EXIT" if is_this(slot.active_exit_order) else "ENTRY"
        order = slot.active_exit_order if role == "EXIT" else slot.active_entry_order
        assert order is not None
        works = slot.fsm_state in (EXIT_STAGES if role == "EXIT" else ENTRY_STAGES)
        next_stage = TRANSITIONS.get((slot.fsm_state, kind)) if works else None
        if next_stage is None:
            return self._refused("INVALID_TRANSITION", i, "")
        # CONTRACT: a fill beyond the order's intended size is refused. The
        # tolerance applies to the order's total, not afresh to every fill.
        if kind in FILL_KINDS and order.filled_size + ev.size > order.intended_size + order.tolerance():
            return self._refused("OVERFILL", i, "")
        if next_stage == ROLL_BACK and self.rollbacks[i] is None:
            return self._refused("INVALID_TRANSITION", i, "")
        # CONTRACT: an order id maps to one slot and one order; the venue may not give this
        # order an id another order holds.
        if ev.venue_order_id and any(
            o is not order and o.venue_order_id == ev.venue_order_id for s in self.slots for o in s.orders()
        ):
            return self._refused("INVALID_EVENT", i, "")
        prev = slot.fsm_state
        code = "OK"
        if next_stage == ROLL_BACK:
            rollback = self.rollbacks[i]
            assert rollback is not None
            self.rollbacks[i] = None
            if rollback.action == "ENTER":
                assert rollback.slot is not None
                self.slots[i] = slot = rollback.slot
            else:
                slot.active_exit_order = rollback.exit_order
                slot.fsm_state = "POSITION_OPEN"
            code = "RATE_LIMITED"
        else:
            self.rollbacks[i] = None
            if ev.venue_order_id:
                order.venue_order_id = ev.venue_order_id
            if kind in FILL_KINDS:
                self._fill(slot, order, role, ev)
            order.status = ORDER_STATUS_AFTER[kind]
            if next_stage in (OPEN_IF_FILLED, CLOSED_IF_FLAT):
                slot.fsm_state = "POSITION_OPEN" if slot.size > 0.0 else "CLOSED"
            elif next_stage != STAY:
                slot.fsm_state = next_stage
            if slot.fsm_state == "POSITION_OPEN" and role == "ENTRY":
                slot.initial_size = slot.size  # an entry that ends short of its target opens what it got
            if slot.fsm_state == "POSITION_OPEN":
                slot.advance_legs()
            if slot.fsm_state == "CLOSED":
                slot.closed = True
                slot.close_reason = kind if role == "ENTRY" else (order.reason or "EXIT")
                slot.unrealized_pnl = 0.0
        slot.remember(ev.event_id, self.seen_capacity)
        return self._accepted(i, [(prev, kind, slot.fsm_state)], code)

    def _fill(self, slot: Slot, order: Order, role: str, ev: VenueEvent) -> None:
        price, qty = ev.price, ev.size
        filled = order.filled_size + qty
        order.average_fill_price = (order.average_fill_price * order.filled_size + price * qty) / filled
        order.filled_size = filled
        realized = 0.0
        if role == "ENTRY":
            # Entry fills grow the position and move entry_price to the size-weighted average.
            size = slot.size + qty
            slot.entry_price = (slot.entry_price * slot.size + price * qty) / size
            slot.size = size
        else:
            # Exit fills shrink it and realize side sign x (fill price - entry price) x qty.
            realized = side_sign(slot.side) * (price - slot.entry_price) * qty
            slot.realized_pnl += realized
            slot.size -= qty
            if slot.size <= slot.tolerance():
                slot.size = 0.0
        slot.refresh_unrealized()
        a = self.account
        fee = a.config.fee(price, qty, order.order_type) * a.calibration_ratio
        a.k_realized_pnl += realized
        a.k_fees_paid += fee
        a.pending_fees.append((ev.event_id, fee))

    # ----- prices -----------------------------------------------------------------------

    def mark_price(self, asset: str, price: float) -> int:
        """Marks every live (not free) trade of `asset`; returns how many."""
        if not number_ok(price, 0.0, strict=True):
            raise ModelError(f"price = {price}")
        marked = 0
        for s in self.slots:
            if not s.is_free() and s.asset == asset:
                s.last_mark_price = price
                s.refresh_unrealized()
                marked += 1
        return marked

    # ----- reading ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "control": {"mode": self.mode, "verbosity": self.verbosity, "journal": self.journal},
            "slots": [slot_view(s) for s in self.slots],
            "account": self.account_view(),
            "active_trade_index": self.trade_index(),
            "venue_order_index": self.venue_order_index(),
            "client_order_index": self.client_order_index(),
        }


ORDER_FIELDS = (
    "internal_trade_id",
    "venue_client_id",
    "venue_order_id",
    "side",
    "order_type",
    "intended_size",
    "filled_size",
    "average_fill_price",
    "status",
    "reason",
)

SLOT_FIELDS = (
    "slot_id",
    "trade_id",
    "asset",
    "side",
    "entry_price",
    "size",
    "initial_size",
    "leverage",
    "unrealized_pnl",
    "realized_pnl",
    "closed",
    "exit_leg_ratios",
    "active_leg_index",
    "fsm_state",
    "close_reason",
    "seen_event_ids",
    "last_mark_price",
)


def order_view(o: Order | None) -> dict[str, Any] | None:
    return None if o is None else {f: getattr(o, f) for f in ORDER_FIELDS}


def slot_view(s: Slot) -> dict[str, Any]:
    view = {f: getattr(s, f) for f in SLOT_FIELDS}
    view["exit_leg_ratios"] = list(s.exit_leg_ratios)
    view["seen_event_ids"] = list(s.seen_event_ids)
    view["active_entry_order"] = order_view(s.active_entry_order)
    view["active_exit_order"] = order_view(s.active_exit_order)
    return view
