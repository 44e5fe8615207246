"""Scenario files: a run replayed from intents, venue events and prices.

One JSON object a line, each with exactly one of these keys:

    {"intent": {"action": "ENTER", "slot_id": 0, "trade_id": "t1", ...}}
    {"venue_event": {"event_id": "e1", "kind": "FILL", "venue_client_id": ..., ...}}
    {"mark": {"asset": "BTC-PERP", "price": 61000.0}}
    {"account_event": {"event_id": "a1", "kind": "FUNDING_FEE", "amount": -1.5}}
    {"exchange_config": {"taker_rate": 0.0005}}
    {"seed_capital": 10000.0}

Blank lines and lines starting with `#` are skipped. Field names and values
are those of `KernelIntent`, `VenueEvent` and the account calls. The whole
file is checked, and then tried on a scratch copy of the kernel, before the
first line touches the real one: a bad line is reported with its number and
nothing is applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dita._native import Kernel
from dita.contracts import KernelIntent, VenueEvent
from dita.demo import DemoStats
from dita.kernel import ExecutionKernel
from dita.projection import InMemoryProjection
from dita.venue import SilentVenue

KINDS = ("intent", "venue_event", "mark", "account_event", "exchange_config", "seed_capital")


@dataclass(frozen=True)
class ScenarioLine:
    number: int
    kind: str
    value: Any


def _mark(fields: Any) -> tuple[str, float]:
    if not isinstance(fields, Mapping) or set(fields) != {"asset", "price"}:
        raise ValueError('mark: must be {"asset": NAME, "price": NUMBER}')
    asset, price = fields["asset"], fields["price"]
    if not isinstance(asset, str) or not asset:
        raise ValueError(f"mark.asset = {asset!r}: must be a non-empty string")
    number = isinstance(price, (int, float)) and not isinstance(price, bool)
    if not number or not math.isfinite(price) or price <= 0:
        raise ValueError(f"mark.price = {price!r}: must be a finite number greater than 0")
    return asset, float(price)


def _parse(number: int, text: str) -> ScenarioLine:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict) or len(record) != 1 or next(iter(record)) not in KINDS:
        keys = list(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{keys}: a line is an object with exactly one of {', '.join(KINDS)}")
    kind, fields = next(iter(record.items()))
    if kind in ("intent", "venue_event", "account_event", "exchange_config") and not isinstance(fields, dict):
        raise ValueError(f"{kind} = {fields!r}: must be an object of fields")
    value: Any
    if kind == "intent":
        value = KernelIntent(**fields)
    elif kind == "venue_event":
        value = VenueEvent(**fields)
    elif kind == "mark":
        value = _mark(fields)
    elif kind == "seed_capital":
        if isinstance(fields, bool) or not isinstance(fields, (int, float)):
            raise ValueError(f"seed_capital = {fields!r}: must be a number")
        value = float(fields)
    else:
        value = fields
    return ScenarioLine(number, kind, value)


def load_scenario(path: str | Path) -> list[ScenarioLine]:
    """Every line of the file, parsed; the first bad one raises ValueError naming it."""
    lines: list[ScenarioLine] = []
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            try:
                lines.append(_parse(number, text))
            except (TypeError, ValueError) as e:
                raise ValueError(f"scenario {path} line {number}: {e}") from None
    return lines


def apply_line(kernel: ExecutionKernel, line: ScenarioLine, count: Callable[[Any], None]) -> None:
    if line.kind == "intent":
        count(kernel.process_intent(line.value))
    elif line.kind == "venue_event":
        count(kernel.on_venue_event(line.value))
    elif line.kind == "mark":
        kernel.mark_price(*line.value)
    elif line.kind == "account_event":
        kernel.on_account_event(line.value)
    elif line.kind == "exchange_config":
        kernel.set_exchange_config(line.value)
    else:
        kernel.set_seed_capital(line.value)


def rehearse(kernel: ExecutionKernel, lines: list[ScenarioLine]) -> None:
    """Applies `lines` to a scratch copy of `kernel`; the first line that raises
    (a value the kernel cannot take at all, not a refusal) raises ValueError naming it."""
    scratch = ExecutionKernel(
        _core=Kernel.restore(kernel.checkpoint()), venue=SilentVenue(), projection=InMemoryProjection()
    )
    for line in lines:
        try:
            apply_line(scratch, line, lambda _outcome: None)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            raise ValueError(f"scenario line {line.number} ({line.kind}): {e}") from None


class ScenarioDriver:
    """Feeds a scenario to a kernel one line a step."""

    def __init__(self, kernel: ExecutionKernel, lines: list[ScenarioLine], *, position: int = 0) -> None:
        if not 0 <= position <= len(lines):
            raise ValueError(f"scenario position {position}: the file has {len(lines)} lines to replay")
        self.kernel = kernel
        self.lines = lines
        self.position = position

    @property
    def finished(self) -> bool:
        return self.position >= len(self.lines)

    def step(self, stats: DemoStats) -> None:
        apply_line(self.kernel, self.lines[self.position], stats.count)
        self.position += 1

    def state(self) -> dict[str, Any]:
        return {"scenario_position": self.position}
