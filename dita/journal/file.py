"""An append-only file of msgpack records, readable back after a crash.

Each entry is one msgpack map appended to the file. A process killed mid-write
leaves at most one torn record at the end: the reader stops there and says
how many bytes it dropped. Anything unreadable before the end is corruption,
reported with the file and offset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack


class FileJournal:
    """Appends entries to `path` (created if missing, appended to if present).

    Keyword arguments:
        flush_every: entries between two flushes to the OS (default 1: every entry).
        fsync: also fsync at each flush, surviving a machine crash, at a cost (default False).
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_every: int = 1, fsync: bool = False) -> None:
        self.path = Path(path)
        self.flush_every = max(1, flush_every)
        self.fsync = fsync
        self.recovered_bytes = self._drop_torn_tail()
        self._file: BinaryIO | None = open(self.path, "ab")  # noqa: SIM115 - lives as long as the journal
        self._packer = msgpack.Packer(use_bin_type=True)
        self._unflushed = 0

    def _drop_torn_tail(self) -> int:
        """Cuts a torn last record left by a crash; returns the bytes cut.

        Appending after torn bytes would glue the next record onto them and
        the reader would return a wrong record without noticing, so the tail
        goes before the first append. A corrupt middle raises (ValueError
        from `read_journal`): appending to it would bury the damage.
        """
        if not self.path.exists():
            return 0
        report = JournalReadReport()
        for _ in read_journal(self.path, report):
            pass
        if report.truncated_bytes:
            with open(self.path, "r+b") as f:
                f.truncate(self.path.stat().st_size - report.truncated_bytes)
        return report.truncated_bytes

    def record(self, entry: Mapping[str, Any]) -> None:
        if self._file is None:
            raise ValueError(f"journal {self.path} is closed")
        self._file.write(self._packer.pack(dict(entry)))
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        assert self._file is not None
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._unflushed = 0

    def close(self) -> None:
        if self._file is not None:
            self._flush()
            self._file.close()
            self._file = None


@dataclass
class JournalReadReport:
    """How a read ended: records read, and bytes of a torn last record dropped."""

    records: int = 0
    truncated_bytes: int = 0


def read_journal(
    path: str | os.PathLike[str], report: JournalReadReport | None = None
) -> Iterator[dict[str, Any]]:
    """The records of a journal file in order. A torn last record ends the
    read (see `report.truncated_bytes`); corruption before it raises ValueError."""
    report = report if report is not None else JournalReadReport()
    data = Path(path).read_bytes()
    unpacker = msgpack.Unpacker(use_list=True, raw=False, strict_map_key=False)
    unpacker.feed(data)
    offset = 0
    while True:
        try:
            record = unpacker.unpack()
        except msgpack.OutOfData:
            report.truncated_bytes = len(data) - offset
            return
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as e:
            raise ValueError(f"journal {path} is corrupt at byte {offset}: {e}") from e
        if not isinstance(record, dict):
            raise ValueError(
                f"journal {path} is corrupt at byte {offset}: a {type(record).__name__}, not a record"
            )
        offset = unpacker.tell()
        report.records += 1
        yield record
