"""Where durio listens: one address syntax for the CLI, `durio.serve` and the environment, and an empty
host means loopback everywhere (the embedded API once bound 0.0.0.0 and :: for `:PORT`).

The listening sockets are read from the kernel (/proc/net/tcp and tcp6), not from what durio reports.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import httpx
import pytest
import anyio

from durio.addresses import Address, AddressError, parse_address
from durio.server import run_server
from tests.conftest import ROOT, TEST_APPS, free_port

LISTEN = "0A"  # the TCP state column of /proc/net/tcp


def listening_hosts(port: int) -> set[str]:
    """The local addresses of every socket listening on `port`, as the kernel lists them."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state != LISTEN or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            hosts.add(socket.inet_ntop(socket.AF_INET if len(words) == 4 else socket.AF_INET6, words))
    return hosts


def outward_ipv4() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
            return sock.getsockname()[0]
    except OSError:
        return None


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", Address("127.0.0.1", 8080)),
        (":8080", Address("127.0.0.1", 8080)),
        (":0", Address("127.0.0.1", 0)),
        ("localhost:9070", Address("localhost", 9070)),
        ("0.0.0.0:8080", Address("0.0.0.0", 8080)),
        ("[::1]:8080", Address("::1", 8080)),
        ("[::]:8080", Address("::", 8080)),
    ],
)
def test_addresses_parse_to_a_host_and_port_and_an_empty_host_is_loopback(text: str, expected: Address) -> None:
    assert parse_address(text) == expected
    assert parse_address(str(expected)) == expected  # the normalised form reads back the same


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("8080", "has no port"),
        ("localhost", "has no port"),
        ("::1:8080", "brackets"),
        ("[::1]8080", "is not HOST:PORT"),
        ("[nope]:8080", "not an IPv6 address"),
        ("host:http", "not a number"),
        ("host:70000", "not a number"),
        ("host:-1", "not a number"),
        ("a b:80", "not a host name"),
        ("", "has no port"),
    ],
)
def test_a_bad_address_is_a_clear_error(text: str, complaint: str) -> None:
    with pytest.raises(AddressError, match=complaint):
        parse_address(text, "DURIO_INGRESS")
    with pytest.raises(AddressError, match="DURIO_INGRESS"):
        parse_address(text, "DURIO_INGRESS")


async def test_run_server_with_an_empty_host_listens_on_loopback_only(nursery, data_dir) -> None:
    running = await nursery.start(
        lambda task_status: run_server([], data_dir=data_dir, ingress=":0", admin=":0", task_status=task_status)
    )
    for url in (running.ingress_url, running.admin_url):
        assert url.startswith("http://127.0.0.1:"), url
        assert listening_hosts(int(url.rsplit(":", 1)[1])) == {"127.0.0.1"}


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_address_in_brackets_listens_there_and_reports_a_usable_url(nursery, data_dir) -> None:
    running = await nursery.start(
        lambda task_status: run_server([], data_dir=data_dir, ingress="[::1]:0", admin="[::1]:0", task_status=task_status)
    )
    assert running.ingress_url.startswith("http://[::1]:"), running.ingress_url
    assert listening_hosts(int(running.ingress_url.rsplit(":", 1)[1])) == {"::1"}
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(running.ingress_url + "/restate/health")).status_code == 200
        assert (await client.get(running.admin_url + "/health")).status_code == 200


EMBEDDED = """
import sys
import durio
sys.path.insert(0, {apps!r})
from sleeper_app import services
durio.serve(services, data_dir={data!r}, {arguments})
"""


def serve_embedded(tmp_path: pathlib.Path, arguments: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A Python program calling `durio.serve(...)`, as an application embedding durio does."""
    script = EMBEDDED.format(apps=str(TEST_APPS), data=str(tmp_path / "data"), arguments=arguments)
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=str(ROOT), env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float = 30.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while not listening_hosts(port):
        if process.poll() is not None:
            raise RuntimeError(f"durio.serve exited with {process.returncode}: {process.stdout.read().decode()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)
    time.sleep(0.2)  # open_tcp_listeners binds each family in turn: let a second one appear if there is one
    return listening_hosts(port)


@pytest.mark.parametrize("how", ["arguments", "environment"])
def test_durio_serve_with_an_empty_host_listens_on_loopback_only(tmp_path: pathlib.Path, how: str) -> None:
    ingress, admin = free_port(), free_port()
    if how == "arguments":
        process = serve_embedded(tmp_path, f"ingress=':{ingress}', admin=':{admin}'", {})
    else:
        process = serve_embedded(tmp_path, "", {"DURIO_INGRESS": f":{ingress}", "DURIO_ADMIN": f":{admin}"})
    try:
        assert wait_listening(process, ingress) == {"127.0.0.1"}
        assert wait_listening(process, admin) == {"127.0.0.1"}
        assert httpx.get(f"http://127.0.0.1:{ingress}/restate/health", timeout=10).status_code == 200
    finally:
        process.kill()
        process.wait()


def test_durio_serve_refuses_a_bad_address_before_starting(tmp_path: pathlib.Path) -> None:
    process = serve_embedded(tmp_path, "", {"DURIO_ADMIN": "::1:9070"})
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert b"AddressError: DURIO_ADMIN: '::1:9070' is ambiguous" in output, output.decode()
    assert not (tmp_path / "data").exists(), "durio started before checking its addresses"


def test_the_cli_takes_the_same_addresses_and_explains_a_bad_one() -> None:
    from durio.cli import build_parser

    args = build_parser().parse_args(["server", "--ingress", ":8081", "--admin", "[::1]:9071"])
    assert (args.ingress, args.admin) == ("127.0.0.1:8081", "[::1]:9071")
    result = subprocess.run(
        [sys.executable, "-m", "durio.cli", "server", "--ingress", "::1:8080"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0 and "is ambiguous; write an IPv6 address in brackets" in result.stderr, result.stderr


async def test_nothing_listens_on_the_machines_other_addresses(nursery, data_dir) -> None:
    """A connection to this machine's non-loopback address is refused: nothing listens there."""
    others = {address for address in (outward_ipv4(),) if address and not address.startswith("127.")}
    if not others:
        pytest.skip("this machine has no non-loopback IPv4 address")
    running = await nursery.start(
        lambda task_status: run_server([], data_dir=data_dir, ingress=":0", admin=":0", task_status=task_status)
    )
    port = int(running.admin_url.rsplit(":", 1)[1])
    for host in others:
        with pytest.raises(OSError):
            await anyio.connect_tcp(host, port)
