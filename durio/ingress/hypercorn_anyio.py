"""hypercorn's TaskGroup and WorkerContext on AnyIO, so that its sans-IO protocol runs on Trio and asyncio alike.

hypercorn ships these twice, once per loop (`hypercorn.trio`, `hypercorn.asyncio`); durio's
connection loop (durio.ingress.serving) is AnyIO code, so it needs them once, on AnyIO. They follow
hypercorn's trio versions, with one difference: an app's receive queue is closed when the app ends,
and what the protocol still puts there afterwards (a disconnect) is dropped instead of waiting for a
reader that is gone.
"""

from __future__ import annotations

import typing

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from hypercorn.config import Config
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, ASGISendEvent, Scope

SendToServer = typing.Callable[[ASGISendEvent | None], typing.Awaitable[None]]


async def _handle(
    app: AppWrapper,
    config: Config,
    scope: Scope,
    to_app: MemoryObjectSendStream[ASGIReceiveEvent],
    receive: MemoryObjectReceiveStream[ASGIReceiveEvent],
    send: SendToServer,
) -> None:
    try:
        with to_app, receive:
            await app(scope, receive.receive, send, anyio.to_thread.run_sync, anyio.from_thread.run)
    except anyio.get_cancelled_exc_class():
        raise
    except BaseExceptionGroup as error:
        _, others = error.split(anyio.get_cancelled_exc_class())
        if others is None:
            raise
        await config.log.exception("Error in ASGI Framework")
    except Exception:
        await config.log.exception("Error in ASGI Framework")
    finally:
        await send(None)


class TaskGroup:
    """hypercorn.typing.TaskGroup: the tasks of one connection (its apps, its writer)."""

    def __init__(self) -> None:
        self._manager: anyio.abc.TaskGroup | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    async def spawn_app(
        self, app: AppWrapper, config: Config, scope: Scope, send: SendToServer
    ) -> typing.Callable[[ASGIReceiveEvent], typing.Awaitable[None]]:
        to_app, app_receive = anyio.create_memory_object_stream[ASGIReceiveEvent](config.max_app_queue_size)

        async def put(event: ASGIReceiveEvent) -> None:
            try:
                await to_app.send(event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the app has ended: nobody will read it

        self.spawn(_handle, app, config, scope, to_app, app_receive, send)
        return put

    def spawn(self, func: typing.Callable[..., typing.Coroutine[typing.Any, typing.Any, typing.Any]], *args: typing.Any) -> None:
        assert self._task_group is not None
        self._task_group.start_soon(func, *args)

    async def __aenter__(self) -> "TaskGroup":
        self._manager = anyio.create_task_group()
        self._task_group = await self._manager.__aenter__()
        return self

    async def __aexit__(self, *exc_info: typing.Any) -> None:
        assert self._manager is not None
        try:
            await self._manager.__aexit__(*exc_info)
        finally:
            self._manager = self._task_group = None


class EventWrapper:
    """hypercorn.typing.Event (its verbs are async) over an anyio.Event."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    async def clear(self) -> None:
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()

    async def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class WorkerContext:
    """hypercorn.typing.WorkerContext for HTTP/1.1 (no QUIC, so no single tasks)."""

    event_class = EventWrapper

    def __init__(self, max_requests: int | None) -> None:
        self.max_requests = max_requests
        self.requests = 0
        self.terminate = self.event_class()
        self.terminated = self.event_class()

    async def mark_request(self) -> None:
        if self.max_requests is None:
            return
        self.requests += 1
        if self.requests > self.max_requests:
            await self.terminate.set()

    @staticmethod
    async def sleep(wait: float) -> None:
        await anyio.sleep(wait)

    @staticmethod
    def time() -> float:
        return anyio.current_time()
