"""`ingress_private`: a private handler answers other services' handlers, never the ingress.

Restate's ingress answers 400 "the invoked service is not public" for a private
target; durio does the same on every ingress path that starts or reads an
invocation, for in-process services and for remote deployments (whose manifest
carries `ingressPrivate`), and the admin API lists them with `"public": false`.
"""

from __future__ import annotations

import httpx
import pytest

import durio as restate
from durio.ingress.serving import serve_http
from tests.conftest import InProcessServer, start_in_process

ran: list[str] = []

internal = restate.Service("Internal", ingress_private=True)


@internal.handler()
async def secret(ctx: restate.Context) -> str:
    ran.append("Internal.secret")
    return "private handler ran"


mixed = restate.Service("Mixed")


@mixed.handler(ingress_private=True)
async def hidden(ctx: restate.Context) -> str:
    ran.append("Mixed.hidden")
    return "private handler ran"


@mixed.handler()
async def shown(ctx: restate.Context) -> str:
    return "public"


@mixed.handler()
async def relay(ctx: restate.Context) -> list:
    """A public handler may call the private ones: private means 'not from the ingress'."""
    first = await ctx.generic_call("Internal", "secret", b"")
    second = await ctx.generic_call("Mixed", "hidden", b"")
    third = await ctx.generic_call("Vault", "peek", b"", key="k")
    fourth = await ctx.generic_call("Onboarding", "run", b"", key="wf-1")
    return [part.decode() for part in (first, second, third, fourth)]


vault = restate.VirtualObject("Vault", ingress_private=True)


@vault.handler()
async def peek(ctx: restate.ObjectContext) -> str:
    ran.append("Vault.peek")
    return "private handler ran"


onboarding = restate.Workflow("Onboarding", ingress_private=True)


@onboarding.main()
async def run(ctx: restate.WorkflowContext) -> str:
    ran.append("Onboarding.run")
    return "private handler ran"


@onboarding.handler()
async def progress(ctx: restate.WorkflowSharedContext) -> str:
    ran.append("Onboarding.progress")
    return "private handler ran"


# A public handler in a private service is public: the handler's own option wins.
partly = restate.Service("Partly", ingress_private=True)


@partly.handler(ingress_private=False)
async def front_door(ctx: restate.Context) -> str:
    return "open"


SERVICES = [internal, mixed, vault, onboarding, partly]

PRIVATE_PATHS = [
    "/restate/call/Internal/secret",
    "/restate/send/Internal/secret",
    "/Internal/secret",
    "/Internal/secret/send",
    "/restate/call/Mixed/hidden",
    "/restate/send/Mixed/hidden",
    "/Mixed/hidden",
    "/Mixed/hidden/send",
    "/restate/call/Vault/k/peek",
    "/restate/send/Vault/k/peek",
    "/Vault/k/peek",
    "/Vault/k/peek/send",
    "/restate/call/Onboarding/wf-2/run",
    "/restate/send/Onboarding/wf-2/run",
    "/restate/call/Onboarding/wf-2/progress",
    "/Onboarding/wf-2/progress",
]


@pytest.fixture
async def server(nursery, data_dir) -> InProcessServer:  # type: ignore[no-untyped-def]
    ran.clear()
    return await start_in_process(nursery, SERVICES, data_dir)


def assert_not_public(response: httpx.Response, what: str) -> None:
    assert response.status_code == 400, f"{what}: {response.status_code} {response.text}"
    body = response.json()
    assert body["source"] == "ingress" and "not public" in body["message"], body
    assert response.headers["x-restate-error-source"] == "ingress"


@pytest.mark.parametrize("path", PRIVATE_PATHS)
async def test_every_ingress_form_refuses_a_private_handler_and_creates_nothing(server, path: str) -> None:
    assert_not_public(await server.ingress.post(path), path)
    assert ran == []
    assert await server.runtime.store.read(lambda txn: txn.count_invocations()) == 0


async def test_other_services_handlers_still_call_private_handlers(server) -> None:
    response = await server.ingress.post("/restate/call/Mixed/relay")
    assert response.status_code == 200, response.text
    assert response.json() == ['"private handler ran"'] * 4
    assert ran == ["Internal.secret", "Mixed.hidden", "Vault.peek", "Onboarding.run"]
    assert (await server.ingress.post("/restate/call/Mixed/shown")).json() == "public"
    assert (await server.ingress.post("/restate/call/Partly/front_door")).json() == "open"


async def test_the_ingress_does_not_read_a_private_invocations_result_either(server) -> None:
    await server.ingress.post("/restate/call/Mixed/relay")
    records = await server.runtime.store.read(lambda txn: list(txn.iter_invocations()))
    private = [r for r in records if r.target.service != "Mixed" or r.target.handler != "relay"]
    assert len(private) == 4
    for record in private:
        for path in (
            f"/restate/attach/{record.id}",
            f"/restate/output/{record.id}",
            f"/restate/invocation/{record.id}/attach",
            f"/restate/invocation/{record.id}/output",
        ):
            assert_not_public(await server.ingress.get(path), path)
    for verb in ("attach", "output"):
        path = f"/restate/workflow/Onboarding/wf-1/{verb}"
        assert_not_public(await server.ingress.get(path), path)
    relay_id = next(r.id for r in records if r.target.handler == "relay")
    assert (await server.ingress.get(f"/restate/output/{relay_id}")).status_code == 200


async def test_the_admin_api_lists_private_services_and_handlers_as_not_public(server) -> None:
    listed = {s["name"]: s for s in (await server.admin.get("/services")).json()["services"]}
    public = {name: (s["public"], {h["name"]: h["public"] for h in s["handlers"]}) for name, s in listed.items()}
    assert public == {
        "Internal": (False, {"secret": False}),
        "Mixed": (True, {"hidden": False, "shown": True, "relay": True}),
        "Vault": (False, {"peek": False}),
        "Onboarding": (False, {"run": False, "progress": False}),
        "Partly": (False, {"front_door": True}),
    }
    one = (await server.admin.get("/services/Mixed")).json()
    assert {h["name"]: h["public"] for h in one["handlers"]} == {"hidden": False, "shown": True, "relay": True}


async def test_a_remote_deployments_private_handlers_are_refused_too(nursery, data_dir) -> None:
    server = await start_in_process(nursery, [], data_dir)
    endpoint = restate.app([internal, mixed, vault, onboarding])
    url = await nursery.start(lambda task_status: serve_http(endpoint, "127.0.0.1:0", task_status=task_status))
    registered = await server.admin.post("/deployments", json={"uri": url})
    assert registered.status_code == 201, registered.text
    for path in (
        "/restate/call/Internal/secret",
        "/restate/send/Mixed/hidden",
        "/Mixed/hidden",
        "/restate/call/Vault/k/peek",
        "/restate/call/Onboarding/wf-2/progress",
    ):
        assert_not_public(await server.ingress.post(path), f"remote {path}")
    assert ran == []
    response = await server.ingress.post("/restate/call/Mixed/relay")
    assert response.status_code == 200 and response.json() == ['"private handler ran"'] * 4, response.text
    listed = {s["name"]: s for s in (await server.admin.get("/services")).json()["services"]}
    assert listed["Internal"]["public"] is False
    assert {h["name"]: h["public"] for h in listed["Mixed"]["handlers"]} == {"hidden": False, "shown": True, "relay": True}
    assert (await server.ingress.post("/restate/call/Mixed/shown")).json() == "public"
