"""The `dita` command: one parser, a subcommand per module of `dita.commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dita.commands import control, run

SUBCOMMANDS = (run, control)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dita", description="dita: an execution kernel for trading strategies."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
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
