"""`durio.app` over HTTP/2: one bidirectional stream per attempt, as Restate talks to deployments by default.

The official Restate server registers the endpoint without flags (the seed's
`restate deployments register http://localhost:9080`), sees BIDI_STREAM in its
manifest, and keeps one request open per attempt: a step's confirmed result, a
timer and a call's result come back on it, where request/response mode ends the
request at each and sends the whole journal again. The first tests drive the
endpoint's ASGI app directly, with the frames a server would send, to pin down
the mode's rules (what arrives meanwhile is used; a closed request suspends; a
bad frame fails the attempt); the others use the real server.
"""

from __future__ import annotations

import json
import pathlib
import signal
import ssl
import subprocess
import typing
from datetime import timedelta

import httpx
import pytest
import anyio

import durio as restate
from durio import ids
from durio.protocol import messages as m
from durio.protocol.framing import Frame, FrameDecoder, encode
from tests.conftest import free_port, wait_until
from tests.remote_peers import Peer, RestateServer, hypercorn_deployment
from tests.test_remote_restate_server import EXPECTED, comparable, run_the_tour, tour_endpoint

M = m.MESSAGES
INPUT, OUTPUT, SLEEP = (
    m.COMMAND_TYPE_IDS[name] for name in ("InputCommandMessage", "OutputCommandMessage", "SleepCommandMessage")
)

# ---------------------------------------------------------------- the endpoint's rules, driven in-process

naps = restate.Service("Naps")


@naps.handler()
async def nap(ctx: restate.Context) -> str:
    await ctx.sleep(timedelta(seconds=60))
    return "woke"


class ScriptedServer:
    """Plays a Restate server's side of one invoke request to an ASGI app: frames in, frames out."""

    def __init__(self, http_version: str = "2") -> None:
        self.http_version = http_version
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[dict[str, typing.Any]](100)
        self.frames: list[Frame] = []
        self._decoder = FrameDecoder()
        self.response_ended = anyio.Event()
        self.frame_arrived = anyio.Event()

    def send_frames(self, data: bytes, more: bool = True) -> None:
        self._inbox_send.send_nowait({"type": "http.request", "body": data, "more_body": more})

    async def run(self, app: typing.Any, path: str) -> None:
        scope = {
            "type": "http",
            "http_version": self.http_version,
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"content-type", b"application/vnd.restate.invocation.v5")],
        }

        async def receive() -> dict[str, typing.Any]:
            return await self._inbox.receive()

        async def send(message: dict[str, typing.Any]) -> None:
            if message["type"] == "http.response.body":
                self.frames.extend(self._decoder.feed(message.get("body", b"")))
                self.frame_arrived.set()
                self.frame_arrived = anyio.Event()
                if not message.get("more_body", False):
                    self.response_ended.set()

        await app(scope, receive, send)

    async def wait_for(self, type_id: int) -> Frame:
        while not any(frame.type_id == type_id for frame in self.frames):
            await self.frame_arrived.wait()
        return next(frame for frame in self.frames if frame.type_id == type_id)


def start_of_nap() -> bytes:
    invocation_id = ids.new_invocation_id()
    start = M["StartMessage"](id=ids.invocation_id_to_bytes(invocation_id), debug_id=invocation_id, known_entries=1)
    return encode(m.START, start) + encode(INPUT, M["InputCommandMessage"](value=M["Value"](content=b"null")))


def sleep_done(completion_id: int) -> bytes:
    return encode(m.SLEEP_DONE, M["NotificationMessage"](completion_id=completion_id, void=M["Void"]()))


async def test_a_notification_sent_on_the_open_stream_reaches_the_waiting_handler() -> None:
    server = ScriptedServer()
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(server.run, restate.app([naps]), "/invoke/Naps/nap")
        server.send_frames(start_of_nap())
        sleep = await server.wait_for(SLEEP)
        with anyio.move_on_after(0.3):  # the request is open: the handler waits, it does not suspend
            await server.wait_for(m.SUSPENSION)
        assert m.SUSPENSION not in [frame.type_id for frame in server.frames]
        server.send_frames(sleep_done(sleep.message.result_completion_id))
        output = await server.wait_for(OUTPUT)
        await server.wait_for(m.END)
        assert json.loads(output.message.value.content) == "woke"
        assert not server.response_ended.is_set(), "the response ended before the server closed its side"
        server.send_frames(b"", more=False)
        with anyio.fail_after(5):
            await server.response_ended.wait()
    assert [frame.type_id for frame in server.frames] == [SLEEP, OUTPUT, m.END]


async def test_when_the_server_closes_its_side_a_waiting_handler_suspends() -> None:
    server = ScriptedServer()
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(server.run, restate.app([naps]), "/invoke/Naps/nap")
        server.send_frames(start_of_nap())
        sleep = await server.wait_for(SLEEP)
        server.send_frames(b"", more=False)  # the server's inactivity timeout: it asks the attempt to suspend
        suspension = await server.wait_for(m.SUSPENSION)
        with anyio.fail_after(5):
            await server.response_ended.wait()
    assert list(suspension.message.waiting_completions) == [sleep.message.result_completion_id]


async def test_an_unreadable_frame_on_the_open_stream_fails_the_attempt_with_a_message() -> None:
    server = ScriptedServer()
    async with anyio.create_task_group() as nursery:
        nursery.start_soon(server.run, restate.app([naps]), "/invoke/Naps/nap")
        server.send_frames(start_of_nap())
        await server.wait_for(SLEEP)
        server.send_frames(encode(m.START, M["StartMessage"]()))  # a second StartMessage, after the journal
        error = await server.wait_for(m.ERROR)
        server.send_frames(b"", more=False)
        with anyio.fail_after(5):
            await server.response_ended.wait()
    assert "unexpected message type 0x0000 after the journal" in error.message.message


async def test_the_manifest_says_bidi_over_http2_and_request_response_over_http1() -> None:
    async def manifest(app: typing.Any, http_version: str) -> dict[str, typing.Any]:
        sent: list[bytes] = []

        async def receive() -> dict[str, typing.Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, typing.Any]) -> None:
            if message["type"] == "http.response.body":
                sent.append(message.get("body", b""))

        scope = {
            "type": "http",
            "http_version": http_version,
            "method": "GET",
            "path": "/discover",
            "raw_path": b"/discover",
            "query_string": b"",
            "headers": [(b"accept", b"application/vnd.restate.endpointmanifest.v3+json")],
        }
        await app(scope, receive, send)
        return typing.cast(dict[str, typing.Any], json.loads(b"".join(sent)))

    assert (await manifest(restate.app([naps]), "2"))["protocolMode"] == "BIDI_STREAM"
    assert (await manifest(restate.app([naps]), "1.1"))["protocolMode"] == "REQUEST_RESPONSE"
    # An explicit protocol wins, as in the official SDK.
    assert (await manifest(restate.app([naps], protocol="request_response"), "2"))["protocolMode"] == "REQUEST_RESPONSE"
    assert (await manifest(restate.app([naps], protocol="bidi"), "1.1"))["protocolMode"] == "BIDI_STREAM"


# ---------------------------------------------------------------- with the official Restate server


@pytest.fixture
def bidi_log(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "invokes.log"


def bidi_endpoint(tmp_path: pathlib.Path, log: pathlib.Path, worker: str, port: int | None = None) -> Peer:
    peer = hypercorn_deployment(
        "tests.apps.bidi_app:app", tmp_path / f"endpoint-{worker}.log", {"BIDI_LOG": str(log)}, trio_worker=worker == "trio"
    )
    if port is not None:
        peer.port = port
        peer.command[peer.command.index("--bind") + 1] = f"127.0.0.1:{port}"
    return peer


async def register(server: RestateServer, uri: str, **options: typing.Any) -> dict[str, typing.Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(server.admin_url + "/deployments", json={"uri": uri, **options})
        assert response.status_code in (200, 201), response.text
        described = await client.get(f"{server.admin_url}/deployments/{response.json()['id']}")
    return typing.cast(dict[str, typing.Any], described.json())


def requests_to(log: pathlib.Path, path: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(path + " ")] if log.exists() else []


@pytest.mark.parametrize("worker", ["trio", "asyncio"])
async def test_restate_registers_durio_app_without_flags_as_a_bidi_stream_and_keeps_one_request_per_attempt(
    tmp_path: pathlib.Path, bidi_log: pathlib.Path, worker: str
) -> None:
    endpoint = bidi_endpoint(tmp_path, bidi_log, worker)
    server = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    await endpoint.start()
    await server.start()
    try:
        deployment = await register(server, endpoint.url)
        assert (deployment["protocol_type"], deployment["http_version"]) == ("BidiStream", "HTTP/2.0")
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(server.ingress_url + "/Steps/walk", json="ada")
        assert response.status_code == 200, response.text
        assert response.json() == ["one", "hello ada", "two"]
        # A step, a timer, a call and a step, all answered on the one open stream.
        assert requests_to(bidi_log, "/invoke/Steps/walk") == ["/invoke/Steps/walk HTTP/2"]
    finally:
        server.stop()
        endpoint.stop()
    assert "Traceback" not in endpoint.output(), endpoint.output()


async def test_over_http1_the_same_invocation_takes_a_request_per_suspension(
    tmp_path: pathlib.Path, bidi_log: pathlib.Path
) -> None:
    endpoint = bidi_endpoint(tmp_path, bidi_log, "trio")
    server = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    await endpoint.start()
    await server.start()
    try:
        deployment = await register(server, endpoint.url, use_http_11=True)
        assert (deployment["protocol_type"], deployment["http_version"]) == ("RequestResponse", "HTTP/1.1")
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(server.ingress_url + "/Steps/walk", json="ada")
        assert response.json() == ["one", "hello ada", "two"]
        walks = requests_to(bidi_log, "/invoke/Steps/walk")
        assert len(walks) >= 4 and set(walks) == {"/invoke/Steps/walk HTTP/1.1"}, walks
    finally:
        server.stop()
        endpoint.stop()


async def test_the_server_asks_an_idle_stream_to_suspend_and_resumes_it_later(
    tmp_path: pathlib.Path, bidi_log: pathlib.Path
) -> None:
    endpoint = bidi_endpoint(tmp_path, bidi_log, "trio")
    server = RestateServer(tmp_path / "restate", tmp_path / "restate.log", {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "1s"})
    await endpoint.start()
    await server.start()
    steps_log = pathlib.Path(str(bidi_log) + ".steps")
    try:
        await register(server, endpoint.url)
        async with httpx.AsyncClient(timeout=60) as client:
            sent = (await client.post(server.ingress_url + "/Steps/wait_for_word/send")).json()

            async def published() -> bool:
                return steps_log.exists() and "awakeable " in steps_log.read_text()

            await wait_until(published, timeout=30)

            async def suspended() -> bool:
                query = {"query": f"select status from sys_invocation where id = '{sent['invocationId']}'"}
                rows = (await client.post(server.admin_url + "/query", json=query, headers={"accept": "application/json"})).json()
                return bool(rows.get("rows")) and rows["rows"][0]["status"] == "suspended"

            await wait_until(suspended, timeout=30)
            awakeable = steps_log.read_text().split("awakeable ")[1].split()[0]
            resolved = await client.post(f"{server.ingress_url}/restate/awakeables/{awakeable}/resolve", json="hello")
            assert resolved.status_code in (200, 202), resolved.text
            result = await client.get(f"{server.ingress_url}/restate/invocation/{sent['invocationId']}/attach")
        assert result.json() == "hello"
        # The first stream ended in a Suspension when the server closed it; the awakeable resumed it in a second.
        assert len(requests_to(bidi_log, "/invoke/Steps/wait_for_word")) == 2
    finally:
        server.stop()
        endpoint.stop()


async def test_a_deployment_killed_mid_stream_and_restarted_finishes_the_invocation_once(
    tmp_path: pathlib.Path, bidi_log: pathlib.Path
) -> None:
    port = free_port()
    endpoint = bidi_endpoint(tmp_path, bidi_log, "trio", port)
    server = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    await endpoint.start()
    await server.start()
    steps_log = pathlib.Path(str(bidi_log) + ".steps")
    try:
        await register(server, endpoint.url)
        async with httpx.AsyncClient(timeout=60) as client:
            sent = (await client.post(server.ingress_url + "/Steps/nap/send", json=2.0)).json()

            async def napping() -> bool:
                return steps_log.exists() and "before" in steps_log.read_text()

            await wait_until(napping, timeout=30)
            assert endpoint.process is not None
            endpoint.process.send_signal(signal.SIGKILL)  # mid-stream: the timer has not fired yet
            endpoint.process.wait()
            restarted = bidi_endpoint(tmp_path, bidi_log, "trio", port)
            await restarted.start()
            try:
                with anyio.fail_after(60):
                    result = await client.get(f"{server.ingress_url}/restate/invocation/{sent['invocationId']}/attach")
            finally:
                restarted.stop()
        assert result.status_code == 200 and result.json() == "rested", result.text
        assert steps_log.read_text().split() == ["before", "after"]
    finally:
        server.stop()
        endpoint.stop()


async def test_the_tour_registered_with_the_seeds_command_runs_over_bidi_streams(tmp_path: pathlib.Path) -> None:
    endpoint = tour_endpoint(tmp_path)
    server = RestateServer(tmp_path / "restate", tmp_path / "restate.log")
    await endpoint.start()
    await server.start()
    try:
        deployment = await register(server, endpoint.url)  # `restate deployments register http://localhost:9080`: no flags
        assert deployment["protocol_type"] == "BidiStream"
        assert comparable(await run_the_tour(server.ingress_url, endpoint.output)) == EXPECTED
    finally:
        server.stop()
        endpoint.stop()


# ---------------------------------------------------------------- a durio server as the client


def http2_requests(log: pathlib.Path, path: str) -> list[str]:
    """The request lines of hypercorn's access log for `path`, e.g. 'POST /invoke/SdkShop/nap 2', one per answered
    request (over HTTP/2 hypercorn also logs a line with no status when a streamed request's body ends)."""
    if not log.exists():
        return []
    lines = [line.split('"') for line in log.read_text().splitlines() if f" {path} " in line]
    return [parts[1] for parts in lines if parts[2].split()[0] != "-"]


def official_sdk_endpoint(tmp_path: pathlib.Path) -> tuple[Peer, pathlib.Path]:
    access_log = tmp_path / "access.log"
    peer = hypercorn_deployment(
        "tests.apps.official_sdk_app:app", tmp_path / "sdk.log", {"SDK_EFFECTS_LOG": str(tmp_path / "effects.log")}
    )
    peer.command += ["--access-logfile", str(access_log)]
    return peer, access_log


async def register_with_durio(durio: typing.Any, uri: str, **options: typing.Any) -> dict[str, typing.Any]:
    async with durio.client(admin=True) as admin:
        response = await admin.post("/deployments", json={"uri": uri, **options})
        assert response.status_code in (200, 201), response.text
        return typing.cast(dict[str, typing.Any], (await admin.get(f"/deployments/{response.json()['id']}")).json())


@pytest.mark.parametrize("use_http_11", [False, True])
async def test_a_durio_server_streams_to_an_official_sdk_deployment_unless_told_to_use_http1(
    server_process, tmp_path: pathlib.Path, use_http_11: bool
) -> None:
    endpoint, access_log = official_sdk_endpoint(tmp_path)
    await endpoint.start()
    try:
        durio = server_process(None)
        await durio.start()
        deployment = await register_with_durio(durio, endpoint.url, **({"use_http_11": True} if use_http_11 else {}))
        async with durio.client() as client:
            response = await client.post("/restate/call/SdkShop/nap", json=300)
        assert response.status_code == 200 and response.json() == "napped 300", response.text

        async def logged() -> bool:  # hypercorn logs a request once its app has returned, after durio has the answer
            return bool(http2_requests(access_log, "/invoke/SdkShop/nap"))

        await wait_until(logged)
        await anyio.sleep(0.2)  # and any request after it
        naps = http2_requests(access_log, "/invoke/SdkShop/nap")
        if use_http_11:
            assert (deployment["protocol_type"], deployment["http_version"]) == ("RequestResponse", "HTTP/1.1")
            # Suspended at the first step's result, at the sleep and at the second step's result.
            assert len(naps) >= 3 and set(naps) == {"POST /invoke/SdkShop/nap 1.1"}, naps
        else:
            assert (deployment["protocol_type"], deployment["http_version"]) == ("BidiStream", "HTTP/2.0")
            assert naps == ["POST /invoke/SdkShop/nap 2"], naps
        assert durio.terminate() == 0
    finally:
        endpoint.stop()


async def test_a_durio_server_streams_to_durio_app_and_closes_an_idle_stream_after_its_inactivity_timeout(
    server_process, tmp_path: pathlib.Path, bidi_log: pathlib.Path
) -> None:
    config = tmp_path / "restate.toml"
    config.write_text('[worker.invoker]\ninactivity-timeout = "1s"\n')
    endpoint = bidi_endpoint(tmp_path, bidi_log, "trio")
    await endpoint.start()
    steps_log = pathlib.Path(str(bidi_log) + ".steps")
    try:
        durio = server_process(None, env={"DURIO_CONFIG_FILE": str(config)})
        await durio.start()
        assert (await register_with_durio(durio, endpoint.url))["protocol_type"] == "BidiStream"
        async with durio.client() as client, durio.client(admin=True) as admin:
            assert (await client.post("/restate/call/Steps/walk", json="ada")).json() == ["one", "hello ada", "two"]
            assert requests_to(bidi_log, "/invoke/Steps/walk") == ["/invoke/Steps/walk HTTP/2"]

            sent = (await client.post("/restate/send/Steps/wait_for_word")).json()

            async def suspended() -> bool:
                return (await admin.get(f"/invocations/{sent['invocationId']}")).json()["status"] == "suspended"

            await wait_until(suspended, timeout=30)  # the stream was idle for 1 s: durio closed it, the endpoint suspended
            awakeable = steps_log.read_text().split("awakeable ")[1].split()[0]
            assert (await client.post(f"/restate/awakeables/{awakeable}/resolve", json="hello")).status_code in (200, 202)
            result = await client.get(f"/restate/attach/{sent['invocationId']}")
        assert result.json() == "hello"
        assert requests_to(bidi_log, "/invoke/Steps/wait_for_word") == ["/invoke/Steps/wait_for_word HTTP/2"] * 2
        assert durio.terminate() == 0
    finally:
        endpoint.stop()


@pytest.mark.parametrize("killed", ["deployment", "durio"])
async def test_kill_9_mid_stream_of_the_deployment_or_of_durio_loses_nothing_and_repeats_nothing(
    server_process, tmp_path: pathlib.Path, bidi_log: pathlib.Path, killed: str
) -> None:
    port = free_port()
    endpoint = bidi_endpoint(tmp_path, bidi_log, "trio", port)
    await endpoint.start()
    steps_log = pathlib.Path(str(bidi_log) + ".steps")
    restarted: Peer | None = None
    try:
        durio = server_process(None)
        durio.ingress_bind = f"127.0.0.1:{free_port()}"
        durio.admin_bind = f"127.0.0.1:{free_port()}"
        await durio.start()
        await register_with_durio(durio, endpoint.url)
        async with durio.client() as client:
            sent = (await client.post("/restate/send/Steps/nap", json=2.0)).json()

        async def napping() -> bool:
            async with durio.client(admin=True) as admin:
                view = (await admin.get(f"/invocations/{sent['invocationId']}")).json()
            return any(entry.get("type") == "sleep" for entry in view["journal"])

        # Mid-stream: the first step's result is durable (the deployment had it back before it asked for the
        # timer), and the timer has not fired.
        await wait_until(napping, timeout=30)
        if killed == "deployment":
            assert endpoint.process is not None
            endpoint.process.send_signal(signal.SIGKILL)
            endpoint.process.wait()
            restarted = bidi_endpoint(tmp_path, bidi_log, "trio", port)
            await restarted.start()
        else:
            durio.kill9()
            await durio.start()
        async with durio.client() as client:
            with anyio.fail_after(60):
                result = await client.get(f"/restate/attach/{sent['invocationId']}")
        assert result.status_code == 200 and result.json() == "rested", result.text
        assert steps_log.read_text().split() == ["before", "after"]
        assert durio.terminate() == 0
    finally:
        endpoint.stop()
        if restarted is not None:
            restarted.stop()


# ---------------------------------------------------------------- https:// deployments


def make_certificates(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """A throwaway CA and a certificate it signs for localhost and 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "durio test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
async def tls_endpoint(tmp_path: pathlib.Path, bidi_log: pathlib.Path):  # type: ignore[no-untyped-def]
    """tests/apps/bidi_app.py served over TLS by hypercorn (ALPN h2 and http/1.1), and the CA that signed it."""
    ca, cert, key = make_certificates(tmp_path)
    peer = bidi_endpoint(tmp_path, bidi_log, "trio")
    peer.command += ["--certfile", str(cert), "--keyfile", str(key)]
    # Peer.start waits on http://: this one answers only https://, so it is started and awaited here.
    log = open(peer.log_path, "ab")
    peer.process = subprocess.Popen(
        peer.command, stdout=log, stderr=subprocess.STDOUT, env=peer.env, cwd=str(peer.cwd), start_new_session=True
    )
    log.close()
    url = f"https://localhost:{peer.port}"
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca)), timeout=2) as client:
        with anyio.fail_after(60):
            while True:
                try:
                    if (await client.get(url + "/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await anyio.sleep(0.1)
    yield url, ca
    peer.stop()


@pytest.mark.parametrize("use_http_11", [False, True])
async def test_an_https_deployment_is_verified_against_the_trusted_ca_and_streams_over_tls(
    server_process, tls_endpoint, bidi_log: pathlib.Path, use_http_11: bool
) -> None:
    url, ca = tls_endpoint
    durio = server_process(None, env={"DURIO_DEPLOYMENT_CA_FILE": str(ca)})
    await durio.start()
    deployment = await register_with_durio(durio, url, **({"use_http_11": True} if use_http_11 else {}))
    expected = ("RequestResponse", "HTTP/1.1") if use_http_11 else ("BidiStream", "HTTP/2.0")
    assert (deployment["protocol_type"], deployment["http_version"]) == expected
    async with durio.client() as client:
        response = await client.post("/restate/call/Steps/walk", json="ada")
    assert response.status_code == 200 and response.json() == ["one", "hello ada", "two"], response.text
    walks = requests_to(bidi_log, "/invoke/Steps/walk")
    assert walks == ["/invoke/Steps/walk HTTP/2"] if not use_http_11 else len(walks) >= 4
    assert durio.terminate() == 0


async def test_an_https_deployment_whose_certificate_does_not_verify_is_refused(server_process, tls_endpoint) -> None:
    url, _ = tls_endpoint
    durio = server_process(None)  # the test CA is not trusted
    await durio.start()
    async with durio.client(admin=True) as admin:
        response = await admin.post("/deployments", json={"uri": url})
    assert response.status_code == 400
    assert "certificate verify failed" in response.json()["message"], response.text
    assert durio.terminate() == 0
