"""The service protocol's framing: an 8-byte header (type u16, flags u16, length u32, big-endian), then protobuf."""

from __future__ import annotations

import struct
import typing

from durio.protocol import messages as m
from durio.sdk.errors import ErrorCode

_HEADER = struct.Struct(">HHI")
HEADER_SIZE = _HEADER.size
MAX_FRAME = 32 * 1024 * 1024 + 1024  # a body at the ingress limit, plus its envelope


class ProtocolError(Exception):
    """The peer broke the protocol; `code` is PROTOCOL_VIOLATION (571) unless stated."""

    def __init__(self, message: str, code: int = ErrorCode.PROTOCOL_VIOLATION) -> None:
        super().__init__(message)
        self.code = code


class Frame(typing.NamedTuple):
    type_id: int
    flags: int
    message: typing.Any  # a protobuf message


def encode(type_id: int, message: typing.Any, flags: int = 0) -> bytes:
    payload = message.SerializeToString()
    return _HEADER.pack(type_id, flags, len(payload)) + payload


def message_class(type_id: int) -> typing.Any:
    name = m.CONTROL_TYPES.get(type_id) or m.COMMAND_TYPES.get(type_id)
    if name is None and type_id in m.NOTIFICATION_TYPES:
        name = "NotificationMessage"
    if name is None:
        raise ProtocolError(f"unknown message type 0x{type_id:04x}")
    return m.MESSAGES[name]


class FrameDecoder:
    """Turns a byte stream into frames, however the bytes were chunked."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER_SIZE:
            type_id, flags, length = _HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ProtocolError(f"a frame of type 0x{type_id:04x} claims {length} bytes, over the limit of {MAX_FRAME}")
            if len(self._buffer) < HEADER_SIZE + length:
                break
            payload = bytes(self._buffer[HEADER_SIZE : HEADER_SIZE + length])
            del self._buffer[: HEADER_SIZE + length]
            cls = message_class(type_id)
            try:
                frames.append(Frame(type_id, flags, cls.FromString(payload)))
            except Exception as exc:  # protobuf's DecodeError, without depending on its module path
                raise ProtocolError(f"a frame of type 0x{type_id:04x} does not decode: {exc}") from exc
        return frames

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)
