"""Options of the official SDK that durio honours in-process, not just accepts: a handler's or service's
`inactivity_timeout` is how long it may wait before it is suspended."""

from __future__ import annotations

import pathlib
from datetime import timedelta

import anyio
import anyio.abc

import durio
from tests.conftest import start_in_process, wait_until

patient = durio.Service("Patient")  # no inactivity_timeout: the server's suspend_after_s (never, in these tests)
brisk = durio.Service("Brisk", inactivity_timeout=timedelta(milliseconds=100))


async def wait_for_the_world(ctx: durio.Context) -> str:
    _, future = ctx.awakeable(type_hint=str)
    return await future


patient.handler("wait")(wait_for_the_world)
patient.handler("wait_briskly", inactivity_timeout=timedelta(milliseconds=100))(wait_for_the_world)
brisk.handler("wait")(wait_for_the_world)
brisk.handler("wait_patiently", inactivity_timeout=timedelta(days=1))(wait_for_the_world)


async def status(server: object, invocation_id: str) -> str:
    return (await server.admin.get(f"/invocations/{invocation_id}")).json()["status"]  # type: ignore[attr-defined]


async def test_inactivity_timeout_of_the_handler_else_the_service_suspends_a_waiting_handler(
    nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path
) -> None:
    server = await start_in_process(nursery, [patient, brisk], data_dir, suspend_after_s=None)
    started = {}
    for path in ("Patient/wait", "Patient/wait_briskly", "Brisk/wait", "Brisk/wait_patiently"):
        started[path] = (await server.ingress.post(f"/restate/send/{path}")).json()["invocationId"]

    for path in ("Patient/wait_briskly", "Brisk/wait"):

        async def suspended(invocation_id: str = started[path]) -> bool:
            return await status(server, invocation_id) == "suspended"

        await wait_until(suspended, timeout=10)
    await anyio.sleep(0.3)
    for path in ("Patient/wait", "Brisk/wait_patiently"):
        assert await status(server, started[path]) != "suspended", path
