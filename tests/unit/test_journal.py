"""Journals: in memory (bounded) and an append-only msgpack file that reads back after a crash."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from dita.journal import CompositeJournal, FileJournal, JournalReadReport, MemoryJournal, read_journal


def entries(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"seq": i, "transition": {"trigger": "FILL", "details": {"qty": i / 3}}, "slot": None}
        for i in range(start, start + n)
    ]


def test_a_file_journal_reads_back_in_order_and_appends_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.msgpack"
    journal = FileJournal(path)
    for e in entries(1000):
        journal.record(e)
    journal.close()
    again = FileJournal(path, flush_every=100)
    for e in entries(10, start=1000):
        again.record(e)
    again.close()
    report = JournalReadReport()
    records = list(read_journal(path, report))
    assert records == entries(1010)
    assert report.records == 1010 and report.truncated_bytes == 0
    with pytest.raises(ValueError, match="closed"):
        again.record({"seq": -1})


def test_a_torn_last_record_is_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "torn.msgpack"
    journal = FileJournal(path)
    for e in entries(5):
        journal.record(e)
    journal.close()
    whole = path.stat().st_size
    tail = msgpack.packb({"seq": 5, "transition": {"trigger": "ACK"}})
    with open(path, "ab") as f:
        f.write(tail[: len(tail) // 2])
    report = JournalReadReport()
    assert [r["seq"] for r in read_journal(path, report)] == [0, 1, 2, 3, 4]
    assert report.truncated_bytes == path.stat().st_size - whole


def test_corruption_in_the_middle_raises_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.msgpack"
    good = msgpack.packb({"seq": 0})
    path.write_bytes(good + b"\xc1" + msgpack.packb({"seq": 1}))
    with pytest.raises(ValueError, match=rf"bad.msgpack is corrupt at byte {len(good)}"):
        list(read_journal(path))


def test_memory_journal_is_bounded_and_composites_record_everywhere(tmp_path: Path) -> None:
    small = MemoryJournal(capacity=3)
    file = FileJournal(tmp_path / "both.msgpack")
    both = CompositeJournal(small, file)
    for e in entries(10):
        both.record(e)
    both.close()
    assert len(small) == 3 and [e["seq"] for e in small.entries()] == [7, 8, 9]
    assert len(list(read_journal(tmp_path / "both.msgpack"))) == 10


def test_reopening_after_a_torn_tail_cuts_it_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "crash.msgpack"
    journal = FileJournal(path)
    for e in entries(3):
        journal.record(e)
    journal.close()
    tail = msgpack.packb({"seq": 3, "transition": {"trigger": "ACK"}})
    with open(path, "ab") as f:
        f.write(tail[:-1])
    again = FileJournal(path)
    assert again.recovered_bytes == len(tail) - 1
    again.record({"seq": 99})
    again.close()
    report = JournalReadReport()
    assert [r["seq"] for r in read_journal(path, report)] == [0, 1, 2, 99]
    assert report.truncated_bytes == 0


def test_reopening_a_journal_corrupt_in_the_middle_refuses_to_append(tmp_path: Path) -> None:
    path = tmp_path / "bad.msgpack"
    path.write_bytes(msgpack.packb({"seq": 0}) + b"\xc1" + msgpack.packb({"seq": 1}))
    with pytest.raises(ValueError, match="corrupt at byte"):
        FileJournal(path)
    assert path.read_bytes().endswith(msgpack.packb({"seq": 1})), "nothing appended"
