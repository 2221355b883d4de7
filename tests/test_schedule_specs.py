"""Schedule specs as pure logic: when ticks fall, jitter, and `@scheduled` declarations checked early."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

import durio
from durio.journal.entries import Target
from durio.schedules.declare import declared_schedules
from durio.schedules.specs import ScheduleSpec, format_duration_ms
from tests.conftest import ROOT

UTC = datetime.UTC


def ms(*args: int, tz: datetime.tzinfo = UTC) -> int:
    return int(datetime.datetime(*args, tzinfo=tz).timestamp() * 1000)


def spec(**fields: object) -> ScheduleSpec:
    return ScheduleSpec(**{"id": "s", "target": Target("S", "h", None), "target_kind": "service", **fields})  # type: ignore[arg-type]


def test_an_interval_ticks_on_multiples_of_itself_from_the_epoch_or_from_start_at() -> None:
    every = spec(every_ms=2000)
    assert every.first_tick_after(ms(2026, 1, 1, 0, 0, 1) + 1) == ms(2026, 1, 1, 0, 0, 2)
    assert every.first_tick_after(ms(2026, 1, 1, 0, 0, 2)) == ms(2026, 1, 1, 0, 0, 4), "strictly after"
    anchored = spec(every_ms=3_600_000, start_at_ms=ms(2026, 1, 1, 0, 17))
    assert anchored.ticks(0, ms(2026, 1, 1, 2, 20), 10) == [ms(2026, 1, 1, 0, 17), ms(2026, 1, 1, 1, 17), ms(2026, 1, 1, 2, 17)]
    ended = spec(every_ms=3_600_000, end_at_ms=ms(2026, 1, 1, 1, 30))
    assert ended.first_tick_after(ms(2026, 1, 1, 1)) is None


def test_cron_ticks_fall_in_the_schedules_time_zone() -> None:
    tokyo = spec(cron="0 9 * * MON-FRI", timezone="Asia/Tokyo")
    friday_evening = ms(2026, 1, 2, 12)  # Friday 21:00 in Tokyo
    assert tokyo.local_time(tokyo.first_tick_after(friday_evening)) == "2026-01-05T09:00:00+09:00"  # type: ignore[arg-type]
    seconds = spec(cron="*/15 * * * * *")  # six fields: seconds first
    assert seconds.ticks(ms(2026, 1, 1), ms(2026, 1, 1, 0, 0, 45), 10) == [ms(2026, 1, 1, 0, 0, s) for s in (15, 30, 45)]


def test_jitter_is_the_same_every_time_it_is_asked_and_within_its_bound() -> None:
    jittery = spec(every_ms=60_000, jitter_ms=10_000)
    delays = [jittery.jitter_for(tick) for tick in range(0, 60_000 * 200, 60_000)]
    assert delays == [jittery.jitter_for(tick) for tick in range(0, 60_000 * 200, 60_000)]
    assert all(0 <= delay <= 10_000 for delay in delays) and len(set(delays)) > 100
    assert spec(every_ms=60_000).jitter_for(0) == 0


def test_durations_are_written_back_compactly() -> None:
    assert [format_duration_ms(v) for v in (0, 2000, 5_400_000, 1500, 86_400_000)] == ["0s", "2s", "1h30m", "1s500ms", "1d"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"cron": "* * *"}, "@scheduled cron: '* * *' is not a cron expression: Wrong number of fields"),
        ({}, "@scheduled cron: give either a cron expression or every="),
        ({"every": "0.5s"}, "@scheduled every: '0.5s' is shorter than the shortest interval"),
        ({"cron": "0 3 * * *", "timezone": "Europe/Atlantis"}, "@scheduled timezone: 'Europe/Atlantis' is not a time zone"),
        ({"cron": "0 3 * * *", "overlap": "sometimes"}, "@scheduled overlap: 'sometimes' is not an overlap policy"),
        ({"cron": "0 3 * * *", "catchup_window": "eventually"}, "@scheduled catchup_window: 'eventually' is not a duration"),
        ({"cron": "0 3 * * *", "id": "has space"}, "@scheduled id: 'has space' is not a schedule id"),
    ],
)
def test_a_bad_declaration_fails_where_it_is_written(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        durio.scheduled(**arguments)
    assert str(raised.value).startswith(message), raised.value


def test_declarations_need_what_their_target_needs() -> None:
    cart = durio.VirtualObject("Cart")

    @cart.handler()
    @durio.scheduled(every="1m")
    async def sweep(ctx: durio.ObjectContext) -> None: ...

    with pytest.raises(ValueError, match=r"Cart/sweep: Cart is a virtual object; name the key"):
        declared_schedules([cart])
    twice = durio.Service("Twice")

    @durio.scheduled(every="1m")  # above .handler() works too
    @twice.handler()
    @durio.scheduled(cron="0 * * * *")
    async def tick(ctx: durio.Context) -> None: ...

    with pytest.raises(ValueError, match=r"two schedules declared in code have the id 'Twice.tick'"):
        declared_schedules([twice])
    flow = durio.Workflow("Flow")

    @flow.main()
    async def run(ctx: durio.WorkflowContext) -> None: ...

    @flow.handler()
    @durio.scheduled(every="1m")
    async def poke(ctx: durio.WorkflowSharedContext) -> None: ...

    with pytest.raises(ValueError, match=r"not a shared handler"):
        declared_schedules([flow])


def test_durio_serve_refuses_an_app_whose_declared_schedule_cannot_be_made(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = tmp_path / "app.py"
    app.write_text(
        "import restate\ncart = restate.VirtualObject('Cart')\n\n@cart.handler()\n@restate.scheduled(every='1m')\n"
        "async def sweep(ctx) -> None: ...\n\nservices = [cart]\n"
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "durio.cli",
            "serve",
            str(app),
            "--data-dir",
            str(tmp_path / "data"),
            "--ingress",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert completed.returncode == 1
    assert (
        completed.stderr.strip()
        == "durio: @scheduled on Cart/sweep: Cart is a virtual object; name the key its schedule runs on (key=...)"
    )
    assert not (tmp_path / "data").exists(), "nothing was created"
