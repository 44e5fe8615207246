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
import math
import os
import shutil
import socket
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from dita.commands.common import (
    add_cluster_args,
    control_key,
    enum_arg,
    finite_float,
    non_empty,
    port,
    positive_int,
    writable_file,
)
from dita.control import KernelControlSnapshot
from dita.enums import KernelMode, KernelVerbosity

DEMO_SEED_CAPITAL = 100_000.0
DEMO_EXCHANGE_CONFIG = {"taker_rate": 0.0005, "maker_rate": 0.0002, "lot_step": 0.001, "tick_size": 0.01}


def run_kernel(args: argparse.Namespace) -> int:
    from dita._native import Kernel
    from dita.checkpoint import Checkpointer, RunCheckpoint, document_key
    from dita.demo import DemoStrategy, Driver, StopFlag, run_demo, status_line
    from dita.journal import FileJournal, KernelJournal, MemoryJournal
    from dita.kernel import ExecutionKernel
    from dita.projection import InMemoryProjection, KernelProjection
    from dita.scenario import ScenarioDriver, rehearse
    from dita.venue import MockVenueAdapter, SilentVenue, VenueAdapter

    # Everything a person can get wrong is read and checked before anything
    # connects or writes: a refused run changes nothing, here or in the cluster.
    _apply_env_defaults(args)
    _check_args(args)
    key = control_key(args)
    if args.require_signing and key is None:
        raise ValueError(
            f"signing is required ({args.require_signing_from}) but no control key was given: "
            "pass --control-key-file FILE, or set DITA_CONTROL_KEY or DITA_CONTROL_KEY_FILE"
        )
    scenario = _load_scenario(args.scenario) if args.scenario else None
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
    if not args.kernel_id:
        # The id is fixed here, not in ExecutionKernel: the document key derives from it.
        args.kernel_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    doc_key = document_key(args.kernel_id, key, args.checkpoint)
    session = resumed.session + 1 if resumed else 1
    core = Kernel.restore(resumed.kernel) if resumed else None
    if core is not None and core.max_slots != args.slots and args.slots_given:
        raise ValueError(f"--slots {args.slots}: the checkpoint's kernel has {core.max_slots} slots")
    if core is None:
        try:
            # The kernel's own bound on slots, checked by making one (it is the scratch kernel too).
            fresh = Kernel(args.slots)
        except ValueError as e:
            why = str(e).removeprefix(f"max_slots = {args.slots}: ")
            raise ValueError(f"--slots {args.slots}: {why}") from None
    # A resumed replay goes on from the first line its checkpoint had not applied.
    position = int(resumed.strategy.get("scenario_position", 0)) if resumed else 0
    if scenario is not None:
        if not 0 <= position <= len(scenario):
            raise ValueError(
                f"--resume: the checkpoint is at scenario line {position}, "
                f"but {args.scenario} has {len(scenario)} lines to replay"
            )
        rehearse(core if core is not None else fresh, scenario[position:])

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
    # What is in force before the cluster's control is read: after it, fields no
    # entry sets fall back to `control`.
    until = (
        control
        if args.until_control in (None, "start")
        else replace(control, mode=KernelMode(args.until_control), source="until-control")
    )
    venue: VenueAdapter
    if args.venue == "silent" or (args.venue == "auto" and scenario is not None):
        venue = SilentVenue()
    else:
        venue = MockVenueAdapter(
            seed=args.seed,
            auto_fill=args.venue != "resting",
            partial_fills=2,
            reject_rate=0.02,
            rate_limit_rate=0.02,
            session="" if session == 1 else f"s{session}",
        )
    use_cluster = bool(args.hazelcast) or (args.local_member and shutil.which("java") is not None)
    metrics = member = client = link = kernel = None
    projection: KernelProjection = InMemoryProjection()
    where = "in-memory projection"
    try:
        metrics = _start_metrics(args)
        if use_cluster:
            from dita.projection.hazelcast import ProjectionError, connect

            if not args.hazelcast:
                from dita.cluster.local_member import LocalMember, find_free_port, port_answers

                member_port = 5701 if not port_answers(5701) else find_free_port()
                member = LocalMember(port=member_port, cluster_name=args.cluster)
                member.start()
                args.hazelcast = member.address
            try:
                client = connect(
                    args.hazelcast.split(","), args.cluster, connect_timeout=args.connect_timeout
                )
            except ProjectionError as e:
                # Trading does not wait for a cluster: the link below joins it when it answers.
                print(f"dita: {e}", file=sys.stderr, flush=True)
        if client is not None:
            _check_no_other_process(client, args.kernel_id, force=args.force)
        if core is not None and resumed is not None:
            print(_resume_line(args, core, resumed, client, doc_key), flush=True)
            if scenario is not None and client is not None:
                # The reconciled kernel may hold slots from the cluster the checkpoint did not.
                rehearse(core, scenario[position:])
        journal: KernelJournal = FileJournal(args.journal) if args.journal else MemoryJournal()
        # From the kernel's first write on, SIGINT and SIGTERM stop it cleanly (STOPPED, checkpoint).
        stop = StopFlag()
        kernel = ExecutionKernel(
            max_slots=args.slots,
            kernel_id=args.kernel_id,
            venue=venue,
            journal=journal,
            projection=projection,
            control=until,
            # The cluster link below joins it to the cluster, listener and all.
            listen_control=False,
            document_key=doc_key,
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
        if use_cluster:
            from dita.cluster.link import ClusterLink

            if key is None:
                print(
                    "dita: no control key: anyone who can reach the cluster can steer this kernel "
                    "(halt it, or set it ACTIVE again); give one with --control-key-file FILE, "
                    "DITA_CONTROL_KEY or DITA_CONTROL_KEY_FILE (and --require-signing to insist on it)",
                    file=sys.stderr,
                    flush=True,
                )
            link = ClusterLink(
                kernel,
                args.hazelcast.split(","),
                args.cluster,
                control_key=key,
                control_entries=resumed.control if resumed is not None else None,
                default_control=control,
                connect_timeout=args.connect_timeout,
                # Joining late, it must not take over a kernel id another process runs either.
                check=lambda joining: _check_no_other_process(joining, args.kernel_id, force=args.force),
                say=lambda line: print(line, file=sys.stderr, flush=True),
            )
            if client is not None and link.start(client):
                where = f"Hazelcast cluster {args.cluster!r} at {args.hazelcast}"
            else:
                if client is not None:  # it answered, but the projection could not use it (start() goes on)
                    print(f"dita: {link.last_error}", file=sys.stderr, flush=True)
                    client = None
                else:
                    link.start_in_background()
                print(
                    f"dita: trading in mode {kernel.control.mode.value} on the in-memory projection until "
                    f"cluster {args.cluster!r} at {args.hazelcast} answers; joining it in the background "
                    "(--until-control sets the mode meanwhile)",
                    file=sys.stderr,
                    flush=True,
                )

        driver: Driver
        if scenario is not None:
            driver = ScenarioDriver(kernel, scenario, position=position)
        else:
            driver = DemoStrategy(
                kernel, seed=args.seed, session=session, state=resumed.strategy if resumed else None
            )
        running = kernel

        def checkpoint_now() -> RunCheckpoint:
            state = driver.state() if isinstance(driver, (DemoStrategy, ScenarioDriver)) else {}
            return RunCheckpoint(
                running.kernel_id,
                running.checkpoint(),
                session=session,
                strategy=state,
                control=running.control_entries(),
            )

        checkpointer = (
            Checkpointer(args.checkpoint, args.checkpoint_every, checkpoint_now) if args.checkpoint else None
        )
        print(
            f"dita: kernel {kernel.kernel_id}, {kernel.max_slots} slots, "
            f"{'scenario ' + args.scenario if scenario is not None else 'demo strategy'}, "
            f"{type(venue).__name__}, {where}, mode {kernel.control.mode.value}",
            flush=True,
        )
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
        if link is not None:
            link.close()
        if kernel is not None:
            kernel.close()
        if link is not None:
            link.shutdown_client()
        elif client is not None:
            client.shutdown()
        if member is not None:
            member.stop()
        if metrics is not None:
            metrics.close()
    print(status_line(kernel, stats))
    print("outcomes: " + ", ".join(f"{code} {n}" for code, n in stats.codes.most_common()))
    print(f"projection: {kernel.projection.stats()}")
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


def _load_scenario(path: str) -> Any:
    from dita.scenario import load_scenario

    try:
        return load_scenario(path)
    except OSError as e:
        raise ValueError(f"--scenario {path}: cannot read it ({e.strerror or e})") from None


def _check_no_other_process(client: Any, kernel_id: str, *, force: bool) -> None:
    """Refuses to run a kernel another live process runs (it would write the same keys),
    unless `force`. Live: its `dita.kernels` entry says RUNNING and beat within
    LIVE_WITHIN_S, and it is not a process of this host that is gone."""
    from dita.controlplane.operator import LIVE_WITHIN_S
    from dita.projection.reader import ProjectionReader

    try:
        entry = ProjectionReader(client).kernel(kernel_id)
    except Exception as e:
        if force:
            return
        raise ValueError(
            f"kernel {kernel_id}: cannot read its dita.kernels entry to see whether another process "
            f"runs it ({type(e).__name__}: {e}); pass --force to start anyway"
        ) from None
    if entry is None or entry.get("state") != "RUNNING":
        return
    beat = entry.get("heartbeat_at")
    if isinstance(beat, bool) or not isinstance(beat, int | float) or not math.isfinite(beat):
        return
    age = time.time() - beat
    if age >= LIVE_WITHIN_S:
        return
    host, pid = entry.get("host"), entry.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and not _process_alive(pid):
        return  # killed within its last beats (SIGKILL, OOM): it writes nothing any more
    other = f"{host}:{pid}"
    if force:
        print(
            f"dita: --force: taking over kernel {kernel_id} from {other} (heartbeat {max(age, 0):.1f} s ago)",
            file=sys.stderr,
            flush=True,
        )
        return
    raise ValueError(
        f"kernel {kernel_id} is already running at {other} (heartbeat {max(age, 0):.1f} s ago): "
        "stop it first, or pass --force to take over"
    )


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # kill(0) would signal our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # A zombie is dead but not yet reaped by its parent.
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


#: Longest kernel id taken: ids are part of every key of the kernel's documents.
MAX_KERNEL_ID = 256


def _check_args(args: argparse.Namespace) -> None:
    if args.kernel_id is not None:
        kid = args.kernel_id
        if not kid.strip() or any(ord(c) < 32 or ord(c) == 127 for c in kid):
            raise ValueError(
                f"{args.kernel_id_from} {kid!r}: must be a non-blank id without control characters "
                "(leave it out for a generated one)"
            )
        if len(kid) > MAX_KERNEL_ID:
            raise ValueError(f"{args.kernel_id_from}: {len(kid)} characters, at most {MAX_KERNEL_ID}")
    # Numbers are finite once parsed (finite_float); what is left is their range.
    if args.slots < 1:
        raise ValueError(f"--slots {args.slots}: must be at least 1")
    if args.steps is not None and args.steps < 0:
        raise ValueError(f"--steps {args.steps}: must be 0 (no limit) or more")
    if args.duration is not None and args.duration < 0:
        raise ValueError(f"--duration {args.duration:g}: must be 0 or more seconds")
    if args.interval < 0:
        raise ValueError(f"--interval {args.interval:g}: must be 0 or more seconds")
    if args.checkpoint_every <= 0:
        raise ValueError(f"--checkpoint-every {args.checkpoint_every:g}: must be greater than 0 seconds")
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE: the checkpoint to start again from")
    if args.checkpoint:
        writable_file(args.checkpoint, "--checkpoint")
    if args.journal:
        writable_file(args.journal, "--journal")


def _apply_env_defaults(args: argparse.Namespace) -> None:
    """Fills what no flag gave from the environment; a bad value names its variable.

    The variables are defaults: a flag beats its variable, and a resumed
    kernel keeps its checkpoint's slots and mode over DITA_SLOTS and
    DITA_START_MODE (DITA_KERNEL_ID is identity, so a checkpoint of another
    kernel is refused).
    """
    # A variable is read only where no flag was given: a flag beats it, even a bad one.
    args.kernel_id_from = "--kernel-id"
    if args.kernel_id is None and os.environ.get("DITA_KERNEL_ID", "").strip():
        args.kernel_id = os.environ["DITA_KERNEL_ID"].strip()
        args.kernel_id_from = "DITA_KERNEL_ID"
    if not args.slots_given and not args.resume:
        slots = _env_value("DITA_SLOTS", positive_int)
        if slots is not None:
            args.slots = slots
    if args.start_mode is None and not args.resume:
        args.start_mode = _env_value("DITA_START_MODE", enum_arg(KernelMode))
    if args.until_control is None:
        args.until_control = _env_value("DITA_UNTIL_CONTROL", _until_control) or "start"
    args.metrics_port_from = "--metrics-port"
    if args.metrics_port is None:
        args.metrics_port = _env_value("DITA_METRICS_PORT", port)
        args.metrics_port_from = "DITA_METRICS_PORT"
    if args.metrics_host is None:
        args.metrics_host = os.environ.get("DITA_METRICS_HOST", "").strip() or "127.0.0.1"
    args.require_signing_from = "--require-signing"
    if args.require_signing is None:
        args.require_signing = bool(_env_value("DITA_REQUIRE_SIGNING", _boolean))
        args.require_signing_from = (
            f"DITA_REQUIRE_SIGNING={os.environ.get('DITA_REQUIRE_SIGNING', '').strip()}"
        )


def _env_value(name: str, parse: Any) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse(raw)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise ValueError(f"{name}={raw!r}: {e} (unset it, or see 'dita run --help')") from None


def _until_control(text: str) -> str:
    if text not in ("start", "REDUCE_ONLY", "HALTED"):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of start, REDUCE_ONLY, HALTED")
    return text


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"not one of {', '.join(_TRUE + _FALSE)}")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _start_metrics(args: argparse.Namespace) -> Any:
    """The /metrics endpoint, listening before anything else starts (a busy port changes nothing)."""
    if args.metrics_port is None:
        return None
    from dita.metrics import MetricsServer

    server = MetricsServer(args.metrics_host, args.metrics_port, source=args.metrics_port_from)
    server.start()
    print(f"dita: metrics on {server.url}", flush=True)
    return server


def _resume_line(
    args: argparse.Namespace, core: Any, resumed: Any, client: Any, doc_key: bytes | None
) -> str:
    """Reconciles the restored kernel against the projections; says what it did."""
    age = time.time() - resumed.written_at
    line = f"dita: resuming kernel {resumed.kernel_id} from {args.checkpoint} (written {age:.1f} s ago)"
    if client is None:
        return line + "; no cluster to reconcile against"
    from dita.projection.recovery import resume_from_projections

    recovery = resume_from_projections(core, client, resumed.kernel_id, doc_key)
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
            "DITA_CONTROL_KEY_FILE, DITA_REQUIRE_SIGNING, DITA_METRICS_PORT and DITA_METRICS_HOST are the "
            "defaults of the flags that name them; a flag beats its variable, and --resume keeps the "
            "checkpoint's slots and mode over DITA_SLOTS and DITA_START_MODE. DITA_CONTROL_KEY is the "
            "shared control key itself (--control-key-file beats it; it beats DITA_CONTROL_KEY_FILE). "
            "Every flag, variable and file is checked before the run connects to anything: a refused run "
            "is one line naming what is wrong, exit status 2, and changes nothing anywhere."
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
        "--steps",
        type=int,
        default=2_000,
        help="strategy steps to run (default 2000; 0 = no limit)",
    )
    run.add_argument(
        "--duration",
        type=finite_float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds",
    )
    run.add_argument(
        "--interval",
        type=finite_float,
        default=0.0,
        metavar="SECONDS",
        help="seconds to sleep between steps (default 0)",
    )
    run.add_argument("--seed", type=int, default=7, help="random seed of strategy and venue (default 7)")
    run.add_argument(
        "--kernel-id",
        default=None,
        help="this kernel's id in projections (default: $DITA_KERNEL_ID, else generated; "
        f"non-blank, no control characters, at most {MAX_KERNEL_ID} characters). A kernel id another "
        "live process runs is refused (see --force)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="start even though dita.kernels says another process runs this kernel id and beat within "
        "the last 10 s (both then write the same documents: stop the other one)",
    )
    run.add_argument(
        "--scenario",
        default=None,
        metavar="FILE",
        help="replay this file (one JSON object a line: intent, venue_event, mark, account_event, "
        "exchange_config, seed_capital; UTF-8, at most 64 KiB a line, every number finite) instead of "
        "the demo strategy; one line a step. The whole file is checked, and rehearsed on a scratch "
        "kernel, before the run connects",
    )
    run.add_argument(
        "--venue",
        choices=("auto", "mock", "resting", "silent"),
        default="auto",
        help="mock: the mock venue answers orders; resting: the mock venue acknowledges orders and "
        "leaves them working until cancelled (kill-switch drills); silent: nothing answers (a scenario "
        "brings its own venue events); auto (default): silent with --scenario, else mock",
    )
    run.add_argument(
        "--until-control",
        choices=("start", "REDUCE_ONLY", "HALTED"),
        default=None,
        help="the mode in force until the cluster's dita.control has been read (a cluster that does not "
        "answer at start is joined in the background): start (default: $DITA_UNTIL_CONTROL, else the "
        "start mode), REDUCE_ONLY or HALTED",
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
        type=finite_float,
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
        type=port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (default: $DITA_METRICS_PORT, else off)",
    )
    run.add_argument(
        "--metrics-host",
        type=non_empty,
        default=None,
        metavar="HOST",
        help="address the metrics endpoint listens on (default: $DITA_METRICS_HOST, else 127.0.0.1; "
        "0.0.0.0 for every interface)",
    )
    run.add_argument(
        "--require-signing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse to start without a control key (default: $DITA_REQUIRE_SIGNING, 1 or 0). Without "
        "a key, anyone who can reach the cluster can steer the kernel; the run says so on stderr",
    )
    add_cluster_args(run)
    run.set_defaults(func=run_kernel)
