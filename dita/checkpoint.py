"""Run checkpoints: the kernel's own msgpack checkpoint plus what a run needs
to go on where it stopped (its kernel id, its strategy's state, how many
times it has started).

A checkpoint is written to a temporary file and renamed over the old one, so
a process killed mid-write leaves the previous checkpoint whole.

Beside it lives what a run signs its documents with (`document_key`): a
resumed run takes from the cluster's maps only what it can prove it wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

CHECKPOINT_FORMAT = "dita-run/1"

#: Bytes of the random document key kept beside a checkpoint.
DOCUMENT_KEY_BYTES = 32


def document_key(
    kernel_id: str,
    control_key: bytes | None,
    checkpoint_path: str | os.PathLike[str] | None,
) -> bytes | None:
    """The key kernel `kernel_id` signs its slot and account documents with
    (`ExecutionKernel(document_key=...)`), and a resume checks them with.

    With a control key: HMAC-SHA256(control_key, b"dita documents " + the
    kernel id in UTF-8), the same for every life of the kernel and for anyone
    who holds the control key. Without one: a random 32-byte secret kept
    beside the checkpoint, in `<checkpoint>.key` (64 hex digits; created
    0600 on first use and reused after, so every life of a run that resumes
    from that checkpoint has it). Without either: None, and the documents go
    unsigned (a resume then adopts nothing from the maps). An empty control
    key counts as none. A key file others may read, or one that does not hold
    a key, raises ValueError naming it.
    """
    if control_key:
        return hmac.new(control_key, b"dita documents " + kernel_id.encode(), hashlib.sha256).digest()
    if checkpoint_path is None:
        return None
    path = Path(os.fspath(checkpoint_path) + ".key")
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(DOCUMENT_KEY_BYTES)
    # Written whole under a name of its own, then linked into place: a reader
    # never sees half a key, and of two processes starting at once one key wins.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_key(path)
    finally:
        os.unlink(temporary)
    return key


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o077:
            raise ValueError(
                f"document key {path}: readable by others (mode {mode:04o}); "
                f"it must be the owner's alone: chmod 600 {path}"
            )
        text = f.read(4 * DOCUMENT_KEY_BYTES)
    try:
        key = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != DOCUMENT_KEY_BYTES:
        raise ValueError(
            f"document key {path}: not a key ({2 * DOCUMENT_KEY_BYTES} hex digits); "
            "move it away to have a new one made (documents signed with the old one are then refused)"
        )
    return key


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
