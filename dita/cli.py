"""The `dita` command."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dita.control import KernelControlSnapshot
from dita.enums import KernelMode, KernelVerbosity


def _run(args: argparse.Namespace) -> int:
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

        listener = ControlListener(client, kernel, control_key=_control_key(args))
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


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hazelcast",
        default=os.environ.get("DITA_HAZELCAST"),
        help="cluster members HOST:PORT[,HOST:PORT...] (default: $DITA_HAZELCAST)",
    )
    p.add_argument(
        "--cluster",
        default=os.environ.get("DITA_CLUSTER", "dita"),
        help="cluster name (default: $DITA_CLUSTER or 'dita')",
    )
    p.add_argument(
        "--connect-timeout", type=float, default=10.0, help="seconds to find a member (default 10)"
    )
    p.add_argument(
        "--control-key-file",
        default=os.environ.get("DITA_CONTROL_KEY_FILE"),
        help="file holding the shared control key (default: $DITA_CONTROL_KEY_FILE)",
    )


def _control_key(args: argparse.Namespace) -> bytes | None:
    if os.environ.get("DITA_CONTROL_KEY"):
        return os.environ["DITA_CONTROL_KEY"].encode()
    if args.control_key_file:
        key = Path(args.control_key_file).read_bytes().strip()
        if not key:
            raise ValueError(f"control key file {args.control_key_file} is empty")
        return key
    return None


def _connect(args: argparse.Namespace) -> Any:
    from dita.projection.hazelcast import connect

    if not args.hazelcast:
        raise ValueError("no cluster given: pass --hazelcast HOST:PORT or set DITA_HAZELCAST")
    return connect(args.hazelcast.split(","), args.cluster, connect_timeout=args.connect_timeout)


def _control(args: argparse.Namespace) -> int:
    from dita.controlplane.operator import ControlOperator

    key = _control_key(args)
    if args.require_signing and key is None:
        raise ValueError(
            "signing is required (--require-signing) but no control key was given: "
            "set DITA_CONTROL_KEY or --control-key-file"
        )
    client = _connect(args)
    try:
        operator = ControlOperator(client, control_key=key, author=args.author)
        if args.action == "show":
            shown = operator.show()
            print(json.dumps(shown, indent=2, default=str) if args.json else _control_table(shown))
            return 0
        if args.action == "history":
            records = operator.history(args.limit)
            if args.json:
                print(json.dumps(records, indent=2))
            else:
                for r in records:
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.get("at", 0)))
                    what = (
                        {k: r[k] for k in ("mode", "verbosity", "journal") if k in r}
                        or r.get("control")
                        or ""
                    )
                    print(
                        f"{stamp}Z {r.get('kind', ''):8} {r.get('key', ''):24} rev {r.get('rev', '-')!s:>4} "
                        f"{r.get('kernel_id') or r.get('author', '')} {what} {r.get('reason', '')}"
                    )
            return 0
        if args.action == "clear":
            removed = operator.clear(args.kernel, reason=args.reason)
            print(f"override of kernel {args.kernel} {'removed' if removed else 'was not set'}")
            return 0
        journal = None if args.journal is None else args.journal == "on"
        result = operator.set(
            kernel_id=args.kernel,
            mode=args.mode,
            verbosity=args.verbosity,
            journal=journal,
            reason=args.reason,
            wait=args.wait,
            timeout=args.timeout,
        )
        print(
            f"{result.key} rev {result.rev}: "
            + ", ".join(
                f"{k}={result.entry[k]}" for k in ("mode", "verbosity", "journal") if k in result.entry
            )
        )
        if args.wait:
            print(
                f"applied by {len(result.applied)} kernel(s) in {result.waited_s * 1e3:.1f} ms"
                + (f"; NOT applied by: {', '.join(result.missing)}" if result.missing else "")
            )
            return 1 if result.missing else 0
        return 0
    finally:
        client.shutdown()


def _control_table(shown: dict[str, Any]) -> str:
    def fields(doc: dict[str, Any] | None) -> str:
        if not doc:
            return "-"
        return (
            " ".join(f"{k}={doc[k]}" for k in ("mode", "verbosity", "journal") if k in doc)
            + f" (rev {doc.get('rev')})"
        )

    lines = [f"global: {fields(shown['global'])}"]
    for kid, doc in sorted(shown["overrides"].items()):
        lines.append(f"override {kid}: {fields(doc)}")
    lines.append(f"{'kernel':32} {'live':5} {'mode':12} {'verbosity':9} {'journal':7} revs / last refusal")
    for kid, doc in sorted(shown["kernels"].items()):
        control = doc.get("control", {})
        report = doc.get("control_report", {})
        refusal = report.get("last_refusal")
        lines.append(
            f"{kid:32} {'yes' if doc.get('live') else 'no':5} {control.get('mode', '?'):12} "
            f"{control.get('verbosity', '?'):9} {control.get('journal', '?')!s:7} {report.get('revs', {})}"
            + (f" / refused {refusal['key']} rev {refusal['rev']}: {refusal['reason']}" if refusal else "")
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dita", description="dita: an execution kernel for trading strategies."
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
    _cluster_args(run)
    run.set_defaults(func=_run)

    control = sub.add_parser(
        "control",
        help="show or steer every kernel's control through the cluster",
        description="Operators' view and steering of dita.control.",
    )
    csub = control.add_subparsers(dest="action", required=True)
    show = csub.add_parser("show", help="the global entry, overrides, and what each live kernel applied")
    show.add_argument("--json", action="store_true")
    setp = csub.add_parser("set", help="write the next rev of the global entry (or one kernel's)")
    setp.add_argument("--mode", type=KernelMode, choices=list(KernelMode))
    setp.add_argument("--verbosity", type=KernelVerbosity, choices=list(KernelVerbosity))
    setp.add_argument("--journal", choices=["on", "off"])
    setp.add_argument("--kernel", default=None, help="override one kernel instead of the global entry")
    setp.add_argument("--reason", required=True, help="why (recorded in the history)")
    setp.add_argument("--wait", action="store_true", help="return once every live kernel applied it")
    setp.add_argument("--timeout", type=float, default=10.0, help="seconds to wait with --wait (default 10)")
    clear = csub.add_parser("clear", help="remove one kernel's override (it falls back to global)")
    clear.add_argument("--kernel", required=True)
    clear.add_argument("--reason", default="")
    hist = csub.add_parser("history", help="control writes and every kernel's apply or refusal")
    hist.add_argument("--limit", type=int, default=50)
    hist.add_argument("--json", action="store_true")
    for p in (show, setp, clear, hist):
        _cluster_args(p)
        p.add_argument("--author", default=None, help="recorded with writes (default user@host)")
        p.add_argument("--require-signing", action="store_true", help="refuse to run without a control key")
    control.set_defaults(func=_control)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "steps", None) == 0:
        args.steps = None
    try:
        result: int = args.func(args)
        return result
    except KeyboardInterrupt:
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as e:
        print(f"dita: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
