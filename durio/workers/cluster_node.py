"""A node of a cluster on PostgreSQL, as its runtime sees it: peers on other machines, deliveries from PostgreSQL.

The node's runtime is a worker's runtime whose siblings are other nodes: it
forwards what belongs to another node's partition to that node over TCP
(`ClusterPeers`, durio.workers.peers' frames, opened with the cluster's id as
the secret), and follows ownership as it moves: a partition whose owner died
is forwarded to whoever the leases name next.

Deliveries (outbox entries and messages) that other nodes leave for this
node's partitions are in PostgreSQL, not in this node's store. Their sender's
transaction NOTIFYs; `consume_deliveries` listens, and also sweeps every
second (a NOTIFY is lost when the listener reconnects). Each pull is one
writer op: it copies the deliveries the store does not hold yet (and that no
earlier op of the same batch consumed) and hands them to the runtime as a
transition's effects, so they reach their actors exactly as local ones do.
"""

from __future__ import annotations

import inspect
import logging
import time
import typing
import urllib.parse

import anyio
import anyio.abc
import anyio.to_thread
import psycopg

from durio.actors.effects import Applied, Effects
from durio.actors.runtime import PeerUnavailable, Runtime
from durio.cluster.durability import DELIVERIES_CHANNEL, Unreachable, connect
from durio.cluster.node import ClusterNode
from durio.cluster.schema import GLOBAL_PARTITION
from durio.ids import parse_awakeable_id
from durio.journal.entries import Notification
from durio.storage import schema as s
from durio.storage.frames import FrameError, unpack_entry
from durio.storage.records import Status
from durio.storage.txn import Txn
from durio.workers.peers import UNAVAILABLE_AFTER_S, Address, NotOwner, Peers

log = logging.getLogger("durio.cluster")

DEFAULT_PEER_PORT = 5122  # Restate's node-to-node port
DELIVERY_SWEEP_S = 1.0  # how often every held partition's deliveries are looked for, NOTIFY or not
RETRY_OWNER_S = 0.25  # between two tries to reach a partition's owner while ownership moves


def peer_address(url: str) -> tuple[str, int]:
    """(host, port) of an advertise URL such as http://10.0.0.5:5122; a ValueError for anything else."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "tcp") or not parsed.hostname:
        raise ValueError(f"--advertise-url takes http://HOST:PORT, not {url!r}")
    try:
        port = parsed.port or DEFAULT_PEER_PORT
    except ValueError:
        raise ValueError(f"--advertise-url has a bad port: {url!r}") from None
    return parsed.hostname, port


class ClusterPeers(Peers):
    """The other nodes of the cluster, by name; who owns what comes from the leases, as the node last saw them."""

    def __init__(self, node: ClusterNode, listener: anyio.abc.Listener[typing.Any]) -> None:
        super().__init__(node.name, secret=node.durability.cluster_id.encode())
        self.node = node
        self.listener = listener  # bound before the node joined, so it could say where it listens

    def members(self) -> list[typing.Any]:
        return typing.cast(list[typing.Any], self.node.live_nodes())

    def owner_of(self, partition: int) -> typing.Any:
        """The node holding the partition's lease, as last seen; None while nobody holds it (a node taking it over)."""
        return self.node.owner_of(partition)

    def address_of(self, member: typing.Any) -> Address | None:
        url = self.node.peer_url_of(member)
        return None if url is None else peer_address(url)

    async def listen(self) -> anyio.abc.Listener[anyio.abc.ByteStream]:
        return typing.cast(anyio.abc.Listener[anyio.abc.ByteStream], self.listener)

    def describe(self, member: typing.Any) -> str:
        return f"node {member}"

    def holds(self, partition: int) -> bool:
        """Whether this node holds the partition's lease (GLOBAL_PARTITION: the cluster-wide rows')."""
        return partition in self.node.durability.epochs()

    async def describe_cluster(self, runtime: Runtime) -> dict[str, typing.Any]:
        """GET /cluster of a cluster node: every node (alive or not) with its process, and every partition's lease."""
        snapshots = {snapshot.get("worker"): snapshot for snapshot in await runtime.worker_snapshots()}
        table = runtime.partitions
        view = self.node.view
        refused = self.node.durability.statistics
        return {
            "nodes": [
                {
                    "name": row.name,
                    # This node's batches PostgreSQL did not take (its own counts: each node knows only its own).
                    **(
                        {
                            "batches_refused": {
                                "fenced": refused.fenced,
                                "lease_expired": refused.self_fenced,
                                "unreachable": refused.unreachable,
                            }
                        }
                        if row.name == self.me
                        else {}
                    ),
                    "alive": row.alive or row.name == self.me,
                    "peer_url": row.peer_url,
                    "last_heartbeat_s": round(row.silent_s, 3),
                    "workers": [
                        {
                            "worker": 0,
                            "pid": snapshots[row.name].get("pid"),
                            "partitions": snapshots[row.name].get("partitions", []),
                        }
                    ]
                    if snapshots.get(row.name, {}).get("pid")
                    else [],
                }
                for row in view.nodes
            ],
            "partitions": [
                {
                    "id": row.pid,
                    "key_range": list(table.key_range(row.pid)),
                    "owner": row.owner_name if row.valid else None,
                    "node": row.owner_name if row.valid else None,
                    "epoch": row.epoch,
                    "batches": row.batches,
                }
                for row in view.partitions
                if row.pid >= 0
            ],
        }

    def tell(self, worker: typing.Any, verb: str, *args: typing.Any) -> None:
        if worker is None:
            return  # no owner right now: whoever takes the partition over finds it as it recovers
        if worker == self.me:
            super().tell(worker, verb, *args)
        elif verb not in ("deliver", "messages_arrived"):  # those travel through PostgreSQL (its NOTIFY wakes the owner)
            log.warning("nothing tells node %s to %s: the owner finds it when it recovers", worker, verb)

    async def forward_to_owner(self, partition: int, verb: str, *args: typing.Any) -> typing.Any:
        """Forward to the partition's owner; while ownership moves (an owner died, or hands over), try again."""
        deadline = time.monotonic() + UNAVAILABLE_AFTER_S
        while True:
            try:
                owner = self.owner_of(partition)
                if owner is None:
                    raise PeerUnavailable(f"partition {partition} has no owner right now (a node is taking it over)")
                if owner != self.me:
                    link = self._link(owner)
                    if not link.up:
                        with anyio.move_on_after(1.0):
                            await link.connected.wait()
                        if not link.up:
                            raise PeerUnavailable(f"node {owner}, which owns partition {partition}, cannot be reached")
                return await self.forward(owner, verb, *args)
            except (NotOwner, PeerUnavailable) as exc:
                if time.monotonic() > deadline:
                    raise PeerUnavailable(f"{exc}; retry later") from None
                await anyio.sleep(RETRY_OWNER_S)


class RuntimeHandle:
    """The runtime serving now, for the HTTP listeners of a node, which outlive its runtimes.

    Between two runtimes every use is refused with PeerUnavailable (503 with Retry-After). A request waiting
    on a runtime that stops (a call waiting for its invocation's end) is woken with the same error rather
    than left waiting for an answer that runtime will never give: the client retries, and the next
    runtime (here or on the partition's new owner) recovers the invocation and answers."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None
        self._waiting: set[anyio.CancelScope] = set()

    def serve(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def stop(self) -> None:
        self._runtime = None
        for scope in self._waiting:
            scope.cancel()

    def __getattr__(self, name: str) -> typing.Any:
        runtime = self.__dict__.get("_runtime")
        if runtime is None:
            raise PeerUnavailable("this node is changing the partitions it serves; retry in a moment")
        value = getattr(runtime, name)
        if not inspect.iscoroutinefunction(value):
            return value

        async def until_stopped(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            with anyio.CancelScope() as scope:
                self._waiting.add(scope)
                try:
                    return await value(*args, **kwargs)
                finally:
                    self._waiting.discard(scope)
            raise PeerUnavailable("this node stopped serving that partition while the request waited; retry")

        return until_stopped


def answer_peers(peers: Peers, runtime: Runtime, node: ClusterNode) -> None:
    """Run other nodes' verbs in this runtime, refusing (NotOwner) what its partitions do not hold any more."""

    def here(invocation_id: str) -> None:
        if not runtime.partitions.is_local(invocation_id):
            raise NotOwner(f"node {peers.me} does not own the partition of {invocation_id} now")

    async def call(record: typing.Any, input_entry: typing.Any) -> typing.Any:
        here(record.id)
        return await runtime.call(record, input_entry, fresh=False)

    async def send(record: typing.Any, input_entry: typing.Any) -> typing.Any:
        here(record.id)
        return await runtime.send(record, input_entry, fresh=False)

    async def attach(invocation_id: str) -> typing.Any:
        here(invocation_id)
        return await runtime.attach(invocation_id)

    async def control(invocation_id: str, action: typing.Any) -> typing.Any:
        here(invocation_id)
        return await runtime.control(invocation_id, action)

    async def complete_awakeable(awakeable_id: str, result: typing.Any) -> typing.Any:
        here(parse_awakeable_id(awakeable_id)[0])
        return await runtime.complete_awakeable(awakeable_id, result)

    async def snapshot() -> dict[str, typing.Any]:
        return runtime.local_snapshot()

    async def live_statuses() -> dict[str, Status]:
        return runtime.live_statuses()

    async def reload_deployments() -> None:
        # Another node changed the cluster-wide rows: read them afresh from PostgreSQL, then serve what they say.
        await runtime.write(refresh_global_rows(node))
        await runtime.reload_deployments()

    peers.requests.clear()
    peers.requests.update(
        call=call,
        send=send,
        attach=attach,
        control=control,
        complete_awakeable=complete_awakeable,
        snapshot=snapshot,
        live_statuses=live_statuses,
        reload_deployments=reload_deployments,
    )
    peers.tells.clear()
    peers.tells.update(
        deliver=lambda target_id, notification, seq: runtime.router.deliver(target_id, notification, outbox_seq=seq),
        add_timer=runtime.timers.add,
        messages_arrived=runtime.messages_arrived,
    )


def refresh_global_rows(node: ClusterNode) -> typing.Callable[[Txn], Applied]:
    """The writer op that replaces the store's cluster-wide rows (deployments) with PostgreSQL's (not shipped back)."""

    def op(txn: Txn) -> Applied:
        rows = list(node.durability.load_rows({GLOBAL_PARTITION}))
        for db in {s.DEPLOYMENTS, *(db for db, _, _ in rows)}:
            for key in [bytes(key) for key in Txn._cursor(txn, db).iternext(keys=True, values=False)]:
                if node.durability.partition_of_row(db, key) == GLOBAL_PARTITION:
                    Txn._delete(txn, db, key)
        for db, key, value in rows:
            Txn._put(txn, db, key, value)
        return Applied(len(rows), Effects())

    return op


def pull_deliveries(node: ClusterNode, partitions: set[int]) -> typing.Callable[[Txn], Applied]:
    """The writer op that copies other nodes' deliveries for these partitions into the store, and delivers them."""

    def op(txn: Txn) -> Applied:
        fx = Effects()
        consumed = typing.cast(dict[tuple[bytes, bytes], typing.Any], getattr(txn, "batch", {}))
        copied = 0
        for db, key, value in node.durability.pending_deliveries(partitions):
            if (db, key) in consumed or Txn._get(txn, db, key) is not None:
                continue  # held already, or consumed by an earlier op of this batch (PostgreSQL learns it at commit)
            Txn._put(txn, db, key, value)  # (not shipped back: PostgreSQL holds it)
            copied += 1
            if db == s.MESSAGES:
                fx.messages.append(s.message_partition(key) % node.durability.partitions)
                continue
            target_id, seq = s.id_from_key(key), s.seq_of(key)
            try:
                notification = typing.cast(Notification, unpack_entry(value, f"outbox message {seq} for {target_id}"))
            except FrameError as exc:
                log.error("an unreadable delivery stays for recovery to report: %s", exc)
                continue
            fx.deliver.append((target_id, seq, notification))
        return Applied(copied, fx)

    return op


def _listen(dsn: str) -> psycopg.Connection[typing.Any]:
    connection = connect(dsn)
    connection.autocommit = True
    connection.execute(f"LISTEN {DELIVERIES_CHANNEL}")
    return connection


def _notified(connection: psycopg.Connection[typing.Any], timeout_s: float) -> set[int]:
    """The partitions NOTIFYed within `timeout_s` (empty when none was)."""
    partitions: set[int] = set()
    for notice in connection.notifies(timeout=timeout_s, stop_after=1):
        partitions.add(int(notice.payload))
    if partitions:
        for notice in connection.notifies(timeout=0.001):
            partitions.add(int(notice.payload))
    return partitions


async def consume_deliveries(node: ClusterNode, runtime: Runtime) -> None:
    """Copy other nodes' deliveries to this runtime's partitions as they come (NOTIFY) and every second."""
    connection: psycopg.Connection[typing.Any] | None = None
    swept_at = 0.0
    try:
        while True:
            try:
                if connection is None or connection.closed:
                    connection = await anyio.to_thread.run_sync(_listen, node.durability.dsn)
                notified = await anyio.to_thread.run_sync(_notified, connection, RETRY_OWNER_S)
            except (Unreachable, psycopg.Error) as exc:
                log.warning("cannot listen for deliveries: %s; sweeping instead", exc)
                if connection is not None:
                    connection.close()
                connection = None
                notified = set()
                await anyio.sleep(DELIVERY_SWEEP_S)
            held = set(runtime.partitions.owned)
            if time.monotonic() - swept_at >= DELIVERY_SWEEP_S:
                notified, swept_at = held, time.monotonic()
            if notified & held:
                try:
                    await runtime.write(pull_deliveries(node, notified & held))
                except Exception as exc:  # PostgreSQL or the store refused: the next sweep tries again
                    log.warning("could not take deliveries: %s", exc)
    finally:
        if connection is not None:
            connection.close()
