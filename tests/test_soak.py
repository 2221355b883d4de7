"""The kill -9 soak (scripts/soak.py), short: mixed load, a real server killed 20 times, every accepted
invocation checked to have completed exactly once."""

from __future__ import annotations

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
