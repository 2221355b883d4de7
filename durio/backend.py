"""Which event loop durio runs on, and starting it: Trio (the default), asyncio, or asyncio on uvloop.

durio is written against AnyIO, so the runtime, the HTTP listeners and the handlers run on whichever
loop starts them. Trio stays the default (its cancellation and time-skipping tests are what durio was
built on); asyncio is there for handlers that use asyncio libraries (aiohttp, asyncpg, vendor SDKs,
`asyncio.gather`), and uvloop is asyncio with a faster loop (`pip install durio[uvloop]`).
"""

from __future__ import annotations

import os
import typing

import anyio
import sniffio

BACKENDS = ("trio", "asyncio", "uvloop")
DEFAULT_BACKEND = "trio"
BACKEND_ENV = "DURIO_BACKEND"

T = typing.TypeVar("T")


class BackendError(ValueError):
    """An unknown backend, or one whose library is not installed."""


def choose_backend(value: str | None = None) -> str:
    """The argument, else DURIO_BACKEND, else trio; checked (uvloop must be installed)."""
    name = (value or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND).strip().lower()
    if name not in BACKENDS:
        source = "backend" if value else BACKEND_ENV
        raise BackendError(f"{source}: {name!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    if name == "uvloop":
        try:
            import uvloop  # noqa: F401, PLC0415 (an optional extra)
        except ImportError:
            raise BackendError("the uvloop backend needs uvloop: pip install 'durio[uvloop]'") from None
    return name


def run(fn: typing.Callable[..., typing.Awaitable[T]], *args: typing.Any, backend: str = DEFAULT_BACKEND) -> T:
    """Run `fn(*args)` to its end on a new event loop of this backend (see choose_backend)."""
    if backend == "uvloop":
        return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(fn, *args, backend=backend)


def running_on_trio() -> bool:
    """Whether the calling task runs on Trio (False: asyncio, whatever its loop)."""
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


class WrongEventLoop(RuntimeError):
    """Handler code that needs asyncio ran on Trio; the message says how to run it on asyncio."""


def explain_wrong_loop(error: BaseException) -> BaseException:
    """`error`, or, when it is asyncio code failing on Trio, a WrongEventLoop that says to run on asyncio.

    Called only for errors of async handler code run on this loop (not of sync steps in threads, where
    asyncio has no loop on any backend). The signs are the two ways asyncio fails without its loop:
    `asyncio.sleep` and friends find no running loop, and an asyncio future awaited on Trio is refused
    by Trio's scheduler ("unrecognized yield message").
    """
    if not running_on_trio() or not isinstance(error, (RuntimeError, TypeError)) or isinstance(error, WrongEventLoop):
        return error
    text = str(error)
    if not ("no running event loop" in text or "no current event loop" in text or "unrecognized yield message" in text):
        return error
    explained = WrongEventLoop(
        f"this handler uses asyncio, but durio runs it on Trio ({type(error).__name__}: {text.splitlines()[0]}). "
        "Run durio on asyncio: `durio serve --backend asyncio` (or DURIO_BACKEND=asyncio, "
        "durio.serve(..., backend='asyncio')); serve durio.app under an asyncio server (hypercorn's default worker, uvicorn)"
    )
    explained.__cause__ = error
    return explained


def end_abandoned_waiter() -> typing.NoReturn:
    """End a task the handler left waiting on a durable future after its attempt ended.

    Only asyncio has such tasks (asyncio.gather, wait_for and ensure_future make tasks that outlive the
    handler when it stops early); they end as cancelled, which asyncio does not report as an error.
    On Trio every wait is inside the attempt's task group, so this is the attempt aborting.
    """
    if running_on_trio():
        from durio.sdk.errors import AttemptAborted  # noqa: PLC0415 (the SDK imports nothing of this module)

        raise AttemptAborted("the attempt already ended")
    import asyncio  # noqa: PLC0415

    raise asyncio.CancelledError("the attempt this wait belonged to has ended")


def ignore_cancelled_socket_wakeups() -> None:
    """On asyncio, stop the loop logging anyio's harmless race on Unix sockets as an error.

    anyio's asyncio backend waits for a Unix socket with a future that the socket's reader (or writer) callback
    resolves. When the waiting task is cancelled in the same loop iteration as the socket becomes ready (a
    sibling worker's channel closing), the callback still runs and finds the future cancelled: asyncio logs
    "Exception in callback Future.set_result(None) ... InvalidStateError", though nothing is lost. Only that
    exception from that callback is dropped; everything else reaches the loop's handler as before. No-op on Trio.
    """
    if running_on_trio():
        return
    import asyncio  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, typing.Any]) -> None:
        callback = getattr(context.get("handle"), "_callback", None)
        if (
            isinstance(context.get("exception"), asyncio.InvalidStateError)
            and getattr(callback, "__qualname__", "") == "Future.set_result"
        ):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
