"""The kill -9 soak (scripts/soak.py), short: mixed load, a real server killed 20 times, every accepted
invocation checked to have completed exactly once."""

from __future__ import annotations

import collections
import os
import pathlib
import random
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SOAK = ROOT / "scripts" / "soak.py"


def run_soak(tmp_path: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    completed = subprocess.run(
        [sys.executable, str(SOAK), "--data-dir", str(tmp_path / "soak" / "data"), *args],
        capture_output=True, text=True, timeout=170, cwd=str(ROOT), env={**os.environ, **(env or {})},
    )
    return completed.returncode, completed.stdout + completed.stderr


def report(request: pytest.FixtureRequest, line: str) -> None:
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


def test_every_accepted_invocation_completes_exactly_once_through_20_kill_9s(tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    seed = random.randrange(2 ** 32)  # printed in the output: rerun with --seed to reproduce
    code, output = run_soak(tmp_path, "--kills", "20", "--seed", str(seed), "--max-gap", "0.8")
    summary = next((line for line in output.splitlines() if line.startswith("soak: survived")), "no summary")
    report(request, summary)
    assert code == 0, output[-20000:] + "\n" + (tmp_path / "soak" / "server.log").read_text(errors="replace")[-10000:]
    match = re.search(r"survived (\d+) kills; checked (\d+) invocations", output)
    assert match is not None and int(match.group(1)) == 20, output
    assert int(match.group(2)) > 100, "too little load to prove anything"
    assert "every accepted invocation completed exactly once" in output


def test_the_soak_catches_doubled_state_writes_and_steps_run_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, output = run_soak(tmp_path, "--kills", "1", "--seed", "7", env={"SOAK_FAULT": "double-ledger,rerun-step"})
    assert code == 1, output
    assert re.search(r"counter c\d: doubled \['", output), output
    assert re.search(r"step charge of inv_\w+ ran 2 times in server lifetime \d", output), output


# --------------------------------------------------------------------------------------
# A bug the soak found (fixed). The docstring says what the bug was.

SOAK_APP = ROOT / "tests" / "apps" / "soak_app.py"


async def test_regression_exclusive_calls_arriving_after_a_restart_queue_behind_the_recovered_holder(
    server_process, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    """Counter/k.add is exclusive; its `run` step logs entering and leaving (and holds the key 300 ms).

    Four additions are queued on one key, the server is killed while the first is inside its step,
    and four more additions arrive right after the restart. They must queue behind the recovered holder.
    The bug (key actors handing the key on early after a restart): those four started at once, beside the
    holder; their journal writes were refused (NotKeyHolder), they retried, re-running their step each
    time, and three of their four state writes were lost (the ledger had 5 refs of 8, and outputs repeated
    totals other invocations had already returned).
    """
    import httpx
    import trio

    from tests.conftest import wait_until

    steps_log = tmp_path / "steps.log"
    server = server_process(SOAK_APP, env={"SOAK_LOG": str(steps_log), "SOAK_LOCK_MS": "300"})
    await server.start()
    ids: dict[str, str] = {}

    async def add(client: httpx.AsyncClient, ref: str) -> None:
        sent = await client.post("/restate/send/Counter/k/add", json={"ref": ref, "amount": 1}, headers={"idempotency-key": ref})
        assert sent.status_code == 202, sent.text
        ids[ref] = sent.json()["invocationId"]

    async with server.client() as client:
        for n in range(4):
            await add(client, f"early-{n}")

        async def entered() -> bool:
            return steps_log.exists() and "lock-enter" in steps_log.read_text()

        await wait_until(entered)
    server.kill9()
    await server.start()
    async with server.client() as client:
        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(add, client, f"late-{n}")
        outputs = {ref: (await client.get(f"/restate/attach/{invocation_id}")).json() for ref, invocation_id in ids.items()}
        state = (await client.post("/restate/call/Counter/k/peek")).json()
    assert server.terminate() == 0

    problems = []
    if sorted(state["ledger"]) != sorted(ids) or state["total"] != len(ids):
        problems.append(f"state writes lost: ledger {state['ledger']}, total {state['total']}, expected all of {sorted(ids)}")
    if sorted(outputs.values()) != list(range(1, len(ids) + 1)):
        problems.append(f"the additions returned totals {sorted(outputs.values())}, not 1..{len(ids)} once each")
    restarted = [line.split(" ") for line in steps_log.read_text().splitlines()][1:]  # after the killed process's entry
    inside: str | None = None
    for invocation_id, step, _ in restarted:
        if step == "lock-enter":
            if inside is not None:
                problems.append(f"{invocation_id} entered its exclusive step while {inside} was inside")
                break
            inside = invocation_id
        elif step == "lock-exit" and inside == invocation_id:
            inside = None
    entries = collections.Counter(invocation_id for invocation_id, step, _ in restarted if step == "lock-enter")
    reruns = {ids_by_invocation: n for ids_by_invocation, n in entries.items() if n > 1}
    if reruns:
        problems.append(f"steps re-ran in one server process: {reruns}")
    refused = [line for line in server.output().splitlines() if "NotKeyHolder" in line]
    assert not problems, "\n".join(problems) + "\nserver log:\n" + "\n".join(refused[:5])
