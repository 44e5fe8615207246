"""`dita control`: the operators' view and steering of every kernel's control.

Exit codes: 0 when what was asked is confirmed (with `--wait`: every kernel
waited for applied it); 1 when it could not be confirmed (a kernel refused,
was overridden, went stale or gone, the wait timed out, no kernel to wait
for, or `--kernel` names no known kernel); 2 for bad input or an unreachable
cluster, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from dita.commands.common import (
    add_cluster_args,
    connect,
    control_key,
    enum_arg,
    positive_float,
    positive_int,
)
from dita.enums import KernelMode, KernelVerbosity
from dita.projection.documents import as_object

MODES = "{" + ",".join(KernelMode) + "}"
VERBOSITIES = "{" + ",".join(KernelVerbosity) + "}"
UNSIGNED_WARNING = (
    "dita: no control key: this entry is unsigned, and kernels without a key apply any entry "
    "anyone who can reach the cluster writes (set --control-key-file or DITA_CONTROL_KEY_FILE)"
)


def steer(args: argparse.Namespace) -> int:
    from dita.controlplane.operator import ControlOperator, NoSuchKernel

    key = control_key(args)
    if args.require_signing and key is None:
        raise ValueError(
            "signing is required (--require-signing) but no control key was given: "
            "set DITA_CONTROL_KEY or --control-key-file"
        )
    writes = args.action in ("set", "clear", "flatten", "restore")
    client = connect(args)
    try:
        operator = ControlOperator(client, control_key=key, author=args.author)
        if writes and key is None and args.action != "restore":
            print(UNSIGNED_WARNING, file=sys.stderr)
        if args.action == "show":
            shown = operator.show()
            print(
                json.dumps(shown, indent=2, default=str) if args.json else control_table(shown, time.time())
            )
            return 0
        if args.action == "history":
            records = operator.history(args.limit)
            print(json.dumps(records, indent=2) if args.json else history_table(records))
            return 0
        if args.action == "restore":
            done = operator.restore(reason=args.reason)
            if not done:
                print("no kernel reports an applied entry: nothing to restore")
            for entry_key, rev, what in done:
                print(f"{entry_key:24} rev {rev}: {what}")
            return 0 if all(w == "restored" or w.startswith("kept") for _, _, w in done) else 1
        try:
            if args.action == "clear":
                result = operator.clear(
                    None if args.all_kernels else args.kernel,
                    reason=args.reason,
                    wait=args.wait,
                    timeout=args.timeout,
                    allow_none=args.allow_none,
                )
            elif args.action == "flatten":
                _check_flatten_allowed(operator, args)
                result = operator.set(
                    kernel_id=args.kernel,
                    flatten=True,
                    reason=args.reason,
                    wait=args.wait,
                    timeout=args.timeout,
                    allow_none=args.allow_none,
                )
            else:
                result = operator.set(
                    kernel_id=args.kernel,
                    mode=args.mode,
                    verbosity=args.verbosity,
                    journal=None if args.journal is None else args.journal == "on",
                    cancel_working=False if args.keep_working else None,
                    reason=args.reason,
                    wait=args.wait,
                    timeout=args.timeout,
                    allow_none=args.allow_none,
                )
        except NoSuchKernel as e:
            print(f"dita: {e}", file=sys.stderr)
            return 1
        print(f"{result.key} rev {result.rev}: {_entry_fields(result.entry)}")
        if not args.wait:
            return 0
        print(wait_table(result))
        if not result.kernels:
            print(
                "no running kernel to wait for"
                + ("" if args.allow_none else " (exit 1; --allow-none accepts it)")
            )
            return 0 if args.allow_none else 1
        return 0 if result.confirmed else 1
    finally:
        client.shutdown()


def _check_flatten_allowed(operator: Any, args: argparse.Namespace) -> None:
    """Flattening a kernel that is still ACTIVE fights its strategy: only on purpose."""
    if args.while_active:
        return
    kernels = operator.known_kernels()
    chosen = {args.kernel: kernels.get(args.kernel, {})} if args.kernel else kernels
    active = sorted(
        k
        for k, d in chosen.items()
        if d.get("state") == "RUNNING" and (d.get("control") or {}).get("mode") == "ACTIVE"
    )
    if active:
        raise ValueError(
            f"flatten: kernel(s) {', '.join(active)} are ACTIVE and would trade again; "
            "set --mode HALTED or REDUCE_ONLY first, or pass --while-active"
        )


def _entry_fields(entry: dict[str, Any]) -> str:
    if entry.get("clear"):
        return "cleared (kernels fall back)"
    shown = [f"{k}={_plain(entry[k])}" for k in ("mode", "verbosity", "journal") if k in entry]
    if entry.get("flatten"):
        shown.append("flatten")
    if entry.get("cancel_working") is False:
        shown.append("working orders kept")
    return ", ".join(shown) + (" (signed)" if "signature" in entry else " (UNSIGNED)")


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def wait_table(result: Any) -> str:
    lines = [f"{'kernel':24} {'verdict':10} {'apply ms':>9}  detail"]
    for k in result.kernels:
        ms = f"{k.apply_ms:.1f}" if k.apply_ms is not None else "-"
        lines.append(f"{k.kernel_id:24} {k.verdict.value:10} {ms:>9}  {k.detail}")
    applied = len(result.applied)
    lines.append(
        f"applied by {applied} of {len(result.kernels)} kernel(s); waited {result.waited_s * 1e3:.0f} ms"
        + (f"; NOT confirmed: {', '.join(result.missing)}" if result.missing else "")
    )
    return "\n".join(lines)


def _ago(at: Any, now: float) -> str:
    if not isinstance(at, int | float) or isinstance(at, bool) or not at:
        return "never"
    return f"{max(0.0, now - at):.0f} s ago"


def control_table(shown: dict[str, Any], now: float) -> str:
    """What `dita control show` prints: entries first, then each kernel, in plain words."""
    from dita.dashboard import DEAD_AFTER_S, STALE_AFTER_S, kernel_state

    def fields(doc: dict[str, Any] | None) -> str:
        if not doc:
            return "-"
        signed = "signed" if "signature" in doc else "UNSIGNED"
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(doc["issued_at"])) + "Z"
            if isinstance(doc.get("issued_at"), int | float)
            else "?"
        )
        return (
            f"{_entry_fields(doc)} rev {doc.get('rev')}, {signed}, by {doc.get('author', '?')} at {when}: "
            f"{doc.get('reason', '')}"
        )

    lines = [f"global entry: {fields(shown['global'])}"]
    for kid, doc in sorted(shown["overrides"].items()):
        lines.append(f"kernel {kid} entry: {fields(doc)}")
    lines.append("")
    lines.append(f"{'kernel':24} {'state':8} {'mode':12} {'verbosity':9} {'journal':7} {'signing':8} control")
    for kid, doc in sorted(shown["kernels"].items()):
        control = as_object(doc.get("control"))
        report = as_object(doc.get("control_report"))
        # The words dita watch uses: RUNNING, STALE, DEAD, STOPPED.
        state = kernel_state(doc, now, STALE_AFTER_S, DEAD_AFTER_S)
        signing = "signed" if report.get("signed") else "UNSIGNED"
        notes = []
        revs = as_object(report.get("revs"))
        notes.append(", ".join(f"{k} rev {v}" for k, v in sorted(revs.items())) or "no entry applied")
        if report and not report.get("control_read_at"):
            notes.append("has NEVER read dita.control")
        for key, held in sorted(as_object(report.get("held")).items()):
            notes.append(
                f"holding {held.get('mode', '')} from {key} rev {held.get('rev')}: {held.get('why')}"
            )
        refusal = report.get("last_refusal")
        if isinstance(refusal, dict):
            notes.append(
                f"refused {refusal.get('key')} rev {refusal.get('rev')} {_ago(refusal.get('at'), now)}: "
                f"{refusal.get('reason')}"
            )
        orders = as_object(doc.get("orders"))
        if orders.get("working"):
            notes.append(
                f"{orders.get('working')} working order(s), {orders.get('cancelling', 0)} cancelling"
            )
        lines.append(
            f"{kid:24} {state:8} {control.get('mode', '?')!s:12} {control.get('verbosity', '?')!s:9} "
            f"{_plain(control.get('journal', '?')):7} {signing:8} {'; '.join(notes)}"
        )
    if not shown["kernels"]:
        lines.append("(no kernel has reported)")
    if shown.get("unreadable"):
        lines.append(f"not dita's JSON, left out: {', '.join(shown['unreadable'])}")
    return "\n".join(lines)


def history_table(records: list[dict[str, Any]]) -> str:
    """What `dita control history` prints: one line a record, oldest first, cause first."""
    lines = [f"{'time (UTC)':23} {'kind':9} {'key':22} {'rev':>14} {'by':24} what"]
    for r in records:
        at = r.get("at")
        stamp = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}"
            if isinstance(at, int | float) and not isinstance(at, bool)
            else "?"
        )
        kind = str(r.get("kind", ""))
        if kind in ("WRITE", "CLEAR", "RESTORE"):
            who = str(r.get("author", ""))
            what = _entry_fields(r) + (f": {r.get('reason')}" if r.get("reason") else "")
        else:
            who = f"kernel {r.get('kernel_id', '?')}"
            control = as_object(r.get("control"))
            if kind == "APPLIED" and control:
                what = " ".join(
                    f"{k}={_plain(control[k])}" for k in ("mode", "verbosity", "journal") if k in control
                )
            elif kind == "REFUSED":
                what = str(r.get("reason", "")) + (
                    f" (+{r['suppressed']} more refused)" if r.get("suppressed") else ""
                )
            elif kind == "CANCELLED":
                failed = len(r.get("failed") or [])
                what = f"kill switch: {r.get('cancels_sent', 0)} cancel(s) sent, {failed} failed"
            elif kind == "FLATTENED":
                failed = len(r.get("failed") or [])
                what = f"flatten: {r.get('exits_sent', 0)} exit(s) sent, {failed} failed"
            else:
                what = str(r.get("why", ""))
        rev = "-" if r.get("rev") is None else str(r.get("rev"))
        lines.append(f"{stamp:23} {kind:9} {r.get('key', '')!s:22} {rev:>14} {who:24} {what}")
    if not records:
        lines.append("(no records)")
    return "\n".join(lines)


def _add_wait(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--wait",
        action="store_true",
        help=f"wait for every running kernel (or the --kernel named) to {what}, and name each "
        "kernel's verdict; exit 1 unless all applied",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait with --wait (default 10)",
    )
    p.add_argument(
        "--allow-none",
        action="store_true",
        help="accept a --kernel no kernel has reported yet, and a wait with no running kernel",
    )


def register(sub: Any) -> None:
    control = sub.add_parser(
        "control",
        help="show or steer every kernel's control through the cluster",
        description="Operators' view and steering of dita.control.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    csub = control.add_subparsers(dest="action", required=True)
    show = csub.add_parser("show", help="the global entry, overrides, and what each kernel applied")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    setp = csub.add_parser("set", help="write the next rev of the global entry (or one kernel's)")
    setp.add_argument(
        "--mode",
        type=enum_arg(KernelMode),
        metavar=MODES,
        help="REDUCE_ONLY refuses ENTER; HALTED also EXIT and cancels every working order (the kill switch)",
    )
    setp.add_argument(
        "--verbosity",
        type=enum_arg(KernelVerbosity),
        metavar=VERBOSITIES,
        help="detail of outcomes and journal",
    )
    setp.add_argument("--journal", choices=["on", "off"], help="record every transition in the journal")
    setp.add_argument(
        "--keep-working",
        action="store_true",
        help="with --mode HALTED: leave working orders at the venue (default: cancel them all)",
    )
    setp.add_argument("--kernel", default=None, help="override one kernel instead of the global entry")
    setp.add_argument("--reason", required=True, help="why (recorded in the history)")
    _add_wait(setp, "apply it")
    clear = csub.add_parser(
        "clear", help="write a clearing entry: one kernel falls back to global, or (--global) all to start"
    )
    target = clear.add_mutually_exclusive_group(required=True)
    target.add_argument("--kernel", default=None, help="the kernel id whose override goes")
    target.add_argument(
        "--global", dest="all_kernels", action="store_true", help="clear the global entry (kernels fall back)"
    )
    clear.add_argument("--reason", required=True, help="why (recorded in the history)")
    _add_wait(clear, "fall back")
    flatten = csub.add_parser(
        "flatten", help="close every open position of one kernel (--kernel) or of all, at market"
    )
    flatten.add_argument("--kernel", default=None, help="flatten this kernel only")
    flatten.add_argument("--reason", required=True, help="why (recorded in the history)")
    flatten.add_argument(
        "--while-active", action="store_true", help="flatten even kernels in mode ACTIVE (default: refused)"
    )
    _add_wait(flatten, "send its exits")
    restore = csub.add_parser(
        "restore",
        help="after a cluster lost its maps: put back the entries kernels report holding, as signed",
    )
    restore.add_argument("--reason", default="", help="why (recorded in the history)")
    hist = csub.add_parser("history", help="control writes and every kernel's apply or refusal")
    hist.add_argument("--limit", type=positive_int, default=50, help="newest records to show (default 50)")
    hist.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for p in (show, setp, clear, flatten, restore, hist):
        add_cluster_args(p)
        p.add_argument("--author", default=None, help="recorded with writes (default user@host)")
        p.add_argument("--require-signing", action="store_true", help="refuse to run without a control key")
    control.set_defaults(func=steer)
