"""GET /cluster: the server's nodes, their worker processes, and who owns each partition.

One machine's worker processes are one node; a cluster on PostgreSQL lists its nodes in the same shape, with
each partition's owner the node that holds its lease.
"""

from __future__ import annotations

import os
import socket
import typing

from durio.actors.runtime import Runtime
from durio.storage import Txn

NODE_NAME_ENV = "DURIO_NODE_NAME"


def node_name() -> str:
    return os.environ.get(NODE_NAME_ENV) or socket.gethostname()


async def cluster_view(runtime: Runtime) -> dict[str, typing.Any]:
    # A node of a cluster on PostgreSQL describes the whole cluster, as the leases there say (durio.workers.cluster_node).
    describe_cluster = getattr(runtime.peers, "describe_cluster", None)
    if describe_cluster is not None:
        return typing.cast(dict[str, typing.Any], await describe_cluster(runtime))
    table = runtime.partitions
    workers = await runtime.worker_snapshots()

    def epochs(txn: Txn) -> dict[int, int]:
        return {partition: txn.get_meta(f"partition_epoch:{partition}") or 0 for partition in range(table.count)}

    stored_epochs = await runtime.store.read(epochs)
    owners = {partition: worker.get("pid") for worker in workers for partition in worker.get("partitions", [])}
    name = node_name()
    return {
        "nodes": [
            {
                "name": name,
                "alive": True,
                "workers": [
                    {
                        "worker": w["worker"],
                        "pid": w.get("pid"),
                        "partitions": w.get("partitions", []),
                        **({"restarting": True} if w.get("restarting") else {}),
                    }
                    for w in workers
                ],
            }
        ],
        "partitions": [
            {
                "id": partition,
                "key_range": list(table.key_range(partition)),
                "owner": owners.get(partition),
                "node": name,
                "epoch": stored_epochs[partition],
            }
            for partition in range(table.count)
        ],
    }
