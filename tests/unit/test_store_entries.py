"""The store writer's requests are byte for byte what the Hazelcast client would send.

The native writer speaks the client protocol itself, so its `Map.putAll`
request for a document (key and value `Data`, frames, map name, header) and
the partition it sends a key to must match the client library's own
serializer, codec and partitioner exactly; the library is the oracle here.
"""

from __future__ import annotations

from typing import Any

import hazelcast.config
import hazelcast.hash
import hazelcast.protocol.codec.map_put_all_codec
import hazelcast.serialization.service
import pytest
from hazelcast.core import HazelcastJsonValue

from dita._native import Kernel, _put_all_request_for_test
from dita.contracts import KernelIntent


def client_request(key: str, document: str, partition_count: int) -> tuple[int, bytes]:
    """The partition the client would send `key` to, and its `putAll` request."""
    service: Any = hazelcast.serialization.service
    config: Any = hazelcast.config
    hashing: Any = hazelcast.hash
    codec: Any = hazelcast.protocol.codec.map_put_all_codec
    serializer = service.SerializationServiceV1(config.Config())
    key_data = serializer.to_data(key)
    partition = hashing.hash_to_index(hashing.murmur_hash3_x86_32(key_data.buffer), partition_count)
    request = codec.encode_request(
        "dita.slots", [(key_data, serializer.to_data(HazelcastJsonValue(document)))], False
    )
    request.set_partition_id(partition)
    request.set_correlation_id(0)
    return int(partition), bytes(request.buf)


@pytest.mark.parametrize("partition_count", [1, 7, 271, 1009])
def test_a_document_request_matches_the_clients_codec_and_partitioner(partition_count: int) -> None:
    kernel = Kernel(64)
    kernel.process_intent(
        KernelIntent(
            action="ENTER", slot_id=3, trade_id="t-ü", asset="BTC-PERP", side="LONG", target_size=1.0
        )
    )
    slots, account = kernel.drain_documents("kernel-ünïcode", now=5.0)
    assert account is not None
    for key, _, document in [*slots, ("kernel-ünïcode", *account)]:
        ours = _put_all_request_for_test("dita.slots", key, document, partition_count)
        assert ours == client_request(key, document, partition_count), key


def test_every_key_goes_to_the_partition_the_client_would_send_it_to() -> None:
    for slot in range(2_000):
        key = f"K-{slot % 7}:{slot}"
        assert _put_all_request_for_test("m", key, "{}", 271)[0] == client_request(key, "{}", 271)[0], key
