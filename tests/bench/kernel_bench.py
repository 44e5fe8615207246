"""Benchmark of the kernel through its public Python API (numbers, not a test).

A fixed scenario, per slot and round: an entry acked and filled in two parts,
one price mark per asset, a two-leg exit whose second leg is cancelled once
and sent again. Run at 10 and 1,000 slots:

* kernel alone: intents and venue events built beforehand and fed through
  `ExecutionKernel.process_intent` / `on_venue_event` with a venue that
  answers nothing (so every event comes from the prepared list);
* the same steps through the plain-Python reference model;
* with the mock venue answering: only intents are fed, the venue acks and
  fills (in two parts) and the kernel applies its answers inside the call.

Each call is timed on its own (perf_counter_ns); medians and p99s are per
call, calls/s is calls over the summed call time. Run with
`python -m tests.bench.kernel_bench [--rounds N] [--json out.json]` on a
release build (`make setup` installs one).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from dita._native import Kernel
from dita.contracts import KernelIntent, VenueEvent
from dita.kernel import ExecutionKernel
from dita.projection import InMemoryProjection
from dita.venue import MockVenueAdapter, SilentVenue
from tests.model.reference import ReferenceKernel

ASSETS = ("BTC-PERP", "ETH-PERP", "SOL-PERP", "XRP-PERP")
Step = tuple[str, Any]  # ("intent", KernelIntent) | ("event", VenueEvent) | ("mark", (asset, price))


def scenario(slots: int, rounds: int) -> list[Step]:
    """The steps, with client ids learnt from a dry run on a native kernel."""
    dry = Kernel(slots)
    steps: list[Step] = []

    def intent(**fields: Any) -> str:
        i = KernelIntent(timestamp=1.0, **fields)
        out = dry.process_intent(i)
        if out.accepted and out.order is not None and i.action != "CANCEL":
            dry.submitted(out.slot_id, 1.0)
        steps.append(("intent", i))
        return out.order.venue_client_id if out.order is not None else ""

    def event(**fields: Any) -> None:
        e = VenueEvent(timestamp=2.0, **fields)
        dry.on_venue_event(e)
        steps.append(("event", e))

    for r in range(rounds):
        entry = [""] * slots
        exits = [""] * slots
        for phase in range(13):
            for s in range(slots):
                asset = ASSETS[s % len(ASSETS)]
                ids = f"r{r}s{s}"
                if phase == 0:
                    entry[s] = intent(
                        action="ENTER",
                        slot_id=s,
                        trade_id=ids,
                        asset=asset,
                        side="LONG",
                        target_size=2.0,
                        reference_price=100.0,
                        exit_leg_ratios=(0.5, 0.5),
                    )
                elif phase == 1:
                    event(
                        event_id=f"{ids}/ea",
                        kind="ORDER_ACK",
                        venue_client_id=entry[s],
                        venue_order_id=f"V{ids}",
                    )
                elif phase == 2:
                    event(
                        event_id=f"{ids}/ep",
                        kind="PARTIAL_FILL",
                        venue_client_id=entry[s],
                        price=100.0,
                        size=1.0,
                    )
                elif phase == 3:
                    event(event_id=f"{ids}/ef", kind="FILL", venue_client_id=entry[s], price=101.0, size=1.0)
                elif phase == 4:
                    if s < len(ASSETS):
                        steps.append(("mark", (asset, 100.0 + r)))
                        dry.mark_price(asset, 100.0 + r)
                elif phase in (5, 8, 11):
                    exits[s] = intent(action="EXIT", slot_id=s)
                elif phase == 6:
                    event(event_id=f"{ids}/xa", kind="ORDER_ACK", venue_client_id=exits[s])
                elif phase == 7:
                    event(event_id=f"{ids}/x1", kind="FILL", venue_client_id=exits[s], price=102.0, size=1.0)
                elif phase == 9:
                    intent(action="CANCEL", slot_id=s)
                elif phase == 10:
                    event(event_id=f"{ids}/xc", kind="CANCELLED", venue_client_id=exits[s])
                else:
                    event(event_id=f"{ids}/x2", kind="FILL", venue_client_id=exits[s], price=103.0, size=1.0)
    assert all(dry.slot(s).fsm_state == "CLOSED" for s in range(slots)), "scenario must close every trade"
    return steps


@dataclass
class Result:
    name: str
    slots: int
    calls: int
    median_us: float
    p99_us: float
    calls_per_s: float

    def row(self) -> str:
        return (
            f"| {self.name} | {self.slots:,} | {self.calls:,} | {self.median_us:.2f} | {self.p99_us:.2f} "
            f"| {self.calls_per_s:,.0f} |"
        )


def timed(name: str, slots: int, calls: Sequence[Callable[[], object]]) -> Result:
    samples = []
    gc.collect()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for call in calls:
            t0 = clock()
            call()
            samples.append(clock() - t0)
    finally:
        gc.enable()
    samples.sort()
    return Result(
        name,
        slots,
        len(samples),
        statistics.median(samples) / 1e3,
        samples[int(len(samples) * 0.99)] / 1e3,
        len(samples) / (sum(samples) / 1e9),
    )


def kernel_calls(kernel: ExecutionKernel, steps: list[Step]) -> list[Callable[[], object]]:
    calls: list[Callable[[], object]] = []
    for kind, payload in steps:
        if kind == "intent":
            calls.append(partial(kernel.process_intent, payload))
        elif kind == "event":
            calls.append(partial(kernel.on_venue_event, payload))
        else:
            calls.append(partial(kernel.mark_price, *payload))
    return calls


def model_calls(model: ReferenceKernel, steps: list[Step]) -> list[Callable[[], object]]:
    def intent(p: KernelIntent) -> object:
        out = model.process_intent(p)
        if out["accepted"] and p.action != "CANCEL":
            model.submitted(p.slot_id, 1.0)
        return out

    calls: list[Callable[[], object]] = []
    for kind, payload in steps:
        if kind == "intent":
            calls.append(partial(intent, payload))
        elif kind == "event":
            calls.append(partial(model.on_venue_event, payload))
        else:
            calls.append(partial(model.mark_price, *payload))
    return calls


def venue_intents(slots: int, rounds: int) -> list[KernelIntent]:
    intents = []
    for r in range(rounds):
        for phase in range(3):
            for s in range(slots):
                if phase == 0:
                    intents.append(
                        KernelIntent(
                            action="ENTER",
                            slot_id=s,
                            trade_id=f"v{r}s{s}",
                            asset=ASSETS[s % len(ASSETS)],
                            side="SHORT",
                            target_size=2.0,
                            reference_price=100.0,
                            exit_leg_ratios=(0.5, 0.5),
                        )
                    )
                else:
                    intents.append(KernelIntent(action="EXIT", slot_id=s, reference_price=99.0))
    return intents


def run(rounds_10: int, rounds_1000: int) -> list[Result]:
    results = []
    for slots, rounds in ((10, rounds_10), (1_000, rounds_1000)):
        steps = scenario(slots, rounds)
        kernel = ExecutionKernel(max_slots=slots, venue=SilentVenue(), projection=InMemoryProjection())
        results.append(timed("kernel alone", slots, kernel_calls(kernel, steps)))
        results.append(timed("reference model", slots, model_calls(ReferenceKernel(slots), steps)))
        venue = MockVenueAdapter(partial_fills=2, seed=1)
        kernel = ExecutionKernel(max_slots=slots, venue=venue, projection=InMemoryProjection())
        intents = venue_intents(slots, rounds)
        results.append(
            timed("kernel + mock venue", slots, [partial(kernel.process_intent, i) for i in intents])
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds-10", type=int, default=2_000, help="rounds at 10 slots (default 2000)")
    parser.add_argument("--rounds-1000", type=int, default=20, help="rounds at 1,000 slots (default 20)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    results = run(args.rounds_10, args.rounds_1000)
    machine = f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    print(f"machine: {machine}")
    print("| run | slots | calls | median µs/call | p99 µs/call | calls/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(r.row())
    by = {(r.name, r.slots): r for r in results}
    for name in ("kernel alone", "reference model", "kernel + mock venue"):
        print(
            f"{name}: 1,000 slots / 10 slots median = "
            f"{by[(name, 1000)].median_us / by[(name, 10)].median_us:.2f}x"
        )
    for slots in (10, 1000):
        ratio = by[("reference model", slots)].median_us / by[("kernel alone", slots)].median_us
        print(f"{slots} slots: reference model / kernel median = {ratio:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": [r.__dict__ for r in results]}, f, indent=2)


if __name__ == "__main__":
    main()
