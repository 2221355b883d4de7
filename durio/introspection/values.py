"""How facts become SQL values (UTC text timestamps that sort as text, signed 64-bit partition keys) and rows."""

from __future__ import annotations

import datetime
import typing

from durio import ids


def sql_time(ms: int | None) -> str | None:
    """`2026-11-30T02:31:45.123Z`: always milliseconds, so text order is time order."""
    if not ms:
        return None
    try:
        moment = _EPOCH + datetime.timedelta(milliseconds=ms)
    except OverflowError:
        return None
    return moment.isoformat(timespec="milliseconds") + "Z"


_EPOCH = datetime.datetime(1970, 1, 1)  # naive: isoformat() then adds no offset, and the "Z" says UTC


def signed64(value: int) -> int:
    """A u64 as SQLite's signed 64-bit integer (SQLite has no unsigned one)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def partition_key(invocation_id: str) -> int:
    """The partition key inside an invocation id."""
    return signed64(int.from_bytes(ids.invocation_id_to_bytes(invocation_id)[:8], "big"))


def key_partition(key: str) -> int:
    """The partition key of an object's or workflow's key."""
    return signed64(ids.partition_key_of(key))


def utf8_or_none(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


class LazyRow(dict):
    """A row whose columns are computed when a query first reads them (a scan that counts reads none)."""

    def __init__(self, fields: dict[str, typing.Callable[[typing.Any], typing.Any]], source: typing.Any) -> None:
        super().__init__()
        self._fields = fields
        self._source = source

    def __missing__(self, column: str) -> typing.Any:
        value = self[column] = self._fields[column](self._source)
        return value
