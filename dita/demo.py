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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol, TextIO

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


class Driver(Protocol):
    """What a run drives its kernel with: the demo strategy, or a scenario file."""

    @property
    def finished(self) -> bool: ...

    def step(self, stats: DemoStats) -> None: ...


class DemoStrategy:
    """Decides, each step, what to ask of the kernel."""

    finished = False

    def __init__(
        self,
        kernel: ExecutionKernel,
        *,
        seed: int = 7,
        enter_rate: float = 0.3,
        exit_rate: float = 0.2,
        cancel_rate: float = 0.05,
        session: int = 1,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.kernel = kernel
        # A resumed run draws anew: replaying the first life's draws would
        # only repeat its decisions against a different book.
        self.rng = random.Random(seed * 1_000_003 + session)
        self.session = session
        self.prices = dict(START_PRICES)
        self.enter_rate = enter_rate
        self.exit_rate = exit_rate
        self.cancel_rate = cancel_rate
        self._trades = 0
        if state:
            self.prices.update({str(k): float(v) for k, v in state.get("prices", {}).items()})
            self._trades = int(state.get("trades", 0))

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps so a resumed run goes on from here."""
        return {"prices": dict(self.prices), "trades": self._trades}

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
        # The first life's ids stay as they always were; later lives add theirs.
        trade_id = f"demo-{self._trades}" if self.session == 1 else f"demo-{self.session}.{self._trades}"
        return KernelIntent(
            action="ENTER",
            slot_id=slot_id,
            trade_id=trade_id,
            intent_id=f"{trade_id}/enter",
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
    driver: Driver | None = None,
    after_step: Callable[[], None] | None = None,
) -> DemoStats:
    """Runs `driver` (default: the demo strategy) until `steps` or `duration` is
    reached, the driver is finished, or `should_stop()`; `after_step` runs
    after each step (a run's periodic checkpoint)."""
    strategy = driver if driver is not None else DemoStrategy(kernel, seed=seed)
    stats = DemoStats()
    deadline = None if duration is None else time.monotonic() + duration
    while not should_stop() and not strategy.finished:
        if steps is not None and stats.steps >= steps:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        strategy.step(stats)
        stats.steps += 1
        if after_step is not None:
            after_step()
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
