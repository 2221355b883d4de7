"""sdk-test-suite Ingress: the caller's headers reach the handler; raw bytes in, the same bytes out."""

from __future__ import annotations

import os
import uuid


async def test_headers_pass_through(ingress) -> None:
    response = await ingress.post(
        "/TestUtilsService/echoHeaders", headers={"idempotency-key": str(uuid.uuid4()), "x-my-custom-header": "x-my-custom-value"}
    )
    assert response.status_code == 200, response.text
    assert response.json().get("x-my-custom-header") == "x-my-custom-value"


async def test_raw_handler(ingress) -> None:
    body = os.urandom(100)
    response = await ingress.post(
        "/TestUtilsService/rawEcho",
        content=body,
        headers={"idempotency-key": str(uuid.uuid4()), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.content == body
