"""The `dita` command: one parser, a subcommand per module of `dita.commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from dita.commands import bench, control, member, run, watch

SUBCOMMANDS = (run, control, watch, member, bench)


class OneLineErrors(argparse.ArgumentParser):
    """A wrong flag is one line naming it, and where the help is; not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="dita",
        description=(
            "dita: an execution kernel for trading strategies. Run a kernel (dita run), watch every "
            "kernel in a cluster (dita watch), steer their mode and verbosity (dita control), run a "
            "local Hazelcast member (dita member), measure (dita bench); `dita COMMAND --help` says more."
        ),
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
