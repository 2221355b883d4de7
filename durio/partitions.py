"""Partitions: the 64-bit partition-key space cut into P equal, contiguous ranges.

Every invocation id carries a partition key (durio.ids): a keyed invocation's is
the hash of its key, an idempotent request's or workflow run's the hash of its
key too, an unkeyed one's random. So everything stored for an invocation, an
object key or a workflow key belongs to exactly one partition, and each
partition has exactly one owner: the worker process that holds its lock.

P is chosen when a data directory is created and recorded in it; it never
changes afterwards (a partition's range must not move under its data). Which
worker owns which partition is not recorded: worker i of N owns the partitions
p with p % N == i, so N may change between restarts.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from durio import ids

DEFAULT_PARTITIONS = 24  # Restate's default-num-partitions
MAX_PARTITIONS = 4096
_KEY_SPACE = 1 << 64


class PartitionCountError(ValueError):
    """A partition count that cannot be used."""


def check_partition_count(count: int) -> int:
    if not 1 <= count <= MAX_PARTITIONS:
        raise PartitionCountError(f"the number of partitions must be between 1 and {MAX_PARTITIONS}, not {count}")
    return count


@dataclass(frozen=True, slots=True)
class PartitionTable:
    """How the partition-key space is cut, and which part of it this process owns."""

    count: int
    owned: frozenset[int]

    @classmethod
    def single(cls, count: int = 1) -> "PartitionTable":
        """Every partition owned here: one process serves the whole data directory."""
        return cls(count, frozenset(range(count)))

    @classmethod
    def for_worker(cls, count: int, index: int, workers: int) -> "PartitionTable":
        return cls(count, frozenset(owned_by(count, index, workers)))

    @property
    def owns_all(self) -> bool:
        return len(self.owned) == self.count

    def of_key(self, partition_key: int) -> int:
        return partition_of_key(partition_key, self.count)

    def of_id(self, invocation_id: str) -> int:
        """The partition of an invocation id (or of a derived id, such as a schedule's)."""
        return self.of_key(struct.unpack_from(">Q", ids.invocation_id_to_bytes(invocation_id))[0])

    def is_local(self, invocation_id: str) -> bool:
        return self.owns_all or self.of_id(invocation_id) in self.owned

    def key_range(self, partition: int) -> tuple[int, int]:
        """The first and last partition key of a partition (inclusive)."""
        start = -(-partition * _KEY_SPACE // self.count)
        end = -(-(partition + 1) * _KEY_SPACE // self.count) - 1
        return start, end

    def local_partition_key(self) -> int | None:
        """A random partition key inside a partition owned here (None: any key will do, all are local)."""
        if self.owns_all:
            return None
        start, end = self.key_range(random.choice(tuple(self.owned)))
        return random.randint(start, end)


def partition_of_key(partition_key: int, count: int) -> int:
    """The partition (of `count`) whose range holds a 64-bit partition key."""
    return (partition_key * count) >> 64


def owned_by(count: int, index: int, workers: int) -> list[int]:
    """The partitions worker `index` of `workers` owns."""
    return [p for p in range(count) if p % workers == index]


def owner_of(partition: int, workers: int) -> int:
    return partition % workers
