"""The trivial-ASGI-on-hypercorn ceiling: an ASGI app that answers 200 "ok", served the way durio serves.

    python benchmarks/trivial_asgi.py 127.0.0.1:18091

Between the client's ceiling (trivial_server.py) and durio sits the HTTP stack
durio is built on. This app does no work at all, so its rate is the most any
ASGI app can get from hypercorn's Trio worker with durio's settings on this
machine: durio's gap to it is durio's own cost, the gap above it is hypercorn's.
"""

from __future__ import annotations

import logging
import signal
import sys
import typing

import anyio
import trio
from hypercorn.trio import serve

RESPONSE_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}
RESPONSE_BODY = {"type": "http.response.body", "body": b"ok"}


async def ok_app(scope: dict[str, typing.Any], receive: typing.Any, send: typing.Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    # Read the request body like a real app would, so POSTs leave the connection reusable.
    while (await receive()).get("more_body", False):
        pass
    await send(RESPONSE_START)
    await send(RESPONSE_BODY)


def durio_like_config(bind: str) -> typing.Any:
    """durio's own hypercorn settings when durio still serves with hypercorn; otherwise the ones it had."""
    try:
        from durio.ingress.serving import hypercorn_config  # noqa: PLC0415

        return hypercorn_config(bind), "durio.ingress.serving.hypercorn_config"
    except ImportError:
        from hypercorn.config import Config  # noqa: PLC0415

        config = Config()
        config.bind = [bind]
        config.accesslog = None
        config.errorlog = logging.getLogger("bench.hypercorn")
        config.keep_alive_timeout = 75
        config.graceful_timeout = 2
        config.backlog = 1024
        return config, "benchmarks' copy of durio's original settings"


async def main(bind: str, driver: str) -> None:
    """`stock`: hypercorn.trio.serve, hypercorn's own Trio worker. `durio`: hypercorn's protocol driven by
    durio.ingress.serving, the way durio serves its ingress."""
    config, origin = durio_like_config(bind)
    logging.getLogger(config.errorlog.name if isinstance(config.errorlog, logging.Logger) else "hypercorn").setLevel(
        logging.WARNING
    )
    print(f"trivial ASGI app on hypercorn ({driver} Trio driver, {origin}) at http://{bind}", file=sys.stderr, flush=True)
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as nursery:
            if driver == "durio":
                from durio.ingress.serving import serve_http  # noqa: PLC0415

                nursery.start_soon(serve_http, ok_app, bind)
            else:
                nursery.start_soon(serve, ok_app, config)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                return


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:18091", sys.argv[2] if len(sys.argv) > 2 else "stock")
