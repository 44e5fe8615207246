"""The transition journal: every transition, when control's journal flag is on."""

from dita.journal.base import CompositeJournal, KernelJournal
from dita.journal.file import FileJournal, JournalReadReport, read_journal
from dita.journal.memory import MemoryJournal

__all__ = [
    "CompositeJournal",
    "FileJournal",
    "JournalReadReport",
    "KernelJournal",
    "MemoryJournal",
    "read_journal",
]
