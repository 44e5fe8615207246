"""The demo: a kernel trading against the mock venue with a small random strategy.

Prices random-walk per asset; free slots enter at random (LONG or SHORT, a
two-leg exit plan), open positions exit a leg at a time, and now and then a
working order is cancelled. The mock venue fills in parts and sometimes
rejects or rate-limits. Everything goes through the public API, so the demo
doubles as a smoke test of the whole kernel.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

from dita.contracts import KernelIntent, KernelOutcome, TradeSide, TradeStage
from dita.kernel import ExecutionKernel

ASSETS = ("BTC-PERP", "ETH-PERP", "SOL-PERP")
START_PRICES = {"BTC-PERP": 60_000.0, "ETH-PERP": 3_000.0, "SOL-PERP": 150.0}


@dataclass
class DemoStats:
    steps: int = 0
    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    def count(self, outcome: KernelOutcome) -> None:
        self.calls += 1
        self.codes[outcome.diagnostic_code.value] += 1


class DemoStrategy:
    """Decides, each step, what to ask of the kernel."""

    def __init__(
        self,
        kernel: ExecutionKernel,
        *,
        seed: int = 7,
        enter_rate: float = 0.3,
        exit_rate: float = 0.2,
        cancel_rate: float = 0.05,
    ) -> None:
        self.kernel = kernel
        self.rng = random.Random(seed)
        self.prices = dict(START_PRICES)
        self.enter_rate = enter_rate
        self.exit_rate = exit_rate
        self.cancel_rate = cancel_rate
        self._trades = 0

    def step(self, stats: DemoStats) -> None:
        for asset in ASSETS:
            self.prices[asset] *= 1.0 + self.rng.gauss(0.0, 0.001)
            self.kernel.mark_price(asset, self.prices[asset])
        for slot in self.kernel.slots():
            roll = self.rng.random()
            if slot.is_free() and roll < self.enter_rate:
                stats.count(self.kernel.process_intent(self._enter(slot.slot_id)))
            elif slot.fsm_state == TradeStage.POSITION_OPEN and roll < self.exit_rate:
                stats.count(self.kernel.process_intent(self._intent("EXIT", slot.slot_id, slot.asset)))
            elif (
                slot.fsm_state in (TradeStage.ENTRY_WORKING, TradeStage.EXIT_WORKING)
                and roll < self.cancel_rate
            ):
                stats.count(self.kernel.process_intent(self._intent("CANCEL", slot.slot_id, slot.asset)))

    def _enter(self, slot_id: int) -> KernelIntent:
        self._trades += 1
        asset = self.rng.choice(ASSETS)
        return KernelIntent(
            action="ENTER",
            slot_id=slot_id,
            trade_id=f"demo-{self._trades}",
            intent_id=f"demo-{self._trades}/enter",
            asset=asset,
            side=self.rng.choice((TradeSide.LONG, TradeSide.SHORT)),
            target_size=round(self.rng.uniform(0.1, 2.0), 3),
            reference_price=self.prices[asset],
            exit_leg_ratios=(0.5, 0.5),
            reason="demo signal",
        )

    def _intent(self, action: str, slot_id: int, asset: str) -> KernelIntent:
        return KernelIntent(
            action=action,
            slot_id=slot_id,
            asset=asset,
            reference_price=self.prices[asset],
            reason=f"demo {action}",
        )


def status_line(kernel: ExecutionKernel, stats: DemoStats) -> str:
    account = kernel.account
    elapsed = time.perf_counter() - stats.started
    return (
        f"step {stats.steps:>6}  open {account['open_positions']:>3}  "
        f"realized {account['k_realized_pnl']:>12.2f}  unrealized {account['unrealized_pnl']:>10.2f}  "
        f"fees {account['k_fees_paid']:>8.2f}  "
        f"calls {stats.calls:>7} ({stats.calls / max(elapsed, 1e-9):,.0f}/s)  "
        f"mode {kernel.control.mode.value}"
    )


def run_demo(
    kernel: ExecutionKernel,
    *,
    steps: int | None = 2_000,
    duration: float | None = None,
    seed: int = 7,
    interval: float = 0.0,
    report_every: int = 500,
    out: TextIO | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DemoStats:
    """Runs the demo strategy until `steps` or `duration` is reached or `should_stop()`."""
    strategy = DemoStrategy(kernel, seed=seed)
    stats = DemoStats()
    deadline = None if duration is None else time.monotonic() + duration
    while not should_stop():
        if steps is not None and stats.steps >= steps:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        strategy.step(stats)
        stats.steps += 1
        if out is not None and report_every and stats.steps % report_every == 0:
            print(status_line(kernel, stats), file=out, flush=True)
        if interval:
            time.sleep(interval)
    return stats


class StopFlag:
    """Set by SIGINT or SIGTERM so a run ends cleanly between two steps."""

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopped = True

    def __call__(self) -> bool:
        return self.stopped
