"""Partition ownership on one machine: an exclusive `flock` per partition, which the kernel drops when its owner dies.

So two processes can never own (and write for) one partition, even after a
kill -9, and a restarted worker takes its partitions over as soon as the dead
one is gone. The data directory records how many partitions it has (chosen
when it is created) and, per partition, an epoch counting its owners.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import typing

from durio.actors.effects import Applied, Effects
from durio.partitions import DEFAULT_PARTITIONS, check_partition_count
from durio.storage.lmdb_store import LmdbStore
from durio.storage.txn import Txn

log = logging.getLogger("durio.workers")

PARTITIONS_META = "partitions"


def epoch_meta(partition: int) -> str:
    return f"partition_epoch:{partition}"


def record_partition_count(data_dir: str, requested: int | None) -> int:
    """The data directory's number of partitions; recorded now if it has none (a new one, or one written
    before durio had partitions: its invocations already carry partition keys, so any count fits it)."""
    store = LmdbStore(data_dir)
    try:

        def read_or_record(txn: Txn) -> int:
            stored = txn.get_meta(PARTITIONS_META)
            if stored is None:
                stored = check_partition_count(requested or DEFAULT_PARTITIONS)
                txn.put_meta(PARTITIONS_META, stored)
            return typing.cast(int, stored)

        count = store.commit_batch([read_or_record])[0]
        if isinstance(count, BaseException) or not isinstance(count, int):
            raise RuntimeError(f"cannot read the number of partitions of {data_dir}: {count}")
    finally:
        store.close()
    if requested is not None and requested != count:
        log.warning("%s has %d partitions (chosen when it was created); --partitions %d is ignored", data_dir, count, requested)
    return count


def partition_count_of(txn: Txn) -> int:
    return typing.cast(int, txn.get_meta(PARTITIONS_META) or 1)


def epochs_of(txn: Txn, count: int) -> dict[int, int]:
    return {partition: txn.get_meta(epoch_meta(partition)) or 0 for partition in range(count)}


def take_epochs(partitions: typing.Iterable[int]) -> typing.Callable[[Txn], typing.Any]:
    """An op that counts one more owner for each of these partitions."""
    owned = sorted(partitions)

    def op(txn: Txn) -> Applied:
        epochs = {}
        for partition in owned:
            epochs[partition] = (txn.get_meta(epoch_meta(partition)) or 0) + 1
            txn.put_meta(epoch_meta(partition), epochs[partition])
        return Applied(epochs, Effects())

    return op


class PartitionLocks:
    """The ownership locks this process holds; released when it exits, however it exits."""

    def __init__(self, data_dir: str) -> None:
        self.directory = os.path.join(data_dir, "partitions")
        os.makedirs(self.directory, exist_ok=True)
        self._files: dict[int, int] = {}

    def acquire(self, partitions: typing.Iterable[int], log_every_s: float = 5.0) -> None:
        """Block until this process owns every one of them (a dying predecessor may still hold some)."""
        for partition in sorted(partitions):
            fd = os.open(os.path.join(self.directory, f"{partition:04d}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            waited_since = time.monotonic()
            last_said = waited_since
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - last_said > log_every_s:
                        log.warning(
                            "waiting %.0f s for partition %d: another process owns it", time.monotonic() - waited_since, partition
                        )
                        last_said = time.monotonic()
                    time.sleep(0.02)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._files[partition] = fd

    def release(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
