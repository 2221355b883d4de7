"""The official SDK's `restate.ext.turnstile`: let tasks through one at a time, in a given order of ids."""

from __future__ import annotations

import anyio

from durio.sdk.errors import SdkInternalException


class Turnstile:
    """`wait_for(id)` returns once every id before it has been let through (`allow_next_after`)."""

    def __init__(self, ids: list[str]) -> None:
        self.turns = dict(zip(ids, ids[1:]))  # each id -> the id whose turn comes after it
        self.events = {id_: anyio.Event() for id_ in ids}
        self.canceled = False
        if ids:
            self.events[ids[0]].set()  # the first id may go at once

    async def wait_for(self, id: str) -> None:  # noqa: A002 (the SDK's parameter name)
        await self.events[id].wait()
        if self.canceled:
            raise SdkInternalException() from None

    def allow_next_after(self, id: str) -> None:  # noqa: A002
        next_id = self.turns.get(id)
        if next_id is not None:
            self.events[next_id].set()

    def cancel_all_after(self, id: str) -> None:  # noqa: A002
        self.canceled = True
        next_id = self.turns.get(id)
        while next_id is not None:
            self.events[next_id].set()
            next_id = self.turns.get(next_id)

    def cancel_all(self) -> None:
        self.canceled = True
        for event in self.events.values():
            event.set()


__all__ = ["Turnstile"]
