"""In-memory rendezvous between finished invocations and the HTTP requests waiting for them."""

from __future__ import annotations

import anyio

from durio.journal.entries import Failure


class ResultSlot:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: bytes | Failure | None = None

    async def wait(self) -> bytes | Failure:
        await self.event.wait()
        assert self.result is not None
        return self.result


class CompletionWaiters:
    def __init__(self) -> None:
        self._slots: dict[str, list[ResultSlot]] = {}

    def register(self, invocation_id: str) -> ResultSlot:
        slot = ResultSlot()
        self._slots.setdefault(invocation_id, []).append(slot)
        return slot

    def unregister(self, invocation_id: str, slot: ResultSlot) -> None:
        slots = self._slots.get(invocation_id)
        if slots is None:
            return
        try:
            slots.remove(slot)
        except ValueError:
            pass
        if not slots:
            del self._slots[invocation_id]

    def complete(self, invocation_id: str, result: bytes | Failure) -> None:
        for slot in self._slots.pop(invocation_id, ()):
            slot.result = result
            slot.event.set()

    def __len__(self) -> int:
        return sum(len(slots) for slots in self._slots.values())
