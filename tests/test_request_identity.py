"""Restate's request identity: `durio.app(..., identity_keys=[...])` runs only requests signed by a Restate
server holding the matching private key (RED-TEAM B5), and a durio server signs its own requests.

Tokens are made here with `cryptography` directly, not with durio's signer, and every verdict of
durio's verifier is checked against the official Python SDK's own verifier (restate-sdk's
PyIdentityVerifier, the Rust sdk-shared-core), so "accepted exactly when the official SDK accepts"
is tested rather than assumed. Side effects are counted: a refused request must not have run a step.
"""

from __future__ import annotations

import base64
import json
import logging
import pathlib
import time
import typing

import httpx
import pytest
import anyio
import anyio.abc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import durio as restate
from durio import ids
from durio.cli import build_parser
from durio.ingress.serving import serve_http
from durio.protocol import messages as m
from durio.protocol.framing import FrameDecoder, encode
from durio.protocol.identity import (
    IdentityError,
    IdentityKeyError,
    IdentityVerifier,
    RequestSigner,
    audience_of,
    b58decode,
    b58encode,
)
from tests.apps import identity_app
from tests.conftest import start_in_process
from tests.remote_peers import RestateServer, hypercorn_deployment

M = m.MESSAGES
INVOCATION_V5 = "application/vnd.restate.invocation.v5"

# The Restate server's own test vector (crates/service-client, request_identity v1): this PKCS#8 key's
# identity is the kid below.
RESTATE_TEST_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPe++4ZTPQDF81otpoU/mOGHC2vOAVp9WbiCblvn3nXO
-----END PRIVATE KEY-----
"""
RESTATE_TEST_KID = "publickeyv1_AfQwmwfgEZhrWpvv8N52SHpRtZqGGaFr4AZN6qtYWSiY"


# ---------------------------------------------------------------- tokens made by hand


class Key:
    """A fresh Ed25519 key pair, and JWTs signed with it the way a Restate server signs them (or not quite)."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = "publickeyv1_" + b58encode(raw)

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def token(
        self,
        aud: typing.Any = "/invoke/Bank/payout",
        *,
        now: int | None = None,
        drop: tuple[str, ...] = (),
        header: dict[str, typing.Any] | None = None,
        **claims: typing.Any,
    ) -> str:
        now = int(time.time()) if now is None else now
        body = {"aud": aud, "exp": now + 60, "iat": now, "nbf": now - 60, **claims}
        for name in drop:
            body.pop(name)
        head = b64(json.dumps(header or {"typ": "JWT", "alg": "EdDSA", "kid": self.kid}).encode())
        message = f"{head}.{b64(json.dumps(body).encode())}"
        return f"{message}.{b64(self.private.sign(message.encode()))}"

    def headers(self, aud: str = "/invoke/Bank/payout", **claims: typing.Any) -> dict[str, str]:
        return {"x-restate-signature-scheme": "v1", "x-restate-jwt-v1": self.token(aud, **claims)}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(token: str) -> dict[str, str]:
    return {"x-restate-signature-scheme": "v1", "x-restate-jwt-v1": token}


def tamper(token: str) -> str:
    head, claims, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["aud"] = "/invoke/Bank/deposit"
    return f"{head}.{b64(json.dumps(forged).encode())}.{signature}"


# ---------------------------------------------------------------- the verifier, against the official SDK's


# KEY signs and is configured; SPARE is configured too but signs nothing; OTHER is never configured.
KEY, SPARE, OTHER = Key(), Key(), Key()
PAYOUT = "/invoke/Bank/payout"
Headers = typing.Callable[[], dict[str, str]]


def now() -> int:
    return int(time.time())


# (case, headers, path): every one is checked against the official SDK's verdict; the name says which it is.
# Tokens are made when a test runs, not when the module is collected: they are valid for a minute.
CASES: list[tuple[str, Headers, str]] = [
    ("ok", lambda: KEY.headers(), PAYOUT),
    ("ok: under a mount prefix", lambda: KEY.headers(), "/restate/v1" + PAYOUT),
    ("ok: discovery", lambda: KEY.headers("/discover"), "/discover"),
    ("ok: discovery under a prefix", lambda: KEY.headers("/discover"), "/a/b/discover"),
    ("ok: aud a list holding the path", lambda: signed(KEY.token(["/elsewhere", PAYOUT])), PAYOUT),
    ("ok: no iat (not required)", lambda: signed(KEY.token(drop=("iat",))), PAYOUT),
    ("ok: float times", lambda: signed(KEY.token(exp=now() + 30.4, nbf=now() - 30.0)), PAYOUT),
    ("ok: any kid", lambda: signed(KEY.token(header={"alg": "EdDSA", "kid": "somebody-else"})), PAYOUT),
    ("refused: other key", lambda: OTHER.headers(), PAYOUT),
    ("refused: other audience", lambda: KEY.headers("/invoke/Bank/deposit"), PAYOUT),
    ("refused: discovery token on invoke", lambda: KEY.headers("/discover"), PAYOUT),
    ("refused: full path as audience under a prefix", lambda: KEY.headers("/p" + PAYOUT), "/p" + PAYOUT),
    ("refused: aud a list without the path", lambda: signed(KEY.token(["/invoke/Bank/deposit"])), PAYOUT),
    ("refused: expired", lambda: signed(KEY.token(exp=now() - 5)), PAYOUT),
    ("refused: not yet valid", lambda: signed(KEY.token(nbf=now() + 30)), PAYOUT),
    ("refused: no exp", lambda: signed(KEY.token(drop=("exp",))), PAYOUT),
    ("refused: no nbf", lambda: signed(KEY.token(drop=("nbf",))), PAYOUT),
    ("refused: no aud", lambda: signed(KEY.token(drop=("aud",))), PAYOUT),
    ("refused: exp a string", lambda: signed(KEY.token(exp=str(now() + 60))), PAYOUT),
    ("refused: nbf negative", lambda: signed(KEY.token(nbf=-1)), PAYOUT),
    ("refused: exp a boolean", lambda: signed(KEY.token(exp=True)), PAYOUT),
    ("refused: alg HS256", lambda: signed(KEY.token(header={"alg": "HS256"})), PAYOUT),
    ("refused: alg none", lambda: signed(KEY.token(header={"alg": "none"})), PAYOUT),
    ("refused: tampered claims", lambda: signed(tamper(KEY.token())), "/invoke/Bank/deposit"),
    ("refused: unsigned scheme", lambda: {"x-restate-signature-scheme": "unsigned"}, PAYOUT),
    ("refused: unknown scheme", lambda: {"x-restate-signature-scheme": "v2", "x-restate-jwt-v1": KEY.token()}, PAYOUT),
    ("refused: no scheme header", lambda: {"x-restate-jwt-v1": KEY.token()}, PAYOUT),
    ("refused: no jwt header", lambda: {"x-restate-signature-scheme": "v1"}, PAYOUT),
    ("refused: no headers", lambda: {}, PAYOUT),
    ("refused: malformed token", lambda: signed("not-a-token"), PAYOUT),
    ("refused: two parts", lambda: signed(".".join(KEY.token().split(".")[:2])), PAYOUT),
    ("refused: bad base64", lambda: signed(KEY.token().replace(".", ".$", 1)), PAYOUT),
    ("refused: padded base64", lambda: signed(KEY.token() + "=="), PAYOUT),
    ("refused: not ASCII", lambda: signed(KEY.token().replace(".", ".é", 1)), PAYOUT),
    ("refused: empty signature", lambda: signed(KEY.token().rsplit(".", 1)[0] + "."), PAYOUT),
]


def official_verdict(keys: list[str], headers: dict[str, str], path: str) -> bool:
    from restate._internal import IdentityVerificationException, PyIdentityVerifier  # type: ignore[import-not-found]

    try:
        PyIdentityVerifier(keys).verify(list(headers.items()), path)
    except IdentityVerificationException:
        return False
    return True


def durio_verdict(keys: list[str], headers: dict[str, str], path: str) -> str | None:
    try:
        IdentityVerifier(keys).verify([(k.encode(), v.encode()) for k, v in headers.items()], path)
    except IdentityError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("case, make_headers, path", CASES, ids=[case[0] for case in CASES])
def test_the_verifier_accepts_exactly_what_the_official_sdk_accepts(case: str, make_headers: Headers, path: str) -> None:
    expected = case.startswith("ok")
    headers = make_headers()
    assert official_verdict([KEY.kid], headers, path) is expected, "the case's name disagrees with the official SDK"
    assert official_verdict([SPARE.kid, KEY.kid], headers, path) is expected
    refusal = durio_verdict([KEY.kid], headers, path)
    assert (refusal is None) is expected, refusal
    # With several keys a token signed by any of them is accepted.
    assert (durio_verdict([SPARE.kid, KEY.kid], headers, path) is None) is expected


def test_a_durio_servers_signature_verifies_with_the_official_sdk_and_restates_test_key() -> None:
    signer = RequestSigner.from_pem(RESTATE_TEST_PEM)
    assert signer.key_id == RESTATE_TEST_KID
    for path in ("/invoke/Bank/payout", "/discover"):
        headers = signer.headers(path)
        assert official_verdict([RESTATE_TEST_KID], headers, path)
        assert durio_verdict([RESTATE_TEST_KID], headers, path) is None
    # The claims are Restate's: a minute either side of now, for the path.
    token = signer.headers("/discover", now_s=1_000_000)["x-restate-jwt-v1"]
    head, claims, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"typ": "JWT", "alg": "EdDSA", "kid": RESTATE_TEST_KID}
    assert json.loads(base64.urlsafe_b64decode(claims + "==")) == {
        "aud": "/discover",
        "exp": 1_000_060,
        "iat": 1_000_000,
        "nbf": 999_940,
    }


def test_refusals_say_why() -> None:
    def why(headers: dict[str, str], path: str = "/invoke/Bank/payout") -> str:
        refusal = durio_verdict([KEY.kid], headers, path)
        assert refusal is not None
        return refusal

    assert "no x-restate-signature-scheme header" in why({})
    assert "unsigned" in why({"x-restate-signature-scheme": "unsigned"})
    assert "no x-restate-jwt-v1 header" in why({"x-restate-signature-scheme": "v1"})
    assert "does not verify with the configured identity key" in why(OTHER.headers())
    assert "signed for '/invoke/Bank/deposit', not for this request's '/invoke/Bank/payout'" in why(
        KEY.headers("/invoke/Bank/deposit")
    )
    assert "invalid JWT: expired" in why(signed(KEY.token(exp=now() - 5)))
    assert "not valid for another" in why(signed(KEY.token(nbf=int(time.time()) + 30)))
    assert "'exp' is missing" in why(signed(KEY.token(drop=("exp",))))
    assert "three dot-separated parts" in why(signed("garbage"))
    assert "algorithm 'HS256'" in why(signed(KEY.token(header={"alg": "HS256"})))


def test_identity_keys_are_checked_when_the_app_is_made() -> None:
    with pytest.raises(IdentityKeyError, match="start with publickeyv1_"):
        restate.app(identity_app.services, identity_keys=["ChjENKeMvCtRnqG2mrBK1HmPKufgFUc98K8B3ononQvp"])
    with pytest.raises(IdentityKeyError, match="decodes to 3 bytes"):
        restate.app(identity_app.services, identity_keys=["publickeyv1_abc"])
    with pytest.raises(IdentityKeyError, match="not a base58 character"):
        restate.app(identity_app.services, identity_keys=["publickeyv1_0OIl"])
    with pytest.raises(IdentityKeyError, match="a list of keys"):
        restate.app(identity_app.services, identity_keys=KEY.kid)  # type: ignore[arg-type]
    assert b58decode(b58encode(b"\0\0\x01\xff")) == b"\0\0\x01\xff"
    assert audience_of("/x/y/invoke/S/h") == "/invoke/S/h" and audience_of("/x/discover") == "/discover"
    assert audience_of("/x/invoke/S") == "/x/invoke/S"


def test_app_takes_the_official_sdks_arguments() -> None:
    restate.app(identity_app.services, protocol="request_response", identity_keys=[KEY.kid], journal_value_codec=None)
    restate.app(identity_app.services, protocol="bidi")
    with pytest.raises(ValueError, match="protocol"):
        restate.app(identity_app.services, protocol="streaming")  # type: ignore[arg-type]
    codec = object()  # kept and applied to the values the deployment sends and receives (test_sdk_journal_codec)
    assert restate.app(identity_app.services, journal_value_codec=codec).journal_value_codec is codec


# ---------------------------------------------------------------- the endpoint


def forged_invocation(key: str = "victim", balance: int = 1_000_000, to: str = "attacker-account") -> bytes:
    """RED-TEAM B5's forgery: a StartMessage that brings its own state, and the input."""
    invocation_id = ids.new_invocation_id(key)
    start = M["StartMessage"](
        id=ids.invocation_id_to_bytes(invocation_id),
        debug_id=invocation_id,
        known_entries=1,
        key=key,
        state_map=[M["StateEntry"](key=b"balance", value=str(balance).encode())],
    )
    command = M["InputCommandMessage"](value=M["Value"](content=json.dumps(to).encode()))
    return encode(m.START, start) + encode(m.COMMAND_TYPE_IDS["InputCommandMessage"], command)


async def post_invocation(url: str, headers: dict[str, str], path: str = "/invoke/Bank/payout") -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url + path, content=forged_invocation(), headers={"content-type": INVOCATION_V5, **headers})


@pytest.fixture
async def endpoint(nursery: anyio.abc.TaskGroup) -> str:
    """tests/apps/identity_app.py's services as `durio.app(..., identity_keys=[KEY])`, on a loopback port."""
    identity_app.EFFECTS.clear()
    app = restate.app(identity_app.services, identity_keys=[SPARE.kid, KEY.kid])
    url: str = await nursery.start(serve_http, app, "127.0.0.1:0")
    return url


async def test_a_signed_invocation_runs(endpoint: str) -> None:
    response = await post_invocation(endpoint, KEY.headers())
    assert response.status_code == 200, response.text
    frames = FrameDecoder().feed(response.content)
    assert m.COMMAND_TYPE_IDS["RunCommandMessage"] in [frame.type_id for frame in frames]
    assert identity_app.EFFECTS == ["PAID 1000000 to attacker-account from account victim"]


REFUSED: list[tuple[str, Headers, str]] = [
    ("other key", lambda: OTHER.headers(), "does not verify"),
    ("other audience", lambda: KEY.headers("/invoke/Bank/deposit"), "signed for '/invoke/Bank/deposit'"),
    ("expired", lambda: signed(KEY.token(exp=int(time.time()) - 1)), "expired"),
    ("no headers", lambda: {}, "no x-restate-signature-scheme header"),
    ("no token", lambda: {"x-restate-signature-scheme": "v1"}, "no x-restate-jwt-v1 header"),
    ("unsigned", lambda: {"x-restate-signature-scheme": "unsigned"}, "the request is unsigned"),
    ("malformed token", lambda: signed("eyJhbGciOiJFZERTQSJ9.e30"), "three dot-separated parts"),
    ("tampered claims", lambda: signed(tamper(KEY.token("/invoke/Bank/payout"))), "does not verify"),
]


@pytest.mark.parametrize("case, make_headers, reason", REFUSED, ids=[case[0] for case in REFUSED])
async def test_a_request_without_a_valid_identity_gets_401_and_runs_nothing(
    endpoint: str, case: str, make_headers: Headers, reason: str
) -> None:
    path = "/invoke/Bank/deposit" if case == "tampered claims" else "/invoke/Bank/payout"
    response = await post_invocation(endpoint, make_headers(), path)
    assert response.status_code == 401, response.text
    assert response.text.startswith("unauthorized: ") and reason in response.text
    assert identity_app.EFFECTS == []
    # The endpoint is unharmed: a signed request runs.
    assert (await post_invocation(endpoint, KEY.headers())).status_code == 200
    assert len(identity_app.EFFECTS) == 1


async def test_discovery_needs_an_identity_and_health_does_not(endpoint: str) -> None:
    async with httpx.AsyncClient(base_url=endpoint, timeout=10) as client:
        assert (await client.get("/health")).status_code == 200
        refused = await client.get("/discover")
        assert refused.status_code == 401 and "no x-restate-signature-scheme header" in refused.text
        # A token for an invocation is not one for discovery.
        assert (await client.get("/discover", headers=KEY.headers("/invoke/Bank/payout"))).status_code == 401
        accept = {"accept": "application/vnd.restate.endpointmanifest.v3+json"}
        discovered = await client.get("/discover", headers={**accept, **KEY.headers("/discover")})
        assert discovered.status_code == 200 and [s["name"] for s in discovered.json()["services"]] == ["Bank"]
        # Unknown paths are refused before they are found missing, as in the official SDK.
        assert (await client.get("/elsewhere")).status_code == 401
        assert (await client.get("/elsewhere", headers=KEY.headers("/elsewhere"))).status_code == 404


probe = restate.Service("Probe")


@probe.handler("health")
async def probe_health(ctx: restate.Context) -> str:
    return "invoked"


async def test_a_handler_named_health_is_invoked_and_verified_like_any_other(nursery) -> None:  # type: ignore[no-untyped-def]
    url = await nursery.start(serve_http, restate.app([probe], identity_keys=[KEY.kid]), "127.0.0.1:0")
    assert (await post_invocation(url, {}, "/invoke/Probe/health")).status_code == 401
    response = await post_invocation(url, KEY.headers("/invoke/Probe/health"), "/invoke/Probe/health")
    assert response.status_code == 200 and b'"invoked"' in response.content


async def test_an_endpoint_without_keys_warns_once_and_still_runs_unsigned_requests(nursery, caplog) -> None:  # type: ignore[no-untyped-def]
    identity_app.EFFECTS.clear()
    caplog.set_level(logging.WARNING, logger="durio.endpoint")
    url = await nursery.start(serve_http, restate.app(identity_app.services), "127.0.0.1:0")
    for _ in range(2):
        assert (await post_invocation(url, {})).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "durio.endpoint" and "identity_keys" in r.getMessage()]
    assert len(warnings) == 1 and "runs any invocation from anyone who can reach it" in warnings[0]
    assert len(identity_app.EFFECTS) == 2
    caplog.clear()
    # With keys, no such warning.
    signed_url = await nursery.start(serve_http, restate.app(identity_app.services, identity_keys=[KEY.kid]), "127.0.0.1:0")
    assert (await post_invocation(signed_url, KEY.headers())).status_code == 200
    assert not [r for r in caplog.records if "identity_keys" in r.getMessage()]


# ---------------------------------------------------------------- a durio server signs its requests


async def test_a_durio_server_with_the_private_key_can_use_an_endpoint_that_requires_it(nursery, data_dir, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    server = await start_in_process(nursery, [], data_dir, request_identity_key=RequestSigner.from_pem(KEY.pem()))
    registered = await server.admin.post("/deployments", json={"uri": endpoint})
    assert registered.status_code == 201, registered.text
    assert (await server.ingress.post("/restate/call/Bank/acct/deposit", json=100)).json() == 100
    paid = await server.ingress.post("/restate/call/Bank/acct/payout", json="alice")
    assert paid.status_code == 200 and paid.json() == "paid 100", paid.text
    assert identity_app.EFFECTS == ["DEPOSIT 100 to acct", "PAID 100 to alice from account acct"]


async def test_a_durio_server_without_the_key_cannot_register_the_endpoint(nursery, data_dir, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    unsigned = await start_in_process(nursery, [], data_dir)
    refused = await unsigned.admin.post("/deployments", json={"uri": endpoint})
    assert refused.status_code == 400 and "answered 401" in refused.json()["message"], refused.text
    wrong = await start_in_process(
        nursery, [], data_dir.with_name("other"), request_identity_key=RequestSigner.from_pem(OTHER.pem())
    )
    refused = await wrong.admin.post("/deployments", json={"uri": endpoint})
    assert refused.status_code == 400 and "answered 401" in refused.json()["message"], refused.text
    assert identity_app.EFFECTS == []


def test_the_cli_takes_restates_option_for_the_signing_key(tmp_path: pathlib.Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for command in ("server", "serve app.py"):
        args = build_parser().parse_args([*command.split(), "--request-identity-private-key-pem-file", "k.pem"])
        assert args.request_identity_private_key_pem_file == "k.pem"
    from durio.server import load_request_identity_key

    assert load_request_identity_key(None) is None
    pem = tmp_path / "private.pem"
    pem.write_bytes(RESTATE_TEST_PEM)
    monkeypatch.setenv("RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE", str(pem))
    signer = load_request_identity_key(None)
    assert signer is not None and signer.key_id == RESTATE_TEST_KID
    with pytest.raises(IdentityKeyError, match="cannot read the request identity key"):
        load_request_identity_key(str(tmp_path / "missing.pem"))
    pem.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(IdentityKeyError, match="not an unencrypted PEM private key"):
        load_request_identity_key(str(pem))


# ---------------------------------------------------------------- end to end, in separate processes


def effects(path: pathlib.Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def forge_like_the_red_team(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            f"{url}/invoke/Bank/payout", content=forged_invocation(), headers={"content-type": INVOCATION_V5}
        )


async def test_the_official_restate_server_with_a_signing_key_invokes_a_durio_endpoint_and_forgeries_get_401(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = Key()
    pem = tmp_path / "private.pem"
    pem.write_bytes(key.pem())
    ledger = tmp_path / "effects.log"
    restate_server = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    restate_server.env["RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE"] = str(pem)
    endpoint = hypercorn_deployment(
        "tests.apps.identity_app:app",
        tmp_path / "endpoint.log",
        trio_worker=True,
        env={"IDENTITY_KEYS": key.kid, "IDENTITY_EFFECTS": str(ledger)},
    )
    try:
        await restate_server.start(ready_path="/health")
        await endpoint.start(ready_path="/health")
        assert key.kid in restate_server.output()  # Restate logs the public key it signs with
        registered = await restate_server.register(endpoint.url)
        assert [s["name"] for s in registered["services"]] == ["Bank"]
        async with httpx.AsyncClient(base_url=restate_server.ingress_url, timeout=60) as client:
            assert (await client.post("/Bank/acct/deposit", json=100)).json() == 100
            paid = await client.post("/Bank/acct/payout", json="alice")
            assert paid.status_code == 200 and paid.json() == "paid 100", paid.text
        assert effects(ledger) == ["DEPOSIT 100 to acct", "PAID 100 to alice from account acct"]

        forged = await forge_like_the_red_team(endpoint.url)
        assert forged.status_code == 401 and "no x-restate-signature-scheme header" in forged.text
        assert effects(ledger) == ["DEPOSIT 100 to acct", "PAID 100 to alice from account acct"]
        assert "refused a request to '/invoke/Bank/payout'" in endpoint.output()
    finally:
        endpoint.stop()
        restate_server.stop()


async def test_the_official_restate_server_without_the_key_cannot_register_a_durio_endpoint_that_requires_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    restate_server = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    endpoint = hypercorn_deployment(
        "tests.apps.identity_app:app", tmp_path / "endpoint.log", trio_worker=True, env={"IDENTITY_KEYS": KEY.kid}
    )
    try:
        await restate_server.start(ready_path="/health")
        await endpoint.start(ready_path="/health")
        async with httpx.AsyncClient(timeout=30) as client:
            refused = await client.post(
                restate_server.admin_url + "/deployments", json={"uri": endpoint.url, "use_http_11": True}
            )
        assert refused.status_code >= 400 and "401" in refused.text, refused.text
        assert "refused a request to '/discover'" in endpoint.output()
    finally:
        endpoint.stop()
        restate_server.stop()


async def test_a_durio_server_process_signs_with_the_key_from_restates_environment_variable(server_process, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = Key()
    pem = tmp_path / "private.pem"
    pem.write_bytes(key.pem())
    ledger = tmp_path / "effects.log"
    endpoint = hypercorn_deployment(
        "tests.apps.identity_app:app",
        tmp_path / "endpoint.log",
        trio_worker=True,
        env={"IDENTITY_KEYS": key.kid, "IDENTITY_EFFECTS": str(ledger)},
    )
    try:
        await endpoint.start(ready_path="/health")
        server = server_process(None, env={"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(pem)})
        await server.start()
        assert key.kid in server.output()
        async with server.client(admin=True) as admin:
            assert (await admin.post("/deployments", json={"uri": endpoint.url})).status_code == 201
        async with server.client() as ingress:
            paid = await ingress.post("/restate/call/Bank/acct/payout", json="bob")
            assert paid.status_code == 200 and paid.json() == "paid 0", paid.text
        assert effects(ledger) == ["PAID 0 to bob from account acct"]
        forged = await forge_like_the_red_team(endpoint.url)
        assert forged.status_code == 401
        assert effects(ledger) == ["PAID 0 to bob from account acct"]
        assert server.terminate() == 0
    finally:
        endpoint.stop()
