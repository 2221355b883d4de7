"""The web UI's static files and the Prometheus endpoint, mounted on the admin app.

The UI is plain HTML, CSS and JavaScript shipped inside the package: no Node
build step to run it. It reads everything from the admin API.
"""

from __future__ import annotations

import importlib.resources
import typing

from durio.actors.runtime import Runtime
from durio.asgi import Receive, Scope, Send, respond
from durio.ingress.metrics import MetricsRenderer

_CONTENT_TYPES = {
    "index.html": b"text/html; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "actions.js": b"text/javascript; charset=utf-8",
    "deployments.js": b"text/javascript; charset=utf-8",
    "style.css": b"text/css; charset=utf-8",
    "schedules.js": b"text/javascript; charset=utf-8",
}


def _load_assets() -> dict[str, bytes]:
    folder = importlib.resources.files("durio.ingress") / "ui"
    return {name: (folder / name).read_bytes() for name in _CONTENT_TYPES}


class UiAndMetricsRoutes:
    """Extra routes of the admin app: /ui/..., /metrics."""

    def __init__(self, runtime: Runtime) -> None:
        self._assets = _load_assets()
        self._metrics = MetricsRenderer(runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, segments: list[str]) -> bool:
        if not segments or scope["method"] not in ("GET", "HEAD"):
            if not segments and scope["method"] == "GET":
                await respond(send, 307, headers=[(b"location", b"/ui/")])
                return True
            return False
        if segments == ["metrics"]:
            body = await self._metrics.render()
            await respond(send, 200, body, b"text/plain; version=0.0.4; charset=utf-8")
            return True
        if segments[0] != "ui":
            return False
        if scope["path"] == "/ui":
            await respond(send, 307, headers=[(b"location", b"/ui/")])
            return True
        name = segments[1] if len(segments) == 2 else "index.html"
        if len(segments) > 2 or name not in self._assets:
            return False
        await respond(send, 200, self._assets[name], _CONTENT_TYPES[name], headers=[(b"cache-control", b"no-cache")])
        return True


def admin_routes(runtime: Runtime) -> typing.Callable[..., typing.Awaitable[bool]]:
    return UiAndMetricsRoutes(runtime)
