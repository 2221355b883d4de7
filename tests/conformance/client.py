"""What the suite's Java ingress client does, as the HTTP requests it makes."""

from __future__ import annotations

import json
import typing
import uuid

import httpx
import anyio


def path(service: str, handler: str, key: str | None = None) -> str:
    return f"/{service}/{key}/{handler}" if key is not None else f"/{service}/{handler}"


async def call(
    client: httpx.AsyncClient,
    service: str,
    handler: str,
    body: typing.Any = None,
    key: str | None = None,
    idempotent: bool = True,
    idempotency_key: str | None = None,
) -> httpx.Response:
    """A call (`.call()`); `idempotent` adds a fresh idempotency key, as the suite's idempotentCallOptions."""
    headers = _headers(body)
    if idempotency_key or idempotent:
        headers["idempotency-key"] = idempotency_key or str(uuid.uuid4())
    content = b"" if body is None else json.dumps(body).encode()
    return await client.post(path(service, handler, key), content=content, headers=headers)


def _headers(body: typing.Any) -> dict[str, str]:
    # No body, no content type: Restate refuses one for a handler that takes no input.
    return {} if body is None else {"content-type": "application/json"}


async def call_ok(
    client: httpx.AsyncClient, service: str, handler: str, body: typing.Any = None, key: str | None = None, **options: typing.Any
) -> typing.Any:
    response = await call(client, service, handler, body, key, **options)
    assert response.status_code == 200, f"{service}/{handler}: {response.status_code} {response.text}"
    return response.json() if response.content else None


async def send(
    client: httpx.AsyncClient,
    service: str,
    handler: str,
    body: typing.Any = None,
    key: str | None = None,
    idempotent: bool = True,
) -> dict[str, typing.Any]:
    """A one-way send (`.send()`): answers {"invocationId", "status"}."""
    headers = _headers(body)
    if idempotent:
        headers["idempotency-key"] = str(uuid.uuid4())
    content = b"" if body is None else json.dumps(body).encode()
    response = await client.post(path(service, handler, key) + "/send", content=content, headers=headers)
    assert response.status_code == 202, f"send {service}/{handler}: {response.status_code} {response.text}"
    return typing.cast(dict[str, typing.Any], response.json())


async def eventually(check: typing.Callable[[], typing.Awaitable[typing.Any]], timeout: float = 30.0) -> typing.Any:
    """Awaitility's untilAsserted: retry `check` until it stops raising, or raise its last error."""
    with anyio.move_on_after(timeout):
        while True:
            try:
                return await check()
            except (AssertionError, httpx.HTTPError):
                await anyio.sleep(0.1)
    return await check()


def proxy_request(
    service: str, handler: str, message: typing.Any, key: str | None = None, **extra: typing.Any
) -> dict[str, typing.Any]:
    """Proxy.ProxyRequest: the message is the JSON bytes as an array of numbers."""
    request = {
        "serviceName": service,
        "virtualObjectKey": key,
        "handlerName": handler,
        "message": list(json.dumps(message).encode()),
    }
    request.update({k: v for k, v in extra.items() if v is not None})
    return request
