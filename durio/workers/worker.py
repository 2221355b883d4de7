"""One worker process of a multi-worker server: its partitions, its locks, and its channel to the siblings."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import typing
from dataclasses import dataclass

import anyio
import anyio.to_thread

from durio.actors.runtime import Runtime, RuntimeConfig, open_runtime
from durio.backend import ignore_cancelled_socket_wakeups
from durio.journal.entries import Failure, Input
from durio.partitions import PartitionTable
from durio.sdk.definitions import ServiceDefinition
from durio.storage.records import InvocationRecord, Status
from durio.workers.ownership import PartitionLocks, record_partition_count, take_epochs
from durio.workers.peers import Peers, WorkerPeers, socket_directory

log = logging.getLogger("durio.workers")


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    count: int
    partitions: int | None = None  # the number of partitions a new data directory gets (None: the default)
    # The listening sockets the supervising parent opened, which every worker accepts from.
    ingress_socket: socket.socket | None = None
    admin_socket: socket.socket | None = None
    # The ingress connections each worker holds, shared by all of them (durio.workers.balance).
    connection_shares: typing.Any = None


@contextlib.asynccontextmanager
async def open_worker_runtime(
    services: typing.Iterable[ServiceDefinition],
    data_dir: str | os.PathLike[str],
    config: RuntimeConfig | None,
    spec: WorkerSpec,
) -> typing.AsyncIterator[Runtime]:
    """The runtime of worker `spec.index`: it owns its partitions once their previous owner is gone."""
    data_dir = os.fspath(data_dir)
    ignore_cancelled_socket_wakeups()  # the channel to the siblings is Unix sockets
    count = await anyio.to_thread.run_sync(record_partition_count, data_dir, spec.partitions)
    partitions = PartitionTable.for_worker(count, spec.index, spec.count)
    locks = PartitionLocks(data_dir)
    await anyio.to_thread.run_sync(locks.acquire, partitions.owned, abandon_on_cancel=True)
    peers = WorkerPeers(socket_directory(data_dir), spec.index, spec.count)
    try:
        async with anyio.create_task_group() as tasks:
            # Listening before recovery: what a sibling tells this worker from now on is not missed.
            await tasks.start(peers.run)
            async with open_runtime(services, data_dir, config, partitions, peers) as runtime:
                _answer_siblings(peers, runtime)
                epochs = await runtime.write(take_epochs(partitions.owned))
                peers.ready.set()
                log.info(
                    "worker %d (pid %d) owns partitions %s of %d",
                    spec.index,
                    os.getpid(),
                    ", ".join(f"{p}@{epochs[p]}" for p in sorted(partitions.owned)),
                    count,
                )
                yield runtime
                tasks.cancel_scope.cancel()
    finally:
        locks.release()


def _answer_siblings(peers: Peers, runtime: Runtime) -> None:
    async def snapshot() -> dict[str, typing.Any]:
        return runtime.local_snapshot()

    async def live_statuses() -> dict[str, Status]:
        return runtime.live_statuses()

    async def call(record: InvocationRecord, input_entry: Input) -> tuple[str, bytes | Failure]:
        return await runtime.call(record, input_entry, fresh=False)

    async def send(record: InvocationRecord, input_entry: Input) -> tuple[InvocationRecord, bool]:
        return await runtime.send(record, input_entry, fresh=False)

    peers.requests.update(
        call=call,
        send=send,
        attach=runtime.attach,
        control=runtime.control,
        complete_awakeable=runtime.complete_awakeable,
        snapshot=snapshot,
        live_statuses=live_statuses,
        reload_deployments=runtime.reload_deployments,
    )
    peers.tells.update(
        deliver=lambda target_id, notification, seq: runtime.router.deliver(target_id, notification, outbox_seq=seq),
        add_timer=runtime.timers.add,
        messages_arrived=runtime.messages_arrived,
    )
