"""A cancelled saga whose compensation calls another service completes (red-team B1).

The compensation's call outlasts the caller's wait, so the caller suspends and
later replays its journal past the cancellation. The replay must cancel only the
calls the first run cancelled, not the compensation's own callee.
"""

from __future__ import annotations

import pathlib

import anyio

from tests.conftest import TEST_APPS, wait_until
from tests.remote_peers import hypercorn_deployment

APP = TEST_APPS / "cancel_saga_app.py"


def effects(tmp_path: pathlib.Path) -> list[str]:
    path = tmp_path / "effects.log"
    return path.read_text().splitlines() if path.exists() else []


async def cancel_the_saga_and_see_it_end(durio, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    async with durio.client() as client, durio.client(admin=True) as admin:
        sent = await client.post("/restate/send/CancelSaga/book")
        assert sent.status_code == 202, sent.text
        invocation_id = sent.json()["invocationId"]

        async def sleeping() -> bool:
            view = (await admin.get(f"/invocations/{invocation_id}")).json()
            return any(entry.get("type") == "sleep" for entry in view["journal"])

        await wait_until(sleeping)
        cancelled = await admin.patch(f"/invocations/{invocation_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        with anyio.fail_after(30):
            result = await client.get(f"/restate/attach/{invocation_id}")
        view = (await admin.get(f"/invocations/{invocation_id}")).json()
    assert result.status_code == 409, result.text
    assert view["status"] == "completed"
    assert view.get("retry_count", 0) == 0, f"it retried: {view.get('last_failure')}"
    assert effects(tmp_path) == ["reserve", "refund", "compensated"]


async def test_a_cancelled_saga_whose_compensation_calls_out_completes_embedded(server_process, tmp_path) -> None:
    durio = server_process(APP, env={"CANCEL_EFFECTS_LOG": str(tmp_path / "effects.log")})
    await durio.start()
    await cancel_the_saga_and_see_it_end(durio, tmp_path)
    assert durio.terminate() == 0


async def test_a_cancelled_saga_whose_compensation_calls_out_completes_as_a_remote_deployment(server_process, tmp_path) -> None:
    peer = hypercorn_deployment(
        "tests.apps.cancel_saga_app:app",
        tmp_path / "endpoint.log",
        {"CANCEL_EFFECTS_LOG": str(tmp_path / "effects.log")},
        trio_worker=True,
    )
    await peer.start(ready_path="/health")
    try:
        durio = server_process(None)
        await durio.start()
        async with durio.client(admin=True) as admin:
            registered = await admin.post("/deployments", json={"uri": peer.url})
        assert registered.status_code == 201, registered.text
        await cancel_the_saga_and_see_it_end(durio, tmp_path)
        assert durio.terminate() == 0
    finally:
        peer.stop()
