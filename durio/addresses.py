"""Listening addresses, parsed in one place for the `durio` command, `durio.serve` and the environment.

`HOST:PORT`, `:PORT` or `[IPv6]:PORT`. An empty host is loopback (127.0.0.1), never
every interface: the admin port cancels, kills and purges invocations, reads state and
registers deployments, so exposing it must be spelled out (`0.0.0.0:9070`, `[::]:9070`).
The embedded API once handed an empty host to `trio.open_tcp_listeners` as None, which
binds 0.0.0.0 and `::` while the CLI bound 127.0.0.1 for the same value.

An unbracketed IPv6 address (`::1:8080`) is refused rather than guessed at: its last
group could be the port or part of the address.
"""

from __future__ import annotations

import ipaddress
import typing

LOOPBACK = "127.0.0.1"
FORMS = "HOST:PORT, :PORT or [IPv6]:PORT"


class AddressError(ValueError):
    """A listening address that cannot be used; the message says what is wrong with it."""


class Address(typing.NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(value: str, what: str = "address") -> Address:
    """`value` as a host and a port; `what` names it in the error (a flag or an environment variable)."""
    if not isinstance(value, str):
        raise AddressError(f"{what}: expected {FORMS}, got {value!r}")
    text = value.strip()
    if text.startswith("["):
        host, closing, rest = text[1:].partition("]")
        if not closing or not rest.startswith(":"):
            raise AddressError(f"{what}: {value!r} is not {FORMS}")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{what}: {host!r} in {value!r} is not an IPv6 address") from None
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise AddressError(f"{what}: {value!r} has no port; expected {FORMS}")
        if ":" in host:
            raise AddressError(f"{what}: {value!r} is ambiguous; write an IPv6 address in brackets, as [::1]:8080")
        host = host or LOOPBACK
        if any(c.isspace() or c in "/@?#[]" for c in host):
            raise AddressError(f"{what}: {host!r} in {value!r} is not a host name or address")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise AddressError(f"{what}: the port in {value!r} is not a number from 0 to 65535")
    return Address(host, int(port_text))
