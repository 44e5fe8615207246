"""Benchmark of control propagation (numbers, not a test).

Time from an operator's write of a control entry (the compare-and-set of the
next rev) to every live kernel process reporting in `dita.kernels` that it
applied that rev (and, as whole_set, the whole `set` call: reading the entry,
the write, the history record, watching the kernels), for 1 and for 8 kernel processes on
a loopback member. Each kernel process is `dita run` (the demo strategy
trading against the mock venue five steps a second, as a kernel waiting on
market data would, with its projection and control listener on).

Run: `python -m tests.bench.control_bench [--flips N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

from dita.cluster.local_member import LocalMember, find_free_port
from dita.controlplane.operator import ControlOperator
from dita.projection.hazelcast import connect


def start_kernels(n: int, members: list[str], cluster: str) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "DITA_HAZELCAST": ",".join(members), "DITA_CLUSTER": cluster}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dita.cli",
                "run",
                "--kernel-id",
                f"cb-{n}-{i}",
                "--steps",
                "0",
                "--duration",
                "900",
                "--interval",
                "0.2",
                "--slots",
                "8",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in range(n)
    ]


def wait_running(client: Any, ids: set[str], timeout: float = 120) -> None:
    kernels = client.get_map("dita.kernels").blocking()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = {str(k) for k, v in kernels.entry_set() if json.loads(v.to_string()).get("state") == "RUNNING"}
        if ids <= up:
            return
        time.sleep(0.1)
    raise RuntimeError(f"kernels did not start: {sorted(ids)}")


def measure(client: Any, n: int, flips: int) -> dict[str, Any]:
    operator = ControlOperator(client, author="bench")
    times, totals, missing = [], [], 0
    for i in range(flips):
        mode = "REDUCE_ONLY" if i % 2 == 0 else "ACTIVE"
        t0 = time.perf_counter()
        result = operator.set(mode=mode, reason=f"bench flip {i}", wait=True, timeout=10)
        totals.append((time.perf_counter() - t0) * 1e3)
        times.append(result.propagation_s * 1e3)
        missing += len(result.missing)
        if len(result.applied) != n:
            raise RuntimeError(f"flip {i}: applied by {result.applied}, missing {result.missing}")
        time.sleep(0.05)
    times.sort()
    return {
        "kernels": n,
        "flips": flips,
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "max_ms": times[-1],
        "missing": missing,
        "whole_set_p50_ms": statistics.median(totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flips", type=int, default=100, help="flips per kernel count (default 100)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    member = LocalMember(port=find_free_port(), cluster_name="control-bench", log=lambda _s: None)
    member.start(timeout=180)
    members, cluster = [member.address], "control-bench"
    client = connect(members, cluster)
    results = []
    try:
        for n in (1, 8):
            procs = start_kernels(n, members, cluster)
            try:
                wait_running(client, {f"cb-{n}-{i}" for i in range(n)})
                time.sleep(1.0)
                results.append(measure(client, n, args.flips))
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    p.wait(60)
            client.get_map("dita.kernels").blocking().clear()
    finally:
        client.shutdown()
        member.stop()
    print(json.dumps({"machine": f"{os.cpu_count()} cores", "results": results}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
