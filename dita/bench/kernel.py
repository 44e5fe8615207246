"""The kernel through its public Python API, at 10, 1,000 and 10,000 slots.

A fixed scenario, per slot and round: an entry acked and filled in two parts,
one price mark per asset, a two-leg exit whose second leg is cancelled once
and sent again. At each slot count, in one run:

* kernel alone: intents and venue events built beforehand and fed through
  `ExecutionKernel.process_intent` / `on_venue_event` with a venue that
  answers nothing (so every event comes from the prepared list);
* the same steps through the plain-Python reference model (`dita.model.reference`);
* with the mock venue answering: only intents are fed, the venue acks and
  fills (in two parts) and the kernel applies its answers inside the call.

Each call is timed on its own (perf_counter_ns). The kernel-alone runs of
the three sizes take turns, a block of each at a time, so that a host whose
speed drifts over the minutes of the run slows every size alike: measured
one after the other, the 1,000/10-slot ratio swung from 1.04x to 1.53x
between runs of the same code.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from dita._native import Kernel
from dita.bench.report import Figure, Log, Section, Table
from dita.bench.timing import CallTimes, time_each
from dita.contracts import KernelIntent, VenueEvent
from dita.kernel import ExecutionKernel
from dita.model.reference import ReferenceKernel
from dita.projection import InMemoryProjection
from dita.venue import MockVenueAdapter, SilentVenue

NAME = "kernel"
TITLE = "Kernel through the Python API"
ASSETS = ("BTC-PERP", "ETH-PERP", "SOL-PERP", "XRP-PERP")
#: The issue's targets for the kernel alone on a 2-core machine.
MEDIAN_TARGET_US = 3.0
SLOT_RATIO_TARGET = 1.2
#: Turns of the interleaved kernel-alone runs.
TURNS = 20

Step = tuple[str, Any]  # ("intent", KernelIntent) | ("event", VenueEvent) | ("mark", (asset, price))
#: Applies one step somewhere and returns the client id of the order an intent opened ("" otherwise).
Perform = Callable[[Step], str]


def play_round(slots: int, r: int, perform: Perform, trading: Sequence[int] | None = None) -> None:
    """Round `r` of the scenario on a kernel of `slots` slots, in order: every
    trading slot (those of `trading`, default all) goes through one phase
    before any goes to the next. Client ids come from `perform`'s answers, so
    the same code drives a dry run or a measured kernel directly."""
    ids = range(slots) if trading is None else trading
    entry = [""] * len(ids)
    exits = [""] * len(ids)

    def intent(**fields: Any) -> str:
        return perform(("intent", KernelIntent(timestamp=1.0, **fields)))

    def event(**fields: Any) -> None:
        perform(("event", VenueEvent(timestamp=2.0, **fields)))

    for phase in range(13):
        for i, s in enumerate(ids):
            asset = ASSETS[i % len(ASSETS)]
            tag = f"r{r}s{s}"
            if phase == 0:
                entry[i] = intent(
                    action="ENTER",
                    slot_id=s,
                    trade_id=tag,
                    asset=asset,
                    side="LONG",
                    target_size=2.0,
                    reference_price=100.0,
                    exit_leg_ratios=(0.5, 0.5),
                )
            elif phase == 1:
                event(
                    event_id=f"{tag}/ea", kind="ORDER_ACK", venue_client_id=entry[i], venue_order_id=f"V{tag}"
                )
            elif phase == 2:
                event(
                    event_id=f"{tag}/ep", kind="PARTIAL_FILL", venue_client_id=entry[i], price=100.0, size=1.0
                )
            elif phase == 3:
                event(event_id=f"{tag}/ef", kind="FILL", venue_client_id=entry[i], price=101.0, size=1.0)
            elif phase == 4:
                if i < len(ASSETS):
                    perform(("mark", (asset, 100.0 + r)))
            elif phase in (5, 8, 11):
                exits[i] = intent(action="EXIT", slot_id=s)
            elif phase == 6:
                event(event_id=f"{tag}/xa", kind="ORDER_ACK", venue_client_id=exits[i])
            elif phase == 7:
                event(event_id=f"{tag}/x1", kind="FILL", venue_client_id=exits[i], price=102.0, size=1.0)
            elif phase == 9:
                intent(action="CANCEL", slot_id=s)
            elif phase == 10:
                event(event_id=f"{tag}/xc", kind="CANCELLED", venue_client_id=exits[i])
            else:
                event(event_id=f"{tag}/x2", kind="FILL", venue_client_id=exits[i], price=103.0, size=1.0)


def apply_native(kernel: Kernel, step: Step) -> str:
    """One step on a native kernel, submitting the orders intents open as a venue adapter would."""
    kind, payload = step
    if kind == "intent":
        out = kernel.process_intent(payload)
        if out.accepted and out.order is not None and payload.action != "CANCEL":
            kernel.submitted(out.slot_id, 1.0)
        return out.order.venue_client_id if out.order is not None else ""
    if kind == "event":
        kernel.on_venue_event(payload)
    else:
        kernel.mark_price(*payload)
    return ""


def scenario(slots: int, rounds: int, trading: Sequence[int] | None = None) -> list[Step]:
    """The steps, with client ids learnt from a dry run on a native kernel."""
    dry = Kernel(slots)
    steps: list[Step] = []

    def perform(step: Step) -> str:
        steps.append(step)
        return apply_native(dry, step)

    for r in range(rounds):
        play_round(slots, r, perform, trading)
    if not all(dry.slot(s).fsm_state == "CLOSED" for s in (range(slots) if trading is None else trading)):
        raise RuntimeError("the benchmark scenario must close every trade it opens")
    return steps


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
    """Per round and slot: a SHORT entry and its two exit legs; the mock venue does the rest."""
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


@dataclass(frozen=True)
class Size:
    slots: int
    rounds: int
    #: slots that trade in the reference model's run; None: every slot, the same steps as the kernel's
    model_trading: int | None = None


FULL = (Size(10, 2_000), Size(1_000, 20), Size(10_000, 2, model_trading=500))
QUICK = (Size(10, 50), Size(1_000, 1), Size(10_000, 1, model_trading=40))


def spread(slots: int, count: int) -> range:
    """`count` slot ids spread evenly over `slots`: a scan for one of them walks,
    on average, half the slots, as it does when every slot trades."""
    return range(0, slots, max(1, slots // count))[:count]


def capped_model_run(size: Size) -> str:
    return f"reference model ({size.model_trading} slots of {size.slots:,} trade, 1 round)"


def silent_kernel(slots: int) -> ExecutionKernel:
    return ExecutionKernel(
        max_slots=slots, kernel_id=f"bench-{slots}", venue=SilentVenue(), projection=InMemoryProjection()
    )


def kernel_alone(steps: dict[int, list[Step]], log: Log) -> dict[int, CallTimes]:
    """The kernel alone at every size (slots -> its steps), in turns: a block
    of each size's calls, in order, then the next block of each."""
    calls = {n: kernel_calls(silent_kernel(n), each) for n, each in steps.items()}
    log(
        "kernel: kernel alone, "
        + ", ".join(f"{len(c):,} calls at {n:,} slots" for n, c in calls.items())
        + f", in {TURNS} turns"
    )
    samples: dict[int, list[int]] = {n: [] for n in calls}
    for turn in range(TURNS):
        for n, each in calls.items():
            block = each[turn * len(each) // TURNS : (turn + 1) * len(each) // TURNS]
            samples[n] += time_each(block)
    return {n: CallTimes.of("kernel alone", n, taken) for n, taken in samples.items()}


def measure(size: Size, steps: list[Step], log: Log) -> list[CallTimes]:
    """Everything but the kernel alone at one size, whose scenario is `steps`."""
    n = size.slots
    results: list[CallTimes] = []
    if size.model_trading is None:
        log(f"kernel: {n:,} slots: reference model, {len(steps):,} calls")
        results.append(CallTimes.of("reference model", n, time_each(model_calls(ReferenceKernel(n), steps))))
    else:
        capped = scenario(n, 1, trading=spread(n, size.model_trading))
        log(f"kernel: {n:,} slots: reference model, {size.model_trading} slots trade, {len(capped):,} calls")
        results.append(
            CallTimes.of(
                capped_model_run(size),
                n,
                time_each(model_calls(ReferenceKernel(n), capped)),
            )
        )
        results.append(
            CallTimes.of(
                "kernel alone (the model's steps)", n, time_each(kernel_calls(silent_kernel(n), capped))
            )
        )
    venue = MockVenueAdapter(partial_fills=2, seed=1)
    kernel = ExecutionKernel(max_slots=n, venue=venue, projection=InMemoryProjection())
    intents = venue_intents(n, size.rounds)
    log(f"kernel: {n:,} slots: kernel + mock venue, {len(intents):,} calls")
    results.append(
        CallTimes.of(
            "kernel + mock venue", n, time_each([partial(kernel.process_intent, i) for i in intents])
        )
    )
    return results


def run(quick: bool, log: Log) -> Section:
    sizes = QUICK if quick else FULL
    steps: dict[int, list[Step]] = {}
    for size in sizes:
        log(f"kernel: {size.slots:,} slots, {size.rounds} round(s): preparing the steps")
        steps[size.slots] = scenario(size.slots, size.rounds)
    alone = kernel_alone(steps, log)
    gc.collect()
    results: list[CallTimes] = []
    for size in sizes:
        results += [alone[size.slots], *measure(size, steps.pop(size.slots), log)]
        gc.collect()
    by = {(r.name, r.slots): r for r in results}
    section = Section(
        NAME,
        TITLE,
        "A fixed scenario of entries, acks, partial fills, price marks, two-leg exits and cancels "
        "(12 calls per slot and round, plus one mark per asset), at each slot count in one run. "
        "*Kernel alone* feeds intents and venue events built beforehand to `ExecutionKernel` with a "
        "venue that answers nothing; the *reference model* (`dita.model.reference`, plain Python) "
        "takes the same steps; *kernel + mock venue* feeds only intents and the mock venue acks and "
        "fills inside each call. Every call is timed on its own; calls/s is calls over the summed "
        f"call time. The kernel-alone runs of the three sizes take turns ({TURNS} blocks of each), so "
        "that the host's drift slows them alike.",
    )
    section.tables.append(
        Table(
            ("run", "slots", "calls", "median µs/call", "p99 µs/call", "calls/s"),
            [
                [
                    r.name,
                    f"{r.slots:,}",
                    f"{r.calls:,}",
                    f"{r.median_us:,.2f}",
                    f"{r.p99_us:,.2f}",
                    f"{r.calls_per_s:,.0f}",
                ]
                for r in results
            ],
        )
    )
    small = sizes[0].slots
    for size in sizes:
        section.figures.append(
            Figure(
                f"kernel alone, median per call at {size.slots:,} slots",
                alone[size.slots].median_us,
                "µs",
                MEDIAN_TARGET_US,
            )
        )
    for size in sizes[1:]:
        section.ratio(
            f"kernel alone, {size.slots:,} / {small:,} slots (median per call)",
            by[("kernel alone", size.slots)].median_us,
            by[("kernel alone", small)].median_us,
            SLOT_RATIO_TARGET if size.slots == 1_000 else None,
        )
    for size in sizes:
        if size.model_trading is None:
            model = by[("reference model", size.slots)]
            kernel = by[("kernel alone", size.slots)]
            label = f"reference model / kernel alone at {size.slots:,} slots (median per call)"
        else:
            model = by[(capped_model_run(size), size.slots)]
            kernel = by[("kernel alone (the model's steps)", size.slots)]
            label = (
                f"reference model / kernel alone at {size.slots:,} slots, on the model's capped steps "
                "(median per call)"
            )
        section.ratio(label, model.median_us, kernel.median_us)
    full_model = [s for s in sizes[1:] if s.model_trading is None]
    for size in full_model:
        section.ratio(
            f"reference model, {size.slots:,} / {small:,} slots (median per call)",
            by[("reference model", size.slots)].median_us,
            by[("reference model", small)].median_us,
        )
    for size in sizes[1:]:
        section.ratio(
            f"kernel + mock venue, {size.slots:,} / {small:,} slots (median per call)",
            by[("kernel + mock venue", size.slots)].median_us,
            by[("kernel + mock venue", small)].median_us,
        )
    for size in sizes:
        if size.model_trading is not None:
            section.notes.append(
                f"At {size.slots:,} slots the reference model, which scans the slots on most calls, runs "
                f"one round in which only {size.model_trading} slots spread evenly over the "
                f"{size.slots:,} trade: every slot trading would take many minutes. The idle slots "
                "make its scans cheaper than with every slot busy, so its figure there is a lower "
                "bound; its ratio is against the kernel on those same steps."
            )
    section.notes.append(
        "With the mock venue most of a call is the venue building its answers in Python. "
        "The pure-Rust kernel on the same scenario is `make bench-rust` (criterion), not part of this report."
    )
    section.data = {
        "sizes": [{"slots": s.slots, "rounds": s.rounds, "model_trading": s.model_trading} for s in sizes],
        "results": [r.as_dict() for r in results],
    }
    return section
