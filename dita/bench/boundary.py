"""A model of the earlier design's boundary cost, beside the kernel's time per venue event.

The seed kernel (`seed/kernel_seed.py.txt`) crossed into Rust with ctypes and
JSON strings. Per venue event its Python side encoded the event as JSON,
decoded the JSON result (outcome and slot), decoded a snapshot JSON to
refresh its indices, then decoded every slot's JSON again (and the event's
slot once more) to observe the account and write the projection. This
module does that same JSON work in Python on documents shaped like the real
ones, taken from a kernel running the benchmark scenario (its `snapshot()`
and its slots at that moment), and times it per event. It is a model of that
design's boundary, not the old code: it leaves out the Rust side's work
producing the strings, the ctypes calls and building objects from the
decoded dicts, so the old boundary cost at least this much.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dita.bench.kernel import Step, scenario, silent_kernel
from dita.bench.report import Log, Section, Table
from dita.bench.timing import CallTimes, median, percentile
from dita.contracts import VenueEvent
from dita.kernel import ExecutionKernel

NAME = "boundary"
TITLE = "The earlier design's boundary, modelled"


@dataclass(frozen=True)
class Size:
    slots: int
    rounds: int
    #: venue events whose boundary work is modelled (spread evenly over the run)
    samples: int


FULL = (Size(10, 200, 2_000), Size(1_000, 1, 200), Size(10_000, 1, 24))
QUICK = (Size(10, 20, 200), Size(1_000, 1, 20), Size(10_000, 1, 4))


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _text(doc: Any) -> bytes:
    """A document as the Rust side of the seed handed it over: UTF-8 JSON."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=_json_safe).encode("utf-8")


@dataclass
class Crossing:
    """What crossed the boundary for one venue event, in and out."""

    event: dict[str, Any]
    result: bytes
    snapshot: bytes
    slots: list[bytes]
    slot_id: int

    @classmethod
    def after(cls, kernel: ExecutionKernel, event: VenueEvent, outcome: Any) -> Crossing:
        slots = [_text(slot.to_dict()) for slot in kernel.slots()]
        payload = json.loads(_text(event.to_dict()))  # the event as the seed's _event_to_payload made it
        slot_id = outcome.slot_id if 0 <= outcome.slot_id < kernel.max_slots else 0
        result = {"outcome": outcome.to_dict(), "slot": kernel.slot(slot_id).to_dict()}
        return cls(payload, _text(result), _text(kernel.snapshot()), slots, slot_id)

    def decode(self) -> int:
        """The seed's JSON work for one event; returns the nanoseconds it took."""
        clock = time.perf_counter_ns
        t0 = clock()
        encoded = json.dumps(self.event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        result = json.loads(self.result.decode("utf-8"))
        snapshot = json.loads(self.snapshot.decode("utf-8"))
        slots = [json.loads(text.decode("utf-8")) for text in self.slots]
        current = json.loads(self.slots[self.slot_id].decode("utf-8"))
        took = clock() - t0
        if not (encoded and result and snapshot and len(slots) == len(self.slots) and current):
            raise RuntimeError("the boundary model decoded nothing")
        return took

    @property
    def bytes_out(self) -> int:
        return (
            len(self.result)
            + len(self.snapshot)
            + sum(len(s) for s in self.slots)
            + len(self.slots[self.slot_id])
        )


def measure(size: Size, log: Log) -> dict[str, Any]:
    n = size.slots
    steps: list[Step] = scenario(n, size.rounds)
    events = sum(1 for kind, _ in steps if kind == "event")
    every = max(1, events // size.samples)
    log(f"boundary: {n:,} slots: {events:,} venue events, modelling every {every:,}th")
    kernel = silent_kernel(n)
    kernel_ns: list[int] = []
    model_ns: list[int] = []
    sizes: list[int] = []
    seen = 0
    clock = time.perf_counter_ns
    gc.collect()
    # As for the kernel's calls: no collection charged to one call or one sample
    # (what a sample builds is freed by reference counting).
    gc.disable()
    try:
        for kind, payload in steps:
            if kind == "intent":
                kernel.process_intent(payload)
            elif kind == "mark":
                kernel.mark_price(*payload)
            else:
                t0 = clock()
                outcome = kernel.on_venue_event(payload)
                kernel_ns.append(clock() - t0)
                seen += 1
                if seen % every == 0 and len(model_ns) < size.samples:
                    crossing = Crossing.after(kernel, payload, outcome)
                    model_ns.append(crossing.decode())
                    sizes.append(crossing.bytes_out)
    finally:
        gc.enable()
    kernel_times = CallTimes.of("kernel, on_venue_event", n, kernel_ns)
    model_times = CallTimes.of("boundary model, per event", n, model_ns)
    return {
        "slots": n,
        "rounds": size.rounds,
        "events": events,
        "kernel": kernel_times.as_dict(),
        "boundary_model": model_times.as_dict(),
        "json_bytes_decoded_per_event": median(sizes),
        "json_bytes_decoded_p99": percentile(sizes, 0.99),
    }


def run(quick: bool, log: Log) -> Section:
    sizes = QUICK if quick else FULL
    found = []
    for size in sizes:
        found.append(measure(size, log))
        gc.collect()
    section = Section(
        NAME,
        TITLE,
        "The seed kernel crossed into Rust with JSON strings. Per venue event its Python side encoded "
        "the event as JSON, decoded the JSON result (outcome and slot), decoded a snapshot JSON of the "
        "whole kernel, and decoded every slot's JSON again (and the event's slot once more). This "
        "benchmark does that same `json.dumps`/`json.loads` work on documents taken from a kernel "
        "running the benchmark scenario (its `snapshot()` and slots right after each sampled event) "
        "and times it per event, beside the kernel's own `on_venue_event` time in the same run. "
        "**It is a model of that design's boundary, not the old code**: it leaves out the Rust side "
        "producing the strings, the ctypes calls and building objects from the decoded dicts, so the "
        "old design paid at least this.",
    )
    section.tables.append(
        Table(
            (
                "slots",
                "events modelled",
                "boundary model median µs/event",
                "boundary model p99",
                "kernel median µs/event",
                "kernel p99",
                "JSON decoded per event",
            ),
            [
                [
                    f"{f['slots']:,}",
                    f"{f['boundary_model']['calls']:,}",
                    f"{f['boundary_model']['median_us']:,.1f}",
                    f"{f['boundary_model']['p99_us']:,.1f}",
                    f"{f['kernel']['median_us']:.2f}",
                    f"{f['kernel']['p99_us']:.2f}",
                    f"{f['json_bytes_decoded_per_event'] / 1024:,.1f} KiB",
                ]
                for f in found
            ],
        )
    )
    for f in found:
        section.ratio(
            f"boundary model / kernel per venue event at {f['slots']:,} slots (median)",
            f["boundary_model"]["median_us"],
            f["kernel"]["median_us"],
        )
    for f in found[1:]:
        section.ratio(
            f"boundary model, {f['slots']:,} / {found[0]['slots']:,} slots (median per event)",
            f["boundary_model"]["median_us"],
            found[0]["boundary_model"]["median_us"],
        )
    section.notes.append(
        "The kernel's per-event time covers every venue event of the run; the model's covers the "
        'sampled events, each timed once. docs/ARCHITECTURE.md ("Discrepancies from the earlier '
        'kernel") quotes the old design at about 150 µs of JSON work per event at 10 slots and '
        "1.2 ms at 100."
    )
    section.data = {"sizes": found}
    return section
