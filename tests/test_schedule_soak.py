"""The schedules' kill -9 soak (scripts/schedule_soak.py), short: a schedule every 2 s on a real `durio serve`
killed with SIGKILL at random moments for ~20 s; every tick checked to have fired exactly once, under its derived
id, never early. `.venv/bin/python scripts/schedule_soak.py` runs the full two minutes by hand."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import random
import re
import subprocess
import sys

from durio.journal.entries import Target
from durio.schedules.specs import ScheduleSpec
from durio.schedules.state import ScheduleRecord
from durio.schedules.transitions import tick_idempotency_key, tick_invocation_id
from durio.storage.records import InvocationRecord, Status
from tests.conftest import ROOT

SOAK = ROOT / "scripts" / "schedule_soak.py"


def test_every_tick_fires_exactly_once_through_kill_9s(tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed = random.randrange(2**32)
    completed = subprocess.run(
        [sys.executable, str(SOAK), "--duration", "20", "--seed", str(seed), "--data-dir", str(tmp_path / "soak" / "data")],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=str(ROOT),
        env=dict(os.environ),
    )
    output = completed.stdout + completed.stderr
    server_log = tmp_path / "soak" / "server.log"
    assert completed.returncode == 0, (
        output[-20000:] + "\n" + (server_log.read_text(errors="replace")[-5000:] if server_log.exists() else "")
    )
    match = re.search(r"(\d+) kills in \d+ s .*?; (\d+) ticks", output)
    assert match is not None, output
    assert int(match.group(1)) >= 4 and int(match.group(2)) >= 8, output
    assert "every tick fired exactly once (ids checked), none twice, none early" in output


def load_soak():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("schedule_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_soak_check_catches_a_tick_fired_twice_one_fired_early_and_one_never_fired() -> None:
    soak = load_soak()
    spec = ScheduleSpec(id="beat", target=Target("Beat", "tick", None), target_kind="service", every_ms=2000, source="code")
    ticks = [1_800_000_000_000 + 2000 * n for n in range(5)]
    record = ScheduleRecord(spec, created_ms=ticks[0] - 500, updated_ms=ticks[0] - 500, cursor_ms=ticks[-1])

    def fired(tick: int, created_ms: int | None = None, invocation_id: str | None = None) -> InvocationRecord:
        key = tick_idempotency_key("beat", tick, "schedule")
        return InvocationRecord(
            id=invocation_id or tick_invocation_id(spec, tick),
            target=spec.target,
            handler_kind=None,
            status=Status.COMPLETED,
            created_ms=created_ms or tick + 3,
            modified_ms=tick + 3,
            idempotency_key=key,
        )

    def ran(invocation: InvocationRecord, tick: int) -> str:
        return f"{invocation.id} {spec.local_time(tick)} {tick + 5}"

    good = [fired(tick) for tick in ticks]
    violations, _, expected = soak.check(record, good, [ran(i, t) for i, t in zip(good, ticks)])
    assert violations == [] and expected == ticks

    twice = good + [dataclasses.replace(fired(ticks[1]), id=tick_invocation_id(spec, ticks[1], "trigger"))]
    early = [fired(ticks[2], created_ms=ticks[2] - 1) if i == 2 else inv for i, inv in enumerate(good)]
    missing = [inv for i, inv in enumerate(good) if i != 3]
    for invocations, symptom in ((twice, "fired 2 times"), (early, "1 ms early"), (missing, "1 ticks never fired")):
        violations, _, _ = soak.check(record, invocations, [ran(i, t) for i, t in zip(good, ticks)])
        assert any(symptom in violation for violation in violations), (symptom, violations)
    violations, _, _ = soak.check(
        record, good, [ran(i, t) for i, t in zip(good, ticks)] + [f"{good[0].id} {spec.local_time(ticks[0])} {ticks[0] - 9}"]
    )
    assert any("ran 9 ms before its tick" in violation for violation in violations)
