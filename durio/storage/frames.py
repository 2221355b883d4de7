"""msgpack frames: every stored value starts with a schema-version byte.

A frame from a newer durio, or bytes that are not a frame, raise `FrameError`
naming what could not be read, so one bad frame fails one invocation rather
than the server. Type codes are part of the on-disk format: never renumber,
only append.
"""

from __future__ import annotations

import dataclasses
import typing

import msgpack

from durio.journal import entries as e

SCHEMA_VERSION = 1

_FAILURE_EXT = 1
_TARGET_EXT = 2

# On-disk type codes of journal entries. Append only.
ENTRY_CODES: dict[type[e.Entry], int] = {
    e.Input: 1,
    e.Output: 2,
    e.Run: 3,
    e.Sleep: 4,
    e.Call: 5,
    e.OneWayCall: 6,
    e.GetState: 7,
    e.GetLazyState: 8,
    e.GetStateKeys: 9,
    e.GetLazyStateKeys: 10,
    e.SetState: 11,
    e.ClearState: 12,
    e.ClearAllState: 13,
    e.GetPromise: 14,
    e.PeekPromise: 15,
    e.CompletePromise: 16,
    e.CompleteAwakeable: 17,
    e.SendSignal: 18,
    e.AttachInvocation: 19,
    e.GetInvocationOutput: 20,
    e.SendNamedSignal: 21,
    e.Completion: 64,
    e.Signal: 65,
    e.NamedSignal: 66,
}
_ENTRY_BY_CODE = {code: cls for cls, code in ENTRY_CODES.items()}
_ENTRY_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls) if f.name != "ts") for cls in ENTRY_CODES}


class FrameError(Exception):
    """A stored value could not be decoded."""


def _default(value: typing.Any) -> typing.Any:
    if isinstance(value, e.Failure):
        return msgpack.ExtType(_FAILURE_EXT, msgpack.packb([value.code, value.message, value.metadata], use_bin_type=True))
    if isinstance(value, e.Target):
        return msgpack.ExtType(_TARGET_EXT, msgpack.packb([value.service, value.handler, value.key], use_bin_type=True))
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _ext_hook(code: int, data: bytes) -> typing.Any:
    if code == _FAILURE_EXT:
        failure_code, message, metadata = msgpack.unpackb(data, raw=False)
        return e.Failure(failure_code, message, metadata)
    if code == _TARGET_EXT:
        return e.Target(*msgpack.unpackb(data, raw=False))
    raise FrameError(f"unknown extension type {code}")


_packer_options = {"use_bin_type": True, "default": _default}


def pack(value: typing.Any) -> bytes:
    """A frame: the schema version, then msgpack."""
    return bytes((SCHEMA_VERSION,)) + msgpack.packb(value, **_packer_options)


def unpack(frame: bytes, what: str) -> typing.Any:
    """Decode a frame; `what` names it in the error ("journal entry 3 of inv_...")."""
    if not frame:
        raise FrameError(f"{what} is empty")
    version = frame[0]
    if version != SCHEMA_VERSION:
        raise FrameError(f"{what} has schema version {version}; this durio reads version {SCHEMA_VERSION}")
    try:
        return msgpack.unpackb(memoryview(frame)[1:], raw=False, ext_hook=_ext_hook, strict_map_key=False)
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError(f"{what} is corrupt: {exc}") from exc


def pack_entry(entry: e.Entry) -> bytes:
    cls = type(entry)
    return pack([ENTRY_CODES[cls], entry.ts, *(getattr(entry, name) for name in _ENTRY_FIELDS[cls])])


def unpack_entry(frame: bytes, what: str) -> e.Entry:
    fields = unpack(frame, what)
    try:
        cls = _ENTRY_BY_CODE[fields[0]]
    except (KeyError, IndexError, TypeError) as exc:
        raise FrameError(f"{what} has an unknown entry type {fields[0] if fields else None!r}") from exc
    names = _ENTRY_FIELDS[cls]
    if len(fields) != len(names) + 2:
        raise FrameError(f"{what} has {len(fields) - 2} fields; a {cls.type_name} entry has {len(names)}")
    try:
        return cls(ts=fields[1], **dict(zip(names, fields[2:])))
    except TypeError as exc:
        raise FrameError(f"{what} does not decode as a {cls.type_name} entry: {exc}") from exc


_RECORD_FIELDS: dict[type, frozenset[str]] = {}
_RECORD_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def pack_record(record: typing.Any) -> bytes:
    """A dataclass record as a map, so fields can be added without a new schema version."""
    cls = type(record)
    names = _RECORD_FIELD_NAMES.get(cls)
    if names is None:
        names = _RECORD_FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return pack({name: getattr(record, name) for name in names})


def unpack_record(frame: bytes, cls: type, what: str) -> typing.Any:
    fields = unpack(frame, what)
    if not isinstance(fields, dict):
        raise FrameError(f"{what} is not a record")
    known = _RECORD_FIELDS.get(cls)
    if known is None:
        known = _RECORD_FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    try:
        return cls(**{k: v for k, v in fields.items() if k in known})
    except (TypeError, ValueError) as exc:  # a missing field, or a value the record's types refuse
        raise FrameError(f"{what} does not decode as a {cls.__name__}: {exc}") from exc
