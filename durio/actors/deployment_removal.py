"""Removing a remote deployment, which only an invocation that still needs it can stop.

An invocation needs a deployment while it is unfinished and its target is a
service only that deployment serves: removing it would leave the invocation
nothing to run on. Such a removal is refused, naming how many and one of them.

The services leave the registry first, so no new invocation can target them
while the removal commits; the check and the deletion are one transaction, so
no invocation created before that moment is missed. A refused removal puts the
services back.
"""

from __future__ import annotations

from dataclasses import dataclass

from durio.actors.effects import Applied, Effects
from durio.actors.ports import DeploymentHost
from durio.actors.remote.deployments import services_of
from durio.storage import Txn
from durio.storage.records import STORED_STATUSES, Status


UNFINISHED = tuple(status for status in STORED_STATUSES if status != Status.COMPLETED)


@dataclass(frozen=True)
class StillNeeded:
    """The removal was refused: `count` unfinished invocations target the deployment's services."""

    count: int
    example_id: str


async def remove_deployment(runtime: DeploymentHost, deployment_id: str) -> StillNeeded | None:
    """Remove the deployment and its services; StillNeeded if an unfinished invocation needs them.

    Raises KeyError when there is no such deployment."""
    deployment = runtime.deployments[deployment_id]
    services = {
        service.name
        for service in services_of(deployment)
        if getattr(runtime.registry.service(service.name), "deployment", None) is deployment
    }
    removed = runtime.registry.remove_remote(services)

    def accept_target(service: str, handler: str, key: str | None) -> bool:
        return service in services

    def op(txn: Txn) -> Applied:
        count = txn.count_by_status_and_target(UNFINISHED, accept_target)
        if count:
            records, _ = txn.invocations_by_status(
                UNFINISHED, limit=1, accept=lambda record: record.target.service in services, accept_target=accept_target
            )
            return Applied(StillNeeded(count, records[0].id if records else ""), Effects())
        txn.delete_deployment(deployment_id)
        return Applied(None, Effects())

    try:
        refused: StillNeeded | None = await runtime.write(op)
    except BaseException:
        runtime.registry.restore(removed)
        raise
    if refused is not None:
        runtime.registry.restore(removed)
        return refused
    del runtime.deployments[deployment_id]
    await runtime.deployments_changed_everywhere()
    return None
