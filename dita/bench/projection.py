"""The Hazelcast projection on a loopback member of its own.

* lag: a kernel changes slots at a paced rate; a second process listening to
  a sample of the kernel's keys in `dita.slots` (one slot in ten, every
  change of it) stamps each document it receives; lag is receive time minus
  the time the kernel call that produced that version returned (p50, p99).
  The sample keeps the reader's own work small: a Python client decoding
  every one of 10,000 events a second needs most of a core on its own and
  falls behind on this machine, which would measure the reader, not the
  projection;
* overhead: the same paced run with the projection off and on, taking turns
  in blocks (the host's speed drifts by more than the overhead within a
  minute, so one run after the other measured the drift): kernel call time
  of each and their ratio;
* the highest call rate the kernel sustains with the projection on (unpaced),
  beside the same run with it off;
* convergence: 1,000 slots changed while the member is down; time from the
  restarted member accepting clients to a reader seeing every slot's latest
  version (and the kernel's ENTER time with the cluster up and down).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from dita.bench.member import local_member
from dita.bench.report import Figure, Log, Section, Table
from dita.bench.timing import percentile
from dita.cluster.local_member import LocalMember
from dita.contracts import KernelIntent
from dita.kernel import ExecutionKernel
from dita.projection import InMemoryProjection
from dita.projection.hazelcast import HazelcastProjection, connect
from dita.venue import MockVenueAdapter, SilentVenue

NAME = "projection"
TITLE = "Hazelcast projection"
ASSETS = ("BTC", "ETH", "SOL", "XRP")
CLUSTER = "dita-bench-projection"
#: The issue's targets (issue 3).
LAG_P99_TARGET_MS = 5.0
OVERHEAD_TARGET = 1.15
CONVERGENCE_TARGET_S = 2.0
#: The lag reader listens to one slot in this many.
LAG_SAMPLE_EVERY = 10
#: Blocks of each side (off, on) in the overhead run.
OVERHEAD_TURNS = 10


@dataclass(frozen=True)
class Plan:
    seconds: float  # length of each paced run
    slots: int  # slots of the paced runs
    unpaced_calls: int  # calls of the highest-rate run
    convergence_slots: int = 1_000
    warm_up_seconds: float = 0.0


FULL = Plan(seconds=5.0, slots=100, unpaced_calls=200_000, warm_up_seconds=3.0)
QUICK = Plan(seconds=1.0, slots=100, unpaced_calls=20_000, warm_up_seconds=1.0)


def sample_keys(kernel_id: str, slots: int) -> list[str]:
    """The keys the lag reader listens to: one slot in ten."""
    return [f"{kernel_id}:{i}" for i in range(0, slots, LAG_SAMPLE_EVERY)]


def _reader(members: list[str], cluster: str, keys: list[str], out: Any, ready: Any, stop: Any) -> None:
    """The second process: stamps every document of `keys` it receives."""
    client = connect(members, cluster)
    seen: list[tuple[str, int, float]] = []

    def on_event(event: Any) -> None:
        seen.append((str(event.key), int(json.loads(event.value.to_string())["version"]), time.time()))

    imap = client.get_map("dita.slots")
    for key in keys:
        imap.add_entry_listener(
            key=key, include_value=True, added_func=on_event, updated_func=on_event
        ).result()
    ready.set()
    stop.wait()
    time.sleep(0.5)  # documents still on the wire
    out.put(seen)
    client.shutdown()


def paced_run(
    kernel: ExecutionKernel, rate: int | None, seconds: float, count: int = 0, first: int = 0
) -> tuple[list[float], list[tuple[str, int, float]]]:
    """Opens and cancels trades at `rate` calls/s (`count` calls as fast as possible
    when rate is None); returns call times (µs) and (key, version, time) per change.
    A run that continues an earlier one on the same kernel starts at call `first`,
    so that its trade ids are new."""
    n = kernel.max_slots
    intents = []
    for i in range(first, first + (int(rate * seconds) if rate else count)):
        slot = i % n
        trade = i // n
        if trade % 2 == 0:
            intents.append(
                KernelIntent(
                    action="ENTER",
                    slot_id=slot,
                    trade_id=f"b{trade}-{slot}",
                    asset=ASSETS[slot % 4],
                    side="LONG",
                    target_size=1.0,
                    reference_price=100.0,
                )
            )
        else:
            intents.append(KernelIntent(action="CANCEL", slot_id=slot))
    durations: list[float] = []
    changes: list[tuple[str, int, float]] = []
    period = 1.0 / rate if rate else 0.0
    start = time.perf_counter()
    kid = kernel.kernel_id
    for i, intent in enumerate(intents):
        # Wait by sleeping, as a strategy waiting on its market data would: a
        # busy-wait would hold the GIL and starve the projection's thread.
        gap = start + i * period - time.perf_counter()
        if gap > 0:
            time.sleep(gap)
        t0 = time.perf_counter_ns()
        out = kernel.process_intent(intent)
        durations.append((time.perf_counter_ns() - t0) / 1e3)
        if out.accepted:
            changes.append((f"{kid}:{out.slot_id}", kernel.slot(out.slot_id).version, time.time()))
    return durations, changes


def lag_run(members: list[str], cluster: str, rate: int, plan: Plan) -> dict[str, Any]:
    kernel_id = f"bench-lag-{rate}-{os.getpid()}"
    ctx = mp.get_context("spawn")
    out, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    keys = sample_keys(kernel_id, plan.slots)
    proc = ctx.Process(target=_reader, args=(members, cluster, keys, out, ready, stop), daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while not ready.wait(0.2):
            if not proc.is_alive():
                raise RuntimeError(f"the reader process exited with {proc.exitcode} before it subscribed")
            if time.monotonic() > deadline:
                raise RuntimeError("the reader process did not subscribe to dita.slots within 120 s")
        client = connect(members, cluster)
        try:
            projection = HazelcastProjection(client)
            kernel = ExecutionKernel(
                max_slots=plan.slots, kernel_id=kernel_id, venue=SilentVenue(), projection=projection
            )
            projection.flush(10)
            durations, changes = paced_run(kernel, rate, plan.seconds)
            projection.flush(10)
            stop.set()
            seen = out.get(timeout=60)
            stats = projection.stats()
            projection.close()
        finally:
            client.shutdown()
    finally:
        stop.set()
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join(10)
    made = {(k, v): t for k, v, t in changes}
    lags = [(t - made[(k, v)]) * 1e3 for k, v, t in seen if (k, v) in made]
    sampled = set(keys)
    return {
        "rate": rate,
        "calls": len(durations),
        "changes": len(changes),
        "sampled_keys": len(keys),
        "sampled_changes": sum(k in sampled for k, _, _ in changes),
        "documents_seen": len(lags),
        "lag_ms_p50": percentile(lags, 0.5),
        "lag_ms_p99": percentile(lags, 0.99),
        "errors": stats.get("errors", 0),
        "call_us_median": statistics.median(durations),
    }


def overhead_run(members: list[str], cluster: str, rate: int, plan: Plan) -> dict[str, Any]:
    """Kernel call times at a paced `rate` with the projection off and on: the two
    kernels take turns, a block of `plan.seconds / OVERHEAD_TURNS` each, the
    first of each pair alternating."""
    off = ExecutionKernel(
        max_slots=plan.slots, kernel_id="bench-off", venue=SilentVenue(), projection=InMemoryProjection()
    )
    client = connect(members, cluster)
    try:
        projection = HazelcastProjection(client)
        on = ExecutionKernel(
            max_slots=plan.slots,
            kernel_id=f"bench-on-{os.getpid()}",
            venue=SilentVenue(),
            projection=projection,
        )
        block = plan.seconds / OVERHEAD_TURNS
        calls = int(rate * block)
        d_off: list[float] = []
        d_on: list[float] = []
        for turn in range(OVERHEAD_TURNS):
            pair = [(off, d_off), (on, d_on)]
            for kernel, durations in pair if turn % 2 == 0 else reversed(pair):
                durations += paced_run(kernel, rate, block, first=turn * calls)[0]
        projection.close()
    finally:
        client.shutdown()
    return {
        "rate": rate,
        "median_us_off": statistics.median(d_off),
        "median_us_on": statistics.median(d_on),
        "p99_us_off": percentile(d_off, 0.99),
        "p99_us_on": percentile(d_on, 0.99),
    }


def max_rate_run(members: list[str], cluster: str, plan: Plan) -> dict[str, Any]:
    off = ExecutionKernel(
        max_slots=plan.slots, kernel_id="bench-max-off", venue=SilentVenue(), projection=InMemoryProjection()
    )
    d_off, _ = paced_run(off, None, 0.0, count=plan.unpaced_calls)
    client = connect(members, cluster)
    try:
        projection = HazelcastProjection(client)
        kernel = ExecutionKernel(
            max_slots=plan.slots,
            kernel_id=f"bench-max-{os.getpid()}",
            venue=SilentVenue(),
            projection=projection,
        )
        durations, _ = paced_run(kernel, None, 0.0, count=plan.unpaced_calls)
        backlog = projection.backlog()
        t0 = time.perf_counter()
        projection.flush(30)
        drain_s = time.perf_counter() - t0
        projection.close()
    finally:
        client.shutdown()
    return {
        "calls": len(durations),
        "calls_per_s_on": len(durations) / (sum(durations) / 1e6),
        "calls_per_s_off": len(d_off) / (sum(d_off) / 1e6),
        "backlog_at_end": backlog,
        "flush_after_s": drain_s,
    }


def convergence_run(member: LocalMember, members: list[str], cluster: str, slots: int) -> dict[str, Any]:
    client = connect(members, cluster)
    try:
        projection = HazelcastProjection(client)
        kernel = ExecutionKernel(
            max_slots=slots,
            kernel_id="bench-conv",
            venue=MockVenueAdapter(auto_fill=False),
            projection=projection,
        )
        projection.flush(30)

        def enter_all(prefix: str) -> list[float]:
            took = []
            for slot in range(slots):
                intent = KernelIntent(
                    action="ENTER",
                    slot_id=slot,
                    trade_id=f"{prefix}{slot}",
                    asset="BTC",
                    side="LONG",
                    target_size=1.0,
                )
                t0 = time.perf_counter_ns()
                kernel.process_intent(intent)
                took.append((time.perf_counter_ns() - t0) / 1e3)
                kernel.process_intent(KernelIntent(action="CANCEL", slot_id=slot))
            return took

        before = enter_all("up")
        member.stop()
        deadline = time.monotonic() + 60
        while projection.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        during = enter_all("down")
        want = {f"bench-conv:{s}": kernel.slot(s).version for s in range(slots)}
        member.start(timeout=180)
        accepted = time.perf_counter()
        reader = connect(members, cluster)
        try:
            slots_map = reader.get_map("dita.slots").blocking()
            converged = False
            while time.perf_counter() - accepted < 60:
                docs = {
                    str(k): json.loads(v.to_string())["version"]
                    for k, v in slots_map.get_all(list(want)).items()
                }
                if all(docs.get(k, -1) >= v for k, v in want.items()):
                    converged = True
                    break
                time.sleep(0.01)
            took = time.perf_counter() - accepted
        finally:
            reader.shutdown()
        projection.close()
    finally:
        client.shutdown()
    return {
        "slots": slots,
        "converged": converged,
        "converged_s": took,
        "enter_us_median_cluster_up": statistics.median(before),
        "enter_us_median_cluster_down": statistics.median(during),
    }


def run(quick: bool, log: Log) -> Section:
    plan = QUICK if quick else FULL
    found: dict[str, Any] = {"plan": plan.__dict__}
    with local_member(CLUSTER, log) as member:
        members = [member.address]
        # A member just started runs its code paths interpreted until the JIT
        # has compiled them: the first seconds of writes and entry events would
        # measure Java's warm-up, not the projection.
        log(f"projection: warm-up, a lag run at 1,000 calls/s for {plan.warm_up_seconds:g} s (not reported)")
        lag_run(members, CLUSTER, 1_000, Plan(plan.warm_up_seconds, plan.slots, 0))
        found["lag"] = []
        for rate in (1_000, 10_000):
            log(f"projection: lag at a paced {rate:,} calls/s for {plan.seconds:g} s")
            found["lag"].append(lag_run(members, CLUSTER, rate, plan))
        log(f"projection: kernel call time off and on at a paced 10,000 calls/s, {plan.seconds:g} s each")
        found["overhead"] = overhead_run(members, CLUSTER, 10_000, plan)
        log(f"projection: highest call rate, {plan.unpaced_calls:,} calls unpaced, off and on")
        found["max_rate"] = max_rate_run(members, CLUSTER, plan)
        log(f"projection: convergence of {plan.convergence_slots:,} slots after a member restart")
        found["convergence"] = convergence_run(member, members, CLUSTER, plan.convergence_slots)
    return section(found, plan)


def section(found: dict[str, Any], plan: Plan) -> Section:
    s = Section(
        NAME,
        TITLE,
        "A loopback Hazelcast member started for this benchmark, warmed up by a lag run of "
        f"{plan.warm_up_seconds:g} s that is not reported. Paced runs open and cancel trades on "
        f"{plan.slots} slots for {plan.seconds:g} s; *lag* is from the kernel call that made a slot "
        "version returning to a second process receiving that version; the reader listens to one slot "
        f"in {LAG_SAMPLE_EVERY} (every change of it), so that what is measured is the projection, "
        "not the reader decoding 10,000 events a second. "
        "The overhead runs are the same paced run with the projection off (in-memory) and on, taking "
        f"turns in {OVERHEAD_TURNS} blocks of each; the highest rate is an unpaced run of each. "
        "Convergence: the member is stopped, "
        f"{plan.convergence_slots:,} slots change, the member starts again, and the clock runs from "
        "it accepting clients to a reader seeing every slot's latest version.",
    )
    s.tables.append(
        Table(
            (
                "paced rate calls/s",
                "calls",
                "changes",
                "changes of sampled slots",
                "documents seen",
                "lag p50 ms",
                "lag p99 ms",
                "errors",
            ),
            [
                [
                    f"{r['rate']:,}",
                    f"{r['calls']:,}",
                    f"{r['changes']:,}",
                    f"{r['sampled_changes']:,}",
                    f"{r['documents_seen']:,}",
                    f"{r['lag_ms_p50']:.2f}",
                    f"{r['lag_ms_p99']:.2f}",
                    f"{r['errors']}",
                ]
                for r in found["lag"]
            ],
        )
    )
    o, m, c = found["overhead"], found["max_rate"], found["convergence"]
    s.tables.append(
        Table(
            ("projection", "median µs/call at 10,000 calls/s", "p99 µs/call", "highest calls/s (unpaced)"),
            [
                [
                    "off",
                    f"{o['median_us_off']:.2f}",
                    f"{o['p99_us_off']:.2f}",
                    f"{m['calls_per_s_off']:,.0f}",
                ],
                ["on", f"{o['median_us_on']:.2f}", f"{o['p99_us_on']:.2f}", f"{m['calls_per_s_on']:,.0f}"],
            ],
        )
    )
    for r in found["lag"]:
        s.figures.append(
            Figure(
                f"lag p99 at a paced {r['rate']:,} calls/s",
                r["lag_ms_p99"],
                "ms",
                LAG_P99_TARGET_MS if r["rate"] == 10_000 else None,
            )
        )
    s.ratio(
        "kernel call, projection on / off at 10,000 calls/s (median)",
        o["median_us_on"],
        o["median_us_off"],
        OVERHEAD_TARGET,
    )
    s.ratio("kernel call, projection on / off at 10,000 calls/s (p99)", o["p99_us_on"], o["p99_us_off"])
    s.figures.append(Figure("highest call rate with the projection on", m["calls_per_s_on"], "calls/s"))
    s.ratio("highest call rate, projection on / off", m["calls_per_s_on"], m["calls_per_s_off"])
    s.figures.append(
        Figure(
            f"convergence of {c['slots']:,} slots after a member restart",
            c["converged_s"] if c["converged"] else float("nan"),
            "s",
            CONVERGENCE_TARGET_S,
        )
    )
    s.ratio(
        "ENTER with the member down / up (median)",
        c["enter_us_median_cluster_down"],
        c["enter_us_median_cluster_up"],
    )
    s.notes.append(
        f"After the unpaced run {m['backlog_at_end']:,} documents were waiting (at most one per key: "
        f"{plan.slots} slots and the account), written {m['flush_after_s'] * 1e3:.0f} ms later."
    )
    if not c["converged"]:
        s.notes.append(f"The maps had not converged {c['converged_s']:.0f} s after the restart.")
    s.data = found
    return s
