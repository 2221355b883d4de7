"""Hostile input against a real `durio serve` process: hypothesis throws odd requests at both APIs.

Properties, for every generated request:
  - never a 5xx;
  - a 4xx comes with a JSON error body: {"code", "message", "source"} on the ingress
    (code = status, a non-empty message, the `x-restate-error-source` header),
    {"message"} on the admin API;
  - a request that is valid by the contracts (DESIGN.md 1.4 and 1.5) succeeds, with the
    output the handler computes; one that is invalid is a 4xx;
  - a request the ingress rejects changes nothing in storage (the admin API's `total`
    of invocations), an accepted one adds exactly its invocation (none for a duplicate
    idempotency key or a workflow run that already ran), and the admin API can show it;
  - the server stays up (health checks every batch) and logs no traceback.

Requests go through a raw HTTP/1.1 client on sockets, because httpx normalizes '..'
out of paths and refuses some header bytes.

The `test_regression_*` functions at the end reproduce, each on a fresh server, bugs these
properties found (all fixed since).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import socket
import time
import typing
import urllib.parse

import httpx
import pytest
import trio
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from durio import ids
from durio.durations import BadDuration, parse_duration_ms
from tests.conftest import TEST_APPS, ServerProcess

HOSTILE_APP = TEST_APPS / "hostile_app.py"

# Examples per property: 3,150 requests together, 30-40 s on 2 shared cores.
EXAMPLES = {
    "invoke": 1300,
    "paths": 600,
    "ids": 350,
    "real-ids": 150,
    "admin": 500,
    "framing": 250,
}
# HOSTILE_SCALE=10 runs ten times as many (for a long local hunt).
EXAMPLES = {name: max(1, int(n * float(os.environ.get("HOSTILE_SCALE", "1")))) for name, n in EXAMPLES.items()}
HEALTH_EVERY = 50
BODY_LIMIT = 32 * 1024 * 1024
H11_LINE_LIMIT = 14 * 1024  # hypercorn's h11 refuses request heads over 16 KiB

SETTINGS = dict(
    deadline=None,
    database=None,  # nothing written under the repository; failures print a reproducible blob
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)

# --------------------------------------------------------------------------------------
# A raw HTTP/1.1 client


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> typing.Any:
        return json.loads(self.body)


def raw_request(
    port: int,
    method: bytes,
    target: bytes,
    headers: typing.Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    framing: str = "length",
    timeout: float = 30.0,
) -> Reply | None:
    """One request on its own connection; None when the server closed it without an answer.

    framing: "length" (a correct content-length), "chunked", "truncated" (announces more
    than it sends, then half-closes), "none" (no body headers at all).
    """
    head = [method + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1", b"connection: close"]
    head.extend(name + b": " + value for name, value in headers)
    if framing == "length":
        head.append(b"content-length: " + str(len(body)).encode())
        payload = body
    elif framing == "truncated":
        head.append(b"content-length: " + str(len(body) + 10).encode())
        payload = body
    elif framing == "chunked":
        head.append(b"transfer-encoding: chunked")
        size = max(7, len(body) // 16)
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    else:
        payload = b""
    data = b"\r\n".join(head) + b"\r\n\r\n" + payload
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if framing == "truncated":
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (and closed) before reading everything: read its answer
        received = bytearray()
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
    if not received:
        return None
    head_bytes, _, rest = bytes(received).partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    reply_headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        reply_headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if "content-length" in reply_headers:
        rest = rest[: int(reply_headers["content-length"])]
    return Reply(status, reply_headers, rest)


# --------------------------------------------------------------------------------------
# The server under test, and what it has been asked so far


class Target(typing.NamedTuple):
    service: str
    key: str | None
    handler: str


@dataclasses.dataclass(repr=False)  # hypothesis prints its arguments: keep the model out of it
class Probe:
    server: ServerProcess
    ingress_port: int
    admin_port: int
    admin: httpx.Client
    examples: dict[str, int] = dataclasses.field(default_factory=dict)
    log_offset: int = 0
    since_health: int = 0
    # What the model knows of storage: idempotent invocations and workflow runs already made.
    idempotent: dict[tuple[Target, str], tuple[str, Reply | None]] = dataclasses.field(default_factory=dict)
    scheduled: set[tuple[Target, str]] = dataclasses.field(default_factory=set)
    workflow_runs: set[str] = dataclasses.field(default_factory=set)

    def _repr_pretty_(self, printer: typing.Any, cycle: bool) -> None:
        printer.text(f"<the server on ports {self.ingress_port} and {self.admin_port}>")

    def total(self) -> int:
        response = self.admin.get("/invocations", params={"limit": "0"})
        assert response.status_code == 200, response.text
        return response.json()["total"]

    def count(self, suite: str) -> None:
        self.examples[suite] = self.examples.get(suite, 0) + 1
        self.since_health += 1
        if self.since_health >= HEALTH_EVERY:
            self.assert_healthy()

    def assert_healthy(self) -> None:
        self.since_health = 0
        assert self.server.process is not None and self.server.process.poll() is None, "the server died"
        health = raw_request(self.ingress_port, b"GET", b"/restate/health", framing="none")
        assert health is not None and health.status == 200
        assert self.admin.get("/health").status_code == 200
        listing = self.admin.get("/invocations", params={"limit": "100000"})
        assert listing.status_code == 200, f"the admin API cannot list the invocations any more: {listing.text}"
        problems = [line for line in self.new_log().splitlines() if re.search(r"Traceback|ERROR|crashed", line)]
        assert not problems, "the server logged errors:\n" + "\n".join(problems[:20]) + "\n" + self.server.output()[-5000:]

    def new_log(self) -> str:
        text = self.server.output()
        fresh, self.log_offset = text[self.log_offset :], len(text)
        return fresh


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> typing.Iterator[Probe]:
    folder = tmp_path_factory.mktemp("hostile")
    server = ServerProcess(HOSTILE_APP, folder / "data", folder / "server.log")
    trio.run(server.start)
    admin = httpx.Client(base_url=server.admin_url, timeout=30)
    started = time.monotonic()
    the_probe = Probe(server, _port(server.ingress_url), _port(server.admin_url), admin)
    try:
        yield the_probe
        the_probe.assert_healthy()
    finally:
        admin.close()
        code = server.terminate()
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{name} {n}" for name, n in the_probe.examples.items())
        report(request, f"hostile input: {sum(the_probe.examples.values())} hypothesis examples in {elapsed:.1f} s ({summary})")
    assert code == 0, f"the server exited with {code} on SIGTERM"


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Write a line to the terminal even while pytest captures output."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# --------------------------------------------------------------------------------------
# The model of the hostile app (tests/apps/hostile_app.py)

SERVICES: dict[str, tuple[str, dict[str, str]]] = {
    # service: (kind, {handler: input type})
    "Echo": ("service", {"greet": "person", "double": "int", "upper": "str", "nothing": "none", "refuse": "int"}),
    "Counter": ("object", {"add": "int", "rename": "person", "get": "none", "label": "str"}),
    "Signup": ("workflow", {"run": "person", "status": "none"}),
}
HANDLER_KIND = {
    ("Counter", "get"): "shared",
    ("Counter", "label"): "shared",
    ("Signup", "run"): "workflow",
    ("Signup", "status"): "shared",
}

MAX_INT_DIGITS = 4000  # Python refuses to print ints over 4300 digits: 2*n must stay printable
MAX_KEY_BYTES = 256  # longer object and workflow keys are refused with a 400 (LMDB keys are at most 511 bytes)


def valid_input(kind: str, value: typing.Any) -> bool | None:
    """True when `value` (decoded JSON) fits the handler's input type, None when the contracts leave it open."""
    if kind == "none":
        return True
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if not isinstance(value, dict):
        return False
    if not isinstance(value.get("name"), str) or not isinstance(value.get("age"), int) or isinstance(value.get("age"), bool):
        return False
    tags = value.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return False
    return None if set(value) - {"name", "age", "tags"} else True  # unknown fields: accepted or refused


def expected_output(target: Target, value: typing.Any) -> tuple[int, typing.Any]:
    """Status and JSON output of a fresh, valid call (Ellipsis: any value of the right type)."""
    service, key, handler = target
    if service == "Echo":
        if handler == "greet":
            return 200, f"Hello {value['name']} ({value['age']}, {len(value.get('tags', []))} tags)"
        if handler == "double":
            return 200, 2 * value
        if handler == "upper":
            return 200, value.upper()
        if handler == "nothing":
            return 200, None
        return 400 + abs(value) % 100, {
            "code": 400 + abs(value) % 100,
            "message": f"refused with {value}",
            "source": "invocation",
        }
    if service == "Counter":
        if handler == "rename":
            return 200, value["name"]
        if handler == "label":
            return 200, f"{key}:{value}"
        return 200, int  # a total: an int
    if handler == "run":
        return 200, f"signed up {value['name']}"
    return 200, str  # the workflow's stage


# --------------------------------------------------------------------------------------
# Strategies

names = st.sampled_from(["Echo", "Counter", "Signup", "echo", "ECHO", "Nobody", "restate", "call", "send", "", "Echo "])
handler_names = st.sampled_from(
    [
        "greet",
        "double",
        "upper",
        "nothing",
        "refuse",
        "add",
        "rename",
        "get",
        "label",
        "run",
        "status",
        "send",
        "shout",
        "Greet",
        "attach",
        "",
        " ",
    ]
)
odd_text = st.text(max_size=40)
long_ascii = st.integers(MAX_KEY_BYTES - 10, 2 * MAX_KEY_BYTES).map(lambda n: "k" * n)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "..", ".", "/", "a/b", "%2F", "?x=1", "#", " ", "\u00e9", "\U0001f600", "a\x00b"]),
    st.text(min_size=1, max_size=MAX_KEY_BYTES // 2),
    long_ascii,
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
people = st.fixed_dictionaries(
    {"name": st.text(max_size=30), "age": st.integers(-(10**20), 10**20)},
    optional={"tags": st.lists(st.text(max_size=10), max_size=5)},
)
valid_values = {
    "int": st.one_of(
        st.integers(-1000, 1000), st.integers(-(10**40), 10**40), st.integers(1, MAX_INT_DIGITS).map(lambda n: int("7" * n))
    ),
    "str": st.text(max_size=200),
    "person": people,
    "none": json_values,
}
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"\x80", b"\xe2\x82"]


@st.composite
def bodies(draw: st.DrawFn, kind: str) -> tuple[bytes, bool | None, typing.Any]:
    """(body, valid?, decoded value); valid is None when the contracts leave it open."""
    shape = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "valid",
                "other-json",
                "empty",
                "invalid-json",
                "truncated",
                "invalid-utf8",
                "bytes",
                "big",
                "deep",
                "whitespace",
                "bom",
            ]
        )
    )
    if shape in ("valid", "other-json", "big", "bom"):
        if shape == "other-json":
            value = draw(json_values)
        elif shape == "big":
            value = draw(st.sampled_from(["x" * 300_000, ["y" * 100] * 3000]))
        else:
            value = draw(valid_values[kind])
        body = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2]))).encode()
        if shape == "bom":
            body = b"\xef\xbb\xbf" + body
            return body, (True if kind == "none" else None), value
        return body, valid_input(kind, value), value
    if kind == "none":
        # A handler without input ignores the body, whatever it is.
        body = draw(st.binary(max_size=200) | st.sampled_from([b"", b"{", b'"\xff"', b"[" * 10000]))
        return body, True, None
    if shape == "empty":
        # An empty body is None for the handler, as the official SDK hands it over (tests/test_restate_compat.py);
        # these handlers cannot take None (their TypeError is retried), so an empty body is not hostile input here.
        shape = "invalid-json"
    if shape == "invalid-json":
        return (
            draw(
                st.sampled_from(
                    [
                        b"{",
                        b"}",
                        b"nul",
                        b"[1,]",
                        b"{'a': 1}",
                        b'"abc',
                        b"NaNx",
                        b"1 2",
                        b"--1",
                        b'{"name": "a", "age": 1',
                        b"tru",
                        b"\x00",
                        b"{}{}",
                        b"0x10",
                    ]
                )
            ),
            False,
            None,
        )
    if shape == "truncated":
        value = draw(valid_values[kind].filter(lambda v: isinstance(v, (dict, str))))
        full = json.dumps(value).encode()
        cut = draw(st.integers(1, max(1, len(full) - 1)))
        return full[:cut], False, None
    if shape == "invalid-utf8":
        junk = draw(st.sampled_from(INVALID_UTF8))
        return b'"ab' + junk + b'cd"', False, None
    if shape == "deep":
        depth = draw(st.sampled_from([50, 5000, 100_000]))
        return b"[" * depth + b"]" * depth, False, None
    if shape == "whitespace":
        return draw(st.sampled_from([b" ", b"\n", b"\t\r\n "])), False, None
    return draw(st.binary(min_size=1, max_size=300)), None, None


def encode_segment(draw: st.DrawFn, text: str) -> bytes:
    """A path segment as the client may write it: percent-encoded, partly or fully."""
    raw = text.encode()
    how = draw(st.sampled_from(["minimal", "minimal", "all", "all-lower"]))
    if how == "minimal":
        return urllib.parse.quote(raw, safe="-._~!$&'()*+,;=:@").encode()
    encoded = "".join(f"%{b:02X}" for b in raw)
    return (encoded.lower() if how == "all-lower" else encoded).encode()


@dataclasses.dataclass
class Call:
    method: bytes
    path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    framing: str
    # What the model expects:
    target: Target | None  # None: the path names no handler
    is_send: bool
    key_error: bool  # the path has the wrong shape for the service (a key too many or too few)
    idempotency_key: str | None
    idempotency_error: bool
    delay_given: bool
    delay_ok: bool | None  # None: the contracts leave this spelling open
    delay_ms: int
    body_valid: bool | None
    value: typing.Any

    def render(self) -> str:
        return f"{self.method.decode('latin-1')} {(self.path + self.query).decode('latin-1')[:300]} body={self.body[:200]!r}"


def _header_safe(raw: bytes) -> bytes:
    """Bytes an HTTP/1.1 header value may carry: visible ASCII, obs-text, inner spaces and tabs."""
    return bytes(c if (0x21 <= c <= 0x7E or c >= 0x80 or c in (0x20, 0x09)) else 0x61 for c in raw)


def header_values(max_size: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size).map(_header_safe)


idempotency_key_values = st.one_of(
    st.sampled_from(
        [
            b"",
            b"k-1",
            b"k-2",
            b"same",
            b"\xc2\xa0",
            b"\xe3\x80\x80",
            b"\xff\xfe",
            b"\xc3\xa9t\xc3\xa9",
            b"x" * 6000,
            b"a\tb",
            b"\xf0\x9f\x98\x80",
        ]
    ),
    st.text(min_size=1, max_size=30).map(lambda t: _header_safe(t.encode())),
    header_values(200),
)

delays = st.one_of(
    st.sampled_from(
        [
            "10ms",
            "1",
            "0",
            "PT0.01S",
            "1m30s",
            "PT10S",
            "500ms",
            "2000",
            "1h",
            "1.5s",
            "1 h 30m",
            "P1D",
            "PT",
            "P1Y",
            "soon",
            "",
            "-5s",
            "1x",
            "PT-1S",
            "1e3",
            " 10s ",
            "10 S",
            "\u0661\u0662",
            "NaN",
            "inf",
            "9" * 15,
            "P" * 300,
            "ms",
        ]
    ),
    st.integers(0, 10**9).map(str),
    st.text(max_size=20),
)


@st.composite
def calls(draw: st.DrawFn) -> Call:
    """A request aimed at the invocation endpoints, with a model of what it should do."""
    service = draw(st.sampled_from(["Echo", "Echo", "Counter", "Counter", "Signup"]) | names)
    spec = SERVICES.get(service)
    if spec is not None and draw(st.integers(0, 9)) > 0:
        handler = draw(st.sampled_from(sorted(spec[1])))
    else:
        handler = draw(handler_names | odd_text)
    keyed = spec is not None and spec[0] != "service"
    with_key = draw(st.booleans()) if draw(st.integers(0, 9)) == 0 else keyed
    key = draw(keys) if with_key else None
    form = draw(st.sampled_from(["restate", "restate", "old"]))
    is_send = draw(st.booleans())
    parts = [service, *([key] if key is not None else []), handler]
    segments = [encode_segment(draw, p) for p in parts]
    if form == "restate":
        path = b"/restate/" + (b"send/" if is_send else b"call/") + b"/".join(segments)
    else:
        path = b"/" + b"/".join(segments) + (b"/send" if is_send else b"")
    if draw(st.integers(0, 19)) == 0:
        path += b"/"  # a trailing slash
    method = draw(st.sampled_from([b"POST"] * 8 + [b"GET", b"PUT", b"DELETE", b"PATCH", b"post", b"OPTIONS", b"HEAD", b"BREW"]))

    headers: list[tuple[bytes, bytes]] = []
    idempotency_key, idempotency_error = None, False
    if draw(st.integers(0, 2)) == 0:
        raw_key = draw(idempotency_key_values)
        headers.append((draw(st.sampled_from([b"idempotency-key", b"Idempotency-Key", b"IDEMPOTENCY-KEY"])), raw_key))
        try:
            idempotency_key = raw_key.strip(b" \t").decode("utf-8")  # HTTP drops a value's outer spaces
            idempotency_error = not idempotency_key.strip()
        except UnicodeDecodeError:
            idempotency_error = True
    for _ in range(draw(st.integers(0, 3))):
        name = draw(
            st.sampled_from(
                [b"content-type", b"accept", b"x-custom", b"authorization", b"x-restate-id", b"traceparent", b"x-" + b"h" * 100]
            )
        )
        value = draw(
            st.sampled_from(
                [
                    b"application/json",
                    b"text/plain",
                    b"application/json; charset=utf-16",
                    b"*/*",
                    b"multipart/form-data; boundary=x",
                ]
            )
            | header_values(300)
        )
        headers.append((name, value))

    query, delay_given, delay_ok, delay_ms = b"", False, None, 0
    choice = draw(st.integers(0, 5))
    if choice == 0:
        delay = draw(delays)
        name = draw(st.sampled_from(["delay", "delay", "Delay", "DELAY"]))
        query = b"?" + name.encode() + b"=" + urllib.parse.quote_plus(delay).encode()
        delay_given = True
        try:
            delay_ms = parse_duration_ms(delay)
            delay_ok = True
        except BadDuration:
            delay_ok = False
        except Exception:
            delay_ok = None  # whatever the server makes of it, never a 5xx
        if delay_ok and not re.fullmatch(r"[\x20-\x7e]*", delay):
            delay_ok = None  # non-ASCII spellings of a duration: the contracts leave them open
    elif choice == 1:
        query = draw(st.sampled_from([b"?", b"?x=1", b"?delay", b"?&&", b"?delay=1s&delay=2s", b"?%ff=%fe", b"?a=b&c"]))
        if query == b"?delay":
            delay_given, delay_ok, delay_ms = True, False, 0
        elif query == b"?delay=1s&delay=2s":
            delay_given, delay_ok, delay_ms = True, True, 2000

    kind = spec[1].get(handler) if spec is not None else None
    body, body_valid, value = draw(bodies(kind or "int"))
    framing = draw(st.sampled_from(["length"] * 6 + ["chunked"]))
    target = Target(service, key, handler) if kind is not None else None
    key_error = target is not None and (key is None) == keyed
    return Call(
        method,
        path,
        query,
        headers,
        body,
        framing,
        target,
        is_send,
        key_error,
        idempotency_key,
        idempotency_error,
        delay_given,
        delay_ok,
        delay_ms,
        body_valid,
        value,
    )


# --------------------------------------------------------------------------------------
# Checks shared by the properties


def check_ingress_reply(reply: Reply | None, method: bytes, what: str) -> Reply:
    assert reply is not None, f"no answer to {what}"
    assert reply.status < 500, f"{reply.status} for {what}: {reply.body[:500]!r}"
    if reply.status >= 400 and method != b"HEAD":
        body = reply.json()
        assert set(body) >= {"code", "message", "source"}, body
        assert body["code"] == reply.status, body
        assert isinstance(body["message"], str) and body["message"].strip(), body
        assert body["source"] in ("ingress", "invocation"), body
        assert reply.headers.get("x-restate-error-source") == body["source"], reply.headers
    return reply


def check_admin_reply(reply: Reply | None, method: bytes, what: str) -> Reply:
    assert reply is not None, f"no answer to {what}"
    assert reply.status < 500, f"{reply.status} for {what}: {reply.body[:500]!r}"
    if reply.status >= 400 and method != b"HEAD":
        body = reply.json()
        assert isinstance(body.get("message"), str) and body["message"].strip(), body
    return reply


def _has_surrogate(body: bytes) -> bool:
    if not re.search(rb"\\u[dD][89a-fA-F]", body):
        return False
    try:
        return _contains_surrogate(json.loads(body))
    except Exception:
        return False


def _contains_surrogate(value: typing.Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_contains_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_surrogate(k) or _contains_surrogate(v) for k, v in value.items())
    return False


# --------------------------------------------------------------------------------------
# The properties


@settings(max_examples=EXAMPLES["invoke"], **SETTINGS)
@given(call=calls())
def test_invocation_requests_succeed_when_valid_and_are_4xx_changing_nothing_otherwise(probe: Probe, call: Call) -> None:
    target = call.target
    method_ok = call.method == b"POST" or (call.method == b"GET" and not call.is_send)
    if call.method == b"post":
        method_ok = None  # hypercorn upper-cases the method before durio sees it
    idempotent_workflow = call.idempotency_key is not None and target is not None and HANDLER_KIND.get(target[::2]) == "workflow"
    memo_key = (
        (target, call.idempotency_key)
        if target is not None and call.idempotency_key is not None and not call.idempotency_error
        else None
    )
    if memo_key in probe.scheduled and not call.is_send:
        assume(False)  # a call would wait for the delayed send that made this invocation

    # What the contracts say: valid (True), invalid (False), or left open (None).
    checks: list[bool | None] = [
        target is not None,
        not call.key_error,
        method_ok,
        not call.idempotency_error,
        not idempotent_workflow,
        call.body_valid,
        True if not call.delay_given else False if not call.is_send else call.delay_ok,
    ]
    if call.method == b"GET" and not call.is_send:
        checks.append(None)  # a call by GET: Restate's table says POST
    if call.path.endswith(b"/"):
        checks.append(None)  # a trailing slash
    if target is not None and target.key == "":
        checks.append(None)  # an empty key
    if target is not None and target.key is not None and len(target.key.encode()) > MAX_KEY_BYTES:
        checks.append(False)  # a key too long to store
    if call.body_valid and _has_surrogate(call.body):
        checks.append(None)  # JSON text that is not Unicode text (a lone surrogate): refused, or kept as it is
    content_types = [value for name, value in call.headers if name.lower() == b"content-type"]
    takes_input = target is not None and SERVICES[target.service][1].get(target.handler) != "none"
    if content_types and takes_input:
        # A content type is checked against the handler's accept (application/json here), as Restate does;
        # one that is not JSON is a 400. (Several headers: durio reads the first, the contracts leave it open.)
        media = content_types[0].strip(b" \t").split(b";", 1)[0].strip(b" \t")
        checks.append(None if len(content_types) > 1 else media == b"application/json")
    valid: bool | None = False if False in checks else (None if None in checks else True)

    note(call.render())
    before = probe.total()
    reply = check_ingress_reply(
        raw_request(probe.ingress_port, call.method, call.path + call.query, call.headers, call.body, call.framing),
        call.method,
        call.render(),
    )
    after = probe.total()
    note(f"-> {reply.status} {reply.body[:300]!r}; total {before} -> {after}")
    probe.count("invoke")

    accepted = reply.status in (200, 202) or (reply.status >= 400 and reply.headers.get("x-restate-error-source") == "invocation")
    if valid is False:
        assert not accepted, f"an invalid request was accepted: {call.render()} -> {reply.status} {reply.body[:300]!r}"
    if valid is True:
        assert accepted, f"a valid request was refused: {call.render()} -> {reply.status} {reply.body[:300]!r}"
    if not accepted:
        assert reply.status >= 400
        assert after == before, f"a rejected request changed storage ({before} -> {after}): {call.render()}"
        return

    # Accepted: exactly its own invocation exists now, unless an earlier request made it.
    assert target is not None and "x-restate-id" in reply.headers, reply.headers
    invocation_id = reply.headers["x-restate-id"]
    is_run = HANDLER_KIND.get(target[::2]) == "workflow"
    earlier = probe.idempotent.get(memo_key) if memo_key is not None else None
    repeated_run = is_run and target.key in probe.workflow_runs
    if earlier is None and not repeated_run:
        # Remember it before checking anything, so that hypothesis replaying this example sees a duplicate.
        if memo_key is not None:
            probe.idempotent[memo_key] = (invocation_id, None if call.is_send else reply)
            if call.is_send and call.delay_ms > 0:
                probe.scheduled.add(memo_key)
        if is_run:
            probe.workflow_runs.add(typing.cast(str, target.key))
    if earlier is not None or repeated_run:
        assert after == before, f"a duplicate made a new invocation ({before} -> {after})"
        if earlier is not None:
            assert invocation_id == earlier[0], "the same idempotency key reached another invocation"
            if earlier[1] is not None and not call.is_send:
                assert (reply.status, reply.body) == (earlier[1].status, earlier[1].body), "a duplicate got another result"
        if call.is_send:
            assert reply.status == 202 and reply.json()["status"] == "PreviouslyAccepted", reply.body
        elif repeated_run and earlier is None:
            assert reply.status == 409, reply.body
    else:
        assert after == before + 1, f"an accepted request made {after - before} invocations"
        if call.is_send:
            assert reply.status == 202, reply.body
            answer = reply.json()
            assert answer["status"] == "Accepted" and answer["invocationId"] == invocation_id, answer
            assert ("executionTime" in answer) == (call.delay_ms > 0), answer
        else:
            status, output = expected_output(target, call.value)
            assert reply.status == status, f"{reply.status} {reply.body[:300]!r}, expected {status}"
            got = None if reply.body == b"" else reply.json()
            if output in (int, str):
                assert isinstance(got, output) and not isinstance(got, bool), got
            else:
                assert got == output, f"{got!r} != {output!r}"
    described = probe.admin.get(f"/invocations/{invocation_id}")
    assert described.status_code == 200, (
        f"the admin API cannot show {invocation_id}: {described.status_code} {described.text[:300]}"
    )
    assert described.json()["target_handler_name"] == target.handler


path_words = st.sampled_from(
    [
        "restate",
        "call",
        "send",
        "attach",
        "output",
        "invocation",
        "workflow",
        "awakeables",
        "a",
        "health",
        "resolve",
        "reject",
        "Echo",
        "Counter",
        "Signup",
        "greet",
        "double",
        "add",
        "get",
        "run",
        "status",
        "send",
        "..",
        ".",
        "",
        "%2e%2e",
        "%2F",
        "%00",
        "%ff",
        "%zz",
        "%",
        "%C3%A9",
        "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz",
        "sign_1abc",
        "ui",
        "metrics",
        "invocations",
        "state",
        "services",
        "deployments",
        "v2",
        "k",
    ]
)


@st.composite
def raw_paths(draw: st.DrawFn) -> bytes:
    pieces = draw(
        st.lists(
            path_words.map(str.encode)
            | st.text(max_size=20).map(lambda t: urllib.parse.quote(t.encode(), safe="").encode())
            | st.binary(max_size=20).map(lambda b: urllib.parse.quote_from_bytes(b, safe="").encode())
            | st.integers(1000, 12000).map(lambda n: b"x" * n),
            max_size=7,
        )
    )
    path = b"/" + b"/".join(pieces)
    if draw(st.integers(0, 4)) == 0:
        path += draw(st.sampled_from([b"?delay=1s", b"?delay=%ff", b"?", b"?limit=-1", b"?status=%00", b"?x=" + b"y" * 3000]))
    return path


def _decoded_segments(path: bytes) -> list[bytes]:
    return [urllib.parse.unquote_to_bytes(p) for p in path.split(b"?", 1)[0].split(b"/")]


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=EXAMPLES["paths"], **SETTINGS)
@given(
    path=raw_paths(),  # hypothesis warns when it prints a long path: ignored below
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"]),
    body=st.sampled_from([b"", b"1", b'"x"', b'{"name": "a", "age": 1}', b"{", b"\xff"]),
    admin=st.booleans(),
)
def test_any_path_and_method_is_answered_below_500_and_rejections_change_nothing(
    probe: Probe, path: bytes, method: bytes, body: bytes, admin: bool
) -> None:
    segments = _decoded_segments(path)
    assume(not {b"workflow", b"attach"} <= set(segments))  # might wait on a workflow run scheduled far ahead
    note(f"{method!r} {path[:300]!r}")
    before = probe.total()
    port = probe.admin_port if admin else probe.ingress_port
    reply = raw_request(port, method, path, body=body)
    what = f"{'admin' if admin else 'ingress'} {method.decode()} {path[:300]!r} ({len(path)} bytes)"
    if len(path) > H11_LINE_LIMIT:
        # The HTTP layer (h11) refuses the request line itself, before durio sees it.
        assert reply is None or 400 <= reply.status < 500, f"{what}: {reply}"
        assert probe.total() == before
        probe.count("paths")
        return
    reply = (check_admin_reply if admin else check_ingress_reply)(reply, method, what)
    after = probe.total()
    probe.count("paths")
    if admin:
        # The admin API changes storage only by controlling invocations; none of these ids exists.
        assert after == before, f"{what} changed storage"
    elif reply.status >= 400 and reply.headers.get("x-restate-error-source") != "invocation":
        assert after == before, f"{what} was refused with {reply.status} but changed storage"
    else:
        assert after - before in (0, 1), f"{what} made {after - before} invocations"


def _random_invocation_id(raw: bytes) -> str:
    return ids.invocation_id_from_bytes(raw)


invocation_ids = st.one_of(
    st.binary(min_size=24, max_size=24).map(_random_invocation_id),
    st.sampled_from(
        [
            "inv_1",
            "inv_",
            "inv_1" + "z" * 33,
            "inv_1" + "0" * 33,
            "inv_1" + "!" * 33,
            "INV_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz",
            "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz" + "x",
            "",
            "..",
            "sign_1" + "A" * 38,
        ]
    ),
    st.text(max_size=60),
)
awakeable_ids = st.one_of(
    st.tuples(st.binary(min_size=24, max_size=24), st.integers(0, 2**32 - 1)).map(
        lambda t: "sign_1" + _b64(t[0] + t[1].to_bytes(4, "big"))
    ),
    st.sampled_from(
        [
            "sign_1",
            "sign_",
            "sign_1" + "A" * 38,
            "sign_1" + "A" * 37,
            "sign_1" + "=" * 38,
            "sign_1****",
            "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz",
            "prom_1abc",
        ]
    ),
    st.text(max_size=60).map(lambda t: "sign_1" + t),
)


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@settings(max_examples=EXAMPLES["ids"], **SETTINGS)
@given(
    which=st.sampled_from(
        [
            "attach",
            "output",
            "invocation-attach",
            "invocation-output",
            "workflow-output",
            "resolve",
            "reject",
            "admin-describe",
            "admin-control",
            "admin-delete",
        ]
    ),
    invocation_id=invocation_ids,
    awakeable_id=awakeable_ids,
    action=st.sampled_from(["cancel", "kill", "purge", "pause", "resume", "explode"]),
    method=st.sampled_from([b"GET", b"GET", b"POST", b"PATCH", b"DELETE"]),
    body=st.sampled_from([b"", b"1", b'"done"', b"{", b"\xff\xfe", b"x" * 100_000]),
    workflow_key=st.text(max_size=20),
)
def test_unknown_and_malformed_ids_are_4xx_and_change_nothing(
    probe: Probe, which: str, invocation_id: str, awakeable_id: str, action: str, method: bytes, body: bytes, workflow_key: str
) -> None:
    quoted = urllib.parse.quote(invocation_id, safe="").encode()
    admin = which.startswith("admin")
    path = {
        "attach": b"/restate/attach/" + quoted,
        "output": b"/restate/output/" + quoted,
        "invocation-attach": b"/restate/invocation/" + quoted + b"/attach",
        "invocation-output": b"/restate/invocation/" + quoted + b"/output",
        "workflow-output": b"/restate/workflow/Signup/" + urllib.parse.quote(workflow_key, safe="").encode() + b"/output",
        "resolve": b"/restate/awakeables/" + urllib.parse.quote(awakeable_id, safe="").encode() + b"/resolve",
        "reject": b"/restate/awakeables/" + urllib.parse.quote(awakeable_id, safe="").encode() + b"/reject",
        "admin-describe": b"/invocations/" + quoted,
        "admin-control": b"/invocations/" + quoted + b"/" + action.encode(),
        "admin-delete": b"/invocations/" + quoted + b"?mode=" + action.encode(),
    }[which]
    if which == "workflow-output":
        assume(workflow_key not in probe.workflow_runs)
    assume(not (admin and invocation_id in ("", "..")))  # /invocations/ is the list, /invocations/.. the root
    if not admin and which not in ("resolve", "reject"):
        method = b"GET" if method != b"POST" else method
    note(f"{which} {method!r} {path[:300]!r}")
    before = probe.total()
    reply = raw_request(probe.admin_port if admin else probe.ingress_port, method, path, body=body)
    reply = (check_admin_reply if admin else check_ingress_reply)(reply, method, f"{which} {method!r} {path!r}")
    assert probe.total() == before, "a request about an invocation that does not exist changed storage"
    probe.count("ids")
    if method == b"DELETE" and which in ("admin-describe", "admin-delete") and reply.status == 202:
        return  # Restate's older DELETE answers 202 whatever the id, when well-formed
    assert 400 <= reply.status < 500, f"{which} {path[:200]!r} answered {reply.status}: {reply.body[:300]!r}"


@settings(max_examples=EXAMPLES["real-ids"], **SETTINGS)
@given(
    data=st.data(),
    which=st.sampled_from(
        ["attach", "output", "invocation-attach", "invocation-output", "admin-describe", "admin-control", "admin-delete"]
    ),
    action=st.sampled_from(["cancel", "kill", "pause", "resume", "explode"]),  # never purge: it deletes
    method=st.sampled_from([b"GET", b"GET", b"POST", b"PATCH", b"DELETE", b"PUT"]),
    body=st.sampled_from([b"", b"1", b"{", b"\xff\xfe"]),
)
def test_completed_invocations_give_their_result_and_refuse_control_without_changing(
    probe: Probe, data: st.DataObject, which: str, action: str, method: bytes, body: bytes
) -> None:
    completed = sorted((invocation_id, reply) for invocation_id, reply in probe.idempotent.values() if reply is not None)
    assume(completed)
    invocation_id, first_reply = data.draw(st.sampled_from(completed), label="completed invocation")
    admin = which.startswith("admin")
    path = {
        "attach": f"/restate/attach/{invocation_id}",
        "output": f"/restate/output/{invocation_id}",
        "invocation-attach": f"/restate/invocation/{invocation_id}/attach",
        "invocation-output": f"/restate/invocation/{invocation_id}/output",
        "admin-describe": f"/invocations/{invocation_id}",
        "admin-control": f"/invocations/{invocation_id}/{action}",
        "admin-delete": f"/invocations/{invocation_id}?mode={action}",
    }[which].encode()
    if not admin:
        method = b"GET" if method in (b"GET", b"PATCH", b"PUT") else method
    note(f"{which} {method!r} {path!r}")
    before = probe.total()
    reply = raw_request(probe.admin_port if admin else probe.ingress_port, method, path, body=body)
    reply = (check_admin_reply if admin else check_ingress_reply)(reply, method, f"{which} {method!r} {path!r}")
    assert probe.total() == before, f"{which} {method!r} on a completed invocation changed storage"
    probe.count("real-ids")
    if not admin and method == b"GET":
        assert (reply.status, reply.body) == (first_reply.status, first_reply.body), "the stored result changed"
    elif admin and which in ("admin-describe", "admin-delete") and method == b"GET":
        assert reply.status == 200 and reply.json()["status"] == "completed", reply.body[:300]
    elif method == b"DELETE":
        assert reply.status == 202 or 400 <= reply.status < 500, reply  # the older form is fire-and-forget
    else:
        assert 400 <= reply.status < 500, f"{which} {method!r} on a completed invocation: {reply.status} {reply.body[:300]!r}"


admin_paths = st.one_of(
    st.tuples(
        st.sampled_from([b"/invocations", b"/v2/invocations", b"/invocations/"]),
        st.dictionaries(
            st.sampled_from(["status", "service", "handler", "key", "limit", "LIMIT", "x"]),
            st.sampled_from(
                [
                    "running",
                    "completed",
                    "ready",
                    "scheduled",
                    "backing-off",
                    "suspended",
                    "pending",
                    "paused",
                    "nope",
                    "",
                    "Echo",
                    "Counter",
                    "-1",
                    "0",
                    "1",
                    "99999999999999999999999",
                    "9" * 5000,
                    "1.5",
                    "abc",
                    "\u00e9",
                    "%ff",
                ]
            )
            | st.text(max_size=10),
            max_size=4,
        ),
    ).map(lambda t: t[0] + (b"?" + urllib.parse.urlencode(t[1]).encode() if t[1] else b"")),
    st.tuples(
        st.sampled_from([b"/state/", b"/services/", b"/state/Counter/", b"/state/Signup/", b"/services/Echo/"]),
        st.text(max_size=30),
    ).map(lambda t: t[0] + urllib.parse.quote(t[1], safe="").encode()),
    st.sampled_from(
        [
            b"/health",
            b"/services",
            b"/deployments",
            b"/ui/",
            b"/ui",
            b"/ui/app.js",
            b"/ui/../../etc/passwd",
            b"/ui/%2e%2e/%2e%2e/etc/passwd",
            b"/metrics",
            b"/",
            b"",
            b"/v3/services",
            b"/v9/services",
            b"/state",
            b"/invocations/x/y/z",
            b"/state/" + b"k" * 5000,
        ]
    ),
)


@settings(max_examples=EXAMPLES["admin"], **SETTINGS)
@given(
    path=admin_paths,
    method=st.sampled_from([b"GET"] * 5 + [b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD"]),
    body=st.sampled_from([b"", b'{"uri": "http://127.0.0.1:1"}', b'{"uri": 5}', b"{", b"\xff"]),
)
def test_the_admin_api_answers_any_query_below_500_and_reads_change_nothing(
    probe: Probe, path: bytes, method: bytes, body: bytes
) -> None:
    if not path.startswith(b"/"):
        path = b"/" + path
    assume(not (method == b"POST" and b"deployments" in path and b"http" in body))  # would try to register a deployment
    note(f"{method!r} {path[:300]!r}")
    before = probe.total()
    reply = check_admin_reply(raw_request(probe.admin_port, method, path, body=body), method, f"admin {method!r} {path[:300]!r}")
    assert probe.total() == before, f"admin {method!r} {path[:200]!r} changed storage"
    probe.count("admin")
    if reply.status == 200 and method == b"GET" and reply.headers.get("content-type", "").startswith("application/json"):
        reply.json()  # a success is well-formed JSON
    if path.startswith(b"/ui/") and b"passwd" in path:
        assert b"root:" not in reply.body, "the UI serves files outside its folder"


@settings(max_examples=EXAMPLES["framing"], **SETTINGS)
@given(
    framing=st.sampled_from(["truncated", "chunked", "none", "length"]),
    body=st.binary(max_size=5000) | st.sampled_from([b'{"name": "Ann", "age": 3}', b"7", b'"hello"']),
    target=st.sampled_from(
        [
            b"/restate/call/Echo/double",
            b"/restate/send/Echo/upper",
            b"/restate/call/Counter/fr/add",
            b"/restate/call/Echo/greet",
            b"/restate/awakeables/sign_1" + b"A" * 38 + b"/resolve",
        ]
    ),
)
def test_truncated_and_chunked_bodies_never_get_a_5xx(probe: Probe, framing: str, body: bytes, target: bytes) -> None:
    note(f"{framing} {target!r} {body[:200]!r}")
    before = probe.total()
    reply = raw_request(probe.ingress_port, b"POST", target, body=body, framing=framing, timeout=10)
    after = probe.total()
    probe.count("framing")
    if framing == "truncated":
        # The HTTP layer (h11) sees the body end early and answers 400 itself, or durio sees the
        # disconnect (499), or the connection just closes: anything but a 5xx or a change.
        assert reply is None or 400 <= reply.status < 500, f"truncated {target!r}: {reply}"
        assert after == before, "a truncated request changed storage"
        return
    check_ingress_reply(reply, b"POST", f"{framing} {target!r}")
    assert reply is not None
    if reply.status >= 400 and reply.headers.get("x-restate-error-source") != "invocation":
        assert after == before, f"{framing} {target!r}: {reply.status}, total {before} -> {after}"


# --------------------------------------------------------------------------------------
# Fixed hostile cases too big or too slow to generate


def test_a_body_over_the_limit_is_413_whether_announced_or_streamed(probe: Probe) -> None:
    before = probe.total()
    announced = raw_request(
        probe.ingress_port,
        b"POST",
        b"/restate/call/Echo/upper",
        [(b"content-length", str(BODY_LIMIT + 1).encode())],
        framing="none",
    )
    check_ingress_reply(announced, b"POST", "an announced oversized body")
    assert announced is not None and announced.status == 413
    streamed = raw_request(
        probe.ingress_port, b"POST", b"/restate/call/Echo/upper", body=b'"' + b"x" * BODY_LIMIT + b'"', framing="chunked"
    )
    if streamed is not None:  # the server may close the connection while we still send
        check_ingress_reply(streamed, b"POST", "a streamed oversized body")
        assert streamed.status == 413
    assert probe.total() == before
    probe.assert_healthy()


def test_headers_over_the_http_limit_are_refused_without_a_5xx(probe: Probe) -> None:
    before = probe.total()
    for name in (b"idempotency-key", b"x-big"):
        reply = raw_request(probe.ingress_port, b"POST", b"/restate/call/Echo/double", [(name, b"k" * 70_000)], b"2")
        assert reply is None or 400 <= reply.status < 500, reply
    long_path = raw_request(probe.ingress_port, b"POST", b"/restate/call/Echo/" + b"x" * 70_000, body=b"2")
    assert long_path is None or 400 <= long_path.status < 500, long_path
    assert probe.total() == before
    probe.assert_healthy()


def test_many_idempotent_duplicates_of_odd_keys_make_one_invocation_each(probe: Probe) -> None:
    # A target the generated requests never use, so these keys are fresh.
    path = b"/restate/call/Counter/" + urllib.parse.quote("dup \u2603").encode() + b"/label"
    odd_keys = [b"\xc3\xa9t\xc3\xa9", b"x" * 8000, b"a b\tc", b"\xe2\x80\x8b", b"%2F", b"..", b"k" * 511 + b"\xf0\x9f\x98\x80"]
    for raw_key in odd_keys:
        before = probe.total()
        replies = [
            check_ingress_reply(
                raw_request(probe.ingress_port, b"POST", path, [(b"idempotency-key", raw_key)], json.dumps(f"v{n}").encode()),
                b"POST",
                repr(raw_key),
            )
            for n in range(3)
        ]
        assert {r.status for r in replies} == {200}
        assert len({r.body for r in replies}) == 1 and replies[0].json() == "dup \u2603:v0", "a duplicate ran again"
        assert len({r.headers["x-restate-id"] for r in replies}) == 1
        assert probe.total() == before + 1
        described = probe.admin.get(f"/invocations/{replies[0].headers['x-restate-id']}").json()
        assert described["idempotency_key"] == raw_key.decode("utf-8")
    probe.assert_healthy()


def assert_still_serving(probe: Probe, after: str) -> None:
    """Another client's ordinary call succeeds right after a hostile request."""
    reply = raw_request(probe.ingress_port, b"POST", b"/restate/call/Echo/double", body=b"21")
    assert reply is not None and (reply.status, reply.body) == (200, b"42"), f"after {after}: {reply}"


def scheduled_invocation(probe: Probe) -> str:
    """An invocation that is neither completed nor about to run: a send delayed by an hour."""
    sent = check_ingress_reply(
        raw_request(probe.ingress_port, b"POST", b"/restate/send/Echo/nothing?delay=1h"), b"POST", "a delayed send"
    )
    assert sent.status == 202, sent
    return sent.json()["invocationId"]


def test_awakeable_ids_naming_a_reserved_signal_are_400_and_cancel_nothing(probe: Probe) -> None:
    """Signal indexes 1 to 16 are Restate's built-in signals (1 = cancel); only an invocation id is needed to name them."""
    victim = scheduled_invocation(probe)
    before = probe.total()
    for index in range(17):
        for verb in ("resolve", "reject"):
            path = f"/restate/awakeables/{ids.awakeable_id(victim, index)}/{verb}".encode()
            reply = check_ingress_reply(raw_request(probe.ingress_port, b"POST", path, body=b'"x"'), b"POST", path.decode())
            assert reply.status == 400 and "does not name an awakeable" in reply.json()["message"], (index, verb, reply)
            assert_still_serving(probe, f"{verb} of signal {index}")
    described = probe.admin.get(f"/invocations/{victim}").json()
    assert described["status"] == "scheduled" and described["completed_at"] is None, described
    assert probe.total() == before + 17 * 2, "only the ordinary calls were added"
    probe.assert_healthy()


NUMBERS_NO_HANDLER_READS = [b"1" * 5000, b"-" + b"9" * 4400, b"NaN", b"Infinity", b"-Infinity", b"1e400", b"[1, -1e999]"]


def strict_json(body: bytes) -> typing.Any:
    """Python's json.loads takes NaN and Infinity; an answer that holds them is not JSON."""

    def refuse(name: str) -> typing.NoReturn:
        raise AssertionError(f"{name} in an answer that says it is JSON: {body[:300]!r}")

    return json.loads(body, parse_constant=refuse)


def test_json_numbers_no_handler_can_read_are_400_everywhere_and_the_server_keeps_serving(probe: Probe) -> None:
    """NaN, Infinity and 1e400 are not JSON; an integer over 4300 digits is JSON that Python will not read. Each is
    refused at the door (an awakeable's payload used to be taken, and its invocation then retried forever)."""
    victim = scheduled_invocation(probe)
    awakeable = ids.awakeable_id(victim, 17)  # where its first awakeable would be
    before, ordinary = probe.total(), 0
    for number in NUMBERS_NO_HANDLER_READS:
        for path, body in [
            (b"/restate/call/Echo/double", number),
            (b"/restate/send/Counter/n/add", number),
            (b"/restate/call/Echo/greet", b'{"name": "a", "age": ' + number + b"}"),
            (f"/restate/awakeables/{awakeable}/resolve".encode(), number),
        ]:
            what = f"{path.decode()} with {number[:20]!r}"
            reply = check_ingress_reply(raw_request(probe.ingress_port, b"POST", path, body=body), b"POST", what)
            assert reply.status == 400, f"{what}: {reply}"
            assert_still_serving(probe, what)
            ordinary += 1
        # A handler without input ignores its body, so it is stored as it came: the admin API shows it as text.
        ignored = check_ingress_reply(
            raw_request(probe.ingress_port, b"POST", b"/restate/call/Echo/nothing", body=number), b"POST", "Echo/nothing"
        )
        assert ignored.status == 200, ignored
        described = raw_request(probe.admin_port, b"GET", f"/invocations/{ignored.headers['x-restate-id']}".encode())
        assert described is not None and described.status == 200, described
        assert strict_json(described.body)["journal"][0]["value"] == number.decode()
        ordinary += 1
    refused = raw_request(probe.admin_port, b"POST", b"/deployments", body=b'{"uri": "http://127.0.0.1:9", "force": NaN}')
    assert refused is not None and refused.status == 400 and "NaN" in refused.json()["message"], refused
    assert probe.admin.get(f"/invocations/{victim}").json()["status"] == "scheduled"
    assert probe.total() == before + ordinary, "only the ordinary calls were added"
    probe.assert_healthy()


# --------------------------------------------------------------------------------------
# Bugs the properties above found, each on a fresh server. The docstrings say what the bug was.


@pytest.fixture
def fresh(server_process) -> typing.Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    server = server_process(HOSTILE_APP, name="bug")
    trio.run(server.start)
    yield server
    server.terminate()


def _bug_report(server: ServerProcess) -> str:
    lines = server.output().splitlines()
    start = next((i for i, line in enumerate(lines) if "Traceback" in line or "ERROR" in line), len(lines))
    return "\n".join(lines[max(0, start - 1) : start + 40])


def test_regression_a_delay_with_a_non_ascii_digit_is_400_not_500(fresh: ServerProcess) -> None:
    """`?delay=²` (U+00B2): str.isdigit() accepts it, int() does not: ValueError escapes the ingress."""
    with httpx.Client(base_url=fresh.ingress_url, timeout=10) as client:
        response = client.post("/restate/send/Echo/nothing?delay=%C2%B2")
    assert response.status_code == 400, f"{response.status_code} {response.text!r}\n{_bug_report(fresh)}"


def test_regression_a_delay_beyond_a_u64_of_milliseconds_is_400_not_500(fresh: ServerProcess) -> None:
    """`?delay=99999999999999999999999` and `?delay=<400 nines>s` (float overflow): struct.error / OverflowError."""
    with httpx.Client(base_url=fresh.ingress_url, timeout=10) as client:
        statuses = [client.post(f"/restate/send/Echo/nothing?delay={d}").status_code for d in ("9" * 23, "9" * 400 + "s")]
    assert statuses == [400, 400], f"{statuses}\n{_bug_report(fresh)}"


def test_regression_a_delay_past_the_year_9999_neither_500s_after_storing_nor_breaks_the_admin_list(fresh: ServerProcess) -> None:
    """`?delay=4611686018427387904` (2**62 ms): the send is committed, then rfc3339() raises 'year is out of range':
    the client gets a 500 for an invocation that exists, and GET /invocations answers 500 from then on."""
    with (
        httpx.Client(base_url=fresh.ingress_url, timeout=10) as client,
        httpx.Client(base_url=fresh.admin_url, timeout=10) as admin,
    ):
        sent = client.post(f"/restate/send/Echo/nothing?delay={2**62}")
        listing = admin.get("/invocations")
    assert sent.status_code in (202, 400), f"send: {sent.status_code} {sent.text!r}\n{_bug_report(fresh)}"
    assert listing.status_code == 200, f"admin list: {listing.status_code} {listing.text!r}\n{_bug_report(fresh)}"


def test_regression_an_object_key_over_490_bytes_is_not_a_500(fresh: ServerProcess) -> None:
    """An exclusive call on a key over ~490 bytes: the inbox key passes LMDB's 511-byte limit (MDB_BAD_VALSIZE)."""
    with httpx.Client(base_url=fresh.ingress_url, timeout=10) as client:
        response = client.post("/restate/call/Counter/" + "k" * 600 + "/add", json=1)
    assert response.status_code < 500, f"{response.status_code} {response.text!r}\n{_bug_report(fresh)}"


def test_regression_a_delayed_send_to_a_key_over_490_bytes_is_refused_or_runs(fresh: ServerProcess) -> None:
    """The same key in a delayed send: the 202 is given (the timer key has no object key in it), and when the
    timer fires, queueing on the inbox fails: an accepted invocation that never runs."""
    with (
        httpx.Client(base_url=fresh.ingress_url, timeout=10) as client,
        httpx.Client(base_url=fresh.admin_url, timeout=10) as admin,
    ):
        sent = client.post("/restate/send/Counter/" + "k" * 600 + "/add?delay=100ms", json=1)
        if sent.status_code != 202:
            assert sent.status_code == 400, f"{sent.status_code} {sent.text!r}\n{_bug_report(fresh)}"
            return  # refused up front: fixed
        invocation_id = sent.json()["invocationId"]
        deadline = time.monotonic() + 5
        status = None
        while time.monotonic() < deadline:
            status = admin.get(f"/invocations/{invocation_id}").json()["status"]
            if status == "completed":
                break
            time.sleep(0.1)
    assert status == "completed", f"accepted 5 s ago, still {status}\n{_bug_report(fresh)}"


def test_regression_a_workflow_with_a_key_over_494_bytes_keeps_its_state_and_journal(fresh: ServerProcess) -> None:
    """Signup/<600 bytes>/run sets state 'stage': the SetState write fails (MDB_BAD_VALSIZE) and is dropped, the run
    still completes with 200, the journal has a gap (entry 1), the actor crashes on reload, and the state is gone."""
    key = "k" * 600
    with (
        httpx.Client(base_url=fresh.ingress_url, timeout=10) as client,
        httpx.Client(base_url=fresh.admin_url, timeout=10) as admin,
    ):
        run = client.post(f"/restate/call/Signup/{key}/run", json={"name": "a", "age": 1})
        if run.status_code == 400:
            return  # refused up front: fixed
        assert run.status_code == 200, f"{run.status_code} {run.text!r}\n{_bug_report(fresh)}"
        time.sleep(0.5)
        stage = client.post(f"/restate/call/Signup/{key}/status").json()
        described = admin.get(f"/invocations/{run.headers['x-restate-id']}").json()
    problems = []
    if stage != "done":
        problems.append(f"the state write was lost: status says {stage!r}")
    if "journal_error" in described:
        problems.append(f"the journal is broken: {described['journal_error']}")
    if "crashed" in fresh.output():
        problems.append("the invocation's actor crashed")
    assert not problems, "; ".join(problems) + "\n" + _bug_report(fresh)


def test_regression_a_lone_surrogate_in_the_input_does_not_break_the_admin_api(fresh: ServerProcess) -> None:
    """Body '"\\ud800"' (valid JSON syntax, not valid Unicode) for a str handler: the ingress accepts it, the handler's
    output cannot be encoded as UTF-8 so the invocation retries forever, and GET /invocations/{id} answers 500
    (UnicodeEncodeError in the admin's JSON encoder)."""
    with (
        httpx.Client(base_url=fresh.ingress_url, timeout=10) as client,
        httpx.Client(base_url=fresh.admin_url, timeout=10) as admin,
    ):
        sent = client.post("/restate/send/Echo/upper", content=b'"\\ud800"')
        if sent.status_code == 400:
            return  # refused up front: fixed
        assert sent.status_code == 202, f"{sent.status_code} {sent.text!r}"
        time.sleep(1.5)
        described = admin.get(f"/invocations/{sent.json()['invocationId']}")
        listing = admin.get("/invocations")
    assert (described.status_code, listing.status_code) == (200, 200), (
        f"describe {described.status_code}, list {listing.status_code}\n{_bug_report(fresh)}"
    )
    assert described.json()["status"] == "completed", described.json()


def test_regression_deeply_nested_input_to_a_handler_without_input_does_not_break_the_admin_describe(
    fresh: ServerProcess,
) -> None:
    """A handler without a parameter ignores its body, so the ingress stores any body, e.g. 10,000 '['. The admin API's
    value_json() then calls json.loads on it, which raises RecursionError (not caught: it catches ValueError and
    UnicodeDecodeError): GET /invocations/{id} answers 500 for that invocation."""
    with (
        httpx.Client(base_url=fresh.ingress_url, timeout=10) as client,
        httpx.Client(base_url=fresh.admin_url, timeout=10) as admin,
    ):
        called = client.post("/restate/call/Echo/nothing", content=b"[" * 10_000)
        assert called.status_code == 200, called.text
        described = admin.get(f"/invocations/{called.headers['x-restate-id']}")
    assert described.status_code == 200, f"{described.status_code} {described.text!r}\n{_bug_report(fresh)}"


# --------------------------------------------------------------------------------------
# What one client may hold of the server (RED-TEAM B6), each on a fresh server with small
# limits (DURIO_HTTP_*): bodies that stop arriving, connections, request bytes held at once,
# responses nobody reads. Throughout, everyone else is served.


def limited_server(server_process, name: str, **limits: str) -> ServerProcess:  # type: ignore[no-untyped-def]
    # The bounds are each worker process's (the kernel spreads connections over the workers): one worker,
    # so that they are the whole server's here.
    server = server_process(
        HOSTILE_APP, env={f"DURIO_HTTP_{k.upper()}": v for k, v in limits.items()}, name=name, args=["--workers", "1"]
    )
    trio.run(server.start)
    return server


def open_upload(port: int, target: bytes, framing: str, sent: bytes = b'"') -> socket.socket:
    """A POST whose body starts (`sent`) and then stops: chunked with one chunk, or a content-length of 10."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    head = b"POST " + target + b" HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    if framing == "chunked":
        sock.sendall(head + b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n" % len(sent) + sent + b"\r\n")
    else:
        sock.sendall(head + b"content-length: " + str(max(10, len(sent) + 1)).encode() + b"\r\n\r\n" + sent)
    return sock


def read_reply(sock: socket.socket) -> Reply | None:
    """Whatever the server answers on `sock` until it closes it (the socket's timeout bounds the wait)."""
    received = bytearray()
    with sock:
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    if not received:
        return None
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return Reply(int(lines[0].split(b" ", 2)[1]), headers, rest[: int(headers.get("content-length", len(rest)))])


def assert_served(ingress_port: int, admin_port: int) -> None:
    """Others are served: a health check on both ports, and a call that runs a handler."""
    health = raw_request(ingress_port, b"GET", b"/restate/health", framing="none", timeout=5)
    assert health is not None and health.status == 200, health
    call = raw_request(ingress_port, b"POST", b"/restate/call/Echo/double", body=b"21", timeout=5)
    assert call is not None and (call.status, call.json()) == (200, 42), call
    admin = raw_request(admin_port, b"GET", b"/health", framing="none", timeout=5)
    assert admin is not None and admin.status == 200, admin


def test_a_body_that_stops_arriving_is_answered_408_in_time_while_others_are_served(server_process) -> None:  # type: ignore[no-untyped-def]
    server = limited_server(server_process, "stalled-bodies", body_timeout="2")
    ingress, admin = _port(server.ingress_url), _port(server.admin_url)
    started = time.monotonic()
    stalled = [open_upload(ingress, b"/restate/call/Echo/upper", framing) for framing in ("chunked", "length") for _ in range(5)]
    stalled += [open_upload(admin, b"/deployments", framing) for framing in ("chunked", "length")]
    assert_served(ingress, admin)
    assert time.monotonic() - started < 2, "too slow to show that others are served while the uploads are held"
    replies = [read_reply(sock) for sock in stalled]
    elapsed = time.monotonic() - started
    for reply in replies[:10]:
        check_ingress_reply(reply, b"POST", "a stalled upload")
    for reply in replies[10:]:
        check_admin_reply(reply, b"POST", "a stalled registration")
    assert [r.status for r in replies if r is not None] == [408] * 12, replies
    assert all("did not arrive in time" in r.json()["message"] for r in replies if r is not None)
    assert elapsed < 8, f"the stalled uploads were held {elapsed:.1f} s with a 2 s body timeout"
    assert_served(ingress, admin)
    with httpx.Client(base_url=server.admin_url, timeout=10) as client:
        assert client.get("/invocations", params={"limit": "0"}).json()["total"] == 2  # the assert_served calls only


def test_connections_over_the_bound_are_answered_429_at_once_and_served_again_once_freed(server_process) -> None:  # type: ignore[no-untyped-def]
    server = limited_server(server_process, "connections", max_connections="6")
    ingress, admin = _port(server.ingress_url), _port(server.admin_url)
    held = []
    for _ in range(6):  # keep-alive connections, each answered once, so the server is known to count them
        sock = socket.create_connection(("127.0.0.1", ingress), timeout=10)
        sock.sendall(b"GET /restate/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "a connection under the bound was not served"
        held.append(sock)
    started = time.monotonic()
    refused = raw_request(ingress, b"GET", b"/restate/health", framing="none", timeout=5)
    assert refused is not None and refused.status == 429, refused
    assert refused.headers.get("retry-after") == "1" and "too many connections" in refused.json()["message"]
    assert time.monotonic() - started < 2
    admin_health = raw_request(admin, b"GET", b"/health", framing="none", timeout=5)
    assert admin_health is not None and admin_health.status == 200, "the admin port has its own connections"
    for sock in held:
        sock.close()
    deadline = time.monotonic() + 10
    while (
        reply := raw_request(ingress, b"GET", b"/restate/health", framing="none", timeout=5)
    ) is not None and reply.status == 429:
        assert time.monotonic() < deadline, "closed connections were not freed"
        time.sleep(0.05)
    assert_served(ingress, admin)


def test_request_bodies_held_at_once_are_bounded_and_a_body_over_what_is_left_is_429(server_process) -> None:  # type: ignore[no-untyped-def]
    server = limited_server(
        server_process, "buffered", max_buffered_bytes="1000000", body_timeout="3", body_min_rate="1000000000"
    )
    ingress, admin = _port(server.ingress_url), _port(server.admin_url)
    piece = b'"' + b"x" * 399_999
    uploads = [open_upload(ingress, b"/restate/call/Echo/upper", "chunked", piece) for _ in range(3)]
    # 1.2 MB sent, 1 MB allowed: an upload whose bytes do not fit is answered at once; the others are held.
    started = time.monotonic()
    readable, _, _ = select.select(uploads, [], [], 2.5)
    assert readable, "no upload was refused: 1.2 MB of bodies held with a 1 MB budget"
    refused = [check_ingress_reply(read_reply(sock), b"POST", "an upload over the budget") for sock in readable]
    assert {r.status for r in refused} == {429} and time.monotonic() - started < 2.5, refused
    assert all(r.headers.get("retry-after") == "1" and "retry later" in r.json()["message"] for r in refused)
    # While the others are held: a body announced bigger than the budget is refused before any of it is sent ...
    announced = raw_request(
        ingress, b"POST", b"/restate/call/Echo/upper", [(b"content-length", b"1000001")], framing="none", timeout=2
    )
    assert announced is not None and announced.status == 429, announced
    # ... and small ones are served.
    assert_served(ingress, admin)
    held = [read_reply(sock) for sock in uploads if sock not in readable]
    assert held and {r.status for r in held if r is not None} == {408}, held
    # Released when answered: a body of the same size now fits.
    whole = raw_request(ingress, b"POST", b"/restate/call/Echo/upper", body=piece + b'"', timeout=10)
    assert whole is not None and whole.status == 200 and whole.json() == "X" * 399_999


def test_a_response_the_client_stops_reading_is_dropped_after_the_send_timeout(server_process) -> None:  # type: ignore[no-untyped-def]
    server = limited_server(server_process, "unread", send_timeout="1")
    ingress, admin = _port(server.ingress_url), _port(server.admin_url)
    size = 8_000_000  # more than the kernel buffers on both ends hold (4 MB send buffer at most)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(15)
    sock.connect(("127.0.0.1", ingress))
    body = b'"' + b"x" * size + b'"'
    sock.sendall(
        b"POST /restate/call/Echo/upper HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    time.sleep(4)  # not reading: the server's write stalls
    assert_served(ingress, admin)
    received = 0
    with sock:
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
    assert received < size, f"the whole {received}-byte answer waited for a client that did not read it"


def test_a_bad_http_limit_in_the_environment_stops_the_server_at_start(server_process) -> None:  # type: ignore[no-untyped-def]
    server = server_process(HOSTILE_APP, env={"DURIO_HTTP_BODY_TIMEOUT": "soon"}, name="bad-limit")
    with pytest.raises(RuntimeError, match="DURIO_HTTP_BODY_TIMEOUT='soon' is not a number"):
        trio.run(server.start)
