"""What several subcommands share: the cluster flags, the control key, a connected client."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)


def add_cluster_args(p: argparse.ArgumentParser) -> None:
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


def control_key(args: argparse.Namespace) -> bytes | None:
    if os.environ.get("DITA_CONTROL_KEY"):
        return os.environ["DITA_CONTROL_KEY"].encode()
    if args.control_key_file:
        key = Path(args.control_key_file).read_bytes().strip()
        if not key:
            raise ValueError(f"control key file {args.control_key_file} is empty")
        return key
    return None


def connect(args: argparse.Namespace) -> Any:
    """A client of the cluster the flags name; one clear error when none is given or none answers."""
    from dita.projection.hazelcast import connect as connect_client

    if not args.hazelcast:
        raise ValueError("no cluster given: pass --hazelcast HOST:PORT or set DITA_HAZELCAST")
    return connect_client(args.hazelcast.split(","), args.cluster, connect_timeout=args.connect_timeout)


def enum_arg(kind: type[E]) -> Callable[[str], E]:
    """An argparse type for a StrEnum whose error lists the values it takes."""

    def parse(text: str) -> E:
        try:
            return kind(text)
        except ValueError:
            known = ", ".join(member.value for member in kind)
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {known}") from None

    parse.__name__ = kind.__name__
    return parse
