"""sdk-test-suite ProxyRequestSigning: with a request identity key (RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE)
the server signs its requests, and a deployment that requires that key runs them."""

from __future__ import annotations

import typing
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from durio.protocol.identity import public_key_id
from tests.conformance.client import call_ok

pytestmark = pytest.mark.not_applicable(
    ("embedded",), "embedded, the services run inside the server: no request crosses a network to be signed"
)


@pytest.fixture
async def signed_ingress(targets, mode: str) -> typing.AsyncIterator[httpx.AsyncClient]:
    pem = targets.base / "request-identity.pem"
    if not pem.exists():
        key = Ed25519PrivateKey.generate()
        pem.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    key_id = public_key_id(serialization.load_pem_private_key(pem.read_bytes(), None).public_key())  # type: ignore[arg-type]
    deployment = targets.deployment("signed-sdk", {"CONFORMANCE_IDENTITY_KEY": key_id})
    target = targets.get(mode, "signing", {"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(pem)}, deployment)
    async with httpx.AsyncClient(base_url=target.ingress_url, timeout=httpx.Timeout(60.0)) as client:
        yield client


async def test_request_signing_pass(signed_ingress) -> None:
    counter = str(uuid.uuid4())
    await call_ok(signed_ingress, "Counter", "add", 1, key=counter)
    assert await call_ok(signed_ingress, "Counter", "get", key=counter) == 1


async def test_an_unsigned_server_is_refused_by_that_deployment(signed_ingress, targets) -> None:
    # Not in the suite: the same deployment refuses a server without the key (so the test above proves signing).
    deployment = targets.deployment("signed-sdk")
    async with httpx.AsyncClient() as client:
        response = await client.get(
            deployment.ready_url.removesuffix("/health") + "/discover",
            headers={"accept": "application/vnd.restate.endpointmanifest.v3+json"},
        )
    assert response.status_code == 401, response.text
