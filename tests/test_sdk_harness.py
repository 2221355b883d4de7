"""The official SDK's test harness (`create_test_harness`, `test_harness`), backed by an embedded durio: no Docker."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

import durio

SUITE = pathlib.Path(__file__).resolve().parent / "apps" / "sdk_harness_suite"

flaky = durio.Service("HarnessFlaky")
attempts: list[str] = []


@flaky.handler()
async def fail(ctx: durio.Context, tag: str) -> str:
    attempts.append(tag)
    raise ValueError("always")


replayed = durio.Service("HarnessReplayed")
body_runs: list[str] = []
step_runs: list[str] = []


@replayed.handler()
async def steps(ctx: durio.Context, tag: str) -> int:
    body_runs.append(tag)
    total = 0
    for i in range(3):
        total += await ctx.run_typed(f"step {i}", lambda i=i: step_runs.append(tag) or i)
        await ctx.sleep(timedelta(milliseconds=1))
    return total


APP = durio.app([flaky, replayed])


def test_a_suite_written_for_the_official_harness_runs_unchanged() -> None:
    # A child process: `restate` is aliased to durio there, while this process holds the real SDK.
    script = (
        "import sys, durio; durio.install_as_restate(); import pytest; "
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-o', 'anyio_mode=auto', '-o', 'python_files=harness_checks.py', "
        "'-W', 'ignore::pytest.PytestAssertRewriteWarning', sys.argv[1]]))"
    )
    # On asyncio, as the official SDK's users run it, and on Trio (tests/conftest.py, the suite's ancestor, reads this).
    env = {**{k: v for k, v in os.environ.items() if k != "DURIO_TEST_SUBSET"}, "DURIO_TEST_BACKENDS": "asyncio,trio"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(SUITE)], capture_output=True, text=True, timeout=120, cwd=SUITE, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout, result.stdout  # its 3 async checks on asyncio and on Trio, its 2 sync ones


async def test_create_test_harness_serves_the_app_on_loopback() -> None:
    async with durio.create_test_harness(APP) as env:
        assert isinstance(env, durio.HarnessEnvironment)
        assert env.ingress_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=env.admin_api_url) as admin:
            services = (await admin.get("/services")).json()["services"]
        assert {s["name"] for s in services} == {"HarnessFlaky", "HarnessReplayed"}
        assert await env.client.service_call(steps, "trio") == 3


def test_create_test_harness_under_asyncio() -> None:
    async def main() -> int:
        async with durio.create_test_harness(APP) as env:
            return await env.client.service_call(steps, "asyncio")

    assert asyncio.run(main()) == 3


async def test_disable_retries_kills_an_invocation_at_its_first_failure() -> None:
    async with durio.create_test_harness(APP, disable_retries=True) as env:
        with pytest.raises(durio.HttpError) as failed:
            await env.client.service_call(fail, "once")
    assert failed.value.status_code >= 400
    assert attempts.count("once") == 1


async def test_always_replay_replays_every_step_and_runs_each_once() -> None:
    async with durio.create_test_harness(APP, always_replay=True) as env:
        assert await env.client.service_call(steps, "replay") == 3
    assert step_runs.count("replay") == 3  # each run step executed once
    assert body_runs.count("replay") >= 4  # the handler replayed after each sleep


def test_the_sync_harness_needs_start() -> None:
    harness = durio.test_harness(APP)
    with pytest.raises(AssertionError, match="has not been started"):
        harness.ingress_client()
