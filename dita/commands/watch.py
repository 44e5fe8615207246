"""`dita watch`: the operator's live terminal dashboard, read from the cluster alone.

Every --interval seconds it reads dita.kernels, dita.slots, dita.accounts
and dita.control in one go and draws a frame (`dita.dashboard`): in place
on a terminal, one frame after another otherwise. When reads fail it keeps
the last good frame's data on screen under a banner that says since when
the cluster is unreachable and how old the data is, and it goes live again
by itself once the cluster answers: the client reconnects for as long as it
takes, and its calls fail at once while the cluster is away, so the screen
never freezes on a read.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import sys
import time
from typing import Any, TextIO

from dita.commands.common import add_cluster_args, connect, finite_float
from dita.dashboard import DEAD_AFTER_S, STALE_AFTER_S, Frame, Line, Outage, Settings, render

# Plain ANSI (VT100) sequences, which every terminal emulator in use speaks.
_HOME = "\x1b[H"
_CLEAR_SCREEN = "\x1b[2J"
_CLEAR_TO_EOL = "\x1b[K"
_CLEAR_BELOW = "\x1b[J"
_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"
_ALERT = "\x1b[1;31m"  # bold red
_RESET = "\x1b[0m"


class Screen:
    """Draws frames: in place on a terminal (home, overwrite, clear what is left), or
    one after another, a blank line between, when the output is a file or a pipe."""

    def __init__(self, out: TextIO, *, in_place: bool, colour: bool) -> None:
        self.out = out
        self.in_place = in_place
        self.colour = colour
        self._drawn = False

    def size(self) -> tuple[int | None, int | None]:
        """The terminal's columns and rows; no limit when frames are not drawn in place."""
        if not self.in_place:
            return None, None
        columns, rows = shutil.get_terminal_size()
        return columns, rows

    def draw(self, frame: Frame) -> None:
        if not self.in_place:
            self.out.write(frame.text() + "\n\n")
            self.out.flush()
            return
        lines = [self._style(line) + _CLEAR_TO_EOL for line in frame.lines]
        # No newline after the last line: a frame as tall as the screen must not scroll it.
        prefix = "" if self._drawn else _HIDE_CURSOR + _CLEAR_SCREEN
        self.out.write(prefix + _HOME + "\n".join(lines) + _CLEAR_BELOW)
        self.out.flush()
        self._drawn = True

    def _style(self, line: Line) -> str:
        return f"{_ALERT}{line.text}{_RESET}" if self.colour and line.alert else line.text

    def close(self) -> None:
        if self.in_place and self._drawn:
            self.out.write(_SHOW_CURSOR + "\n")
            self.out.flush()


class _Reachability:
    """When the client lost its cluster; fed by lifecycle events on the client's I/O thread."""

    def __init__(self) -> None:
        self.disconnected_at: float | None = None

    def on_state(self, state: str) -> None:
        if state == "DISCONNECTED":
            self.disconnected_at = time.time()
        elif state == "CONNECTED":
            self.disconnected_at = None


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    return f"{name}: {text}"[:120] if text else name


def watch(args: argparse.Namespace) -> int:
    _check_args(args)
    # SIGTERM ends the watch as Ctrl-C does: the terminal is left clean, status 0.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A terminal without UTF-8 shows a "?" for a "·" rather than the watch dying on it.
        sys.stdout.reconfigure(errors="replace")
    client = None
    screen = None
    try:
        client = connect(args)
        screen = Screen(
            sys.stdout,
            in_place=sys.stdout.isatty() and not args.once,
            colour=sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb",
        )
        return _loop(args, client, screen)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader of a pipe went away (`dita watch | head`): nothing left to show.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        # A second Ctrl-C while closing must not end in a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if screen is not None:
            with contextlib.suppress(OSError):
                screen.close()
        if client is not None:
            client.shutdown()
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _loop(args: argparse.Namespace, client: Any, screen: Screen) -> int:
    from dita.projection.reader import ProjectionReader, ProjectionView

    reachability = _Reachability()
    client.lifecycle_service.add_listener(reachability.on_state)
    reader = ProjectionReader(client)
    # A member that is up but does not answer must not freeze the screen either.
    read_timeout = max(2.0, 2 * args.interval)
    source = f"cluster {args.cluster!r} at {args.hazelcast}"
    kernel_ids = frozenset(args.kernel or ())
    last: ProjectionView | None = None
    outage: Outage | None = None
    next_frame = time.monotonic()
    while True:
        try:
            last = reader.read_all(read_timeout, live_slots_only=True)
            outage = None
        except Exception as e:  # any failed read means the same to an operator: the data is stale
            since = outage.since if outage is not None else (reachability.disconnected_at or time.time())
            outage = Outage(since=since, error=_describe(e))
        width, height = screen.size()
        settings = Settings(
            source=source,
            interval=args.interval,
            stale_after=args.stale_after,
            dead_after=args.dead_after,
            kernel_ids=kernel_ids,
            width=width,
            height=height,
        )
        screen.draw(render(last, now=time.time(), settings=settings, outage=outage))
        if args.once:
            return 0 if outage is None else 1
        next_frame += args.interval
        delay = next_frame - time.monotonic()
        if delay < 0:  # a slow read: start the beat again from now rather than draw in a burst
            next_frame, delay = time.monotonic(), 0.0
        time.sleep(delay)


def _check_args(args: argparse.Namespace) -> None:
    # Numbers are finite once parsed (finite_float); what is left is their range.
    if not args.interval > 0:
        raise ValueError(f"--interval {args.interval:g}: must be greater than 0 seconds")
    if not args.stale_after > 0:
        raise ValueError(f"--stale-after {args.stale_after:g}: must be greater than 0 seconds")
    if not args.dead_after > args.stale_after:
        raise ValueError(
            f"--dead-after {args.dead_after:g}: must be greater than --stale-after {args.stale_after:g} "
            "(a silent kernel is STALE first, then DEAD)"
        )


def register(sub: Any) -> None:
    watch_parser = sub.add_parser(
        "watch",
        help="live terminal dashboard: every kernel, open slots with PnL, accounts, read from the cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "A live dashboard of every kernel in a Hazelcast cluster, read from the maps alone\n"
            "(dita.kernels, dita.slots, dita.accounts, dita.control); no kernel is asked anything.\n"
            "On a terminal it redraws in place every --interval seconds; into a file or a pipe it\n"
            "prints one frame after another; --once prints one frame and exits. Ctrl-C ends it."
        ),
        epilog=(
            "What it shows:\n"
            "  TOTALS      kernels by state, open slots' PnL, accounts' equity, realized PnL, fees\n"
            "              and reconcile statuses.\n"
            "  KERNELS     state, applied mode and verbosity, the control revs applied (global/own\n"
            "              entry), CONTROL: ok, 'behind' (dita.control holds a newer rev than the\n"
            "              kernel applied), REFUSED, HOLDING (its entry is gone from the map and it\n"
            "              keeps what it applied: see dita control restore) or 'never read' (it has\n"
            "              not read dita.control yet); SIGNING: signed, or UNSIGNED (it applies\n"
            "              entries anyone who reaches the cluster writes); heartbeat age; projection\n"
            "              backlog, lag p50/max and errors; host:pid.\n"
            "  CONTROL     the entries operators wrote (dita control set), UNSIGNED ones marked.\n"
            "  ACCOUNTS    reconcile status and delta of K (the kernel's capital) against E (the\n"
            "              exchange's), equity, PnL, fees; WARN and ERROR are alerts.\n"
            "  OPEN SLOTS  every slot working a trade: trade, asset, side, size, entry and mark\n"
            "              price, unrealized and realized PnL, stage. On a terminal the tables are\n"
            "              shortened to fit its height (open slots first); --once shows all.\n"
            "\n"
            "Kernel states:\n"
            "  RUNNING     beating (every second).\n"
            "  STALE       says RUNNING, but its last heartbeat is older than --stale-after\n"
            f"              (default {STALE_AFTER_S:g} s): a hiccup, or dying.\n"
            "  DEAD        says RUNNING, but silent for longer than --dead-after "
            f"(default {DEAD_AFTER_S:g} s):\n"
            "              the process ended without a clean stop (SIGKILL, OOM, a lost host).\n"
            "              A RUNNING entry does not expire, so a dead kernel stays DEAD (an alert)\n"
            "              until it runs again or its entry is removed.\n"
            "  STOPPED     ended cleanly (SIGINT/SIGTERM); the STOPPED entry lives 24 h.\n"
            "  GONE        no dita.kernels entry, yet its account or slots are in the maps: it\n"
            "              stopped more than 24 h ago, or its entry was removed.\n"
            "SQL: projections/sql/queries/kernels_dead.sql lists the DEAD kernels that hold state.\n"
            "\n"
            "When the cluster stops answering, the last data read stays on screen under a banner:\n"
            "'cluster unreachable since HH:MM:SS, showing data from N s ago'; the watch goes live\n"
            "again by itself when the cluster is back. A cluster unreachable at start is an error\n"
            "within --connect-timeout. --once exits 1 if its read failed."
        ),
    )
    watch_parser.add_argument(
        "--interval",
        type=finite_float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between two reads and frames (default 1)",
    )
    watch_parser.add_argument("--once", action="store_true", help="print one frame and exit (for scripts)")
    watch_parser.add_argument(
        "--kernel",
        action="append",
        metavar="ID",
        help="show only this kernel (repeat for more; default: every kernel)",
    )
    watch_parser.add_argument(
        "--stale-after",
        type=finite_float,
        default=STALE_AFTER_S,
        metavar="SECONDS",
        help=f"a RUNNING kernel beating less recently is shown STALE (default {STALE_AFTER_S:g})",
    )
    watch_parser.add_argument(
        "--dead-after",
        type=finite_float,
        default=DEAD_AFTER_S,
        metavar="SECONDS",
        help=f"a RUNNING kernel silent for longer is shown DEAD (default {DEAD_AFTER_S:g}; more than "
        "--stale-after)",
    )
    add_cluster_args(watch_parser)
    watch_parser.set_defaults(func=watch)
