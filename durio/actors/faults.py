"""Fault injection: crash the runtime at the k-th time it reaches a named point.

The runtime calls `faults.hit(point)` at the moments where a crash is most
interesting: before and after a journal batch is durable, around a `run`
step's side effect, around creating a callee, firing a timer, writing state,
recording a notification and completing an invocation. A plan that reaches
its crash point halts the writer (nothing more becomes durable, as after a
`kill -9`) and raises `InjectedCrash`, which no handler or supervisor catches,
so the whole runtime unwinds. A test then opens a new runtime on the same
files and checks the outcome.

Outside tests `faults` is None and each site costs one attribute check.
"""

from __future__ import annotations

import collections
import typing

POINTS = (
    "commit.before",  # a batch of writes is about to become durable
    "commit.after",  # a batch is durable; nothing it implies has happened yet
    "run.before_effect",  # a run step's action is about to be called
    "run.after_effect",  # the action returned; its result is not journaled yet
    "call.before_create",  # a call or send is recorded; the callee is not created yet
    "call.after_create",  # the callee exists, durably; the caller has not moved on
    "timer.before_fire",
    "timer.after_fire",
    "state.before_write",
    "state.after_write",
    "notification.before_durable",
    "notification.after_durable",
    "invocation.before_complete",
    "invocation.after_complete",
    "message.before_apply",  # messages to a partition wait; their owner is about to apply them
    "message.after_apply",  # they are applied (and deleted), durably; nothing they imply has happened yet
)


class InjectedCrash(BaseException):
    """The runtime crashed on purpose (a test's fault plan). Never caught by runtime code."""

    def __init__(self, point: str, occurrence: int) -> None:
        super().__init__(f"injected crash at the {occurrence}th '{point}'")
        self.point = point
        self.occurrence = occurrence


class FaultPlan:
    """Counts every point reached; crashes at (point, occurrence) if given one."""

    def __init__(self, crash_at: tuple[str, int] | None = None) -> None:
        if crash_at is not None and crash_at[0] not in POINTS:
            raise ValueError(f"unknown fault point {crash_at[0]!r}; the points are {', '.join(POINTS)}")
        self.crash_at = crash_at
        self.counts: collections.Counter[str] = collections.Counter()
        self.crashed = False
        self.on_crash: typing.Callable[[], None] | None = None  # the runtime halts its writer here

    def hit(self, point: str) -> None:
        if self.crashed:
            raise InjectedCrash(point, self.counts[point])
        self.counts[point] += 1
        if self.crash_at is not None and (point, self.counts[point]) == self.crash_at:
            self.crashed = True
            if self.on_crash is not None:
                self.on_crash()
            raise InjectedCrash(point, self.counts[point])
