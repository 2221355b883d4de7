"""Wall-clock time read through the event loop's clock, so a test's `autojump_clock` moves durable timers too.

Durable timers are stored as wall-clock milliseconds. At start the clock pins
one wall-clock reading to one loop reading (anyio.current_time); from then on wall time is the
pinned reading plus the loop's elapsed time. With a real clock this is wall time
(minus any later NTP step); with Trio's autojump clock (tests' `autojump_clock`) a day-long
sleep becomes a jump of the virtual clock and the handler resumes at once.
"""

from __future__ import annotations

import math
import time

import anyio


class Clock:
    def __init__(self, wall_start_s: float | None = None) -> None:
        self._wall_start = time.time() if wall_start_s is None else wall_start_s
        self._loop_start = anyio.current_time()

    def now_ms(self) -> int:
        return int((self._wall_start + anyio.current_time() - self._loop_start) * 1000)

    def due_ms(self, delay_ms: int) -> int:
        """When a timer of `delay_ms` from now is due: rounded up, so it never fires early."""
        return math.ceil((self._wall_start + anyio.current_time() - self._loop_start) * 1000) + delay_ms

    def now_s(self) -> float:
        return self._wall_start + anyio.current_time() - self._loop_start

    def deadline_for(self, wall_ms: int) -> float:
        """The loop deadline at which the wall clock reads `wall_ms`."""
        return self._loop_start + wall_ms / 1000 - self._wall_start

    async def sleep_until_ms(self, wall_ms: int) -> None:
        await anyio.sleep_until(self.deadline_for(wall_ms))
