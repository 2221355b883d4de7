"""sdk-test-suite WorkflowAPI: a workflow blocks on a durable promise that a shared handler resolves;
its output can be read again; a second submission is PreviouslyAccepted with the same id."""

from __future__ import annotations

import uuid

from tests.conformance.client import call_ok, eventually, send


async def test_set_and_resolve(ingress) -> None:
    workflow_id = str(uuid.uuid4())
    sent = await send(ingress, "BlockAndWaitWorkflow", "run", "Francesco", key=workflow_id, idempotent=False)
    assert sent["status"] == "Accepted"

    async def state_set() -> None:
        assert await call_ok(ingress, "BlockAndWaitWorkflow", "getState", key=workflow_id, idempotent=False)

    await eventually(state_set)
    await call_ok(ingress, "BlockAndWaitWorkflow", "unblock", "Till", key=workflow_id)
    attached = await ingress.get(f"/restate/workflow/BlockAndWaitWorkflow/{workflow_id}/attach")
    assert attached.status_code == 200 and attached.json() == "Till"
    output = await ingress.get(f"/restate/workflow/BlockAndWaitWorkflow/{workflow_id}/output")
    assert output.status_code == 200 and output.json() == "Till"
    again = await send(ingress, "BlockAndWaitWorkflow", "run", "Francesco", key=workflow_id, idempotent=False)
    assert again["status"] == "PreviouslyAccepted"
    assert again["invocationId"] == sent["invocationId"]
    assert (await ingress.get(f"/restate/workflow/BlockAndWaitWorkflow/{workflow_id}/output")).json() == "Till"
