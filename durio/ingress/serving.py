"""Serving an ASGI app with hypercorn's Trio worker."""

from __future__ import annotations

import logging
import typing

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

log = logging.getLogger("durio.http")


def hypercorn_config(bind: str) -> Config:
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = logging.getLogger("durio.http.hypercorn")
    config.keep_alive_timeout = 75
    config.graceful_timeout = 2
    config.backlog = 1024
    return config


async def serve_http(app: typing.Any, bind: str, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `app` on `bind` (host:port); hands back the URL it listens on (useful with port 0)."""

    class _Relay:
        def started(self, urls: list[str]) -> None:
            task_status.started(urls[0] if urls else f"http://{bind}")

    await hypercorn_serve(app, hypercorn_config(bind), task_status=_Relay())  # type: ignore[arg-type]
