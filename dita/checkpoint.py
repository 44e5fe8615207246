"""Run checkpoints: the kernel's own msgpack checkpoint plus what a run needs
to go on where it stopped (its kernel id, its strategy's state, how many
times it has started).

A checkpoint is written to a temporary file and renamed over the old one, so
a process killed mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

CHECKPOINT_FORMAT = "dita-run/1"


@dataclass
class RunCheckpoint:
    kernel_id: str
    kernel: bytes
    #: Process lives so far; ids a run mints carry it, so a restarted run never
    #: reuses an id its killed predecessor handed out after this checkpoint.
    session: int = 1
    strategy: dict[str, Any] = field(default_factory=dict)
    written_at: float = field(default_factory=time.time)
    #: The cluster control entries in force, as applied (`ExecutionKernel.control_entries()`):
    #: a restarted kernel holds them until the map says otherwise, and refuses older revs.
    control: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        payload = {
            "format": CHECKPOINT_FORMAT,
            "kernel_id": self.kernel_id,
            "kernel": self.kernel,
            "session": self.session,
            "strategy": self.strategy,
            "written_at": self.written_at,
            "control": self.control,
        }
        with open(temporary, "wb") as f:
            f.write(msgpack.packb(payload, use_bin_type=True))
        os.replace(temporary, target)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunCheckpoint:
        """The checkpoint at `path`; a missing or foreign file raises one clear error."""
        raw = Path(path).read_bytes()
        try:
            payload = msgpack.unpackb(raw, raw=False)
        except (ValueError, msgpack.UnpackException) as e:
            raise ValueError(f"checkpoint {path}: not a dita run checkpoint ({e})") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"checkpoint {path}: format {found!r}, expected {CHECKPOINT_FORMAT!r}")
        return cls(
            kernel_id=str(payload["kernel_id"]),
            kernel=bytes(payload["kernel"]),
            session=int(payload["session"]),
            strategy=dict(payload.get("strategy") or {}),
            written_at=float(payload["written_at"]),
            control={
                str(k): dict(v) for k, v in (payload.get("control") or {}).items() if isinstance(v, dict)
            },
        )


class Checkpointer:
    """Writes a run's checkpoint every `every` seconds (and when asked to at once)."""

    def __init__(self, path: str | os.PathLike[str], every: float, build: Any) -> None:
        if every <= 0:
            raise ValueError(f"checkpoint interval = {every}: must be greater than 0 seconds")
        self.path = Path(path)
        self.every = every
        self._build = build
        self._due = time.monotonic() + every
        self.written = 0

    def maybe_write(self) -> None:
        if time.monotonic() >= self._due:
            self.write()

    def write(self) -> None:
        checkpoint: RunCheckpoint = self._build()
        checkpoint.write(self.path)
        self.written += 1
        self._due = time.monotonic() + self.every
