"""What dita accepts from a Hazelcast cluster: data, never code.

Anyone who reaches an open-source cluster can write any map. The Python
client pickles every object it has no serializer for and unpickles every
value marked as a pickle, so a value anyone put would run its code in each
dita process that reads it; and a value whose serializer type id no
serializer knows raises out of every read that meets it (an `entry_set`
fails whole). No client setting turns either off: `global_serializer` only
changes how unknown objects are written, custom serializers only add types.

`harden(client)` therefore narrows the client's serializer registry, in
place, to what dita reads: JSON documents (`HazelcastJsonValue`), text,
null, and the byte arrays of its ringbuffer journal. Any other value comes
back unread, as a `RefusedValue` holding the bytes the cluster sent, so a
read of a map with one planted value still returns every other entry, and
no entry event raises on the client's I/O thread. Sending an object that
would be pickled raises instead.

What a value that did arrive may hold is for `dita.projection.documents` to say.
"""

from __future__ import annotations

from typing import Any

from hazelcast.errors import HazelcastSerializationError
from hazelcast.serialization.data import DATA_OFFSET, Data
from hazelcast.serialization.serialization_const import (
    CONSTANT_TYPE_BOOLEAN,
    CONSTANT_TYPE_BYTE,
    CONSTANT_TYPE_BYTE_ARRAY,
    CONSTANT_TYPE_DATA_SERIALIZABLE,
    CONSTANT_TYPE_DOUBLE,
    CONSTANT_TYPE_FLOAT,
    CONSTANT_TYPE_INTEGER,
    CONSTANT_TYPE_LONG,
    CONSTANT_TYPE_NULL,
    CONSTANT_TYPE_PORTABLE,
    CONSTANT_TYPE_SHORT,
    CONSTANT_TYPE_STRING,
    JAVA_DEFAULT_TYPE_SERIALIZABLE,
    JAVASCRIPT_JSON_SERIALIZATION_TYPE,
    PYTHON_TYPE_PICKLE,
    TYPE_COMPACT,
)

#: The value types dita reads: JSON documents and text from its maps, byte arrays
#: (msgpack journal records) from its ringbuffers; every other one is refused unread.
READABLE_TYPE_IDS = frozenset(
    {
        CONSTANT_TYPE_NULL,
        CONSTANT_TYPE_STRING,
        JAVASCRIPT_JSON_SERIALIZATION_TYPE,
        CONSTANT_TYPE_BYTE_ARRAY,
    }
)

#: What dita sends: keys and documents, plus the predicates of its queries
#: (identified data serializables, whose fields are text and numbers).
WRITABLE_TYPE_IDS = READABLE_TYPE_IDS | {
    CONSTANT_TYPE_DATA_SERIALIZABLE,
    CONSTANT_TYPE_BOOLEAN,
    CONSTANT_TYPE_BYTE,
    CONSTANT_TYPE_SHORT,
    CONSTANT_TYPE_INTEGER,
    CONSTANT_TYPE_LONG,
    CONSTANT_TYPE_FLOAT,
    CONSTANT_TYPE_DOUBLE,
}

_TYPE_NAMES = {
    PYTHON_TYPE_PICKLE: "Python pickle",
    JAVA_DEFAULT_TYPE_SERIALIZABLE: "Java serialized object",
    CONSTANT_TYPE_PORTABLE: "Portable object",
    CONSTANT_TYPE_DATA_SERIALIZABLE: "data-serializable object",
    TYPE_COMPACT: "Compact object",
}


class RefusedValueError(TypeError):
    """A value that `harden` refused was asked for its text.

    A TypeError, as for any value that is not a JSON document, so a decoder
    that guards against those already turns it down as malformed.
    """


def describe_type(type_id: int) -> str:
    """What a serializer type id stands for, without an article ("Python pickle (type id -120)")."""
    name = _TYPE_NAMES.get(type_id)
    if name is None:
        name = "custom-serialized value" if type_id > 0 else "Hazelcast built-in value"
    return f"{name} (type id {type_id})"


class RefusedValue(Data):
    """A value from the cluster that dita would not deserialize: its bytes, unread.

    It is a `Data`, so handing it back to the client sends the very bytes the
    cluster holds: an operator's compare-and-set over a planted entry
    (`replace_if_same`) matches it and replaces it.
    """

    __slots__ = ()

    def __init__(self, buffer: bytes) -> None:
        super().__init__(buffer)  # type: ignore[no-untyped-call]

    @property
    def type_id(self) -> int:
        return int(self.get_type())  # type: ignore[no-untyped-call]

    def describe(self) -> str:
        return f"{describe_type(self.type_id)} that dita refuses to read"

    def to_string(self) -> str:
        raise RefusedValueError(self.describe())

    def __repr__(self) -> str:
        return f"RefusedValue(type_id={self.type_id})"

    __str__ = __repr__


class _Refusal:
    """Stands in the registry for every serializer dita does not read with."""

    def __init__(self, type_id: int) -> None:
        self._type_id = type_id

    def get_type_id(self) -> int:
        return self._type_id

    def read(self, inp: Any) -> RefusedValue:
        # Only a whole value starts its payload at DATA_OFFSET; a refused type
        # nested inside another value has no bytes of its own to hand back.
        # None of the readable types nests values, so this is belt and braces.
        if getattr(inp, "_pos", None) != DATA_OFFSET:
            nested = describe_type(self._type_id)
            raise HazelcastSerializationError(f"refused a {nested} inside another value")
        return RefusedValue(bytes(inp._buffer))

    def write(self, out: Any, obj: Any) -> None:
        raise HazelcastSerializationError(f"dita does not write a {describe_type(self._type_id)}")

    def destroy(self) -> None:
        pass


def harden(client: Any) -> Any:
    """Makes `client` refuse every value type dita does not read or write; returns it.

    In place and at once, for every proxy the client made before or makes
    after; calling it again changes nothing. Reads of refused values give a
    `RefusedValue`; writes of objects that would be pickled raise
    `HazelcastSerializationError`. Raises `TypeError` for a client whose
    serializer registry is not the one this was written against (fail closed:
    a client we cannot harden must not be used).
    """
    registry = getattr(getattr(client, "_serialization_service", None), "_registry", None)
    by_type_id = getattr(registry, "serializer_by_type_id", None)
    for_object = getattr(registry, "serializer_for", None)
    if registry is None or by_type_id is None or for_object is None:
        raise TypeError(
            f"cannot harden {type(client).__name__}: not a hazelcast client of the 5.x serializer registry"
        )
    if getattr(registry, "_dita_hardened", False):
        return client

    def serializer_by_type_id(type_id: int) -> Any:
        if type_id in READABLE_TYPE_IDS:
            return by_type_id(type_id)
        return _Refusal(type_id)

    def serializer_for(obj: Any) -> Any:
        serializer = for_object(obj)
        if serializer.get_type_id() not in WRITABLE_TYPE_IDS:
            kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
            raise HazelcastSerializationError(
                f"dita writes JSON documents, text and numbers only: refusing to send a {kind}, "
                f"which would go as a {describe_type(serializer.get_type_id())}"
            )
        return serializer

    registry.serializer_by_type_id = serializer_by_type_id
    registry.serializer_for = serializer_for
    registry._dita_hardened = True
    return client


def is_hardened(client: Any) -> bool:
    registry = getattr(getattr(client, "_serialization_service", None), "_registry", None)
    return bool(getattr(registry, "_dita_hardened", False))
