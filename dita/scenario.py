"""Scenario files: a run replayed from intents, venue events and prices.

One JSON object a line, each with exactly one of these keys:

    {"intent": {"action": "ENTER", "slot_id": 0, "trade_id": "t1", ...}}
    {"venue_event": {"event_id": "e1", "kind": "FILL", "venue_client_id": ..., ...}}
    {"mark": {"asset": "BTC-PERP", "price": 61000.0}}
    {"account_event": {"event_id": "a1", "kind": "FUNDING_FEE", "amount": -1.5}}
    {"exchange_config": {"taker_rate": 0.0005}}
    {"seed_capital": 10000.0}

Blank lines and lines starting with `#` are skipped. Field names and values
are those of `KernelIntent`, `VenueEvent` and the account calls. The file is
UTF-8 text of at most `MAX_LINE_BYTES` (64 KiB) a line, and every number in
it is finite (no NaN, no Infinity, none that overflows a float). The whole
file is checked, and then tried on a scratch copy of the kernel, before the
first line touches the real one (`dita run` does both before it connects to
a cluster): a bad line is reported with its number and nothing is applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dita._native import Kernel
from dita.contracts import KernelIntent, VenueEvent
from dita.demo import DemoStats
from dita.kernel import ExecutionKernel
from dita.projection import InMemoryProjection
from dita.venue import SilentVenue

KINDS = ("intent", "venue_event", "mark", "account_event", "exchange_config", "seed_capital")

#: The longest scenario line, newline excluded. A line is one intent or event, a few
#: hundred bytes; a longer one would become a document of its size in every map it reaches.
MAX_LINE_BYTES = 64 * 1024
#: Integers a line may hold: the kernel's own fields are 64-bit, and floats past this lose units.
MAX_INT = 2**63 - 1


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name}: numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text}: out of range of a float, numbers must be finite")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_INT:
        raise ValueError(f"an integer of {len(text)} digits: out of range (at most {MAX_INT})")
    return value


def _parse(number: int, text: str) -> ScenarioLine:
    try:
        record = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("not a scenario line: nested too deeply") from None
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


def _text(raw: bytes) -> str:
    """A line's text; binary data and overlong lines raise ValueError (read no further)."""
    body = raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw
    nul = body.find(b"\x00")
    if nul >= 0:
        raise ValueError(f"binary data (a NUL byte at column {nul + 1}), not a scenario")
    if len(body) > MAX_LINE_BYTES:
        raise ValueError(f"longer than {MAX_LINE_BYTES} bytes (the longest line a scenario takes)")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start + 1}), not a scenario") from None


def load_scenario(path: str | Path) -> list[ScenarioLine]:
    """Every line of the file, parsed; the first bad one raises ValueError naming it.
    A file that cannot be opened raises OSError."""
    lines: list[ScenarioLine] = []
    with open(path, "rb") as f:
        number = 0
        while True:
            # One byte past the cap tells an overlong line without reading all of it (/dev/zero).
            raw = f.readline(MAX_LINE_BYTES + 2)
            if not raw:
                break
            number += 1
            try:
                text = _text(raw).strip()
                if not text or text.startswith("#"):
                    continue
                lines.append(_parse(number, text))
            except (TypeError, ValueError, OverflowError) as e:
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


class Checkpointable(Protocol):
    def checkpoint(self) -> bytes: ...


def rehearse(kernel: Checkpointable, lines: list[ScenarioLine]) -> None:
    """Applies `lines` to a scratch copy of `kernel` (an `ExecutionKernel` or a bare
    `Kernel`); the first line that raises (a value the kernel cannot take at all, not a
    refusal) raises ValueError naming it. `kernel` itself is not changed."""
    scratch = ExecutionKernel(
        _core=Kernel.restore(kernel.checkpoint()), venue=SilentVenue(), projection=InMemoryProjection()
    )
    for line in lines:
        try:
            apply_line(scratch, line, lambda _outcome: None)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as e:
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
