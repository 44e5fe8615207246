"""`dita member start|stop|status`: a local Hazelcast member for `dita run` and `dita control`.

The member is the one of `dita.cluster.local_member` (jars from Maven
Central, checked and cached under `$DITA_CACHE` or `~/.cache/dita`, the
config `dita/cluster/member.yaml`: loopback only, one member, Jet on). This
module only puts a person in front of it: progress on the terminal while
jars download and the member starts, one line per error, and exit codes a
script can test.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from dita.cluster import local_member as lm
from dita.commands.common import port, positive_float

# A member that is starting says nothing for several seconds; a tick this
# often tells a person it has not hung.
TICK_SECONDS = 3.0


class _Progress:
    """Progress lines on a terminal (stderr, so stdout keeps the result), flushed at once."""

    def __init__(self, out: TextIO, tick: float = TICK_SECONDS) -> None:
        self.out = out
        self.tick = tick
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            print(text, file=self.out, flush=True)
            self._last = time.monotonic()

    @contextmanager
    def ticking(self) -> Iterator[None]:
        """While the body runs, a line every `tick` seconds of silence, with the time taken so far."""
        began = time.monotonic()
        done = threading.Event()

        def tick() -> None:
            while not done.wait(0.25):
                if time.monotonic() - self._last >= self.tick:
                    self.line(f"  ... still working, {time.monotonic() - began:.0f} s")

        ticker = threading.Thread(target=tick, name="dita-member-progress", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()


def member_command(args: argparse.Namespace) -> int:
    try:
        result: int = args.member_func(args)
        return result
    except lm.MemberError as e:
        # The first line says what and why; a start failure names the member log for the rest.
        print(f"dita: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2


def _start(args: argparse.Namespace) -> int:
    port: int = args.port
    pid = lm.read_pid(port)
    if pid is not None and lm.port_answers(port):
        print(f"member already running on {lm.HOST}:{port}, pid {pid}")
        return 0
    progress = _Progress(sys.stderr)
    member = lm.LocalMember(
        port=port,
        cluster_name=args.cluster,
        heap=args.heap,
        java=args.java,
        log=progress.line,
        detach=not args.foreground,
    )
    if args.foreground:
        return _foreground(member, args.timeout, progress)
    try:
        with progress.ticking():
            member.start(args.timeout)
    except KeyboardInterrupt:
        # A detached member outlives this process: one interrupted mid-start must not be left behind.
        member.stop()
        progress.line("interrupted; the member was stopped")
        return 130
    lm._write_atomic(lm.pid_file(port), f"{member.pid}\n".encode())
    print(
        f"member running on {member.address} (cluster {args.cluster!r}), pid {member.pid}, "
        f"log {member.log_file}; stop it with: dita member stop --port {port}",
        flush=True,
    )
    return 0


def _foreground(member: lm.LocalMember, timeout: float, progress: _Progress) -> int:
    # SIGTERM (a supervisor, CI) stops the member like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with progress.ticking():
            member.start(timeout)
        print(f"member running on {member.address}, pid {member.pid}; Ctrl-C stops it", flush=True)
        while member.is_running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        member.stop()
        print("member stopped", flush=True)
        return 0
    print(f"dita: error: the member exited on its own (log: {member.log_file})", file=sys.stderr)
    return 2


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(args: argparse.Namespace) -> int:
    lm.stop_daemon(args.port, args.timeout, log=lambda line: print(line, flush=True))
    return 0


def _status(args: argparse.Namespace) -> int:
    port: int = args.port
    where = f"{lm.HOST}:{port}"
    pid = lm.read_pid(port)
    if lm.port_answers(port):
        if pid is not None:
            print(f"running: member on {where}, pid {pid}, log {lm.default_log_file(port)}")
        else:
            print(
                f"running: something answers on {where} "
                f"(no pid file: a --foreground member, or not started by `dita member start`)"
            )
        return 0
    if pid is not None:
        log = lm.default_log_file(port)
        print(f"not running: pid {pid} is alive but {where} does not answer (log {log})")
    else:
        print(f"not running: nothing answers on {where}")
    return 1


def register(sub: Any) -> None:
    member = sub.add_parser(
        "member",
        help="start, stop or check a local Hazelcast member to run kernels against",
        description=(
            f"A Hazelcast {lm.HAZELCAST_VERSION} member on {lm.HOST} for dita run and dita control: "
            f"the jars come from Maven Central on the first start (about 46 MB, checked, cached under "
            f"$DITA_CACHE or ~/.cache/dita), Java {lm.MIN_JAVA}+ runs it. The member listens on "
            f"loopback only, is a cluster of one and has SQL (Jet) on. Its log and pid file are in "
            f"<cache>/hazelcast/run/member-PORT.*."
        ),
    )
    actions = member.add_subparsers(dest="member_command", required=True, metavar="{start,stop,status}")
    start = actions.add_parser(
        "start",
        help="start a member (in the background unless --foreground); prints its address",
        description=(
            "Start a member and return once it serves, printing its address and pid; it keeps running "
            "after this command returns (stop it with `dita member stop`). Exit 2 with one line if Java "
            "is missing or too old, the port is taken, a jar cannot be fetched or the member fails."
        ),
    )
    start.add_argument(
        "--cluster",
        default=os.environ.get("DITA_CLUSTER") or lm.DEFAULT_CLUSTER,
        help=f"cluster name clients must use (default: $DITA_CLUSTER, as dita run reads it, "
        f"else {lm.DEFAULT_CLUSTER})",
    )
    start.add_argument(
        "--foreground", action="store_true", help="stay attached until Ctrl-C or SIGTERM, which stop it"
    )
    start.add_argument("--heap", default=lm.DEFAULT_HEAP, help=f"JVM heap (default {lm.DEFAULT_HEAP})")
    start.add_argument(
        "--java", default=None, help="java executable (default $JAVA_HOME/bin/java, else java on PATH)"
    )
    start.add_argument(
        "--timeout",
        type=positive_float,
        default=120.0,
        help="seconds to wait for the member to start, jar downloads included (default 120)",
    )
    start.set_defaults(member_func=_start)
    stop = actions.add_parser(
        "stop",
        help="stop the member `dita member start` left running",
        description=(
            "Stop the member started by `dita member start` on this port: SIGTERM, then SIGKILL after "
            "--timeout. A process on the port that this command did not start is left alone (exit 2)."
        ),
    )
    stop.add_argument(
        "--timeout", type=positive_float, default=30.0, help="seconds before SIGKILL (default 30)"
    )
    stop.set_defaults(member_func=_stop)
    status = actions.add_parser(
        "status",
        help="say whether a member runs (exit 0) or not (exit 1)",
        description="Say whether a member answers on the port, with its address and pid: exit 0 if "
        "it runs, 1 if not.",
    )
    status.set_defaults(member_func=_status)
    for action in (start, stop, status):
        action.add_argument(
            "--port",
            type=port,
            default=lm.DEFAULT_PORT,
            help=f"the member's port on {lm.HOST} (default {lm.DEFAULT_PORT})",
        )
    member.set_defaults(func=member_command)
