"""`dita run`: one kernel trading against the mock venue, streaming its state.

The run drives its kernel with the built-in demo strategy, or replays a
scenario file. It streams into the cluster the flags or the environment
name (a local member is started when Java is here and none is named), or
into the in-memory projection. SIGINT and SIGTERM end it between two steps:
the projection is flushed, a final checkpoint is written, and its
`dita.kernels` entry is marked STOPPED. `--resume` starts it again from that
checkpoint, reconciled against what the projections hold.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from dita.commands.common import add_cluster_args, control_key, enum_arg
from dita.control import KernelControlSnapshot
from dita.enums import KernelMode, KernelVerbosity

DEMO_SEED_CAPITAL = 100_000.0
DEMO_EXCHANGE_CONFIG = {"taker_rate": 0.0005, "maker_rate": 0.0002, "lot_step": 0.001, "tick_size": 0.01}


def run_kernel(args: argparse.Namespace) -> int:
    from dita._native import Kernel
    from dita.checkpoint import Checkpointer, RunCheckpoint
    from dita.demo import DemoStrategy, Driver, StopFlag, run_demo, status_line
    from dita.journal import FileJournal, MemoryJournal
    from dita.kernel import ExecutionKernel
    from dita.projection import InMemoryProjection, KernelProjection
    from dita.projection.hazelcast import HazelcastProjection
    from dita.scenario import ScenarioDriver
    from dita.venue import MockVenueAdapter, SilentVenue, VenueAdapter

    _apply_env_defaults(args)
    _check_args(args)
    # Everything a person can get wrong is read and checked before anything starts.
    scenario = None
    if args.scenario:
        from dita.scenario import load_scenario

        scenario = load_scenario(args.scenario)
    resumed: RunCheckpoint | None = None
    if args.resume:
        if not Path(args.checkpoint).exists():
            raise ValueError(f"--resume: no checkpoint at {args.checkpoint}")
        resumed = RunCheckpoint.read(args.checkpoint)
        if args.kernel_id and args.kernel_id != resumed.kernel_id:
            raise ValueError(
                f"{args.kernel_id_from} {args.kernel_id}: the checkpoint at {args.checkpoint} "
                f"is kernel {resumed.kernel_id}"
            )
        args.kernel_id = resumed.kernel_id
    session = resumed.session + 1 if resumed else 1
    core = Kernel.restore(resumed.kernel) if resumed else None
    if core is not None and core.max_slots != args.slots and args.slots_given:
        raise ValueError(f"--slots {args.slots}: the checkpoint's kernel has {core.max_slots} slots")

    # The strategy loop is busy Python; the control listener and the projection's
    # heartbeat run on other threads and wait for the GIL (the projection's writes
    # do not: its feed is Rust). Handing it over every 1 ms (not Python's default
    # 5 ms) keeps an operator's flip in milliseconds at a cost of more frequent,
    # cheap switches.
    sys.setswitchinterval(0.001)
    # A resumed kernel keeps the control it stopped with (an operator's HALT
    # outlives a restart) unless the flags say otherwise; the cluster's
    # control, when there is one, then applies on top.
    control = KernelControlSnapshot(
        mode=args.start_mode or (core.mode if core is not None else KernelMode.ACTIVE),
        verbosity=args.verbosity or (core.verbosity if core is not None else KernelVerbosity.NORMAL),
        journal=bool(args.journal),
        source="checkpoint" if core is not None else "start",
    )
    journal = FileJournal(args.journal) if args.journal else MemoryJournal()
    venue: VenueAdapter
    if args.venue == "silent" or (args.venue == "auto" and scenario is not None):
        venue = SilentVenue()
    else:
        venue = MockVenueAdapter(
            seed=args.seed,
            partial_fills=2,
            reject_rate=0.02,
            rate_limit_rate=0.02,
            session="" if session == 1 else f"s{session}",
        )
    metrics = _start_metrics(args)
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
    if core is not None and resumed is not None:
        print(_resume_line(args, core, resumed, client), flush=True)
    projection = InMemoryProjection()
    if client is not None:
        try:
            projection = HazelcastProjection(client)
            where = f"Hazelcast cluster {args.cluster!r} at {args.hazelcast}"
        except ProjectionError as e:
            print(f"dita: {e}; running on the in-memory projection", file=sys.stderr, flush=True)
    kernel = ExecutionKernel(
        max_slots=args.slots,
        kernel_id=args.kernel_id,
        venue=venue,
        journal=journal,
        projection=projection,
        control=control,
        _core=core,
    )
    if metrics is not None:
        metrics.attach(kernel)
    if core is None and scenario is None:
        # The demo trades a plausible book: fees and capital make K move like an account's.
        kernel.set_seed_capital(DEMO_SEED_CAPITAL)
        kernel.set_exchange_config(DEMO_EXCHANGE_CONFIG)
    if isinstance(venue, MockVenueAdapter) and resumed is not None:
        venue.adopt_working_orders(kernel.slots())
    if client is not None:
        from dita.controlplane.listener import ControlListener

        listener = ControlListener(client, kernel, control_key=control_key(args))
        if not listener.start():
            print(f"dita: control map unreadable, running in start mode {control.mode.value}", flush=True)

    driver: Driver
    if scenario is not None:
        from dita.scenario import rehearse

        # A resumed replay goes on from the first line its checkpoint had not applied.
        position = int(resumed.strategy.get("scenario_position", 0)) if resumed else 0
        rehearse(kernel, scenario[position:])
        driver = ScenarioDriver(kernel, scenario, position=position)
    else:
        driver = DemoStrategy(
            kernel, seed=args.seed, session=session, state=resumed.strategy if resumed else None
        )

    def checkpoint_now() -> RunCheckpoint:
        state = driver.state() if isinstance(driver, (DemoStrategy, ScenarioDriver)) else {}
        return RunCheckpoint(kernel.kernel_id, kernel.checkpoint(), session=session, strategy=state)

    checkpointer = (
        Checkpointer(args.checkpoint, args.checkpoint_every, checkpoint_now) if args.checkpoint else None
    )
    print(
        f"dita: kernel {kernel.kernel_id}, {kernel.max_slots} slots, "
        f"{'scenario ' + args.scenario if scenario is not None else 'demo strategy'}, "
        f"{type(venue).__name__}, {where}, mode {kernel.control.mode.value}",
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
            driver=driver,
            after_step=checkpointer.maybe_write if checkpointer is not None else None,
        )
        if checkpointer is not None:
            checkpointer.write()
    finally:
        if listener is not None:
            listener.stop()
        kernel.close()
        if client is not None:
            projection.close()
            client.shutdown()
        if member is not None:
            member.stop()
        if metrics is not None:
            metrics.close()
    print(status_line(kernel, stats))
    print("outcomes: " + ", ".join(f"{code} {n}" for code, n in stats.codes.most_common()))
    print(f"projection: {projection.stats()}")
    if checkpointer is not None:
        print(f"checkpoint: {checkpointer.path} ({checkpointer.written} written, session {session})")
    if args.json:
        print(
            json.dumps(
                {
                    "kernel_id": kernel.kernel_id,
                    "steps": stats.steps,
                    "calls": stats.calls,
                    "codes": dict(stats.codes),
                    "account": kernel.account,
                },
                default=str,
            )
        )
    return 0


def _check_args(args: argparse.Namespace) -> None:
    if args.slots < 1:
        raise ValueError(f"--slots {args.slots}: must be at least 1")
    if args.steps is not None and args.steps < 0:
        raise ValueError(f"--steps {args.steps}: must be 0 (no limit) or more")
    if args.duration is not None and args.duration < 0:
        raise ValueError(f"--duration {args.duration}: must be 0 or more seconds")
    if args.interval < 0:
        raise ValueError(f"--interval {args.interval}: must be 0 or more seconds")
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE: the checkpoint to start again from")
    if args.checkpoint_every <= 0:
        raise ValueError(f"--checkpoint-every {args.checkpoint_every}: must be greater than 0 seconds")


def _apply_env_defaults(args: argparse.Namespace) -> None:
    """Fills what no flag gave from the environment; a bad value names its variable.

    The variables are defaults: a flag beats its variable, and a resumed
    kernel keeps its checkpoint's slots and mode over DITA_SLOTS and
    DITA_START_MODE (DITA_KERNEL_ID is identity, so a checkpoint of another
    kernel is refused).
    """
    args.kernel_id_from = "--kernel-id"
    if args.kernel_id is None and os.environ.get("DITA_KERNEL_ID", "").strip():
        args.kernel_id = os.environ["DITA_KERNEL_ID"].strip()
        args.kernel_id_from = "DITA_KERNEL_ID"
    slots = _env_value("DITA_SLOTS", _positive_int)
    if slots is not None and not args.slots_given and not args.resume:
        args.slots = slots
    mode = _env_value("DITA_START_MODE", enum_arg(KernelMode))
    if mode is not None and args.start_mode is None and not args.resume:
        args.start_mode = mode
    args.metrics_port_from = "--metrics-port"
    port = _env_value("DITA_METRICS_PORT", _port)
    if args.metrics_port is None and port is not None:
        args.metrics_port = port
        args.metrics_port_from = "DITA_METRICS_PORT"
    if args.metrics_host is None:
        args.metrics_host = os.environ.get("DITA_METRICS_HOST", "").strip() or "127.0.0.1"


def _env_value(name: str, parse: Any) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse(raw)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise ValueError(f"{name}={raw!r}: {e} (unset it, or see 'dita run --help')") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1 to 65535)")
    return value


def _start_metrics(args: argparse.Namespace) -> Any:
    """The /metrics endpoint, listening before anything else starts (a busy port changes nothing)."""
    if args.metrics_port is None:
        return None
    from dita.metrics import MetricsServer

    server = MetricsServer(args.metrics_host, args.metrics_port, source=args.metrics_port_from)
    server.start()
    print(f"dita: metrics on {server.url}", flush=True)
    return server


def _resume_line(args: argparse.Namespace, core: Any, resumed: Any, client: Any) -> str:
    """Reconciles the restored kernel against the projections; says what it did."""
    age = time.time() - resumed.written_at
    line = f"dita: resuming kernel {resumed.kernel_id} from {args.checkpoint} (written {age:.1f} s ago)"
    if client is None:
        return line + "; no cluster to reconcile against"
    from dita.projection.reader import ProjectionReader
    from dita.projection.recovery import reconcile_with_projections

    reader = ProjectionReader(client)
    recovery = reconcile_with_projections(
        core, reader.slots(resumed.kernel_id), reader.account(resumed.kernel_id)
    )
    return line + "; " + recovery.describe()


class _SlotsAction(argparse.Action):
    """Remembers that --slots was given, so a resume can tell it from the default."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        namespace.slots = values
        namespace.slots_given = True


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a kernel: the demo strategy or a scenario file, against the mock venue",
        description=(
            "Run one kernel with the mock venue and the built-in demo strategy (or replay a scenario "
            "file), streaming slots, account and status into a Hazelcast cluster (--hazelcast, or a "
            "local member started when Java is here) or into the in-memory projection. "
            "SIGINT/SIGTERM stop it cleanly; --checkpoint with --resume starts it again where it stopped."
        ),
        epilog=(
            "Environment: DITA_KERNEL_ID, DITA_SLOTS, DITA_START_MODE, DITA_HAZELCAST, DITA_CLUSTER, "
            "DITA_CONTROL_KEY_FILE, DITA_METRICS_PORT and DITA_METRICS_HOST are the defaults of the flags "
            "that name them; a flag beats its variable, and --resume keeps the checkpoint's slots and mode "
            "over DITA_SLOTS and DITA_START_MODE. DITA_CONTROL_KEY is the shared control key itself "
            "(used before --control-key-file)."
        ),
    )
    run.set_defaults(slots_given=False)
    run.add_argument(
        "--slots",
        type=int,
        default=20,
        action=_SlotsAction,
        help="trade slots (default: $DITA_SLOTS, else 20)",
    )
    run.add_argument(
        "--steps", type=int, default=2_000, help="strategy steps to run (default 2000; 0 = no limit)"
    )
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.add_argument("--interval", type=float, default=0.0, help="seconds to sleep between steps (default 0)")
    run.add_argument("--seed", type=int, default=7, help="random seed of strategy and venue (default 7)")
    run.add_argument(
        "--kernel-id",
        default=None,
        help="this kernel's id in projections (default: $DITA_KERNEL_ID, else generated)",
    )
    run.add_argument(
        "--scenario",
        default=None,
        metavar="FILE",
        help="replay this file (one JSON object a line: intent, venue_event, mark, account_event, "
        "exchange_config, seed_capital) instead of the demo strategy; one line a step",
    )
    run.add_argument(
        "--venue",
        choices=("auto", "mock", "silent"),
        default="auto",
        help="mock: the mock venue answers orders; silent: nothing answers (a scenario brings its own "
        "venue events); auto (default): silent with --scenario, else mock",
    )
    run.add_argument(
        "--start-mode",
        type=enum_arg(KernelMode),
        metavar="{" + ",".join(KernelMode) + "}",
        default=None,
        help="mode to start in (default: $DITA_START_MODE, else ACTIVE; with --resume the checkpoint's)",
    )
    run.add_argument(
        "--verbosity",
        type=enum_arg(KernelVerbosity),
        metavar="{" + ",".join(KernelVerbosity) + "}",
        default=None,
        help="verbosity to start with (default NORMAL, or with --resume the checkpoint's)",
    )
    run.add_argument("--journal", default=None, help="append the transition journal to this msgpack file")
    run.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="keep the run's checkpoint in this file: written every --checkpoint-every seconds and at stop",
    )
    run.add_argument(
        "--checkpoint-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between checkpoints (default 5)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="start from --checkpoint (its kernel id, slots and strategy), reconciled against the "
        "projections: a slot or account the cluster holds newer than the checkpoint is taken from it",
    )
    run.add_argument("--json", action="store_true", help="also print a JSON summary")
    run.add_argument(
        "--no-local-member",
        dest="local_member",
        action="store_false",
        help="without --hazelcast, use the in-memory projection even when Java is here",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: $DITA_METRICS_PORT, else off)",
    )
    run.add_argument(
        "--metrics-host",
        default=None,
        metavar="HOST",
        help="address the metrics endpoint listens on (default: $DITA_METRICS_HOST, else 127.0.0.1; "
        "0.0.0.0 for every interface)",
    )
    add_cluster_args(run)
    run.set_defaults(func=run_kernel)
