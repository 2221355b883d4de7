"""Admin routes for deployments beyond listing them: the `use_http_11` option, and removal.

durio reaches every deployment over HTTP/1.1 in request/response mode (its
client speaks nothing else), so `use_http_11` is accepted, checked and kept
with the deployment, and the deployment's record says HTTP/1.1 either way.

`DELETE /deployments/{id}` answers 202 once the deployment and its services
are gone, and 409 while unfinished invocations still target its services
(cancel or kill them, or let them finish, first).
"""

from __future__ import annotations

import typing

from durio.actors.deployment_removal import remove_deployment
from durio.actors.runtime import Runtime
from durio.asgi import HttpError, Send, respond


def checked_use_http_11(request: dict[str, typing.Any]) -> bool:
    value = request.get("use_http_11", False)
    if not isinstance(value, bool):
        raise HttpError(400, "'use_http_11' must be true or false")
    return value


async def serve_deployment_removal(runtime: Runtime, send: Send, deployment_id: str) -> None:
    if deployment_id not in runtime.deployments:
        raise HttpError(404, f"deployment '{deployment_id}' not found")
    refused = await remove_deployment(runtime, deployment_id)
    if refused is not None:
        if refused.count == 1:
            who = f"1 unfinished invocation ({refused.example_id}): cancel or kill it, or let it finish"
        else:
            who = f"{refused.count} unfinished invocations (one is {refused.example_id}): cancel or kill them, or let them finish"
        raise HttpError(409, f"deployment '{deployment_id}' cannot be removed: its services are still needed by {who}, first")
    await respond(send, 202)
