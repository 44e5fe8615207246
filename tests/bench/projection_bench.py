"""Benchmark of the Hazelcast projection on a loopback member (numbers, not a test).

* lag: a kernel changes slots at a paced rate; a second process subscribed to
  `dita.slots` stamps each document it receives; lag is receive time minus the
  time the kernel call that produced that version returned (p50, p99);
* overhead: the same paced run with the projection off and on, in one run:
  median kernel call time of each and their ratio;
* the highest call rate the kernel sustains with the projection on (unpaced);
* convergence: 1,000 slots changed while the member is down; time from the
  restarted member accepting clients to a reader seeing every slot's latest version.

Run: `python -m tests.bench.projection_bench` (starts its own member; or
set DITA_HAZELCAST=host:port and DITA_CLUSTER). Release build only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from typing import Any

from dita.cluster.local_member import LocalMember, find_free_port
from dita.contracts import KernelIntent
from dita.kernel import ExecutionKernel
from dita.projection import InMemoryProjection
from dita.projection.hazelcast import HazelcastProjection, connect
from dita.venue import MockVenueAdapter, SilentVenue

ASSETS = ("BTC", "ETH", "SOL", "XRP")


def _reader(members: list[str], cluster: str, kernel_id: str, out: Any, ready: Any, stop: Any) -> None:
    """The second process: stamps every slot document of `kernel_id` it receives."""
    client = connect(members, cluster)
    seen: list[tuple[str, int, float]] = []

    def on_event(event: Any) -> None:
        doc = json.loads(event.value.to_string())
        if doc.get("kernel_id") == kernel_id:
            seen.append((str(event.key), int(doc["version"]), time.time()))

    imap = client.get_map("dita.slots")
    imap.add_entry_listener(include_value=True, added_func=on_event, updated_func=on_event).result()
    ready.set()
    stop.wait()
    time.sleep(0.5)
    out.put(seen)
    client.shutdown()


def paced_run(
    kernel: ExecutionKernel, rate: int | None, seconds: float, count: int = 0
) -> tuple[list[float], list[tuple[str, int, float]]]:
    """Opens and cancels trades at `rate` calls/s (`count` calls as fast as possible
    when rate is None); returns call times (µs) and (key, version, time) per change."""
    n = kernel.max_slots
    intents = []
    for i in range(int(rate * seconds) if rate else count):
        slot = i % n
        trade = i // n
        if trade % 2 == 0:
            intents.append(
                (
                    "call",
                    KernelIntent(
                        action="ENTER",
                        slot_id=slot,
                        trade_id=f"b{trade}-{slot}",
                        asset=ASSETS[slot % 4],
                        side="LONG",
                        target_size=1.0,
                        reference_price=100.0,
                    ),
                )
            )
        else:
            intents.append(("call", KernelIntent(action="CANCEL", slot_id=slot)))
    durations: list[float] = []
    changes: list[tuple[str, int, float]] = []
    period = 1.0 / rate if rate else 0.0
    start = time.perf_counter()
    kid = kernel.kernel_id
    for i, (_, intent) in enumerate(intents):
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


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def lag_run(members: list[str], cluster: str, rate: int, seconds: float, slots: int) -> dict[str, Any]:
    kernel_id = f"bench-lag-{rate}-{os.getpid()}"
    ctx = mp.get_context("spawn")
    out, ready, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_reader, args=(members, cluster, kernel_id, out, ready, stop))
    proc.start()
    ready.wait(60)
    client = connect(members, cluster)
    projection = HazelcastProjection(client)
    kernel = ExecutionKernel(max_slots=slots, kernel_id=kernel_id, venue=SilentVenue(), projection=projection)
    projection.flush(10)
    durations, changes = paced_run(kernel, rate, seconds)
    projection.flush(10)
    stop.set()
    seen = out.get(timeout=60)
    proc.join(30)
    made = {(k, v): t for k, v, t in changes}
    lags = [(t - made[(k, v)]) * 1e3 for k, v, t in seen if (k, v) in made]
    stats = projection.stats()
    projection.close()
    client.shutdown()
    return {
        "rate": rate,
        "calls": len(durations),
        "changes": len(changes),
        "documents_seen": len(lags),
        "lag_ms_p50": pct(lags, 0.5),
        "lag_ms_p99": pct(lags, 0.99),
        "errors": stats["errors"],
        "call_us_median": statistics.median(durations),
    }


def overhead_run(members: list[str], cluster: str, rate: int, seconds: float, slots: int) -> dict[str, Any]:
    off = ExecutionKernel(
        max_slots=slots, kernel_id="bench-off", venue=SilentVenue(), projection=InMemoryProjection()
    )
    d_off, _ = paced_run(off, rate, seconds)
    client = connect(members, cluster)
    projection = HazelcastProjection(client)
    on = ExecutionKernel(
        max_slots=slots, kernel_id=f"bench-on-{os.getpid()}", venue=SilentVenue(), projection=projection
    )
    d_on, _ = paced_run(on, rate, seconds)
    projection.close()
    client.shutdown()
    m_off, m_on = statistics.median(d_off), statistics.median(d_on)
    return {
        "rate": rate,
        "median_us_off": m_off,
        "median_us_on": m_on,
        "ratio": m_on / m_off,
        "p99_us_off": pct(d_off, 0.99),
        "p99_us_on": pct(d_on, 0.99),
    }


def max_rate_run(members: list[str], cluster: str, seconds: float, slots: int) -> dict[str, Any]:
    client = connect(members, cluster)
    projection = HazelcastProjection(client)
    kernel = ExecutionKernel(
        max_slots=slots, kernel_id=f"bench-max-{os.getpid()}", venue=SilentVenue(), projection=projection
    )
    durations, _ = paced_run(kernel, None, seconds, count=200_000)  # no pacing: as fast as it goes
    backlog = projection.backlog()
    t0 = time.perf_counter()
    projection.flush(30)
    drain_s = time.perf_counter() - t0
    projection.close()
    client.shutdown()
    return {
        "calls": len(durations),
        "calls_per_s": len(durations) / (sum(durations) / 1e6),
        "backlog_at_end": backlog,
        "flush_after_s": drain_s,
    }


def convergence_run(
    member: LocalMember | None, members: list[str], cluster: str, slots: int
) -> dict[str, Any]:
    if member is None:
        return {"skipped": "the member is not ours to restart"}
    client = connect(members, cluster)
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
    while projection.connected:
        time.sleep(0.01)
    during = enter_all("down")
    want = {f"bench-conv:{s}": kernel.slot(s).version for s in range(slots)}
    member.start(timeout=180)
    accepted = time.perf_counter()
    reader = connect(members, cluster)
    slots_map = reader.get_map("dita.slots").blocking()
    while True:
        docs = {k: json.loads(v.to_string())["version"] for k, v in slots_map.get_all(list(want)).items()}
        if all(docs.get(k, -1) >= v for k, v in want.items()):
            break
        if time.perf_counter() - accepted > 60:
            break
        time.sleep(0.01)
    converged = time.perf_counter() - accepted
    reader.shutdown()
    projection.close()
    client.shutdown()
    return {
        "slots": slots,
        "converged_s": converged,
        "enter_us_median_cluster_up": statistics.median(before),
        "enter_us_median_cluster_down": statistics.median(during),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each paced run (default 5)")
    parser.add_argument("--slots", type=int, default=100, help="slots of the paced runs (default 100)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    member = None
    if os.environ.get("DITA_HAZELCAST"):
        members, cluster = os.environ["DITA_HAZELCAST"].split(","), os.environ.get("DITA_CLUSTER", "dita")
    else:
        member = LocalMember(port=find_free_port(), cluster_name="bench", log=lambda _s: None)
        member.start(timeout=180)
        members, cluster = [member.address], "bench"
    try:
        results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores"}
        results["lag"] = [lag_run(members, cluster, r, args.seconds, args.slots) for r in (1_000, 10_000)]
        results["overhead"] = overhead_run(members, cluster, 10_000, args.seconds, args.slots)
        results["max_rate"] = max_rate_run(members, cluster, args.seconds, args.slots)
        results["convergence"] = convergence_run(member, members, cluster, 1_000)
    finally:
        if member is not None:
            member.stop()
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
