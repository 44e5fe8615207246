"""`dita control`: the operators' view and steering of every kernel's control."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from dita.commands.common import add_cluster_args, connect, control_key, enum_arg
from dita.enums import KernelMode, KernelVerbosity

MODES = "{" + ",".join(KernelMode) + "}"
VERBOSITIES = "{" + ",".join(KernelVerbosity) + "}"


def steer(args: argparse.Namespace) -> int:
    from dita.controlplane.operator import ControlOperator

    key = control_key(args)
    if args.require_signing and key is None:
        raise ValueError(
            "signing is required (--require-signing) but no control key was given: "
            "set DITA_CONTROL_KEY or --control-key-file"
        )
    client = connect(args)
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
                f"applied by {len(result.applied)} kernel(s) "
                f"within {result.propagation_s * 1e3:.1f} ms of the write"
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


def register(sub: Any) -> None:
    control = sub.add_parser(
        "control",
        help="show or steer every kernel's control through the cluster",
        description="Operators' view and steering of dita.control.",
    )
    csub = control.add_subparsers(dest="action", required=True)
    show = csub.add_parser("show", help="the global entry, overrides, and what each live kernel applied")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    setp = csub.add_parser("set", help="write the next rev of the global entry (or one kernel's)")
    setp.add_argument(
        "--mode", type=enum_arg(KernelMode), metavar=MODES, help="REDUCE_ONLY refuses ENTER; HALTED also EXIT"
    )
    setp.add_argument(
        "--verbosity",
        type=enum_arg(KernelVerbosity),
        metavar=VERBOSITIES,
        help="detail of outcomes and journal",
    )
    setp.add_argument("--journal", choices=["on", "off"], help="record every transition in the journal")
    setp.add_argument("--kernel", default=None, help="override one kernel instead of the global entry")
    setp.add_argument("--reason", required=True, help="why (recorded in the history)")
    setp.add_argument("--wait", action="store_true", help="return once every live kernel applied it")
    setp.add_argument("--timeout", type=float, default=10.0, help="seconds to wait with --wait (default 10)")
    clear = csub.add_parser("clear", help="remove one kernel's override (it falls back to global)")
    clear.add_argument("--kernel", required=True, help="the kernel id whose override goes")
    clear.add_argument("--reason", default="", help="why (recorded in the history)")
    hist = csub.add_parser("history", help="control writes and every kernel's apply or refusal")
    hist.add_argument("--limit", type=int, default=50, help="newest records to show (default 50)")
    hist.add_argument("--json", action="store_true", help="print JSON instead of lines")
    for p in (show, setp, clear, hist):
        add_cluster_args(p)
        p.add_argument("--author", default=None, help="recorded with writes (default user@host)")
        p.add_argument("--require-signing", action="store_true", help="refuse to run without a control key")
    control.set_defaults(func=steer)
