"""`dita run`: one kernel trading against the mock venue, streaming its state."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from dita.commands.common import add_cluster_args, control_key
from dita.control import KernelControlSnapshot
from dita.enums import KernelMode, KernelVerbosity


def run_kernel(args: argparse.Namespace) -> int:
    from dita.demo import StopFlag, run_demo, status_line
    from dita.journal import FileJournal, MemoryJournal
    from dita.kernel import ExecutionKernel
    from dita.projection import InMemoryProjection, KernelProjection
    from dita.projection.hazelcast import HazelcastProjection
    from dita.venue import MockVenueAdapter

    # The strategy loop is busy Python; the control listener and the projection
    # run on other threads and wait for the GIL. Handing it over every 1 ms
    # (not Python's default 5 ms) keeps an operator's flip and the projection
    # lag in milliseconds at a cost of more frequent, cheap switches.
    sys.setswitchinterval(0.001)
    control = KernelControlSnapshot(
        mode=args.start_mode, verbosity=args.verbosity, journal=bool(args.journal), source="start"
    )
    journal = FileJournal(args.journal) if args.journal else MemoryJournal()
    venue = MockVenueAdapter(seed=args.seed, partial_fills=2, reject_rate=0.02, rate_limit_rate=0.02)
    member = client = listener = None
    projection: KernelProjection
    where = "in-memory projection"
    if args.hazelcast or (args.local_member and shutil.which("java")):
        from dita.projection.hazelcast import ProjectionError, connect

        if not args.hazelcast:
            from dita.cluster.local_member import LocalMember, find_free_port, port_answers

            port = 5701 if not port_answers(5701) else find_free_port()
            member = LocalMember(port=port, cluster_name=args.cluster)
            member.start()
            args.hazelcast = member.address
        try:
            client = connect(args.hazelcast.split(","), args.cluster, connect_timeout=args.connect_timeout)
        except ProjectionError as e:
            # Trading does not wait for a cluster: run on the start control, and say so.
            print(
                f"dita: {e}; running in start mode {control.mode.value} on the in-memory projection",
                file=sys.stderr,
                flush=True,
            )
    if client is not None:
        projection = HazelcastProjection(client)
        where = f"Hazelcast cluster {args.cluster!r} at {args.hazelcast}"
    else:
        projection = InMemoryProjection()
    kernel = ExecutionKernel(
        max_slots=args.slots,
        kernel_id=args.kernel_id,
        venue=venue,
        journal=journal,
        projection=projection,
        control=control,
    )
    if client is not None:
        from dita.controlplane.listener import ControlListener

        listener = ControlListener(client, kernel, control_key=control_key(args))
        if not listener.start():
            print(f"dita: control map unreadable, running in start mode {control.mode.value}", flush=True)
    print(
        f"dita: kernel {kernel.kernel_id}, {args.slots} slots, mock venue, {where}, "
        f"mode {kernel.control.mode.value}",
        flush=True,
    )
    try:
        stop = StopFlag()
        stats = run_demo(
            kernel,
            steps=args.steps,
            duration=args.duration,
            seed=args.seed,
            interval=args.interval,
            out=sys.stdout,
            should_stop=stop,
        )
    finally:
        if listener is not None:
            listener.stop()
        kernel.close()
        if client is not None:
            projection.close()
            client.shutdown()
        if member is not None:
            member.stop()
    if args.checkpoint:
        Path(args.checkpoint).write_bytes(kernel.checkpoint())
    print(status_line(kernel, stats))
    print("outcomes: " + ", ".join(f"{code} {n}" for code, n in stats.codes.most_common()))
    print(f"projection: {projection.stats()}")
    if args.json:
        print(
            json.dumps(
                {
                    "steps": stats.steps,
                    "calls": stats.calls,
                    "codes": dict(stats.codes),
                    "account": kernel.account,
                },
                default=str,
            )
        )
    return 0


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a demo kernel against the mock venue",
        description="Run one kernel with the mock venue and the built-in demo strategy.",
    )
    run.add_argument("--slots", type=int, default=20, help="trade slots (default 20)")
    run.add_argument(
        "--steps", type=int, default=2_000, help="strategy steps to run (default 2000; 0 = no limit)"
    )
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.add_argument("--interval", type=float, default=0.0, help="seconds to sleep between steps (default 0)")
    run.add_argument("--seed", type=int, default=7, help="random seed of strategy and venue (default 7)")
    run.add_argument("--kernel-id", default=None, help="this kernel's id in projections (default: generated)")
    run.add_argument(
        "--start-mode",
        type=KernelMode,
        default=KernelMode.ACTIVE,
        choices=list(KernelMode),
        help="mode to start in (default ACTIVE)",
    )
    run.add_argument(
        "--verbosity",
        type=KernelVerbosity,
        default=KernelVerbosity.NORMAL,
        choices=list(KernelVerbosity),
        help="verbosity to start with (default NORMAL)",
    )
    run.add_argument("--journal", default=None, help="append the transition journal to this msgpack file")
    run.add_argument("--checkpoint", default=None, help="write a final checkpoint to this file")
    run.add_argument("--json", action="store_true", help="also print a JSON summary")
    run.add_argument(
        "--no-local-member",
        dest="local_member",
        action="store_false",
        help="without --hazelcast, use the in-memory projection even when Java is here",
    )
    add_cluster_args(run)
    run.set_defaults(func=run_kernel)
