"""`durio.app` under an asyncio server (hypercorn's default worker, uvicorn): Trio as a guest of the asyncio loop.

durio's endpoint is Trio code; the official SDK's documented layout serves `app = restate.app([...])` with
`hypercorn app:app`, whose default worker is asyncio. Under asyncio the app starts Trio in guest mode
(`trio.lowlevel.start_guest_run`) on the loop's own thread, and each request runs as a Trio task: its
`receive` and `send` are the server's, each call handed to the asyncio loop and awaited from Trio. Nothing
blocks either loop, and no thread is spent per request. The lifespan's shutdown ends the guest run.

Rejected: a Trio loop in a thread of its own, which would cost a thread hop per message and outlive the
server that never says when it stops; answering 500 under asyncio, which breaks the SDK's own layout.
"""

from __future__ import annotations

import asyncio
import typing

import outcome
import trio

from durio.ingress.http import Receive, Scope, Send

TrioApp = typing.Callable[[Scope, Receive, Send], typing.Awaitable[None]]


class AsyncioGuest:
    """Runs a Trio ASGI app's requests as Trio tasks of a guest run inside the current asyncio loop."""

    def __init__(self, app: TrioApp) -> None:
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready: asyncio.Future[None] | None = None
        self._finished: asyncio.Future[outcome.Outcome[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._started()
        assert self._token is not None and self._nursery is not None
        loop = typing.cast(asyncio.AbstractEventLoop, self._loop)
        done: asyncio.Future[None] = loop.create_future()
        cancel_scope = trio.CancelScope()
        nursery = self._nursery

        async def request() -> None:
            try:
                with cancel_scope:
                    await self.app(scope, self._from_trio(receive), self._from_trio(send))
            except BaseException as exc:  # handed to the asyncio side: an error must not end the guest's nursery
                if not done.done():
                    done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(f"the request ended with {exc!r}"))
                if isinstance(exc, trio.Cancelled):  # the guest run is ending: let the cancellation through
                    raise
                return
            if not done.done():
                done.set_result(None)

        self._token.run_sync_soon(lambda: nursery.start_soon(request))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:  # the client went away: end the Trio task too
            self._token.run_sync_soon(cancel_scope.cancel)
            raise

    def _from_trio(self, call: typing.Callable[..., typing.Any]) -> typing.Callable[..., typing.Awaitable[typing.Any]]:
        """`call` (an asyncio coroutine function), made awaitable from Trio: it runs as an asyncio task."""
        loop = typing.cast(asyncio.AbstractEventLoop, self._loop)
        token = typing.cast(trio.lowlevel.TrioToken, self._token)

        async def bridged(*args: typing.Any) -> typing.Any:
            arrived = trio.Event()
            task = loop.create_task(call(*args))
            # Set from Trio's side: the task's callbacks run outside the guest's turn on the loop.
            task.add_done_callback(lambda _: token.run_sync_soon(arrived.set))
            try:
                await arrived.wait()
            except BaseException:
                task.cancel()
                raise
            return task.result()

        return bridged

    async def _started(self) -> None:
        if self._ready is None:
            loop = self._loop = asyncio.get_running_loop()
            self._ready = loop.create_future()
            self._finished = loop.create_future()
            ready, finished = self._ready, self._finished

            async def guest() -> None:
                self._token = trio.lowlevel.current_trio_token()
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    ready.set_result(None)
                    await trio.sleep_forever()

            def ended(result: outcome.Outcome[None]) -> None:
                if not finished.done():
                    finished.set_result(result)
                if not ready.done():  # it failed before it started: say so to whoever waits for it
                    ready.set_exception(RuntimeError(f"durio's Trio guest run ended at its start: {result!r}"))

            trio.lowlevel.start_guest_run(
                guest, run_sync_soon_threadsafe=loop.call_soon_threadsafe, done_callback=ended,
                host_uses_signal_set_wakeup_fd=True,  # asyncio installs its own for its signal handlers
            )
        await asyncio.shield(self._ready)

    async def stop(self) -> None:
        """End the guest run: its requests are cancelled."""
        if self._ready is None or self._finished is None:
            return
        if self._token is not None and self._nursery is not None:
            nursery = self._nursery
            self._token.run_sync_soon(nursery.cancel_scope.cancel)
        await asyncio.shield(self._finished)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
