"""The transition journal: every transition, when control's journal flag is on."""

from dita.journal.base import CompositeJournal, KernelJournal
from dita.journal.file import FileJournal, JournalReadReport, read_journal
from dita.journal.memory import MemoryJournal
from dita.journal.ringbuffer import RingbufferJournal, read_ring_journal

__all__ = [
    "CompositeJournal",
    "FileJournal",
    "JournalReadReport",
    "KernelJournal",
    "MemoryJournal",
    "RingbufferJournal",
    "read_journal",
    "read_ring_journal",
]
