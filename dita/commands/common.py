"""What several subcommands share: the cluster flags, the control key, a connected client,
and the parsers of flag values (numbers, ports, member addresses).

A flag's value is checked when the command line is parsed, so a wrong one is
refused before the command does anything. A flag whose default is read from
the environment gets an `EnvDefault`, so that a bad variable is named as the
variable, and a flag given on the command line always beats it.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)

#: The largest number of seconds a flag takes. Sleeps and waits overflow not far above
#: 1e10 s, and no flag of dita's means anything near 31 years.
MAX_SECONDS = 1e9
#: A control key file is a short secret; a larger file is the wrong file (or /dev/zero).
MAX_KEY_BYTES = 4096


class EnvDefault(str):
    """A flag's default taken from the environment variable `variable`."""

    variable: str

    def __new__(cls, value: str, variable: str) -> EnvDefault:
        made = super().__new__(cls, value)
        made.variable = variable
        return made


def env_default(variable: str, fallback: str | None = None) -> str | None:
    """The variable's value as a flag's default (unset or blank: `fallback`)."""
    raw = os.environ.get(variable, "")
    return EnvDefault(raw.strip(), variable) if raw.strip() else fallback


def named(value: str, flag: str) -> str:
    """How an error names a value: `--flag 'v'`, or `VARIABLE='v'` when the value came from there."""
    if isinstance(value, EnvDefault):
        return f"{value.variable}={str(value)!r}"
    return f"{flag} {value!r}"


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a finite number")
    return value


def _shown(text: str) -> str:
    return f"{text.variable}={str(text)!r}" if isinstance(text, EnvDefault) else repr(text)


def finite_float(text: str) -> float:
    """A finite number (no nan, no inf) no larger than MAX_SECONDS either way."""
    value = _number(text)
    if abs(value) > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is out of range (at most {MAX_SECONDS:g})")
    return value


def positive_float(text: str) -> float:
    """A finite number greater than 0 (and at most MAX_SECONDS)."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{_shown(text)} must be greater than 0")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a port number") from None
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1 to 65535)")
    return value


def members(text: str) -> str:
    """HOST:PORT[,HOST:PORT...], each port 1 to 65535; returned comma-joined, spaces dropped."""
    parts = [part.strip() for part in str(text).split(",")]
    for part in parts:
        # Of several members, the error names the one that is wrong.
        which = f"{_shown(text)}: " + (f"{part!r}: " if len(parts) > 1 else "")
        host, colon, number = part.rpartition(":")
        if not colon or not host.strip("[]") or not number:
            raise argparse.ArgumentTypeError(f"{which}not HOST:PORT")
        try:
            port(number)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{which}{e}") from None
    return ",".join(parts)


def non_empty(text: str) -> str:
    """A name: not blank, no control characters."""
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} must be a non-blank name without control characters"
        )
    return text


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hazelcast",
        type=members,
        default=env_default("DITA_HAZELCAST"),
        metavar="HOST:PORT[,HOST:PORT...]",
        help="cluster members HOST:PORT[,HOST:PORT...] (default: $DITA_HAZELCAST)",
    )
    p.add_argument(
        "--cluster",
        type=non_empty,
        default=env_default("DITA_CLUSTER", "dita"),
        help="cluster name (default: $DITA_CLUSTER or 'dita')",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to find a member (default 10)",
    )
    p.add_argument(
        "--control-key-file",
        default=env_default("DITA_CONTROL_KEY_FILE"),
        metavar="FILE",
        help="file holding the shared control key (default: $DITA_CONTROL_KEY_FILE; the flag beats "
        "$DITA_CONTROL_KEY, which beats $DITA_CONTROL_KEY_FILE)",
    )


def control_key(args: argparse.Namespace) -> bytes | None:
    """The shared control key: the --control-key-file flag's file, else $DITA_CONTROL_KEY,
    else $DITA_CONTROL_KEY_FILE's file; None when none is set. A file that cannot be read,
    or is empty, or is too large to be a key, is a ValueError naming where it was given."""
    path = args.control_key_file
    if path is not None and not isinstance(path, EnvDefault):
        return _read_key(path, "--control-key-file")
    if os.environ.get("DITA_CONTROL_KEY"):
        return os.environ["DITA_CONTROL_KEY"].encode()
    if path:
        return _read_key(path, "--control-key-file")
    return None


def _read_key(path: str, flag: str) -> bytes:
    where = named(path, flag)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_BYTES + 1)
    except OSError as e:
        raise ValueError(f"{where}: cannot read it ({e.strerror or e})") from None
    if len(raw) > MAX_KEY_BYTES:
        raise ValueError(f"{where}: longer than {MAX_KEY_BYTES} bytes, not a key file")
    key = raw.strip()
    if not key:
        raise ValueError(f"{where}: the file is empty")
    return key


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


def writable_file(path: str, flag: str) -> None:
    """Refuses a file the command will write unless its directory exists and takes a new file
    (a probe file is made and removed: permission bits alone do not tell, for root for one)."""
    import tempfile

    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{flag} {path}: is a directory, not a file")
    parent = target.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: the directory {parent} is missing")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dita-probe-", dir=parent)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot write in {parent} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
