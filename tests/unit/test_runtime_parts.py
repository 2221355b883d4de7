"""The runtime is whole once constructed: no part of it is a None placeholder waiting for run() to fill it in."""

from __future__ import annotations

import pathlib

import anyio

from durio.actors.clock import Clock
from durio.actors.effects import Sequences
from durio.actors.registry import Registry
from durio.actors.runtime import Runtime, RuntimeConfig
from durio.storage import open_store

# None by configuration, not by construction order: one process (no sibling workers), no OpenTelemetry, no fault plan.
OPTIONAL = {"peers", "tracing", "faults"}


async def test_a_runtime_just_constructed_has_every_part(tmp_path: pathlib.Path) -> None:
    config = RuntimeConfig()
    async with open_store(tmp_path / "data", sync=False) as store, anyio.create_task_group() as supervisor:
        runtime = Runtime(store, Registry(), config, supervisor, Clock(), Sequences(7), {})
        parts = {"runtime": runtime, "router": runtime.router, "timers": runtime.timers, "schedules": runtime.schedules}
        # Private attributes may be None as a state (no one waits for room, every timer is in memory); parts may not.
        placeholders = [
            f"{name}.{attribute}"
            for name, part in parts.items()
            for attribute, value in vars(part).items()
            if value is None and attribute not in OPTIONAL and not attribute.startswith("_")
        ]
        assert placeholders == []
        assert runtime.schedules._nursery is supervisor, "the scheduler watches in the runtime's supervisor from the start"
        assert runtime.transitions.seq is runtime.sequences and runtime.sequences.next() == 7, (
            "numbers from the high-water mark on"
        )
        assert runtime.clock.now_ms() > 0 and runtime.router.actors == {}
