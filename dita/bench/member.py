"""A Hazelcast member of the benchmark's own, on a free loopback port, stopped when done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dita.bench.report import BenchSkipped, Log
from dita.cluster.local_member import FetchError, JavaNotFoundError, LocalMember, find_free_port


@contextmanager
def local_member(cluster_name: str, log: Log) -> Iterator[LocalMember]:
    """A started member; no Java or no jars here means the benchmark cannot run (BenchSkipped)."""
    member = LocalMember(
        port=find_free_port(), cluster_name=cluster_name, log=lambda line: log(f"member: {line}")
    )
    try:
        try:
            member.start(timeout=180)
        except (JavaNotFoundError, FetchError) as e:
            raise BenchSkipped(f"no Hazelcast member can start here: {e}") from None
        yield member
    finally:
        member.stop()
