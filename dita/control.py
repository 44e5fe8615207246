"""What operators steer: mode, verbosity and journaling.

`KernelControlSnapshot` is the control a kernel applies; `ControlUpdate` is a
change to some of its fields. A `LocalControlPlane` holds control in-process
(the default); the cluster-wide control plane listens to Hazelcast and feeds
the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from dita.enums import KernelMode, KernelVerbosity

CONTROL_FIELDS = ("mode", "verbosity", "journal")


_E = TypeVar("_E", KernelMode, KernelVerbosity)


def _enum_value(cls: type[_E], name: str, value: object) -> _E:
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} = {value!r}: must be text, one of {', '.join(m.value for m in cls)}")
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{name} = {value!r}: must be one of {', '.join(m.value for m in cls)}") from None


@dataclass(frozen=True)
class KernelControlSnapshot:
    """The control in force; `rev` and `source` say where it came from."""

    mode: KernelMode = KernelMode.ACTIVE
    verbosity: KernelVerbosity = KernelVerbosity.NORMAL
    journal: bool = False
    rev: int = 0
    source: str = "default"
    reason: str = ""
    author: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _enum_value(KernelMode, "mode", self.mode))
        object.__setattr__(self, "verbosity", _enum_value(KernelVerbosity, "verbosity", self.verbosity))
        if not isinstance(self.journal, bool):
            raise TypeError(f"journal = {self.journal!r}: must be true or false")

    @property
    def debug_journal_enabled(self) -> bool:
        """The earlier kernel's name for the journal flag."""
        return self.journal

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "verbosity": self.verbosity.value,
            "journal": self.journal,
            "rev": self.rev,
            "source": self.source,
            "reason": self.reason,
            "author": self.author,
        }


@dataclass(frozen=True)
class ControlUpdate:
    """A change to some control fields; None leaves a field as it is."""

    mode: KernelMode | str | None = None
    verbosity: KernelVerbosity | str | None = None
    journal: bool | None = None
    reason: str = ""
    author: str = ""
    source: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)

    def applied_to(self, current: KernelControlSnapshot) -> KernelControlSnapshot:
        """The control after this update; raises naming the field if a value is bad."""
        if self.extra:
            unknown = ", ".join(sorted(self.extra))
            raise ValueError(
                f"unknown control field(s) {unknown}: known fields are {', '.join(CONTROL_FIELDS)}"
            )
        if self.journal is not None and not isinstance(self.journal, bool):
            raise TypeError(f"journal = {self.journal!r}: must be true or false")
        return replace(
            current,
            mode=current.mode if self.mode is None else _enum_value(KernelMode, "mode", self.mode),
            verbosity=(
                current.verbosity
                if self.verbosity is None
                else _enum_value(KernelVerbosity, "verbosity", self.verbosity)
            ),
            journal=current.journal if self.journal is None else self.journal,
            rev=current.rev + 1,
            source=self.source,
            reason=self.reason,
            author=self.author,
        )


class ControlPlane(Protocol):
    """Where a kernel's control comes from."""

    def read(self) -> KernelControlSnapshot: ...

    def update(self, update: ControlUpdate) -> KernelControlSnapshot: ...


class LocalControlPlane:
    """Control held in this process: what `update` sets is what `read` returns."""

    def __init__(self, initial: KernelControlSnapshot | None = None) -> None:
        self._current = initial or KernelControlSnapshot()

    def read(self) -> KernelControlSnapshot:
        return self._current

    def update(self, update: ControlUpdate) -> KernelControlSnapshot:
        self._current = update.applied_to(self._current)
        return self._current


def build_control_plane(initial: KernelControlSnapshot | None = None) -> ControlPlane:
    return LocalControlPlane(initial)
